"""The report layer: plotly figures drawn from results, their export, and optuna-dashboard.

Every figure, the saving functions and the dashboard's notes and server are public here, and
only here (``from transfer_tune.report import landscape_figure, save_figure``): code outside
this package imports these names from it, never from the submodule that defines them. They are
loaded lazily so that importing this package loads neither plotly nor Optuna until a name is
used. Figures draw from results, never query storage or train; the readers that turn a
storage into those results are public here too, and ``annotate_*`` write a storage's notes and
figures for optuna-dashboard, which ``serve`` opens.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module that defines it.
_LAZY: dict[str, str] = {
    "landscape_figure": "transfer_tune.report.figures",
    "optimum_figure": "transfer_tune.report.figures",
    "heatmap_figure": "transfer_tune.report.figures",
    "spectral_norm_figure": "transfer_tune.report.figures",
    "tuning_history_figure": "transfer_tune.report.history",
    "target_curve_figure": "transfer_tune.report.history",
    "plan_figure": "transfer_tune.report.history",
    "horizon_figure": "transfer_tune.report.horizon_figure",
    "calibration_figure": "transfer_tune.report.calibrate_figure",
    "coord_check_figure": "transfer_tune.report.coord_check_figure",
    "spectrum_figure": "transfer_tune.report.spectrum_figure",
    "save_figure": "transfer_tune.report.export",
    "save_figures": "transfer_tune.report.export",
    "read_proxy_history": "transfer_tune.report.readers",
    "read_curves": "transfer_tune.report.readers",
    "annotate_all": "transfer_tune.report.dashboard",
    "annotate_proxy_study": "transfer_tune.report.dashboard",
    "annotate_sweep": "transfer_tune.report.dashboard",
    "serve": "transfer_tune.report.dashboard",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'transfer_tune.report' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
