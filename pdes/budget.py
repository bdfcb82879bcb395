"""Rough memory and run-count budgets, checked before any work starts.

A request whose estimate exceeds the memory this machine has available (or an absurd number
of runs) is refused with one line naming the estimate, instead of an allocator traceback, an
out-of-memory kill or a loop that never ends.

The dataset estimate of a generated problem, in bytes::

    samples x (in_channels + out_channels) x resolution^dim x 4 (float32)
            x 2                                   (the raw and the normalised copy)
    + SOLVER_BYTES_PER_POINT x n_fine^dim         (one solver chunk on the fine grid)

It is an order of magnitude, not a measurement: it decides only what cannot possibly fit.
:mod:`transfer_tune.search.preflight` adds the model's parameters, optimiser state and
activations for the training runs.

The limit is ``MemAvailable`` of ``/proc/meminfo`` (else physical memory, else no check);
the environment variable ``TRANSFER_TUNE_MAX_MEMORY`` (bytes, or with a suffix ``K``, ``M``,
``G``, ``T``: ``64G``) replaces it, for a machine where the guess is wrong.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from pdes.errors import TransferTuneError

#: The environment variable that replaces the available-memory limit.
MEMORY_ENV = "TRANSFER_TUNE_MAX_MEMORY"
#: Bytes of solver work per fine-grid point and sample chunk (complex spectra, a few stages).
SOLVER_BYTES_PER_POINT = 1024
#: More training runs than this in one request is taken for a typo (a grid step of 1e-9).
MAX_RUNS = 100_000

_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units: ``"3.2 GiB"``, ``"8.0 TiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def _parse_bytes(text: str) -> int:
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    suffix = value[-1:] if value[-1:] in _SUFFIXES else ""
    try:
        number = float(value[: len(value) - len(suffix)])
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise TransferTuneError(
            f"{MEMORY_ENV}={text!r} is not a size; give bytes or e.g. 64G (or unset it)"
        )
    return int(number * _SUFFIXES[suffix])


def available_memory() -> int | None:
    """Bytes a new request may use: ``$TRANSFER_TUNE_MAX_MEMORY``, else ``MemAvailable``."""
    given = os.environ.get(MEMORY_ENV)
    if given:
        return _parse_bytes(given)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(needed: float, what: str, parts: Mapping[str, float], fix: str) -> None:
    """Refuse ``what`` when its estimate ``needed`` (bytes) exceeds :func:`available_memory`.

    Parameters
    ----------
    needed : float
        The estimate, in bytes.
    what : str
        The request, for the message (``"this training run"``).
    parts : mapping
        Where the estimate comes from (label -> bytes), named in the message.
    fix : str
        What to make smaller.

    Raises
    ------
    TransferTuneError
        Naming the estimate, its parts, the limit and the fix.
    """
    limit = available_memory()
    if limit is None or needed <= limit:
        return
    detail = ", ".join(f"{label} {format_bytes(b)}" for label, b in parts.items() if b)
    raise TransferTuneError(
        f"{what} needs about {format_bytes(needed)} of memory ({detail}), more than the "
        f"{format_bytes(limit)} available; {fix} (or set {MEMORY_ENV} if the estimate is wrong)"
    )


def check_run_count(runs: float, what: str, fix: str) -> int:
    """Refuse more than :data:`MAX_RUNS` runs; return ``runs`` as an int otherwise."""
    if not math.isfinite(runs) or runs > MAX_RUNS:
        shown = f"{runs:.3g}" if math.isfinite(runs) else "infinitely many"
        raise TransferTuneError(f"{what} would train {shown} runs (more than {MAX_RUNS:,}); {fix}")
    return int(runs)


def dataset_bytes(
    samples: int, channels: int, resolution: int, dim: int, n_fine: int | None = None
) -> dict[str, float]:
    """The parts of the dataset estimate (see the module docstring), in bytes."""
    points = float(resolution) ** dim
    parts = {f"{samples:,} samples x {channels} channels": 8.0 * samples * channels * points}
    if n_fine is not None:
        grid = f"{n_fine}^{dim}" if dim > 1 else f"{n_fine:,}"
        parts[f"the solver on {grid} points"] = SOLVER_BYTES_PER_POINT * float(n_fine) ** dim
    return parts


def known_channels(problem: Any) -> tuple[int, int]:
    """Input and output channels without reading any data (1 where only the data would say)."""
    spec = getattr(problem, "_spec", None)
    if spec is None:
        return problem.in_channels, problem.out_channels  # a file problem: from its header
    return spec.in_channels or 1, spec.out_channels or 1


def problem_bytes(problem: Any) -> dict[str, float]:
    """:func:`dataset_bytes` of a generated problem (a file problem is already on disk: ``{}``)."""
    spec = getattr(problem, "_spec", None)
    if spec is None:
        return {}
    channels = sum(known_channels(problem))
    samples = problem.n_train + problem.n_val + problem.n_test
    n_fine = problem.params.get("n_fine")
    n_fine = int(n_fine) if isinstance(n_fine, int) and not isinstance(n_fine, bool) else None
    return dataset_bytes(samples, channels, problem.resolution, spec.dim, n_fine)


def check_problem_memory(problem: Any) -> None:
    """Refuse a generated problem whose data (or solver) cannot fit in memory."""
    parts = problem_bytes(problem)
    check_memory(
        sum(parts.values()),
        f"the {problem.name} data (resolution {problem.resolution})",
        parts,
        "lower n_train / n_val / n_test or the resolution (and n_fine)",
    )
