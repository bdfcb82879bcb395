"""The one user-facing exception type, shared by :mod:`pdes` and :mod:`transfer_tune`.

:mod:`pdes` is the lowest layer and imports nothing from :mod:`transfer_tune`, so the type is
defined here and re-exported unchanged as :class:`transfer_tune.errors.TransferTuneError`:
``except transfer_tune.errors.TransferTuneError`` catches the mistakes of both packages.
"""

from __future__ import annotations


class TransferTuneError(ValueError):
    """A user mistake (bad argument, config, file or storage), with the fix in its message.

    It subclasses :class:`ValueError` so that callers catching ``ValueError`` keep working.
    The CLI prints it on one line and exits with status 2.
    """
