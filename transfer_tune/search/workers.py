"""Worker liveness: one dead-worker mechanism for the proxy search and the landscape sweeps.

Every trial records the process that runs it (user attribute ``worker`` = ``"host:pid"``,
and ``worker_id`` = the boot id and the process's start time, :func:`record_worker`): a pid
that a restarted container or a rerun gives to another process is not taken for the worker
(:func:`process_gone`). Before a worker starts trials, :func:`fail_orphans` fails the RUNNING
trials whose process is gone *on this host* (or every RUNNING trial, when told that no other
worker runs), with the reason in the user attribute ``fail_reason``. Each caller then queues
the failed work again: the proxy search with :func:`retry_once` (the same parameters, once,
marked the way Optuna's ``RetryHeartbeatStaleTrialCallback`` marks its retries,
:func:`transfer_tune.search.studies.queue_retry`), a sweep by queueing every failed grid point
the same way.

Workers on other hosts cannot be probed by pid: on RDB storages (SQLite, PostgreSQL) the
proxy search also keeps Optuna's heartbeats (:func:`open_study_storage`), which fail and
re-queue a trial whose worker stopped beating for the grace period, wherever it ran.

A trial of another process is failed through the storage
(:func:`transfer_tune.search.optuna_internals.fail_trial`, the one home of Optuna internals).

Threads: worker processes on one machine share its cores, so each runs on
:func:`torch_threads` ``(processes)`` = ``max(1, cores // processes)`` torch threads, ``cores``
being the CPUs this process may use (:func:`available_cores`: affinity and cgroup quota). The
proxy search (``tune(n_jobs=k)``) and the landscape sweeps (``sweep(n_jobs=k)``) both apply it.
"""

from __future__ import annotations

import os
import socket
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from transfer_tune.search.optuna_internals import fail_trial
from transfer_tune.search.storage import get_storage
from transfer_tune.search.studies import queue_retry

#: User attribute of every trial: the ``host:pid`` of the process that runs it.
WORKER_ATTR = "worker"
#: User attribute of every trial: ``"<boot id>/<start time>"`` of that process (Linux).
WORKER_ID_ATTR = "worker_id"
#: Seconds a new trial may wait for its worker's record (:func:`record_worker` is the first
#: thing an objective does, milliseconds after the trial is created; this covers a slow
#: storage) before a worker that cannot resolve it says so (:func:`still_starting`).
STARTING_SECONDS = 30.0
#: ``fail_reason`` of a trial failed because its worker is gone.
FAIL_REASON = "its worker stopped (found RUNNING on resume)"
#: Heartbeats let a worker fail (and retry) a trial whose process died (RDB storages only).
HEARTBEAT_INTERVAL, GRACE_PERIOD = 20, 60


def available_cores() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota if set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def torch_threads(processes: int) -> int:
    """Torch threads of each of ``processes`` worker processes on this machine.

    ``max(1, available_cores() // processes)``: oversubscribed threads cost far more than idle
    cores (on 2 cores, two processes of 2 threads each ran a 2-D step 5-10x slower than two of
    one thread).
    """
    return max(1, available_cores() // max(1, int(processes)))


def worker_tag() -> str:
    """``"host:pid"`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_identity(pid: int) -> str | None:
    """``"<boot id>/<start time>"`` of process ``pid``: no other process ever has the same.

    The start time is field 22 of ``/proc/<pid>/stat`` (clock ticks after boot); the boot id
    tells two boots apart. ``None`` where ``/proc`` cannot tell (not Linux, no such process).
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return f"{boot}/{stat.rsplit(')', 1)[1].split()[19]}"
    except (OSError, IndexError, ValueError):
        return None


def record_worker(trial: optuna.Trial) -> None:
    """Record on ``trial`` that this process runs it (first thing an objective does).

    The identity is written before the tag, so a reader that sees the tag sees the whole
    record (two writes; another worker may read between them).
    """
    identity = process_identity(os.getpid())
    if identity is not None:
        trial.set_user_attr(WORKER_ID_ATTR, identity)
    trial.set_user_attr(WORKER_ATTR, worker_tag())


def still_starting(trial: FrozenTrial) -> bool:
    """Whether ``trial`` was created less than :data:`STARTING_SECONDS` ago and its worker has
    not recorded itself yet (:func:`record_worker`): a live worker's new trial, not a stuck
    one."""
    if WORKER_ATTR in trial.user_attrs or trial.datetime_start is None:
        return False
    return (datetime.now() - trial.datetime_start).total_seconds() < STARTING_SECONDS


def trial_worker_gone(trial: FrozenTrial) -> bool:
    """Whether the process recorded on ``trial`` is known to be dead (:func:`process_gone`)."""
    attrs = trial.user_attrs
    return process_gone(attrs.get(WORKER_ATTR), attrs.get(WORKER_ID_ATTR))


def checkable_here(trial: FrozenTrial) -> bool:
    """Whether this host can tell if ``trial``'s worker lives: its own, with an identity."""
    tag = trial.user_attrs.get(WORKER_ATTR)
    return (
        isinstance(tag, str)
        and tag.rpartition(":")[0] == socket.gethostname()
        and isinstance(trial.user_attrs.get(WORKER_ID_ATTR), str)
    )


def process_gone(tag: Any, identity: str | None = None) -> bool:
    """Whether the worker ``host:pid`` is known to be dead (only this host can be probed).

    With the ``identity`` recorded with it (:func:`process_identity`), a live process that
    merely has the same pid (a rerun, a restarted container) counts as dead.
    """
    if not isinstance(tag, str) or ":" not in tag:
        return False
    host, _, pid_text = tag.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine: heartbeats (RDB) or an explicit reset can tell
    pid = int(pid_text)
    if isinstance(identity, str):
        now = process_identity(pid)
        if now is not None and now != identity:
            return True  # the pid now belongs to another process
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:  # a killed child nobody has waited for yet is a zombie: dead for our purpose
        return stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def fail_orphans(
    study: optuna.Study, storage: BaseStorage, *, every_running: bool = False
) -> list[FrozenTrial]:
    """Fail the RUNNING trials of ``study`` whose worker process is gone on this host.

    Parameters
    ----------
    study : optuna.Study
        The study, opened on ``storage``.
    storage : BaseStorage
        The storage object the study was opened with.
    every_running : bool
        Fail every RUNNING trial (after a crash on another machine, when no worker runs).

    Returns
    -------
    list of FrozenTrial
        The trials this call failed, as they were (RUNNING); a trial another process failed
        first is not among them.
    """
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not (every_running or trial_worker_gone(trial)):
            continue
        if fail_trial(storage, study.study_name, trial.number, {"fail_reason": FAIL_REASON}):
            failed.append(trial)  # else another worker failed it first (and queues its retry)
    return failed


def retry_once(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Queue ``trial``'s parameters again unless it is itself a retry; whether it was queued.

    The retry is recorded as Optuna's ``RetryHeartbeatStaleTrialCallback`` records its own
    (:func:`transfer_tune.search.studies.queue_retry` with ``max_retry=1``), so one query
    finds retries made by either mechanism.
    """
    return queue_retry(study, trial, max_retry=1)


def _grace(heartbeat_interval: int | None, grace_period: int | None) -> int | None:
    """The grace period given, else ``GRACE_PERIOD`` or three heartbeat intervals if longer."""
    if grace_period is not None:
        return grace_period
    if heartbeat_interval is None or isinstance(heartbeat_interval, bool):
        return GRACE_PERIOD
    if isinstance(heartbeat_interval, int) and heartbeat_interval > 0:
        return max(GRACE_PERIOD, 3 * heartbeat_interval)
    return GRACE_PERIOD


def open_study_storage(
    url: str, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> BaseStorage:
    """The storage for proxy studies: heartbeats and one retry of stale trials on RDB.

    Defaults: ``HEARTBEAT_INTERVAL`` seconds and ``GRACE_PERIOD`` (or three intervals, if
    longer). Journal files have no heartbeats in Optuna; :func:`fail_orphans` covers this host
    there.
    """
    if url.startswith("journal:"):
        return get_storage(url)
    return get_storage(
        url,
        heartbeat_interval=HEARTBEAT_INTERVAL if heartbeat_interval is None else heartbeat_interval,
        grace_period=_grace(heartbeat_interval, grace_period),
        retry_stale_trials=1,
    )


def recover(study: optuna.Study, storage: BaseStorage, heartbeats: bool) -> int:
    """Fail and re-queue (once) the trials of dead workers; the number re-queued.

    First Optuna's heartbeat check (RDB storages, any host), then :func:`fail_orphans` for
    the trials whose process is gone on this host (even within the grace period, and on
    journal files).
    """
    if heartbeats:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    return sum(retry_once(study, t) for t in fail_orphans(study, storage))
