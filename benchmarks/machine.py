"""What every benchmark records about the machine it ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or the platform string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, or ``"n/a"``."""
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def environment(quick: bool, **extra: Any) -> dict[str, Any]:
    """The ``env`` a benchmark records and prints first: mode, cores, CPU, ``extra``, load.

    ``extra`` holds what the benchmark adds (threads, library versions, ...); the line
    ``key=value ...`` is printed so a log shows the machine before any result.
    """
    env = {
        "mode": "quick" if quick else "full",
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        **extra,
        "load_before": load_average(),
    }
    print(" ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    return env
