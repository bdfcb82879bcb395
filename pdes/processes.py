"""Worker processes that die with the process that started them.

joblib's loky workers (and loky's resource tracker, which lives as long as they hold its
pipe) outlive a parent killed by SIGKILL: they are re-parented and go on working. Every
process pool of this project (dataset generation, the proxy search's ``n_jobs``, the
landscape sweeps) is made by :func:`parallel`, whose workers first run :func:`watch_parent`:
a daemon thread that ends the worker within :data:`POLL_SECONDS` once its parent is gone.

A thread polling ``os.getppid()`` is used rather than Linux's ``PR_SET_PDEATHSIG``, which
fires when the *thread* that spawned the child ends (loky spawns from helper threads) and
exists on Linux only.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

#: Seconds between two looks at the parent.
POLL_SECONDS = 0.5


def watch_parent(parent_pid: int, interval: float = POLL_SECONDS) -> None:
    """End this process (exit status 1) as soon as ``parent_pid`` is no longer its parent.

    Parameters
    ----------
    parent_pid : int
        The pid of the process that started this one.
    interval : float
        Seconds between checks.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(1)  # the parent is gone: nobody will read this worker's results

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def parallel(n_jobs: int, **kwargs: Any) -> Any:
    """A ``joblib.Parallel`` on loky whose worker processes die with this process.

    Parameters
    ----------
    n_jobs : int
        Worker processes (``-1``: all cores).
    **kwargs
        Other ``joblib.Parallel`` arguments (``return_as``, ...).
    """
    from joblib import Parallel, parallel_config

    with parallel_config(backend="loky", initializer=watch_parent, initargs=(os.getpid(),)):
        return Parallel(n_jobs=n_jobs, **kwargs)
