"""Crash recovery and scale-out of the target run: resume after SIGKILL, torchrun == 1 process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.sizes import TINY_BURGERS
from transfer_tune.core import checkpoint
from transfer_tune.core.hparams import HParams
from transfer_tune.core.model import FNO
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.core.train import TrainData, fit
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.storage import get_storage
from transfer_tune.search.tune import tune

SCRIPTS = Path(__file__).parent / "scripts"


def tiny_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 1, 32, generator=g)
    y = torch.roll(x, 3, dims=-1) * 0.5
    return TrainData(x[:16], y[:16], x[16:], y[16:])


def tiny_model():
    model = FNO(dim=1, modes=6, width=8, n_layers=2, projection_width=16)
    get_parametrization("mup", base_modes=4).initialize(model, torch.Generator().manual_seed(0))
    return model


def test_fit_resumes_from_its_state_exactly(tmp_path):
    hp = HParams(lr=3e-3, batch_size=4)
    whole = fit(tiny_model(), tiny_data(), hp, 5, device="cpu", seed=2)
    state = tmp_path / "run.state.pt"

    def crash(record):
        if record.epoch == 2:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(tiny_model(), tiny_data(), hp, 5, [crash], device="cpu", seed=2, checkpoint=state)
    assert len(checkpoint.load(state)["history"]) == 3  # epochs 0..2 were saved
    resumed = fit(tiny_model(), tiny_data(), hp, 5, device="cpu", seed=2, checkpoint=state)
    assert [r.epoch for r in resumed.history] == [0, 1, 2, 3, 4]
    assert abs(resumed.val_loss - whole.val_loss) < 1e-6
    assert [r.train_loss for r in resumed.history] == [r.train_loss for r in whole.history]
    with pytest.raises(TransferTuneError, match="other settings"):
        fit(
            tiny_model(),
            tiny_data(),
            HParams(lr=1e-3, batch_size=4),
            5,
            device="cpu",
            checkpoint=state,
        )


def transfer_cmd(storage, name, epochs):
    return [
        sys.executable,
        "-m",
        "transfer_tune.cli",
        "transfer",
        "proxy",
        "--modes",
        "8",
        "--epochs",
        str(epochs),
        "--storage",
        storage,
        "--target-study",
        name,
        "--device",
        "cpu",
    ]


@pytest.mark.subprocess
def test_target_run_killed_mid_training_resumes_to_the_same_loss(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    tune(
        "burgers",
        4,
        width=16,
        n_layers=2,
        n_trials=2,
        epochs=1,
        storage=url,
        study_name="proxy",
        problem_overrides=TINY_BURGERS,
        search_space={"batch_size": [8]},
        device="cpu",
        progress=False,
    )
    epochs = 40
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = subprocess.run(
        transfer_cmd(url, "whole", epochs), env=env, capture_output=True, text=True, timeout=300
    )
    assert whole.returncode == 0, whole.stderr
    state = tmp_path / "s_checkpoints" / "killed.state.pt"
    proc = subprocess.Popen(
        transfer_cmd(url, "killed", epochs),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = len(checkpoint.load(state)["history"])
    assert 1 <= done < epochs, f"killed after {done} epochs: not mid-training"
    again = subprocess.run(
        transfer_cmd(url, "killed", epochs), env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    import optuna

    a = optuna.load_study(study_name="whole", storage=url)
    b = optuna.load_study(study_name="killed", storage=url)
    assert abs(a.user_attrs["metrics"]["val_loss"] - b.user_attrs["metrics"]["val_loss"]) < 1e-6
    assert abs(a.best_value - b.best_value) < 1e-6
    states = [t.state.name for t in b.get_trials()]
    assert states == ["FAIL", "COMPLETE"]  # the killed launch, then the resumed one
    assert len(b.best_trial.intermediate_values) == epochs


@pytest.mark.subprocess
@pytest.mark.parametrize("batch", [8, 7])
def test_torchrun_two_ranks_match_one_process(batch):
    one = subprocess.run(
        [sys.executable, str(SCRIPTS / "ddp_fit.py"), str(batch)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(SCRIPTS / "ddp_fit.py"),
            str(batch),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert two.returncode == 0, two.stderr[-2000:]
    a = json.loads(one.stdout.strip().splitlines()[-1])
    b = json.loads(two.stdout.strip().splitlines()[-1])
    assert (a["world"], b["world"]) == (1, 2)
    for (ta, va), (tb, vb) in zip(a["curve"], b["curve"], strict=True):
        assert abs(ta - tb) < 1e-5 and abs(va - vb) < 1e-5


KILLED_TUNE = """
import sys, time
from pathlib import Path
import optuna
import torch
from tests.sizes import TINY_BURGERS
from transfer_tune.search.tune import tune

torch.set_num_threads(1)
folder, url = Path(sys.argv[1]), sys.argv[2]


class HangInSecondTrial(optuna.pruners.BasePruner):
    # called after each epoch's report: trial 1 has begun training when it hangs here
    def prune(self, study, trial):
        if trial.number == 1:
            (folder / "second-trial-training").touch()
            time.sleep(120)  # killed here
        return False


tune("burgers", 4, width=8, n_layers=2, n_trials=3, epochs=2, storage=url,
     study_name="killed", pruner=HangInSecondTrial(), problem_overrides=TINY_BURGERS,
     search_space={"batch_size": [8, 16]}, device="cpu", progress=False)
"""


@pytest.mark.subprocess
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_tune_killed_mid_trial_reruns_to_exactly_n_and_retries_the_orphan_once(tmp_path, kind):
    """SIGKILL in the middle of a proxy trial, then the same tune again: the orphaned RUNNING
    trial is failed (its process is gone on this host) and retried once with the same values;
    the study ends with exactly n finished trials. On SQLite this happens well within the
    heartbeat grace period (60 s), so it is the host:pid check, not the heartbeat, that acts.
    """
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    url = (
        f"journal:{tmp_path / 's.journal'}"
        if kind == "journal"
        else f"sqlite:///{tmp_path / 's.db'}"
    )
    script = tmp_path / "killed_tune.py"
    script.write_text(KILLED_TUNE)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), url], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "second-trial-training").exists():
            assert proc.poll() is None, "the tune exited before its second trial"
            assert time.monotonic() < deadline, "the tune never reached its second trial"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    study = optuna.load_study(study_name="killed", storage=get_storage(url))
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.RUNNING]
    orphan = trials[1]
    assert orphan.user_attrs["worker"].endswith(f":{proc.pid}")
    assert orphan.intermediate_values  # killed mid-training
    first_start = trials[0].datetime_start

    tune(
        "burgers",
        4,
        width=8,
        n_layers=2,
        n_trials=3,
        epochs=2,
        storage=url,
        study_name="killed",
        pruner="none",
        problem_overrides=TINY_BURGERS,
        search_space={"batch_size": [8, 16]},
        device="cpu",
        progress=False,
    )
    study = optuna.load_study(study_name="killed", storage=get_storage(url))
    trials = study.get_trials()
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == 3 and len(trials) == 4  # n finished + the orphan, nothing surplus
    failed = trials[1]
    assert failed.state == TrialState.FAIL
    assert "worker stopped" in failed.user_attrs["fail_reason"]
    retries = [t for t in trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == 1]
    assert len(retries) == 1  # retried once
    retry = retries[0]
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retry.params == orphan.params  # the same values, run again
    assert retry.user_attrs["worker"].endswith(f":{os.getpid()}")  # by the rerun
    assert trials[0].datetime_start == first_start  # the finished trial was not run again
