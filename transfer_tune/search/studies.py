"""Opening, creating and re-queuing studies: the one home of the project's Optuna plumbing.

* :func:`open_study` loads a study by name or raises :class:`TransferTuneError` with one
  message, naming the storage (password hidden) and the studies it holds; :func:`find_study`
  returns ``None`` instead.
* :func:`create_study` creates a study (or reopens it) and names its objective for the
  dashboard (``set_metric_names``).
* :func:`queue_retry` queues a failed trial's parameters again, recorded in the format of
  Optuna's ``RetryHeartbeatStaleTrialCallback``, so that retries made by Optuna's heartbeats
  and by this project read the same: :func:`retried_trial_number` and :func:`retry_history`
  read them through that callback's public static methods. Sweeps written before this format
  recorded a retry as the system attribute ``retry_of``; it is still read.

What needs an Optuna internal lives in :mod:`transfer_tune.search.optuna_internals`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.storages import BaseStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from transfer_tune.errors import TransferTuneError
from transfer_tune.search.optuna_internals import retry_attrs, storage_location
from transfer_tune.search.storage import get_storage, redact_url

__all__ = [
    "LEGACY_RETRY_ATTR",
    "create_study",
    "find_study",
    "missing_study_message",
    "open_study",
    "queue_retry",
    "retried_trial_number",
    "retry_history",
    "study_names",
]

#: The system attribute by which sweeps once recorded a retry (the number of the trial it
#: repeats); read so that studies written then still tell their retries apart.
LEGACY_RETRY_ATTR = "retry_of"
#: At most this many study names are listed in the message of :func:`open_study`.
MAX_LISTED = 20

StorageLike = BaseStorage | str | os.PathLike | None


def _storage(storage: StorageLike) -> BaseStorage:
    return storage if isinstance(storage, BaseStorage) else get_storage(storage)


def study_names(storage: StorageLike) -> list[str]:
    """Names of the studies in ``storage``, oldest first."""
    return list(optuna.get_all_study_names(storage=_storage(storage)))


def missing_study_message(name: str, storage: StorageLike) -> str:
    """The one message for a study name that ``storage`` does not hold.

    It names the storage (password hidden) and lists the studies there, at most
    :data:`MAX_LISTED` of them.
    """
    store = _storage(storage)
    url = storage_location(store)
    where = redact_url(url) if url else "the storage"
    names = study_names(store)
    if not names:
        return f"no study named {name!r} in {where}; it holds no study"
    shown = ", ".join(names[:MAX_LISTED])
    more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return f"no study named {name!r} in {where}; studies there: {shown}{more}"


def find_study(
    name: str,
    storage: StorageLike,
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study | None:
    """Study ``name`` of ``storage``, or ``None`` when there is none by that name.

    Parameters
    ----------
    name : str
        The study's name.
    storage : BaseStorage, str or path
        An opened storage, or a URL for :func:`transfer_tune.get_storage`.
    sampler, pruner : optional
        Passed to ``optuna.load_study`` (Optuna's defaults when ``None``).
    """
    try:
        return optuna.load_study(
            study_name=name, storage=_storage(storage), sampler=sampler, pruner=pruner
        )
    except KeyError:  # Optuna's "Record does not exist."
        return None


def open_study(
    name: str,
    storage: StorageLike,
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Study ``name`` of ``storage``; see :func:`find_study` for the parameters.

    Raises
    ------
    TransferTuneError
        When ``storage`` holds no study by that name: :func:`missing_study_message`.
    """
    store = _storage(storage)
    study = find_study(name, store, sampler=sampler, pruner=pruner)
    if study is None:
        raise TransferTuneError(missing_study_message(name, store))
    return study


def create_study(
    name: str,
    storage: StorageLike,
    *,
    metric_name: str,
    direction: str = "minimize",
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    load_if_exists: bool = True,
) -> optuna.Study:
    """Create study ``name`` (or reopen it, with ``load_if_exists``) and name its objective.

    Parameters
    ----------
    name : str
        The study's name.
    storage : BaseStorage, str or path
        An opened storage, or a URL for :func:`transfer_tune.get_storage`.
    metric_name : str
        What the objective measures, shown by optuna-dashboard (``set_metric_names``).
    direction : str
        ``"minimize"`` or ``"maximize"``.
    sampler, pruner : optional
        Optuna's defaults when ``None``.
    load_if_exists : bool
        Reopen an existing study of that name instead of refusing it.
    """
    study = optuna.create_study(
        storage=_storage(storage),
        study_name=name,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=load_if_exists,
    )
    with warnings.catch_warnings():  # set_metric_names is experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([metric_name])
    return study


def retried_trial_number(trial: FrozenTrial) -> int | None:
    """The first trial of the retry series ``trial`` belongs to; ``None`` if not a retry.

    Optuna's ``RetryHeartbeatStaleTrialCallback.retried_trial_number``; for a sweep written
    before this format, the trial its :data:`LEGACY_RETRY_ATTR` names.
    """
    with warnings.catch_warnings():  # experimental in Optuna's terms
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        number = RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)
    if number is None:
        number = trial.system_attrs.get(LEGACY_RETRY_ATTR)
    return None if number is None else int(number)


def retry_history(trial: FrozenTrial) -> list[int]:
    """The earlier trials of ``trial``'s retry series, oldest first; empty if not a retry.

    Optuna's ``RetryHeartbeatStaleTrialCallback.retry_history``; for a sweep written before
    this format, ``[retry_of]`` (the one trial it names).
    """
    with warnings.catch_warnings():  # experimental in Optuna's terms
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        history = list(RetryHeartbeatStaleTrialCallback.retry_history(trial))
    if not history and trial.system_attrs.get(LEGACY_RETRY_ATTR) is not None:
        history = [trial.system_attrs[LEGACY_RETRY_ATTR]]
    return [int(n) for n in history]


def queue_retry(
    study: optuna.Study,
    trial: FrozenTrial,
    *,
    max_retry: int | None = None,
    system_attrs: Mapping[str, Any] | None = None,
) -> bool:
    """Queue ``trial``'s parameters again as a WAITING trial; whether it was queued.

    Parameters
    ----------
    study : optuna.Study
        The study ``trial`` belongs to.
    trial : FrozenTrial
        The failed trial (or the RUNNING trial of a dead worker).
    max_retry : int, optional
        Queue nothing when the series would then hold more than this many retries (Optuna's
        rule: ``max_retry=1`` retries a trial once and never a retry); no limit if ``None``.
    system_attrs : mapping, optional
        More system attributes for the retry (a grid point's, for a GridSampler study).

    The retry carries the parameters and their distributions, but neither the user
    attributes nor the intermediate values of ``trial``.
    """
    history = [*retry_history(trial), trial.number]
    if max_retry is not None and max_retry < len(history):
        return False
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            system_attrs={**(system_attrs or {}), **retry_attrs(history)},
        )
    )
    return True
