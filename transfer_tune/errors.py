"""The one exception type for user mistakes, and the training-divergence signal.

:class:`TransferTuneError` is defined in :mod:`pdes.errors` (the lower layer) and is the same
class here, so one ``except`` catches the mistakes of both packages.
"""

from __future__ import annotations

from pdes import TransferTuneError

__all__ = ["DivergenceError", "TransferTuneError"]


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss (NaN or inf).

    Attributes
    ----------
    epoch, step : int
        Where the non-finite value appeared.
    """

    def __init__(self, message: str, *, epoch: int = -1, step: int = -1) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step
