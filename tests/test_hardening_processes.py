"""Processes and faults (issue 20, items 7-11): orphans, PID reuse, Ctrl-C and a lost storage
in one line, read-only inspection, checked checkpoint loading, no leftover training state.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from tests.pg import pg_server
from tests.sizes import SPEC_TOML_HEAD, TUNE_UNPRUNED
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.proxy import count_finished
from transfer_tune.search.storage import checkpoint_dir, get_storage
from transfer_tune.search.transfer import transfer
from transfer_tune.search.tune import tune

ROOT = Path(__file__).parents[1]
#: A spec whose trials train long enough to be interrupted (tiny sizes, many epochs).
LONG_SPEC = (
    SPEC_TOML_HEAD
    + """
[tune]
n_trials = {n_trials}
epochs = {epochs}
pruner = "none"
study_name = "long"

[search_space]
batch_size = [8, 16]
"""
)


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path}


def _cli(*args: str, cwd: Path, **popen: object) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "transfer_tune.cli", *args]
    return subprocess.Popen(
        cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )


def _spec(folder: Path, n_trials: int, epochs: int) -> Path:
    path = folder / "long.toml"
    path.write_text(LONG_SPEC.format(n_trials=n_trials, epochs=epochs))
    return path


def _wait(condition: Callable[[], bool], proc: subprocess.Popen, what: str, timeout=120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended ({proc.returncode}) before {what}:\n{err[-3000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _running(url: str) -> Callable[[], bool]:
    """Whether the study ``long`` has a RUNNING trial that reported an epoch."""

    def check() -> bool:
        try:
            store = get_storage(url, must_exist=True)
            study = optuna.load_study(study_name="long", storage=store)
        except (KeyError, ValueError, OSError, TransferTuneError):
            return False
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return any(t.intermediate_values for t in running)

    return check


# --------------------------------------------------------------------------- 7. orphans
def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _descendants(root: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                parents[int(entry.name)] = parent
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _kill_and_count_survivors(proc: subprocess.Popen, ready: Callable[[], bool]) -> list[int]:
    """SIGKILL ``proc`` once ``ready()``; its descendants still alive 10 s later."""
    children: set[int] = set()

    def grown() -> bool:
        children.update(_descendants(proc.pid))
        return len(children) >= 2 and ready()

    try:
        _wait(grown, proc, "worker processes started")
        children.update(_descendants(proc.pid))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        return sorted(pid for pid in children if _alive(pid))
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # this test's own session only
        except ProcessLookupError:
            pass
        proc.communicate()


@pytest.mark.subprocess
@pytest.mark.slow
def test_killing_data_generation_leaves_no_process(tmp_path):
    proc = _cli(
        "data",
        "burgers",
        "--n-train",
        "200000",
        "--n-val",
        "8",
        "--n-test",
        "8",
        "--resolution",
        "64",
        "--cache-dir",
        str(tmp_path / "cache"),
        cwd=tmp_path,
        start_new_session=True,
    )
    survivors = _kill_and_count_survivors(proc, lambda: True)
    assert survivors == [], f"processes left alive after the parent's SIGKILL: {survivors}"


@pytest.mark.subprocess
@pytest.mark.slow
def test_killing_tune_with_two_jobs_stops_its_workers(tmp_path):
    url = f"journal:{tmp_path / 's.journal'}"
    spec = _spec(tmp_path, n_trials=6, epochs=5000)
    proc = _cli(
        "tune", str(spec), "--n-jobs", "2", "--storage", url, cwd=tmp_path, start_new_session=True
    )
    survivors = _kill_and_count_survivors(proc, _running(url))
    assert survivors == [], f"workers left training after the parent's SIGKILL: {survivors}"


# --------------------------------------------------------------------------- 8. PID reuse
@pytest.fixture
def two_done(tmp_path) -> str:
    """A journal study ``reuse`` holding 2 finished trials."""
    url = f"journal:{tmp_path / 'r.journal'}"
    tune("burgers", 4, n_trials=2, epochs=1, storage=url, study_name="reuse", **TUNE_UNPRUNED)
    return url


def _orphan(url: str, attrs: dict) -> int:
    """Open a RUNNING trial with ``attrs``, as a process that died mid-trial left it."""
    study = optuna.load_study(study_name="reuse", storage=get_storage(url))
    trial = study.ask()
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    return trial.number


def test_a_reused_pid_does_not_keep_a_dead_workers_trial_running(two_done):
    from transfer_tune.search.workers import WORKER_ATTR, WORKER_ID_ATTR, worker_tag

    # recorded by an earlier process (another boot of this container) that had our pid
    number = _orphan(two_done, {WORKER_ATTR: worker_tag(), WORKER_ID_ATTR: "old-boot/123"})
    study = tune(
        "burgers", 4, n_trials=3, epochs=1, storage=two_done, study_name="reuse", **TUNE_UNPRUNED
    )
    assert count_finished(study) == 3
    assert study.trials[number].state == TrialState.FAIL


def test_a_rerun_never_ends_short_silently(two_done):
    from transfer_tune.search.workers import WORKER_ATTR

    # a journal file serves one machine: a trial of another host cannot be checked from here
    _orphan(two_done, {WORKER_ATTR: "another-host:4242"})
    with pytest.raises(TransferTuneError, match=r"2 of 3 .*another-host:4242"):
        tune(
            "burgers",
            4,
            n_trials=3,
            epochs=1,
            storage=two_done,
            study_name="reuse",
            **TUNE_UNPRUNED,
        )


HOLD_A_TRIAL = """
import sys, time, optuna
from transfer_tune.search.storage import get_storage
from transfer_tune.search.workers import record_worker
study = optuna.load_study(study_name="reuse", storage=get_storage(sys.argv[1]))
trial = study.ask()
record_worker(trial)
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
study.tell(trial, 0.5)
"""


@pytest.mark.subprocess
@pytest.mark.slow
def test_a_rerun_waits_for_a_live_workers_last_trial(two_done, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_TRIAL, two_done, "4"],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        study = tune(
            "burgers",
            4,
            n_trials=3,
            epochs=1,
            storage=two_done,
            study_name="reuse",
            **TUNE_UNPRUNED,
        )
        assert count_finished(study) == 3  # when tune returns, not later
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()
        holder.communicate()
    assert count_finished(study) == 3 and len(study.trials) == 3


# --------------------------------------------------------------------------- 9. one line
def _one_error_line(stderr: str) -> list[str]:
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    assert "Trial" not in stderr, stderr[-3000:]
    # (a progress bar may end without a newline just before the message)
    return re.findall(r"transfer-tune: [^\r\n]*", stderr)


@pytest.mark.subprocess
@pytest.mark.slow
def test_ctrl_c_is_one_line_exit_130_and_the_rerun_resumes(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    spec = _spec(tmp_path, n_trials=2, epochs=40)
    proc = _cli("tune", str(spec), "--storage", url, cwd=tmp_path)
    _wait(_running(url), proc, "a trial trains")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert len(_one_error_line(err)) == 1 and "interrupted" in err
    rerun = _cli("tune", str(spec), "--storage", url, cwd=tmp_path)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-3000:]
    assert count_finished(optuna.load_study(study_name="long", storage=url)) == 2


@pytest.mark.postgres
@pytest.mark.subprocess
@pytest.mark.slow
def test_a_storage_outage_is_one_line_exit_2_and_the_rerun_resumes(tmp_path):
    with pg_server() as server:
        spec = _spec(tmp_path, n_trials=2, epochs=60)
        proc = _cli("tune", str(spec), "--storage", server.url, cwd=tmp_path)
        _wait(_running(server.url), proc, "a trial trains")
        server.stop("immediate")
        try:
            _, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        assert proc.returncode == 2, err[-3000:]
        lines = _one_error_line(err)
        assert len(lines) == 1 and "storage" in lines[0] and "again" in lines[0]
        assert server.start()
        rerun = _cli("tune", str(spec), "--storage", server.url, cwd=tmp_path)
        out, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err[-3000:]
        study = optuna.load_study(study_name="long", storage=server.url)
        assert count_finished(study) == 2


# --------------------------------------------------------------------------- 10. read-only
@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    """A finished proxy study (3 epochs, 3 trials) in an SQLite file and a journal copy."""
    folder = tmp_path_factory.mktemp("snapshot")
    url = f"sqlite:///{folder / 's.db'}"
    tune("burgers", 4, n_trials=3, epochs=3, storage=url, study_name="snap", **TUNE_UNPRUNED)
    optuna.copy_study(
        from_study_name="snap",
        from_storage=url,
        to_storage=get_storage(f"journal:{folder / 's.journal'}"),
    )
    return folder


@pytest.fixture
def read_only(tmp_path, snapshot) -> Iterator[Path]:
    """The snapshot's files on a read-only mount (skipped where mounting is denied)."""
    point = tmp_path / "ro"
    point.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)]
    proc = subprocess.run(mount, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()}): needs root")
    try:
        for name in ("s.db", "s.journal"):
            shutil.copy(snapshot / name, point / name)
        subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.subprocess
@pytest.mark.parametrize("name", ["s.db", "s.journal"])
def test_inspection_works_on_a_read_only_storage(read_only, tmp_path, name, monkeypatch):
    url = str(read_only / name)
    plan = _cli("transfer", "snap", "--modes", "8", "--plan-only", "--storage", url, cwd=tmp_path)
    out, err = plan.communicate(timeout=120)
    assert plan.returncode == 0 and "not writable" not in err, err[-2000:]
    assert "K=8" in out or "8" in out
    horizon = _cli("horizon", "snap", "--storage", url, cwd=tmp_path)
    out, err = horizon.communicate(timeout=120)
    assert horizon.returncode == 0, err[-2000:]
    assert "figure:" in out

    import optuna_dashboard

    from transfer_tune.report import dashboard

    served = {}

    def fake_run_server(storage, **kwargs):
        served["trials"] = len(optuna.load_study(study_name="snap", storage=storage).trials)

    monkeypatch.setattr(optuna_dashboard, "run_server", fake_run_server)
    monkeypatch.setattr(dashboard, "_check_bindable", lambda host, port: None)
    dashboard.serve(url)
    assert served == {"trials": 3}


@pytest.mark.subprocess
def test_a_writing_command_still_refuses_a_read_only_storage(read_only, tmp_path):
    proc = _cli(
        "transfer", "snap", "--modes", "8", "--storage", str(read_only / "s.db"), cwd=tmp_path
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "not writable" in err


# --------------------------------------------------------------------------- 11. checked loader
def test_the_readme_reloads_checkpoints_with_the_checked_loader():
    readme = (ROOT / "README.md").read_text()
    assert not re.search(r"torch\.load\([^)]*weights_only=True\)", readme)
    assert "transfer_tune.load_checkpoint" in readme


def test_the_public_loader_refuses_a_flipped_bit(tmp_path):
    import transfer_tune
    from transfer_tune.core import checkpoint

    path = checkpoint.save(tmp_path / "m.pt", {"model_state": {"w": torch.ones(64)}})
    assert transfer_tune.load_checkpoint(path)["model_state"]["w"].sum() == 64
    data = bytearray(path.read_bytes())
    at = data.index(torch.ones(64).numpy().tobytes())  # the weights' bytes in the zip
    data[at + 1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(TransferTuneError, match="SHA-256"):
        transfer_tune.load_checkpoint(path)


# --------------------------------------------------------------------------- .state.pt
def test_a_finished_target_leaves_no_training_state(snapshot, tmp_path):
    shutil.copy(snapshot / "s.db", tmp_path / "t.db")
    url = f"sqlite:///{tmp_path / 't.db'}"
    _, result = transfer("snap", 8, url, epochs=2, device="cpu", progress=False)
    folder = checkpoint_dir(url)
    assert Path(result.checkpoint).is_file()
    assert sorted(p.name for p in folder.iterdir()) == [Path(result.checkpoint).name]
