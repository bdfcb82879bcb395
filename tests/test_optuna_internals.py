"""Each Optuna internal the project relies on, pinned against the installed Optuna.

Everything here runs Optuna for real on SQLite and journal storages in ``tmp_path``, no mocks:
an Optuna release that renames a system attribute, changes how GridSampler treats a queued
trial, how its retry callback records a retry, or where a failed trial is logged fails one of
these tests, and :mod:`transfer_tune.search.optuna_internals` is the one file to fix (the
logger of :mod:`transfer_tune.faults` aside, see that module).
"""

from __future__ import annotations

import logging
import warnings

import optuna
import pytest
from optuna.storages import BaseStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from transfer_tune.faults import OPTUNA_TRIAL_LOGGER
from transfer_tune.search.optuna_internals import (
    fail_trial,
    grid_attrs,
    grid_id,
    retry_attrs,
    storage_location,
)
from transfer_tune.search.storage import get_storage, normalize_url

SPACE = {"x": [0.0, 1.0, 2.0]}


@pytest.fixture(params=["sqlite", "journal"])
def url(request, tmp_path) -> str:
    name = "s.db" if request.param == "sqlite" else "s.journal"
    return normalize_url(str(tmp_path / name))


def grid_study(storage: BaseStorage, name: str = "grid") -> optuna.Study:
    return optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=optuna.samplers.GridSampler(SPACE, seed=0),
        load_if_exists=True,
    )


def fail_on_one(trial: optuna.Trial) -> float:
    x = trial.suggest_categorical("x", SPACE["x"])
    if x == 1.0:
        raise ValueError("the failing point")
    return x


def test_grid_id_names_the_point_a_trial_ran(url):
    study = grid_study(get_storage(url))
    study.optimize(fail_on_one, n_trials=None, catch=(ValueError,))  # stops when the grid is done
    trials = study.get_trials()
    assert sorted(grid_id(t) for t in trials) == [0, 1, 2]  # what the runner's has_work counts
    point = {grid_id(t): t.params["x"] for t in trials}
    assert sorted(point.values()) == SPACE["x"]  # one id per grid point
    for t in trials:
        assert grid_attrs(t) == {"grid_id": grid_id(t), "search_space": SPACE}
    # every worker's GridSampler over the same space means the same point by the same id
    other = grid_study(get_storage(url), "other")
    other.optimize(lambda t: t.suggest_categorical("x", SPACE["x"]), n_trials=None)
    assert {grid_id(t): t.params["x"] for t in other.get_trials()} == point
    assert grid_id(optuna.trial.create_trial(value=0.0)) is None
    assert grid_attrs(optuna.trial.create_trial(value=0.0)) == {}


def test_a_trial_queued_with_grid_attrs_reruns_its_point_and_nothing_else(url):
    storage = get_storage(url)
    study = grid_study(storage)
    study.optimize(fail_on_one, n_trials=None, catch=(ValueError,))
    (failed,) = study.get_trials(states=(TrialState.FAIL,))
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=failed.params,
            distributions=failed.distributions,
            system_attrs=grid_attrs(failed),
        )
    )
    # a new worker's sampler (same grid, same seed), as the landscape runner opens one
    again = grid_study(storage)
    again.optimize(lambda t: t.suggest_categorical("x", SPACE["x"]), n_trials=None)
    trials = again.get_trials()
    assert len(trials) == 4  # the retry only: the grid counts it as the failed point
    retry = trials[3]
    assert retry.state == TrialState.COMPLETE
    assert grid_id(retry) == grid_id(failed)  # GridSampler kept the point, assigned no new one
    assert retry.params == failed.params == {"x": 1.0}


def test_retry_attrs_are_what_optunas_retry_callback_writes(url):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        callback = RetryHeartbeatStaleTrialCallback()
    study = optuna.create_study(study_name="retry", storage=get_storage(url))
    study.optimize(lambda t: t.suggest_float("y", 0, 1), n_trials=2)
    first = study.ask({"y": optuna.distributions.FloatDistribution(0, 1)})
    study.tell(first, state=TrialState.FAIL)
    callback(study, study.get_trials()[first.number])  # Optuna's own retry of trial 2
    retry = study.get_trials()[-1]
    assert retry.state == TrialState.WAITING
    assert retry.system_attrs == retry_attrs([2]) == {"failed_trial": 2, "retry_history": [2]}
    # the retry runs and fails too: Optuna keeps the first trial and extends the history
    running = study.ask()
    assert running.number == retry.number == 3
    study.tell(running, state=TrialState.FAIL)
    callback(study, study.get_trials()[3])
    second = study.get_trials()[-1]
    assert (
        second.system_attrs == retry_attrs([2, 3]) == {"failed_trial": 2, "retry_history": [2, 3]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        assert RetryHeartbeatStaleTrialCallback.retried_trial_number(second) == 2
        assert RetryHeartbeatStaleTrialCallback.retry_history(second) == [2, 3]
    with pytest.raises(ValueError, match="at least"):
        retry_attrs([])


def test_fail_trial_fails_a_running_trial_once(url):
    storage = get_storage(url)
    study = optuna.create_study(study_name="orphan", storage=storage)
    running = study.ask()
    other = study.ask()
    assert fail_trial(storage, "orphan", running.number, {"fail_reason": "gone"})
    reread = optuna.load_study(study_name="orphan", storage=get_storage(url))
    states = {t.number: t.state for t in reread.get_trials()}
    assert states == {running.number: TrialState.FAIL, other.number: TrialState.RUNNING}
    assert reread.get_trials()[running.number].user_attrs == {"fail_reason": "gone"}
    # a finished trial is left alone: another worker failed it first
    assert not fail_trial(storage, "orphan", running.number, {"fail_reason": "again"})
    assert reread.get_trials()[running.number].user_attrs == {"fail_reason": "gone"}


def test_storage_location_is_the_url_the_storage_was_opened_on(url):
    assert storage_location(get_storage(url)) == url
    in_memory = optuna.storages.InMemoryStorage()
    assert storage_location(in_memory) is None


def test_failed_trials_are_logged_where_faults_filters_them(tmp_path):
    """:mod:`transfer_tune.faults` drops these records for a Ctrl-C or a lost storage."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(OPTUNA_TRIAL_LOGGER)
    logger.addHandler(handler)
    try:
        study = optuna.create_study(storage=get_storage(str(tmp_path / "log.db")))

        def fails(trial: optuna.Trial) -> float:
            raise ValueError("boom")

        study.optimize(fails, n_trials=1, catch=(ValueError,))
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records if r.name == OPTUNA_TRIAL_LOGGER]
    assert messages and messages[0].startswith("Trial 0 failed with ")
