"""Opening, creating and re-queuing studies (:mod:`transfer_tune.search.studies`), on real
SQLite and journal storages: the one "no study" message, metric names, and retries in
Optuna's format (old sweeps' ``retry_of`` still read)."""

from __future__ import annotations

import warnings

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from transfer_tune.errors import TransferTuneError
from transfer_tune.search.storage import get_storage, normalize_url
from transfer_tune.search.studies import (
    MAX_LISTED,
    create_study,
    find_study,
    missing_study_message,
    open_study,
    queue_retry,
    retried_trial_number,
    retry_history,
)

X = {"x": optuna.distributions.FloatDistribution(0, 1)}


@pytest.fixture(params=["sqlite", "journal"])
def url(request, tmp_path) -> str:
    name = "s.db" if request.param == "sqlite" else "s.journal"
    return normalize_url(str(tmp_path / name))


def failed_trial(study: optuna.Study, **system_attrs) -> optuna.trial.FrozenTrial:
    """A FAIL trial of ``study`` with ``x`` = 0.25 and ``system_attrs``."""
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.FAIL, params={"x": 0.25}, distributions=X, system_attrs=system_attrs
        )
    )
    return study.get_trials()[-1]


def test_a_missing_study_is_told_in_one_message_with_the_studies_there(url):
    storage = get_storage(url)
    expected = f"no study named 'nope' in {url}; it holds no study"
    assert missing_study_message("nope", storage) == expected
    for name in ("b-study", "a-study"):
        create_study(name, storage, metric_name="loss")
    expected = f"no study named 'nope' in {url}; studies there: b-study, a-study"
    with pytest.raises(TransferTuneError) as err:
        open_study("nope", storage)
    assert str(err.value) == expected
    with pytest.raises(TransferTuneError) as err:  # a URL opens the same storage
        open_study("nope", url)
    assert str(err.value) == expected
    assert find_study("nope", storage) is None


def test_the_message_lists_at_most_max_listed_studies(tmp_path):
    storage = get_storage(str(tmp_path / "many.db"))
    names = [f"s{i:02d}" for i in range(MAX_LISTED + 3)]
    for name in names:
        optuna.create_study(study_name=name, storage=storage)
    message = missing_study_message("nope", storage)
    assert message.endswith(f"studies there: {', '.join(names[:MAX_LISTED])} and 3 more")


def test_open_and_find_return_the_study_with_the_sampler_given(url):
    storage = get_storage(url)
    made = create_study("s", storage, metric_name="loss")
    made.set_user_attr("kind", "proxy")
    sampler = optuna.samplers.RandomSampler(seed=3)
    opened = open_study("s", storage, sampler=sampler, pruner=optuna.pruners.NopPruner())
    assert opened.user_attrs == {"kind": "proxy"}
    assert opened.sampler is sampler
    assert isinstance(opened.pruner, optuna.pruners.NopPruner)
    assert find_study("s", url).user_attrs == {"kind": "proxy"}


def test_create_study_names_the_metric_and_reopens(url):
    storage = get_storage(url)
    study = create_study("c", storage, metric_name="test rel-L2", direction="maximize")
    study.set_user_attr("kept", 1)
    assert study.metric_names == ["test rel-L2"]
    again = create_study("c", storage, metric_name="test rel-L2")
    assert again.user_attrs == {"kept": 1}
    assert again.direction == optuna.study.StudyDirection.MAXIMIZE  # the stored one
    assert optuna.load_study(study_name="c", storage=get_storage(url)).metric_names == [
        "test rel-L2"
    ]
    with pytest.raises(optuna.exceptions.DuplicatedStudyError):
        create_study("c", storage, metric_name="x", load_if_exists=False)


def test_queue_retry_writes_optunas_format_and_obeys_max_retry(url):
    study = optuna.create_study(study_name="r", storage=get_storage(url))
    first = failed_trial(study)
    assert retried_trial_number(first) is None and retry_history(first) == []
    assert queue_retry(study, first, max_retry=1, system_attrs={"grid_id": 4})
    retry = study.get_trials()[-1]
    assert retry.state == TrialState.WAITING
    assert retry.params == {"x": 0.25} and retry.distributions == X
    assert retry.user_attrs == {}
    assert retry.system_attrs["grid_id"] == 4
    with warnings.catch_warnings():  # Optuna's own readers see the retry
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == first.number
        assert RetryHeartbeatStaleTrialCallback.retry_history(retry) == [first.number]
    # the retry ran and failed: max_retry=1 refuses, no limit queues a second retry
    running = study.ask()
    assert running.number == retry.number
    study.tell(running, state=TrialState.FAIL)
    failed_retry = study.get_trials()[retry.number]
    n_before = len(study.get_trials())
    assert not queue_retry(study, failed_retry, max_retry=1)
    assert len(study.get_trials()) == n_before
    assert queue_retry(study, failed_retry)
    second = study.get_trials()[-1]
    assert retried_trial_number(second) == first.number
    assert retry_history(second) == [first.number, retry.number]


def test_a_retry_reads_the_same_whoever_queued_it(url):
    study = optuna.create_study(study_name="same", storage=get_storage(url))
    trial = failed_trial(study)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        RetryHeartbeatStaleTrialCallback()(study, trial)
    by_optuna = study.get_trials()[-1]
    queue_retry(study, trial)
    ours = study.get_trials()[-1]
    assert by_optuna.number != ours.number
    assert ours.system_attrs == by_optuna.system_attrs
    assert retried_trial_number(ours) == retried_trial_number(by_optuna) == trial.number


def test_an_old_sweeps_retry_of_is_still_read(url):
    study = optuna.create_study(study_name="old", storage=get_storage(url))
    failed_trial(study)
    old_retry = failed_trial(study, retry_of=0, grid_id=1)  # as sweeps recorded retries once
    assert retried_trial_number(old_retry) == 0
    assert retry_history(old_retry) == [0]
    assert queue_retry(study, old_retry)
    new = study.get_trials()[-1]
    assert retried_trial_number(new) == 0
    assert retry_history(new) == [0, old_retry.number]
    assert "retry_of" not in new.system_attrs  # new retries are written in Optuna's format


def test_a_sweep_requeues_failed_points_in_optunas_format_old_records_included(url):
    """The landscape runner's resume: each failed grid point queued once, old ``retry_of``
    records included, and run again by a fresh GridSampler."""
    from transfer_tune.analysis.landscape.runner import has_work, prepare_study
    from transfer_tune.search.optuna_internals import grid_id

    space = {"x": [0.0, 1.0, 2.0]}
    storage = get_storage(url)

    def grid() -> optuna.Study:
        sampler = optuna.samplers.GridSampler(space, seed=0)
        return optuna.create_study(
            study_name="sweep", storage=storage, sampler=sampler, load_if_exists=True
        )

    def fail_on_one(trial: optuna.Trial) -> float:
        x = trial.suggest_categorical("x", space["x"])
        if x == 1.0:
            raise ValueError("diverged")
        return x

    study = grid()
    study.optimize(fail_on_one, n_trials=None, catch=(ValueError,))
    (failed,) = study.get_trials(states=(TrialState.FAIL,))
    # an old sweep's retry of that point, failed too, as it was recorded before
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.FAIL,
            params=failed.params,
            distributions=failed.distributions,
            system_attrs={
                "grid_id": grid_id(failed),
                "search_space": space,
                "retry_of": failed.number,
            },
        )
    )
    assert not has_work(study, 3)
    assert prepare_study(study, storage, reset_running=False) == 1  # one point, queued once
    assert prepare_study(study, storage, reset_running=False) == 0  # it is queued already
    assert has_work(study, 3)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1
    assert grid_id(waiting[0]) == grid_id(failed)
    assert retried_trial_number(waiting[0]) == failed.number
    assert "retry_of" not in waiting[0].system_attrs
    grid().optimize(lambda t: t.suggest_categorical("x", space["x"]), n_trials=None)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert sorted(t.params["x"] for t in done) == [0.0, 1.0, 2.0]
    assert not has_work(study, 3)
