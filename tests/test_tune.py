"""The proxy study: persistence, resume, divergence, several processes, search space."""

import math

import optuna
import pytest
import torch
from optuna.trial import TrialState

from tests.sizes import TINY_BURGERS, TUNE_TWO_EPOCHS
from transfer_tune.core.model import FNO
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.proxy import ProxySetup, best_values
from transfer_tune.search.search_space import SearchSpace
from transfer_tune.search.tune import tune

SPACE = {"batch_size": [8, 16]}


def finished(study):
    return [t for t in study.get_trials() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


class InterruptAt(optuna.pruners.BasePruner):
    """A pruner that interrupts the run (like Ctrl-C) inside trial ``number``."""

    def __init__(self, number):
        self.number = number

    def prune(self, study, trial):
        if trial.number == self.number:
            raise KeyboardInterrupt
        return False


def test_resume_after_interrupt_finishes_exactly_n_without_repeating(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    kw = dict(TUNE_TWO_EPOCHS, problem_overrides=TINY_BURGERS, search_space=SPACE, storage=url)
    with pytest.raises(KeyboardInterrupt):
        tune("burgers", 4, n_trials=6, study_name="resume", pruner=InterruptAt(3), **kw)
    study = optuna.load_study(study_name="resume", storage=url)
    first = {t.number: (t.params, t.datetime_start) for t in finished(study)}
    assert sorted(first) == [0, 1, 2]
    assert study.get_trials()[3].state == TrialState.FAIL  # the interrupted one
    tune("burgers", 4, n_trials=6, study_name="resume", pruner="none", **kw)
    study = optuna.load_study(study_name="resume", storage=url)
    done = finished(study)
    assert len(done) == 6
    assert len({t.number for t in done}) == 6
    for t in done:  # the first three were not run again
        if t.number in first:
            assert (t.params, t.datetime_start) == first[t.number]
    assert len(study.get_trials()) == 7


def test_lr_10_is_pruned_with_the_reason_and_the_study_finishes(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = tune(
        "burgers",
        4,
        n_trials=2,
        study_name="lr10",
        storage=url,
        problem_overrides=TINY_BURGERS,
        search_space={"lr": 10.0, "batch_size": [8]},
        **TUNE_TWO_EPOCHS,
    )
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.PRUNED, TrialState.PRUNED]
    assert all("lr=10" in t.user_attrs["diverged"] for t in trials)
    with pytest.raises(TransferTuneError, match="no complete trial"):
        best_values(study)


def test_two_processes_on_a_journal_file_finish_exactly_n(tmp_path):
    url = f"journal:{tmp_path / 'study.journal'}"
    study = tune(
        "burgers",
        4,
        n_trials=5,
        n_jobs=2,
        study_name="pair",
        storage=url,
        problem_overrides=TINY_BURGERS,
        search_space=SPACE,
        **TUNE_TWO_EPOCHS,
    )
    study = optuna.load_study(
        study_name="pair",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.journal"))
        ),
    )
    done = finished(study)
    assert len(done) == 5
    assert len({t.number for t in done}) == 5
    # A trial queued after the study is full makes a surplus trial for sure (whether the two
    # workers raced into one above depends on timing): the rerun must start it, find the
    # study full, and fail it unrun.
    n_before = len(study.get_trials())
    study.enqueue_trial({"lr": 1e-3, "batch_size": 8})
    tune(
        "burgers",
        4,
        n_trials=5,
        study_name="pair",
        storage=url,
        problem_overrides=TINY_BURGERS,
        search_space=SPACE,
        **TUNE_TWO_EPOCHS,
    )
    trials = study.get_trials()
    assert len(trials) == n_before + 1  # the queued trial and nothing more
    surplus = trials[n_before]
    assert surplus.state == TrialState.FAIL
    assert "n_trials" in surplus.user_attrs["surplus"]
    assert surplus.intermediate_values == {}  # never trained: no epoch reported
    assert "hparams" not in surplus.user_attrs and "train_loss" not in surplus.user_attrs
    assert [t.number for t in finished(study)] == [t.number for t in done]  # still these five
    # any trial beyond n (the queued one, and any the race made) is marked surplus, unrun
    extra = [t for t in trials if t.state not in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert surplus in extra
    assert all(t.state == TrialState.FAIL and t.user_attrs.get("surplus") for t in extra)
    assert all(t.intermediate_values == {} for t in extra)


def test_study_stores_what_rebuilds_the_proxy(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    tune(
        "burgers",
        4,
        n_trials=2,
        study_name="attrs",
        storage=url,
        problem_overrides=TINY_BURGERS,
        search_space=SPACE,
        **TUNE_TWO_EPOCHS,
    )
    setup = ProxySetup.from_study(optuna.load_study(study_name="attrs", storage=url))
    assert setup.model["modes"] == 4 and setup.model["width"] == 8
    assert setup.parametrization == {"kind": "mup", "base_modes": 4, "spectral_std": None}
    assert setup.problem["name"] == "burgers" and setup.problem["resolution"] == 64
    model = setup.build_model(seed=0)
    assert model.config() == setup.model  # the stored config rebuilds the same architecture
    assert {k: setup.model[k] for k in ("dim", "modes", "width", "n_layers")} == {
        "dim": 1,
        "modes": 4,
        "width": 8,
        "n_layers": 2,
    }
    # ... initialised exactly as the trial's own proxy: µP at K_base = K_proxy with the seed
    expected = FNO(**setup.model)
    get_parametrization("mup", base_modes=4).initialize(
        expected, generator=torch.Generator().manual_seed(0)
    )
    got, want = model.state_dict(), expected.state_dict()
    assert list(got) == list(want)
    assert all(torch.equal(got[k], want[k]) for k in want)
    other = setup.build_model(seed=1).state_dict()
    assert not all(torch.equal(other[k], want[k]) for k in want)  # the seed matters
    # a different setup under the same name is refused, not silently mixed
    with pytest.raises(TransferTuneError, match="different setup"):
        tune(
            "burgers",
            4,
            n_trials=2,
            study_name="attrs",
            storage=url,
            problem_overrides=TINY_BURGERS,
            search_space=SPACE,
            **{**TUNE_TWO_EPOCHS, "epochs": 3},
        )


def test_search_space_defaults_overrides_and_beta2_transform():
    space = SearchSpace.default()
    assert space.to_dict() == {
        "lr": {"low": 1e-4, "high": 3e-1, "log": True},
        "batch_size": [8, 16, 32, 64],
        "beta1": {"low": 0.8, "high": 0.99, "log": False},
        "beta2": {"low": 0.9, "high": 0.9999, "log": True},
    }
    custom = SearchSpace.from_dict({"lr": {"low": 1e-3, "high": 1e-1}, "beta1": 0.9})
    assert custom.beta1.fixed and custom.beta1.value == 0.9
    assert SearchSpace.from_dict(custom.to_dict()) == custom
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        values = space.suggest(trial)
        assert 0.9 <= values["beta2"] <= 0.9999
        assert math.isclose(1 - values["beta2"], trial.params["one_minus_beta2"])
        assert space.values_from_params(trial.params) == values
        study.tell(trial, 0.0)
    for bad, match in [
        ({"lr": {"low": 1e-1, "high": 1e-3}}, "low must be < high"),
        ({"momentum": 0.9}, "unknown search-space"),
        ({"beta2": 1.0}, r"\[0, 1\)"),
        ({"batch_size": {"low": 1, "high": 8}}, "categorical"),
        ({"batch_size": [0]}, "positive"),
    ]:
        with pytest.raises(TransferTuneError, match=match):
            SearchSpace.from_dict(bad)


def test_bad_tune_arguments_are_our_error(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(TransferTuneError, match="batch_size 64"):  # the user's own range
        tune(
            "burgers",
            4,
            n_trials=1,
            storage=url,
            problem_overrides=TINY_BURGERS,
            search_space={"batch_size": [8, 64]},
            **TUNE_TWO_EPOCHS,
        )
    with pytest.raises(TransferTuneError, match="unknown sampler"):
        tune(
            "burgers",
            4,
            n_trials=1,
            storage=url,
            sampler="annealing",
            problem_overrides=TINY_BURGERS,
            search_space=SPACE,
            **TUNE_TWO_EPOCHS,
        )
    with pytest.raises(TransferTuneError, match="K = 40"):
        tune(
            "burgers",
            40,
            n_trials=1,
            storage=url,
            problem_overrides=TINY_BURGERS,
            search_space=SPACE,
            **TUNE_TWO_EPOCHS,
        )
    with pytest.raises(TransferTuneError, match="unsupported storage"):
        tune(
            "burgers",
            4,
            n_trials=1,
            storage="mysql://x/y",
            problem_overrides=TINY_BURGERS,
            search_space=SPACE,
            **TUNE_TWO_EPOCHS,
        )
