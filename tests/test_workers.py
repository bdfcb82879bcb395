"""Workers on a real PostgreSQL server: several processes share a study; a killed worker's
trial is failed by heartbeat, retried, and nothing finished is lost.

The server is the session fixture ``postgres_url`` (tests/pg.py): initdb into a temporary
directory, pg_ctl on 127.0.0.1 and a free port, stopped at the end of the session. Workers
are real ``python -m transfer_tune.cli worker`` processes, each bounded by a timeout.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import optuna
import pytest
import sqlalchemy
import torch
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from tests.sizes import PROXY_MODEL, TINY_BURGERS
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.proxy import run_worker
from transfer_tune.search.storage import get_storage, normalize_url
from transfer_tune.search.tune import tune
from transfer_tune.search.workers import open_study_storage

SPACE = {"batch_size": [8]}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
pytest_plugins = ("tests.pg",)  # the session fixture postgres_url
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.subprocess,
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]
#: Seconds any one worker process may take (they take a few on 2 shared cores).
WORKER_TIMEOUT = 120
RAN = re.compile(r"worker ran (\d+) trial\(s\); the study holds (\d+) finished")
BEST = re.compile(r"best value (\S+) \(trial (\d+)\)")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Trials in this process and in the workers use one thread each (2 shared cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _env() -> dict[str, str]:
    # the dataset cache of the session (tests/conftest.py) is in the environment already
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def start_worker(study: str, url: str, n_trials: int, seed: int, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "transfer_tune.cli", "worker", study, "--storage", url]
    cmd += ["--n-trials", str(n_trials), "--seed", str(seed), "--device", "cpu", *extra]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"worker {proc.args} timed out\n{out}\n{err[-3000:]}")
    return proc.returncode, out, err


def finished_in_order(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    done = study.get_trials(deepcopy=False, states=FINISHED)
    return sorted(done, key=lambda t: t.datetime_complete)


def test_three_workers_share_one_study_and_agree_on_the_best(postgres_url):
    n = 7
    study = tune(
        "burgers",
        4,
        n_trials=1,
        epochs=2,
        study_name="three-workers",
        storage=postgres_url,
        problem_overrides=TINY_BURGERS,
        search_space=SPACE,
        **PROXY_MODEL,
    )
    procs = [start_worker(study.study_name, postgres_url, n, seed) for seed in (1, 2, 3)]
    results = [finish(p) for p in procs]
    for rc, out, err in results:
        assert rc == 0, f"worker failed ({rc}):\n{out}\n{err[-3000:]}"

    study = optuna.load_study(study_name="three-workers", storage=postgres_url)
    done = finished_in_order(study)
    assert len(done) == n
    assert len({t.number for t in done}) == n
    others = [t for t in study.get_trials() if t.state not in FINISHED]
    # any extra trial was one started after the study was full: failed, marked, never trained
    assert all(t.state == TrialState.FAIL and t.user_attrs.get("surplus") for t in others)
    ran = [RAN.search(out) for _rc, out, _err in results]
    best = [BEST.search(out) for _rc, out, _err in results]
    assert all(ran) and all(best), [out for _rc, out, _err in results]
    # every trial a worker started is one of the study's: n - 1 new finished ones + surplus
    assert sum(int(m.group(1)) for m in ran) == n - 1 + len(others)

    # Each worker printed the best of the study as it saw it when it stopped: the best of the
    # first M finished trials (M it printed too; later ones may finish in between its two
    # reads). The worker that finished the last trial saw all n and the study's best.
    def best_of_first(m: int) -> tuple[str, int]:
        top = min((t for t in done[:m] if t.state == TrialState.COMPLETE), key=lambda t: t.value)
        return f"{top.value:.4f}", top.number

    final = (f"{study.best_value:.4f}", study.best_trial.number)
    assert final == best_of_first(n)
    views = []
    for r, b in zip(ran, best, strict=True):
        seen, view = int(r.group(2)), (b.group(1), int(b.group(2)))
        assert 1 <= seen <= n
        assert view in {best_of_first(m) for m in range(seen, n + 1)}, (seen, view)
        views.append((seen, view))
    assert any(seen == n for seen, _ in views)
    assert all(view == final for seen, view in views if seen == n)


def test_a_plain_postgresql_url_works_with_the_installed_driver(postgres_url):
    """``postgresql://`` and ``postgres://`` (what users type) name an installed driver and
    reach the server: a trial written through them is read back through the fixture's URL."""
    rest = postgres_url.split("://", 1)[1]
    psycopg3 = importlib.util.find_spec("psycopg") is not None
    expected = ("postgresql://" if psycopg3 else "postgresql+psycopg2://") + rest
    x = optuna.distributions.FloatDistribution(0, 1)
    for i, scheme in enumerate(("postgresql://", "postgres://")):
        plain = scheme + rest
        assert normalize_url(plain) == expected
        name = f"plain-url-{i}"
        study = optuna.create_study(storage=get_storage(plain), study_name=name)
        study.add_trial(
            optuna.trial.create_trial(params={"x": 0.25}, distributions={"x": x}, value=i)
        )
        back = optuna.load_study(study_name=name, storage=postgres_url)
        assert [(t.params, t.value) for t in back.trials] == [({"x": 0.25}, i)]


def test_a_server_that_cannot_be_reached_is_our_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://nobody:secret@127.0.0.1:{port}/nothing"
    with pytest.raises(TransferTuneError, match="cannot open storage") as info:
        get_storage(url)
    assert "secret" not in str(info.value)  # the password is not printed
    proc = subprocess.run(
        [sys.executable, "-m", "transfer_tune.cli", "worker", "s", "--storage", url]
        + ["--n-trials", "1"],
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT,
        env=_env(),
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("transfer-tune: error: cannot open")
    assert "Traceback" not in proc.stderr and "secret" not in proc.stderr


def _has_heartbeat(engine, trial_id: int) -> bool:
    with engine.connect() as conn:
        query = sqlalchemy.text("SELECT count(*) FROM trial_heartbeats WHERE trial_id = :t")
        return conn.execute(query, {"t": trial_id}).scalar() > 0


def _wait_for_running(study: optuna.Study, url: str, proc: subprocess.Popen, timeout=90):
    """The first RUNNING trial of ``study`` that is training and has a heartbeat."""
    engine = sqlalchemy.create_engine(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"the worker ended before it could be killed:\n{out}\n{err[-3000:]}")
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                # training has begun (an epoch reported: every value suggested) and beats
                if t.intermediate_values and _has_heartbeat(engine, t._trial_id):
                    return t
            time.sleep(0.1)
    finally:
        engine.dispose()
    pytest.fail("no training trial with a heartbeat was seen")


def test_killed_worker_trial_is_failed_by_heartbeat_retried_and_nothing_is_lost(postgres_url):
    n = 3
    beat = ("--heartbeat-interval", "1", "--grace-period", "3", "--pruner", "none")
    # long trials (30 epochs, a few seconds) so one can be killed in the middle
    tune(
        "burgers",
        4,
        n_trials=1,
        epochs=30,
        study_name="killed",
        storage=postgres_url,
        pruner="none",
        problem_overrides=TINY_BURGERS,
        search_space=SPACE,
        **PROXY_MODEL,
    )
    study = optuna.load_study(study_name="killed", storage=postgres_url)
    victim = start_worker("killed", postgres_url, n, 1, *beat)
    try:
        running = _wait_for_running(study, postgres_url, victim)
        before = {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE,))}
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.kill()
        victim.communicate(timeout=WORKER_TIMEOUT)
    assert victim.returncode == -signal.SIGKILL
    assert before and running.number not in before
    killed = next(t for t in study.get_trials() if t.number == running.number)
    assert killed.state == TrialState.RUNNING  # killed mid-trial: nobody finished it

    time.sleep(3.5)  # the grace period passes: the trial is stale from now on
    rc, out, err = finish(start_worker("killed", postgres_url, n, 2, *beat))
    assert rc == 0, f"worker failed ({rc}):\n{out}\n{err[-3000:]}"

    study = optuna.load_study(study_name="killed", storage=postgres_url)
    trials = {t.number: t for t in study.get_trials()}
    assert trials[running.number].state == TrialState.FAIL
    retries = [
        t
        for t in trials.values()
        if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == running.number
    ]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.state in FINISHED  # the retry ran to the end
    assert retry.params == killed.params  # the same hyperparameters, run again
    assert RetryHeartbeatStaleTrialCallback.retry_history(retry) == [running.number]
    done = study.get_trials(states=FINISHED)
    assert len(done) == n
    assert len({t.number for t in done}) == n
    for number, value in before.items():  # no finished trial lost or changed
        assert trials[number].state == TrialState.COMPLETE
        assert trials[number].value == value


class HoldUntilStale(optuna.pruners.BasePruner):
    """Keeps a trial running until ``orphan`` has stopped beating for longer than ``grace``.

    The test's own heartbeat thread keeps ``orphan`` fresh until the worker's trial reports
    its first epoch; then this pruner stops the thread and waits out the grace period, so the
    orphan turns stale exactly while the worker runs its (last) trial, on any machine.
    """

    def __init__(self, storage, trial_id: int, grace: float) -> None:
        self.storage, self.trial_id, self.grace = storage, trial_id, grace
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        while True:
            self.storage.record_heartbeat(self.trial_id)
            if self.stop.wait(0.25):
                return

    def prune(self, study, trial) -> bool:
        if not self.stop.is_set():
            self.stop.set()
            self.thread.join()
            time.sleep(self.grace + 1.0)
        return False


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_retry_queued_during_the_last_trial_is_still_run(postgres_url):
    """A worker that finds a stale trial only after its own last trial still runs the retry.

    The study holds one finished trial and one RUNNING trial (``orphan``, as if its worker
    had just been killed) with n = 3. The worker runs trial 2 — the third claimed — during
    which the orphan turns stale; the heartbeat check after it fails the orphan and queues its
    retry as WAITING. The study must still end with n finished trials (it ended with n - 1
    and the retry left WAITING while run_worker counted WAITING trials as claimed).
    """
    n = 3
    tune(
        "burgers",
        4,
        n_trials=1,
        epochs=1,
        study_name="late-retry",
        storage=postgres_url,
        problem_overrides=TINY_BURGERS,
        search_space=SPACE,
        **PROXY_MODEL,
    )
    storage = open_study_storage(postgres_url, heartbeat_interval=1, grace_period=2)
    study = optuna.load_study(study_name="late-retry", storage=storage)
    orphan = study.ask()
    hold = HoldUntilStale(storage, orphan._trial_id, grace=2)
    try:
        run_worker(
            "late-retry",
            postgres_url,
            n,
            seed=3,
            pruner=hold,
            device="cpu",
            heartbeat_interval=1,
            grace_period=2,
        )
    finally:
        hold.stop.set()
    trials = study.get_trials()
    assert trials[orphan.number].state == TrialState.FAIL  # found stale, after trial 2
    assert trials[2].state == TrialState.COMPLETE
    waiting = [t.number for t in trials if t.state == TrialState.WAITING]
    assert not waiting, f"the retry of trial {orphan.number} was left WAITING: {waiting}"
    assert len(study.get_trials(states=FINISHED)) == n


def test_orphans_of_dead_processes_on_this_host_are_failed_and_retried_once(tmp_path):
    """The host:pid half of the liveness mechanism, on a journal file (no heartbeats)."""
    from transfer_tune.search.workers import (
        FAIL_REASON,
        WORKER_ATTR,
        fail_orphans,
        process_gone,
        recover,
        worker_tag,
    )

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    assert process_gone(f"{host}:{dead.pid}")
    assert not process_gone(worker_tag())  # this process
    assert not process_gone(f"{host}:{os.getppid()}")  # alive
    assert not process_gone(f"another-{host}:{dead.pid}")  # other hosts cannot be probed
    assert not process_gone(None) and not process_gone("no-pid")

    storage = get_storage(f"journal:{tmp_path / 'j.journal'}")
    study = optuna.create_study(storage=storage, study_name="orphans")
    tags = [f"{host}:{dead.pid}", worker_tag(), None, f"elsewhere:{dead.pid}"]
    for tag in tags:
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        if tag is not None:
            trial.set_user_attr(WORKER_ATTR, tag)
    assert recover(study, storage, heartbeats=False) == 1  # only the dead local one
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] + [TrialState.RUNNING] * 3 + [
        TrialState.WAITING
    ]
    assert trials[0].user_attrs["fail_reason"] == FAIL_REASON
    retry = trials[4]
    assert retry.params == trials[0].params
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == 0
    # a retry whose worker dies too is failed but not retried again
    started = study.ask()
    assert started.number == 4
    started.set_user_attr(WORKER_ATTR, f"{host}:{dead.pid}")
    assert recover(study, storage, heartbeats=False) == 0
    assert study.get_trials()[4].state == TrialState.FAIL
    # every_running=True: after a crash elsewhere, when no worker runs
    assert len(fail_orphans(study, storage, every_running=True)) == 3
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_a_trial_just_created_by_another_worker_is_waited_for(tmp_path):
    """The window between a worker creating its last trial and recording itself on it: a
    worker that finds it waits instead of refusing (a flake once seen in CI), while a trial
    of another host is still refused at once."""
    from transfer_tune.search.proxy import _wait_for_others
    from transfer_tune.search.workers import (
        WORKER_ATTR,
        WORKER_ID_ATTR,
        record_worker,
        still_starting,
    )

    url = f"journal:{tmp_path / 's.journal'}"
    study = optuna.create_study(study_name="s", storage=get_storage(url))
    fresh = study.ask()
    frozen = study.get_trials(deepcopy=False)[0]
    assert still_starting(frozen)
    _wait_for_others(study, 2, heartbeats=False)  # waits one poll; does not raise
    record_worker(fresh)
    recorded = study.get_trials(deepcopy=False)[0]
    assert not still_starting(recorded)
    assert list(recorded.user_attrs) == [WORKER_ID_ATTR, WORKER_ATTR]  # the tag comes last
    study.ask().set_user_attr(WORKER_ATTR, "another-host:4242")
    with pytest.raises(TransferTuneError, match="another-host:4242"):
        _wait_for_others(study, 3, heartbeats=False)
