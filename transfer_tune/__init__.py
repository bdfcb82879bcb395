"""transfer-tune: tune a small-K proxy FNO with Optuna, transfer to a large-K FNO with muP.

Public names are loaded lazily (PEP 562), so importing a lower layer (``transfer_tune.core``,
``transfer_tune.errors``) never loads Optuna.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DivergenceError",
    "TransferResult",
    "TransferTuneError",
    "calibrate",
    "coord_check",
    "load_checkpoint",
    "tune_then_transfer",
]
__version__ = "0.1.0"

_LAZY = {
    "tune_then_transfer": "transfer_tune.api",
    "TransferResult": "transfer_tune.api",
    "DivergenceError": "transfer_tune.errors",
    "TransferTuneError": "transfer_tune.errors",
    "calibrate": "transfer_tune.analysis.calibrate",
    "coord_check": "transfer_tune.analysis.coord_check",
    "load_checkpoint": "transfer_tune.search.transfer",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'transfer_tune' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
