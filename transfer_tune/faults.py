"""Ctrl-C and a lost storage, told in one line by the command line.

Optuna logs every failed trial with its traceback before re-raising the error, and its
heartbeat thread prints its own traceback when the database goes away; on the command line
both only bury the one line that says what happened. :func:`quiet_failures` drops those
reports while a command runs, for a ``KeyboardInterrupt`` and for a storage error only (any
other failure of a trial is still logged in full), and :func:`storage_error` finds the
database error behind whatever Optuna raised last (its ``UnboundLocalError`` included).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: The logger through which Optuna reports a failed trial.
OPTUNA_TRIAL_LOGGER = "optuna.study._optimize"
_FAILED = re.compile(r"^Trial (\d+) failed with ")


def storage_error(exc: BaseException | None) -> BaseException | None:
    """The database (SQLAlchemy) error behind ``exc``, following causes and contexts."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if _is_database_error(exc):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _is_database_error(exc: BaseException) -> bool:
    sa_exc = sys.modules.get("sqlalchemy.exc")  # loaded whenever a database was opened
    return sa_exc is not None and isinstance(exc, (sa_exc.DBAPIError, sa_exc.InterfaceError))


def _silenced(exc: BaseException | None) -> bool:
    return isinstance(exc, KeyboardInterrupt) or storage_error(exc) is not None


class _QuietTrialFailures(logging.Filter):
    """Drops Optuna's two 'Trial N failed' records of an interrupted or storage-lost trial."""

    def __init__(self) -> None:
        super().__init__()
        self._dropping: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        match = _FAILED.match(record.getMessage())
        if match is None:
            return True
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            self._dropping = match.group(1) if _silenced(exc) else None
        return match.group(1) != self._dropping


@contextmanager
def quiet_failures() -> Iterator[None]:
    """While inside: no traceback of Optuna's for a Ctrl-C or a lost storage (see module)."""
    logger = logging.getLogger(OPTUNA_TRIAL_LOGGER)
    quiet = _QuietTrialFailures()
    hook = threading.excepthook

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if not _silenced(args.exc_value):  # a heartbeat thread that lost the database
            hook(args)

    logger.addFilter(quiet)
    threading.excepthook = thread_hook
    try:
        yield
    finally:
        threading.excepthook = hook
        logger.removeFilter(quiet)
