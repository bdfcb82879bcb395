"""transfer-tune: tune a small-K proxy FNO with Optuna, transfer to a large-K FNO with muP.

The public names, each with one documented import path::

    import transfer_tune
    transfer_tune.tune_then_transfer(...)  # the workflow: tune, then transfer (plan_transfer
                                           # + run_target) from the proxy study
    from transfer_tune.model import FNO         # or transfer_tune.FNO
    from transfer_tune.parametrization import get_parametrization
    from transfer_tune.report import landscape_figure, save_figure   # figures and saving

From ``transfer_tune``: the workflow (``tune_then_transfer``, ``TransferResult``, ``tune``,
``transfer``, ``plan_transfer``, ``run_target``, ``Side``, ``load_checkpoint``), the model and
rule (``FNO``, ``get_parametrization``), landscapes (``sweep``, ``sweep_from_spec``,
``list_sweeps``, ``load_sweep``, ``analyze_optimum``), the other analyses (``calibrate``,
``coord_check``, ``CoordCheckResult``, ``analyse_horizon``, ``spectral_norm_check``), study
specs and storages (``load_spec``, ``get_storage``, ``dashboard_command``) and the errors
(``TransferTuneError``, ``DivergenceError``). Modules below this one import each name from
the module that defines it (a package's ``__init__`` when it lists the name in ``__all__``);
``tests/test_public_api.py`` holds the list and checks every import in the repository.

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
    "transfer": ("transfer_tune.search.transfer", "transfer"),
    "plan_transfer": ("transfer_tune.search.transfer", "plan_transfer"),
    "run_target": ("transfer_tune.search.transfer", "run_target"),
    "load_checkpoint": ("transfer_tune.search.transfer", "load_checkpoint"),
    "Side": ("transfer_tune.search.sides", "Side"),
    "load_spec": ("transfer_tune.search.spec", "load_spec"),
    "get_storage": ("transfer_tune.search.storage", "get_storage"),
    "dashboard_command": ("transfer_tune.search.storage", "dashboard_command"),
    "FNO": ("transfer_tune.model", "FNO"),
    "get_parametrization": ("transfer_tune.parametrization", "get_parametrization"),
    "sweep": ("transfer_tune.analysis.landscape", "sweep"),
    "sweep_from_spec": ("transfer_tune.analysis.landscape", "sweep_from_spec"),
    "list_sweeps": ("transfer_tune.analysis.landscape", "list_sweeps"),
    "load_sweep": ("transfer_tune.analysis.landscape", "load_sweep"),
    "analyze_optimum": ("transfer_tune.analysis.optimum", "analyze_optimum"),
    "calibrate": ("transfer_tune.analysis.calibrate", "calibrate"),
    "coord_check": ("transfer_tune.analysis.coord_check", "coord_check"),
    "CoordCheckResult": ("transfer_tune.analysis.coord_result", "CoordCheckResult"),
    "spectral_norm_check": ("transfer_tune.analysis.diagnostics", "spectral_norm_check"),
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
