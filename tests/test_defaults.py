"""Defaults that just work: the batch range on a small training set, the threads rule."""

from __future__ import annotations

import logging
import os

import optuna
import pytest

from tests.sizes import TINY_BURGERS, TUNE_ONE_EPOCH
from transfer_tune.analysis.landscape import runner
from transfer_tune.errors import TransferTuneError
from transfer_tune.search import proxy, workers
from transfer_tune.search import tune as tune_module
from transfer_tune.search.search_space import SearchSpace
from transfer_tune.search.storage import get_storage
from transfer_tune.search.tune import tune
from transfer_tune.search.workers import available_cores, torch_threads


def test_default_batch_sizes_are_restricted_to_the_training_set():
    space, line = SearchSpace.default().fit_batch_size(32, explicit=False)
    assert space.batch_size.choices == (8, 16, 32) and space.max_batch_size() == 32
    assert "32 samples" in line and "[8, 16, 32, 64]" in line and "\n" not in line
    assert space.lr == SearchSpace.default().lr  # nothing else changes
    tiny, line = SearchSpace.default().fit_batch_size(5, explicit=False)
    assert tiny.batch_size.fixed and tiny.batch_size.value == 5  # none fits: the full set
    same, line = SearchSpace.default().fit_batch_size(64, explicit=False)
    assert same == SearchSpace.default() and line is None
    mine = SearchSpace.from_dict({"batch_size": [8, 64]})
    with pytest.raises(TransferTuneError, match="batch_size 64 but the training set has 32"):
        mine.fit_batch_size(32, explicit=True)


def test_tune_with_32_samples_and_the_default_space_runs_and_says_so(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 's.db'}"
    with caplog.at_level(logging.WARNING, logger="transfer_tune"):
        study = tune(
            "burgers", 4, n_trials=1, storage=url, problem_overrides=TINY_BURGERS, **TUNE_ONE_EPOCH
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "transfer_tune"]
    assert len(lines) == 1 and "restricted to [8, 16, 32]" in lines[0]
    assert study.user_attrs["search_space"]["batch_size"] == [8, 16, 32]
    assert study.trials[0].params["batch_size"] <= 32
    assert study.metric_names == [proxy.METRIC_NAME] == ["val rel-L2 (normalised)"]
    with pytest.raises(TransferTuneError, match="batch_size 64"):  # an explicit range still fails
        tune(
            "burgers",
            4,
            n_trials=1,
            storage=url,
            study_name="explicit",
            search_space={"batch_size": [16, 64]},
            problem_overrides=TINY_BURGERS,
            **TUNE_ONE_EPOCH,
        )


class _CpuMax:
    """Stands in for ``pathlib.Path`` in ``workers``: ``/sys/fs/cgroup/cpu.max`` reads ``text``."""

    text: str | None = None

    def __init__(self, path):
        assert str(path) == "/sys/fs/cgroup/cpu.max", path

    def read_text(self):
        if self.text is None:
            raise FileNotFoundError("no cgroup v2 CPU limit")
        return self.text


@pytest.mark.parametrize(
    ("affinity", "cpu_max", "cores"),
    [
        (6, None, 6),  # no cgroup file: the affinity mask
        (6, "max 100000", 6),  # no quota
        (6, "200000 100000", 2),  # a 2-CPU quota caps the mask
        (6, "250000 100000", 2),  # 2.5 CPUs: whole cores only
        (6, "50000 100000", 1),  # half a CPU: still one
        (2, "800000 100000", 2),  # a quota above the mask: the mask
        (6, "garbage", 6),  # unreadable: ignored
    ],
)
def test_available_cores_is_the_affinity_mask_capped_by_the_cgroup_quota(
    monkeypatch, affinity, cpu_max, cores
):
    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: set(range(affinity)))
    monkeypatch.setattr(_CpuMax, "text", cpu_max)
    monkeypatch.setattr(workers, "Path", _CpuMax)
    assert available_cores() == cores


@pytest.mark.parametrize(
    ("cores", "threads"),
    [(8, {1: 8, 2: 4, 3: 2, 4: 2, 8: 1, 9: 1, 100: 1, 0: 8}), (1, {1: 1, 2: 1}), (2, {1: 2, 2: 1})],
)
def test_threads_rule_is_cores_over_processes_rounded_down_at_least_one(
    monkeypatch, cores, threads
):
    monkeypatch.setattr(workers, "available_cores", lambda: cores)
    assert {p: torch_threads(p) for p in threads} == threads


def test_threads_rule_counts_the_cores_this_process_may_use():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    mask = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(mask)})  # a process pinned to one core: one thread
        assert available_cores() == 1 and torch_threads(1) == 1 and torch_threads(2) == 1
    finally:
        os.sched_setaffinity(0, mask)
    # one rule for the proxy search and the landscape sweeps
    assert tune_module.torch_threads is runner.torch_threads is workers.torch_threads


def test_tune_workers_run_on_cores_over_n_jobs_threads(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = tune(
        "burgers",
        4,
        n_trials=2,
        n_jobs=2,
        storage=url,
        search_space={"batch_size": [8, 16]},
        problem_overrides=TINY_BURGERS,
        **TUNE_ONE_EPOCH,
    )
    study = optuna.load_study(study_name=study.study_name, storage=get_storage(url))
    ran = [t for t in study.trials if "torch_threads" in t.user_attrs]
    assert ran and {t.user_attrs["torch_threads"] for t in ran} == {torch_threads(2)}


def test_the_fine_grid_follows_the_requested_resolution():
    from pdes import get_problem

    darcy = get_problem("darcy", resolution=32, n_train=2, n_val=1, n_test=1)
    assert darcy.config()["n_fine"] == 125  # (32 - 1) * 4 + 1, nearest the default 127
    assert "n_fine=125" in darcy.summary()
    burgers = get_problem("burgers", resolution=8192, n_train=2, n_val=1, n_test=1)
    assert burgers.config()["n_fine"] == 8192 and "n_fine=8192" in burgers.summary()
    assert get_problem("burgers", resolution=768).config()["n_fine"] == 1536
    # a grid the user set keeps its explicit error
    with pytest.raises(TransferTuneError, match="n_fine - 1 = 126"):
        get_problem("darcy", resolution=32, n_fine=127)
    with pytest.raises(TransferTuneError, match="n_fine"):
        get_problem("burgers", resolution=8192, n_fine=1024)
    # the defaults that work stay as they were
    assert get_problem("darcy", resolution=64).config()["n_fine"] == 127
    assert get_problem("burgers", resolution=256).config()["n_fine"] == 1024
