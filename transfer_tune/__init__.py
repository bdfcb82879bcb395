"""transfer-tune: tune a small-K proxy FNO with Optuna, transfer to a large-K FNO with muP.

The public names, each with one import path::

    import transfer_tune
    transfer_tune.tune_then_transfer(...)  # the workflow; also tune, plan_transfer, run_target
    from transfer_tune.model import FNO         # or transfer_tune.FNO
    from transfer_tune.parametrization import get_parametrization
    from transfer_tune.report import landscape_figure, save_figure   # figures and saving

They are loaded lazily (PEP 562), so ``import transfer_tune`` and importing a lower layer
(``transfer_tune.core``, ``transfer_tune.errors``) never load Optuna.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> (module, attribute) it is loaded from on first use.
_LAZY: dict[str, tuple[str, str]] = {
    "tune_then_transfer": ("transfer_tune.api", "tune_then_transfer"),
    "TransferResult": ("transfer_tune.api", "TransferResult"),
    "tune": ("transfer_tune.search.tune", "tune"),
    "plan_transfer": ("transfer_tune.search.transfer", "plan_transfer"),
    "run_target": ("transfer_tune.search.transfer", "run_target"),
    "load_checkpoint": ("transfer_tune.search.transfer", "load_checkpoint"),
    "FNO": ("transfer_tune.model", "FNO"),
    "get_parametrization": ("transfer_tune.parametrization", "get_parametrization"),
    "sweep": ("transfer_tune.analysis.landscape.runner", "sweep"),
    "load_sweep": ("transfer_tune.analysis.landscape.readback", "load_sweep"),
    "calibrate": ("transfer_tune.analysis.calibrate", "calibrate"),
    "coord_check": ("transfer_tune.analysis.coord_check", "coord_check"),
    "analyse_horizon": ("transfer_tune.search.horizon_stats", "analyse"),
    "TransferTuneError": ("transfer_tune.errors", "TransferTuneError"),
    "DivergenceError": ("transfer_tune.errors", "DivergenceError"),
}

__all__ = sorted(_LAZY)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'transfer_tune' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
