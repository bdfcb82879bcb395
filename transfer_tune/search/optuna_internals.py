"""Every use of an Optuna internal, in one place: pinned by ``tests/test_optuna_internals.py``.

The rest of the code uses Optuna's public API only; what it cannot do with it lives here, each
use with the reason it is needed. ``tests/test_optuna_internals.py`` checks each one against
the installed Optuna with real storages, so an Optuna upgrade that changes one breaks this
file and that test, nowhere else.

- GridSampler's trial system attributes ``grid_id`` and ``search_space``: which grid point a
  sweep trial holds (:func:`grid_id`) and what a re-queued trial must carry to run that point
  again (:func:`grid_attrs`).
- ``RetryHeartbeatStaleTrialCallback``'s system attributes ``failed_trial`` and
  ``retry_history``: writing a retry the way Optuna's callback does (:func:`retry_attrs`);
  they are *read* through the callback's public static methods
  (:mod:`transfer_tune.search.studies`).
- ``BaseStorage.set_trial_state_values`` (and ``set_trial_user_attr``): failing the RUNNING
  trial of a dead worker (:func:`fail_trial`); ``Study.tell`` finishes only the trials this
  process asked for.
- ``RDBStorage.url`` and ``JournalStorage._backend._file_path``: where a storage object
  points, for messages (:func:`storage_location`).

The logger ``optuna.study._optimize`` and its ``Trial N failed with`` records, which
:mod:`transfer_tune.faults` filters, are pinned by the same test: ``faults`` sits below the
search layer and cannot import this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "GRID_ID",
    "GRID_SEARCH_SPACE",
    "RETRY_FAILED_TRIAL",
    "RETRY_HISTORY",
    "fail_trial",
    "grid_attrs",
    "grid_id",
    "retry_attrs",
    "storage_location",
]

#: GridSampler's system attribute: the index of the grid point a trial runs.
GRID_ID = "grid_id"
#: GridSampler's system attribute: the search space the grid point belongs to.
GRID_SEARCH_SPACE = "search_space"
#: ``RetryHeartbeatStaleTrialCallback``'s system attribute: the first trial of a retry series.
RETRY_FAILED_TRIAL = "failed_trial"
#: ``RetryHeartbeatStaleTrialCallback``'s system attribute: every earlier trial of the series.
RETRY_HISTORY = "retry_history"


def grid_id(trial: FrozenTrial) -> int | None:
    """The GridSampler grid point ``trial`` holds (``0 .. n_grid - 1``); ``None`` if none yet.

    A trial gets its point when it starts (``GridSampler.before_trial``), so a WAITING trial
    has one only when it was queued with :func:`grid_attrs`.
    """
    value = trial.system_attrs.get(GRID_ID)
    return None if value is None else int(value)


def grid_attrs(trial: FrozenTrial) -> dict[str, Any]:
    """The system attributes a re-queued copy of ``trial`` needs to run the same grid point.

    A WAITING trial that carries ``grid_id`` keeps it when it starts (GridSampler assigns no
    new point) and counts as that point for the sampler's bookkeeping.
    """
    attrs = trial.system_attrs
    return {key: attrs[key] for key in (GRID_ID, GRID_SEARCH_SPACE) if key in attrs}


def retry_attrs(history: Sequence[int]) -> dict[str, Any]:
    """System attributes of a retry in ``RetryHeartbeatStaleTrialCallback``'s format.

    Parameters
    ----------
    history : sequence of int
        The trial numbers of the series, oldest first, ending with the trial being retried.

    Returns
    -------
    dict
        What Optuna's callback writes: ``failed_trial`` (the first trial of the series) and
        ``retry_history``, so that ``RetryHeartbeatStaleTrialCallback.retried_trial_number``
        and ``retry_history`` read it back.
    """
    numbers = [int(n) for n in history]
    if not numbers:
        raise ValueError("a retry history holds at least the trial being retried")
    return {RETRY_FAILED_TRIAL: numbers[0], RETRY_HISTORY: numbers}


def fail_trial(
    storage: BaseStorage, study_name: str, number: int, user_attrs: Mapping[str, Any]
) -> bool:
    """Mark trial ``number`` of ``study_name`` FAIL with ``user_attrs``; whether this call did.

    For a RUNNING trial whose worker process is gone: ``Study.tell`` only finishes trials this
    process asked for, so the state is written through the storage.

    Returns
    -------
    bool
        ``False`` when the trial was already finished (another worker failed it first).
    """
    study_id = storage.get_study_id_from_name(study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    try:
        for key, value in user_attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False
    return True


def storage_location(storage: BaseStorage) -> str | None:
    """The URL a storage object was opened on (passwords included); ``None`` if unknown.

    ``sqlite:///PATH`` or ``postgresql://...`` for an RDB storage, ``journal:PATH`` for a
    journal file, as :func:`transfer_tune.search.storage.normalize_url` writes them. Redact it
    before showing it.
    """
    if isinstance(storage, RDBStorage):
        url = getattr(storage, "url", None)
        return url if isinstance(url, str) else None
    if isinstance(storage, JournalStorage):
        path = getattr(getattr(storage, "_backend", None), "_file_path", None)
        return f"journal:{path}" if isinstance(path, str) else None
    return None
