"""The same problem on a coarser training grid: what a cheap proxy trains on.

A proxy may train on a coarser grid than the target (the FNO is resolution-invariant, and a
step on an ``n / 2`` grid costs about ``2^-d`` of one on ``n``). :func:`coarse_problem` gives
the problem at a coarser ``resolution`` with the guarantee the target's data already have:
the coarse samples are *exact* point values of the same functions, never interpolated.

* A generated problem keeps its fine solver grid (``n_fine``, in its config) and seed, so the
  coarse dataset subsamples the very solves the target's data subsample; the resolution must
  be one the solver grid can give exactly (the error lists them).
* A file problem takes every ``t``-th point of its training grid along each axis (its
  ``subsample`` option multiplied by ``t``, starting at the first point); the resolution must
  be ``(n - 1) // t + 1`` for an integer ``t`` (the error lists those).

The coarse problem fits its own normalisers (it is a model of its own, trained on its own
data); the target keeps its own.
"""

from __future__ import annotations

from typing import Any

from pdes.checks import as_int
from pdes.errors import TransferTuneError
from pdes.problem import Problem

__all__ = ["coarse_problem", "coarse_resolutions"]


def _strides(n: int) -> dict[int, int]:
    """Coarse resolution -> the smallest stride giving it, for an ``n``-point axis."""
    out: dict[int, int] = {}
    for t in range(2, n):
        out.setdefault((n - 1) // t + 1, t)
    return out


def coarse_resolutions(problem: Problem) -> list[int] | None:
    """The coarser resolutions a file problem can give, largest first (``None``: generated;
    its solver's own check lists what it can give)."""
    if not problem.is_file:
        return None
    return sorted((r for r in _strides(problem.grid_shape[0]) if r >= 2), reverse=True)


def coarse_problem(problem: Problem, resolution: Any) -> Problem:
    """``problem`` with its training grid coarsened to ``resolution`` points per axis.

    Parameters
    ----------
    problem : pdes.Problem
        The target's problem.
    resolution : int
        Points per axis of the coarse grid (at most the problem's own; equal returns it).

    Returns
    -------
    pdes.Problem

    Raises
    ------
    TransferTuneError
        For a resolution finer than the problem's, or one no exact subsample gives.
    """
    resolution = as_int(resolution, "proxy resolution", minimum=2)
    own = problem.resolution
    if resolution == own:
        return problem
    if resolution > own:
        raise TransferTuneError(
            f"proxy resolution {resolution} is finer than the problem's {own}: the proxy "
            "trains on the target's grid or a coarser one"
        )
    if not problem.is_file:
        return problem.with_overrides(resolution=resolution, keep_normalizers=False)
    grid = problem.grid_shape
    if len(set(grid)) != 1:
        raise TransferTuneError(
            f"file problem on the grid {grid}: a proxy resolution needs the same number of "
            "points on every axis; coarsen it yourself with subsample=[...] per axis"
        )
    strides = _strides(grid[0])
    if resolution not in strides:
        raise TransferTuneError(
            f"proxy resolution {resolution} is not an exact subsample of the file's "
            f"{grid[0]}-point grid (every t-th point gives (n - 1) // t + 1 points): choose one "
            f"of {coarse_resolutions(problem)[:12]}"
        )
    sub = problem.config().get("subsample", 1)
    base = sub[0] if isinstance(sub, list) else int(sub)
    return problem.with_overrides(subsample=base * strides[resolution], keep_normalizers=False)
