"""The one exception type for user mistakes, and the training-divergence signal."""

from __future__ import annotations


class TransferTuneError(ValueError):
    """A user mistake (bad argument, config, file or storage), with the fix in its message.

    It subclasses :class:`ValueError` so that callers catching ``ValueError`` keep working.
    The CLI prints it on one line and exits with status 2.
    """


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
