"""transfer-tune: tune a small-K proxy FNO with Optuna, transfer to a large-K FNO with muP."""

from transfer_tune.errors import DivergenceError, TransferTuneError

__all__ = ["DivergenceError", "TransferTuneError"]
__version__ = "0.1.0"
