"""Landscape sweeps: resumable after Ctrl-C and after a killed worker, rebuilt from storage."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState

import transfer_tune.analysis.landscape.objective as objective
from tests.sizes import SWEEP
from tests.synthetic import operator_task
from transfer_tune.analysis.landscape import (
    list_sweeps,
    load_sweep,
    study_name,
    sweep,
    sweep_from_spec,
    sweep_kwargs_from_spec,
    values_from_spec,
)
from transfer_tune.core.train import TrainData
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.spec import load_spec
from transfer_tune.search.storage import get_storage
from transfer_tune.search.studies import retried_trial_number, retry_history

LRS = [1e-3, 1e-2, 30.0]  # the last one diverges


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_data() -> tuple[TrainData, tuple[torch.Tensor, torch.Tensor]]:
    x, y = operator_task(32, 32, 0)
    xv, yv = operator_task(16, 32, 1)
    xt, yt = operator_task(16, 32, 2)
    return TrainData(x, y, xv, yv), (xt, yt)


def finished(url: str, name: str) -> dict:
    """Per study: {trial number: datetime_start} of every COMPLETE/PRUNED trial."""
    store = get_storage(url)
    out = {}
    for kind in ("mup", "sp"):
        for k in (2, 4):
            study = optuna.load_study(study_name=study_name(name, kind, k), storage=store)
            out[(kind, k)] = {
                t.number: t.datetime_start
                for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
            }
    return out


def test_interrupted_sweep_resumes_without_rerunning_finished_points(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    data, test = tiny_data()
    kwargs = dict(modes=[2, 4], values=LRS, seeds=[0], epochs=1, storage=url, sweep_name="s")
    calls = {"n": 0, "interrupt_at": 4}
    real_fit = objective.fit

    def counting_fit(*args, **kw):
        calls["n"] += 1
        if calls["n"] == calls["interrupt_at"]:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the 4th run
        return real_fit(*args, **kw)

    monkeypatch.setattr(objective, "fit", counting_fit)
    with pytest.raises(KeyboardInterrupt):
        sweep(data, test_data=test, **kwargs, **SWEEP)
    before = finished(url, "s")
    assert sum(len(v) for v in before.values()) == 3
    partial = load_sweep(url, "s")
    assert len(partial.rows) == 3 and not partial.complete

    calls.update(n=0, interrupt_at=-1)
    result = sweep(data, test_data=test, **kwargs, **SWEEP)
    assert calls["n"] == 12 - 3  # only the unfinished grid points ran
    after = finished(url, "s")
    for key, trials in before.items():  # the runs of the first call are untouched
        for number, start in trials.items():
            assert after[key][number] == start
    store = get_storage(url)
    failed = [
        t
        for s in store.get_all_studies()
        for t in optuna.load_study(study_name=s.study_name, storage=store).get_trials()
        if t.state == TrialState.FAIL
    ]
    assert len(failed) == 1  # the interrupted run, retried once
    assert sum(len(v) for v in after.values()) == 12

    assert result.complete and len(result.rows) == 12
    assert [r.point["lr"] for r in result.select("mup", 2)] == LRS
    diverged = [r for r in result.rows if r.diverged]
    assert {r.point["lr"] for r in diverged} == {30.0}
    assert all(r.test_loss == math.inf for r in diverged)
    assert all(math.isfinite(r.test_loss) for r in result.rows if not r.diverged)
    # at K = K_base µP is SP bit for bit
    mup2 = [r.test_loss for r in result.select("mup", 2)]
    sp2 = [r.test_loss for r in result.select("sp", 2)]
    assert mup2 == sp2
    rebuilt = load_sweep(url, "s")
    assert rebuilt == result
    assert rebuilt.to_records() == result.to_records()
    assert list_sweeps(url) == ["s"]
    record = result.to_records()[0]
    assert set(record) >= {"parametrization", "modes", "lr", "seed", "train_loss", "test_loss"}

    calls["n"] = 0
    again = sweep(data, test_data=test, **kwargs, **SWEEP)  # nothing left to do
    assert calls["n"] == 0 and again == result


KILLED_WORKER = """
import sys, time
from pathlib import Path
import torch
import transfer_tune.analysis.landscape as landscape
import transfer_tune.analysis.landscape.objective as objective
from transfer_tune.core.train import TrainData

torch.set_num_threads(1)
folder = Path(sys.argv[1])
x, y, xv, yv, xt, yt = torch.load(folder / "data.pt", weights_only=True)
real_fit = objective.fit
count = {"n": 0}

def slow_fit(*args, **kw):
    count["n"] += 1
    if count["n"] == 3:
        (folder / "third-run-started").touch()
        time.sleep(120)  # killed here
    return real_fit(*args, **kw)

objective.fit = slow_fit
landscape.sweep(TrainData(x, y, xv, yv), test_data=(xt, yt), modes=[2, 4],
                values=[1e-3, 1e-2, 30.0], parametrizations=["mup"], seeds=[0], epochs=1,
                storage=sys.argv[2], sweep_name="k", width=8, n_layers=2,
                model_options={"projection_width": 16}, hparams={"batch_size": 8},
                device="cpu", progress=False)
"""


@pytest.mark.subprocess
def test_killed_worker_leaves_a_running_trial_that_resume_fails_and_reruns(tmp_path, monkeypatch):
    url = f"journal:{tmp_path / 'sweep.journal'}"
    data, (xt, yt) = tiny_data()
    torch.save([data.x_train, data.y_train, data.x_val, data.y_val, xt, yt], tmp_path / "data.pt")
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(KILLED_WORKER))
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), url])
    try:
        deadline = time.monotonic() + 90
        while not (tmp_path / "third-run-started").exists():
            assert proc.poll() is None, "the worker exited before its third run"
            assert time.monotonic() < deadline, "the worker never reached its third run"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    store = get_storage(url)
    study = optuna.load_study(study_name=study_name("k", "mup", 2), storage=store)
    states = sorted((t.number, t.state) for t in study.get_trials())
    assert states == [(0, TrialState.PRUNED), (1, TrialState.COMPLETE), (2, TrialState.RUNNING)]
    first_two = {t.number: t.datetime_start for t in study.get_trials()[:2]}

    calls = {"n": 0}
    real_fit = objective.fit

    def counting_fit(*args, **kw):
        calls["n"] += 1
        return real_fit(*args, **kw)

    monkeypatch.setattr(objective, "fit", counting_fit)
    result = sweep(
        data,
        test_data=(xt, yt),
        modes=[2, 4],
        values=[1e-3, 1e-2, 30.0],
        parametrizations=["mup"],
        seeds=[0],
        epochs=1,
        storage=url,
        sweep_name="k",
        **SWEEP,
    )
    assert calls["n"] == 6 - 2  # the killed run again, and the three of K = 4
    study = optuna.load_study(study_name=study_name("k", "mup", 2), storage=store)
    trials = {t.number: t for t in study.get_trials()}
    assert trials[2].state == TrialState.FAIL
    assert "worker stopped" in trials[2].user_attrs["fail_reason"]
    assert retried_trial_number(trials[3]) == 2  # Optuna's retry format
    assert retry_history(trials[3]) == [2]
    assert trials[3].params == trials[2].params
    assert {n: trials[n].datetime_start for n in (0, 1)} == first_two
    assert result.complete and load_sweep(url, "k") == result


def test_two_parameter_sweep_grid_and_loss_array(tmp_path):
    data, test = tiny_data()
    result = sweep(
        data,
        test_data=test,
        modes=[2, 3],
        param=("lr", "batch_size"),
        values={"lr": [1e-3, 1e-2], "batch_size": [8, 16]},
        parametrizations=["mup"],
        seeds=[0],
        epochs=1,
        storage=tmp_path / "two.db",
        sweep_name="two",
        **SWEEP,
    )
    assert result.params == ["lr", "batch_size"]
    assert result.points == [
        {"lr": 1e-3, "batch_size": 8},
        {"lr": 1e-3, "batch_size": 16},
        {"lr": 1e-2, "batch_size": 8},
        {"lr": 1e-2, "batch_size": 16},
    ]
    assert len(result.rows) == 8 and result.complete
    assert all(isinstance(r.point["batch_size"], int) for r in result.rows)
    arr = result.loss_array("mup", 3)
    assert arr.shape == (2, 2, 1) and np.isfinite(arr).all()
    row = result.select("mup", 3)[1]
    assert arr[0, 1, 0] == row.test_loss and row.point == {"lr": 1e-3, "batch_size": 16}
    assert load_sweep(tmp_path / "two.db", "two") == result


def test_sweep_rejects_bad_arguments_and_changed_settings(tmp_path):
    data, test = tiny_data()
    base = dict(test_data=test, modes=[2], seeds=[0], epochs=1, storage=tmp_path / "x.db")
    with pytest.raises(TransferTuneError, match="cannot sweep"):
        sweep(data, param="momentum", **base, **SWEEP)
    with pytest.raises(TransferTuneError, match="beta1 must be in"):
        sweep(data, param="beta1", values=[0.9, 1.5], **base, **SWEEP)
    with pytest.raises(TransferTuneError, match="exceed the training set"):
        sweep(data, param="batch_size", values=[8, 64], **base, **SWEEP)
    with pytest.raises(TransferTuneError, match="do not fit"):
        sweep(data, **{**base, "modes": [2, 40]}, values=[1e-3], **SWEEP)
    with pytest.raises(TransferTuneError, match="unknown parametrization"):
        sweep(data, values=[1e-3], parametrizations=["ntk"], **base, **SWEEP)
    sweep(data, values=[1e-3], parametrizations=["sp"], sweep_name="c", **base, **SWEEP)
    with pytest.raises(TransferTuneError, match="other settings .*values"):
        sweep(data, values=[1e-2], parametrizations=["sp"], sweep_name="c", **base, **SWEEP)
    with pytest.raises(TransferTuneError, match="no sweep named 'nope'.*sweeps there: c"):
        load_sweep(tmp_path / "x.db", "nope")


def test_values_from_spec():
    assert values_from_spec("lr", {"low": 1e-4, "high": 1e-2, "num": 3}) == pytest.approx(
        [1e-4, 1e-3, 1e-2]
    )
    assert values_from_spec("batch_size", {"low": 4, "high": 64, "num": 5}) == [4, 8, 16, 32, 64]
    assert values_from_spec("beta1", {"low": 0.5, "high": 0.9, "num": 3}) == pytest.approx(
        [0.5, 0.7, 0.9]
    )
    assert values_from_spec("lr", [1e-2, 1e-3]) == [1e-3, 1e-2]
    with pytest.raises(TransferTuneError, match="missing"):
        values_from_spec("lr", {"low": 1e-4, "num": 3})
    with pytest.raises(TransferTuneError, match="log spacing needs low > 0"):
        values_from_spec("weight_decay", {"low": 0, "high": 1e-2, "num": 3})


def test_sweep_from_spec_runs_a_registered_problem(tmp_path, monkeypatch):
    from pdes import get_problem, register_problem, registry
    from pdes.spec import ProblemSpec

    # register on copies of the registry, so no other test sees the tiny problem
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))

    def generate(n_samples, resolution, seed, *, progress=False, n_jobs=1, **params):
        x, y = operator_task(n_samples, resolution, seed % 1000)
        return x.numpy(), y.numpy()

    def check_resolution(resolution, **params):
        if resolution < 8:
            raise TransferTuneError("resolution must be >= 8")

    register_problem(
        "tiny-derivative",
        ProblemSpec(
            name="tiny-derivative",
            dim=1,
            defaults={},
            generate=generate,
            check_resolution=check_resolution,
            default_resolution=32,
            in_channels=1,
            out_channels=1,
        ),
        replace=True,
    )
    spec = {
        "problem": {
            "name": "tiny-derivative",
            "n_train": 16,
            "n_val": 8,
            "n_test": 8,
            "resolution": 32,
            "cache_dir": str(tmp_path / "cache"),
        },
        "model": {
            "width": 8,
            "n_layers": 2,
            "projection_width": 16,
            "proxy_modes": 2,
            "target_modes": 8,
        },
        "train": {"schedule": "none"},
        "tune": {"n_trials": 3},
        "landscape": {
            "modes": [2, 4],
            "param": "lr",
            "values": {"low": 1e-3, "high": 1e-2, "num": 2},
            "parametrizations": ["mup"],
            "seeds": [0],
            "epochs": 1,
            "name": "spec-sweep",
            "device": "cpu",
            "hparams": {"batch_size": 8},
        },
    }
    result = sweep_from_spec(spec, storage=tmp_path / "spec.db", progress=False)
    assert result.name == "spec-sweep" and result.complete and len(result.rows) == 4
    assert result.values == {"lr": pytest.approx([1e-3, 1e-2])}
    problem = get_problem(**result.config["problem"])
    assert problem.config() == result.config["problem"]
    assert result.config["hparams"]["batch_size"] == 8
    assert result.config["hparams"]["schedule"] == "none"  # from [train]
    assert result.base_modes == 2  # [model] proxy_modes
    with pytest.raises(TransferTuneError, match=r"unknown key\(s\) \['mode'\]"):
        sweep_from_spec({"problem": {"name": "burgers"}, "landscape": {"mode": [4]}})
    with pytest.raises(TransferTuneError, match=r"no \[landscape\] table"):
        sweep_from_spec({"problem": {"name": "burgers"}})


def test_the_repository_study_specs_describe_valid_sweeps():
    specs = sorted((Path(__file__).parents[1] / "studies").glob("*.toml"))
    checked = 0
    for path in specs:
        spec = load_spec(path).raw
        if "landscape" not in spec:
            continue
        kwargs = sweep_kwargs_from_spec(spec)
        assert kwargs["problem"] == spec["problem"]["name"]
        assert kwargs["modes"] == spec["landscape"]["modes"]
        checked += 1
        if path.name == "burgers.toml":
            lrs = np.log2(kwargs["values"])
            assert len(lrs) == 21 and np.allclose(np.diff(lrs), np.log2(10) * 3 / 20)
    assert checked >= 1


class MeetAfterFirstRun:
    """Study callback (picklable): after its first run, each worker process waits until
    ``n`` processes have each finished one, so the run cannot be left to one of them.

    A worker that finishes its first run first holds there while the grid still has
    unstarted points, so the other worker must take one: both processes run trials on any
    machine, however fast or slow either starts. (Without a partner it gives up after
    ``timeout`` seconds and the test's assertion on the workers fails.)
    """

    def __init__(self, folder: Path, n: int = 2, timeout: float = 120.0) -> None:
        self.folder, self.n, self.timeout = folder, n, timeout

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        mark = self.folder / str(os.getpid())
        if mark.exists():
            return
        mark.touch()
        deadline = time.monotonic() + self.timeout
        while len(list(self.folder.iterdir())) < self.n and time.monotonic() < deadline:
            time.sleep(0.05)


def test_parallel_workers_share_the_storage_without_duplicates(tmp_path):
    data, test = tiny_data()
    kwargs = dict(
        test_data=test,
        modes=[3],  # one study: both workers draw grid points from it at once
        values=[1e-3, 2e-3, 4e-3, 8e-3],
        parametrizations=["mup"],
        seeds=[0],
        epochs=1,
        **SWEEP,
    )
    url = f"journal:{tmp_path / 'parallel.journal'}"
    meet = tmp_path / "meet"
    meet.mkdir()
    parallel = sweep(
        data, storage=url, n_jobs=2, sweep_name="p", callbacks=[MeetAfterFirstRun(meet)], **kwargs
    )
    assert parallel.complete and load_sweep(url, "p") == parallel
    store = get_storage(url)
    study = optuna.load_study(study_name=study_name("p", "mup", 3), storage=store)
    trials = study.get_trials()
    ran = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.params["lr"] for t in ran) == [1e-3, 2e-3, 4e-3, 8e-3]  # each point once
    others = [t for t in trials if t.state != TrialState.COMPLETE]
    assert all(  # a point handed out twice in a race is never trained
        t.state == TrialState.FAIL and "duplicate" in t.user_attrs and not t.intermediate_values
        for t in others
    )
    workers = {t.user_attrs["worker"] for t in ran}
    pids = {int(p.name) for p in meet.iterdir()}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes met
    assert workers == {f"{socket.gethostname()}:{pid}" for pid in pids}  # and both ran trials
    serial = sweep(data, storage=tmp_path / "serial.db", sweep_name="p", **kwargs)
    for a, b in zip(parallel.rows, serial.rows, strict=True):
        assert (a.modes, a.point, a.seed) == (b.modes, b.point, b.seed)
        assert a.test_loss == pytest.approx(b.test_loss, rel=1e-4)


def test_a_grid_point_handed_out_twice_is_not_trained(tmp_path, monkeypatch):
    """When the GridSampler hands out a point another trial holds (workers racing for the
    last one), the trial is failed as a duplicate, untrained, and its worker stops."""
    from optuna.samplers import GridSampler

    from transfer_tune.analysis.landscape.data import load_data
    from transfer_tune.analysis.landscape.objective import DuplicateRun, Objective
    from transfer_tune.analysis.landscape.results import rows_from_study

    data, test = tiny_data()
    url = tmp_path / "dup.db"
    result = sweep(
        data,
        test_data=test,
        modes=[2],
        values=[1e-3, 1e-2],
        parametrizations=["mup"],
        seeds=[0],
        epochs=1,
        storage=url,
        sweep_name="d",
        **SWEEP,
    )
    config = landscape_config(result)
    study = optuna.load_study(
        study_name=study_name("d", "mup", 2),
        storage=get_storage(url),
        sampler=GridSampler(config.grid_space(), seed=0),
    )
    calls = {"n": 0}
    monkeypatch.setattr(objective, "fit", lambda *a, **k: calls.update(n=calls["n"] + 1))
    run = Objective(config, "mup", 2, load_data(data, test), "cpu")
    study.optimize(run, n_trials=5, catch=(DuplicateRun,))  # the grid is exhausted already
    trials = study.get_trials()
    assert len(trials) == 3  # the worker stopped after the first duplicate
    dup = trials[2]
    assert dup.state == TrialState.FAIL and calls["n"] == 0 and run.rows == []
    holder = int(dup.user_attrs["duplicate"].split()[1])
    assert trials[holder].params == dup.params and trials[holder].state == TrialState.COMPLETE
    assert rows_from_study(study, "mup", 2, ["lr"]) == {
        (r.point["lr"], r.seed): r for r in result.rows
    }
    assert load_sweep(url, "d") == result  # nothing changed in the result


def landscape_config(result):
    from transfer_tune.analysis.landscape import SweepConfig

    return SweepConfig.from_dict(result.config)


def test_r_only_sweep_moves_only_the_spectral_rate(tmp_path, monkeypatch):
    """``spectral_lr``: R trains at spectral_lr x its table multiplier, the rest at ``lr``."""
    from transfer_tune.core.parametrization import get_parametrization

    seen = []
    real_fit = objective.fit

    def spying_fit(model, data, hparams, epochs, *args, parametrization, **kw):
        groups = parametrization.param_groups(model, hparams.lr)
        seen.append((model.modes, parametrization.kind, {g["role"]: g["lr"] for g in groups}))
        return real_fit(model, data, hparams, epochs, *args, parametrization=parametrization, **kw)

    monkeypatch.setattr(objective, "fit", spying_fit)
    data, test = tiny_data()
    result = sweep(
        data,
        test_data=test,
        modes=[2, 8],
        param="spectral_lr",
        values=[1e-3, 4e-3],
        parametrizations=["mup", "sp"],
        seeds=[0],
        epochs=1,
        storage=tmp_path / "r.db",
        sweep_name="ronly",
        base_modes=2,
        **{**SWEEP, "hparams": {"batch_size": 8, "lr": 2e-3}},
    )
    assert result.complete and result.params == ["spectral_lr"]
    assert len(seen) == 8
    for modes, kind, rates in seen:
        mult = get_parametrization(kind, base_modes=2).spectral_multiplier(modes, 1)
        assert rates["spectral"] / mult in (pytest.approx(1e-3), pytest.approx(4e-3))
        for role, lr in rates.items():
            if role != "spectral":
                assert lr == pytest.approx(2e-3)
    # the init of R is untouched by the rate override (µP's init multiplier at K = 8)
    sample = objective.SpectralRate.of(get_parametrization("mup", base_modes=2), 3.0)
    plain = get_parametrization("mup", base_modes=2)
    assert {r: s.init for r, s in sample.role_scales(8, 1).items()} == {
        r: s.init for r, s in plain.role_scales(8, 1).items()
    }
    assert sample.role_scales(8, 1)["spectral"].lr == pytest.approx(
        3.0 * plain.spectral_multiplier(8, 1)
    )
    with pytest.raises(TransferTuneError):
        sweep(data, test_data=test, modes=[2], param="spectral_lr", values=[-1.0], **SWEEP)
