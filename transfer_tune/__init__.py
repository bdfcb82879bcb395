"""transfer-tune: tune a small-K proxy FNO with Optuna, transfer to a large-K FNO with muP."""

from transfer_tune.api import TransferResult, tune_then_transfer
from transfer_tune.errors import DivergenceError, TransferTuneError

__all__ = ["DivergenceError", "TransferResult", "TransferTuneError", "tune_then_transfer"]
__version__ = "0.1.0"
