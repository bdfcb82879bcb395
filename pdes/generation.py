"""Shared machinery of the dataset generators: per-sample RNGs, parameters, chunked map.

Every generator (``pdes.burgers``, ``pdes.darcy``, ``pdes.navier_stokes``) draws sample ``i``
from its own seeded generator, merges user parameters over its ``DEFAULTS``, checks that a
resolution is a subsample of its fine grid, and maps chunks of samples over joblib workers;
its ``generate`` is :func:`generate_pairs` with its own chunk solver.
Sample ``i`` of seed ``s`` uses ``default_rng(SeedSequence(s, spawn_key=(i,)))`` (the ``i``-th
child of ``default_rng(s)``), so it is the same whatever the number of samples, the chunking
and the number of worker processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from pdes.checks import as_int
from pdes.errors import TransferTuneError


def check_subsample_resolution(problem: str, resolution: Any, n_fine: int, hint: str) -> None:
    """Raise :class:`TransferTuneError` unless ``resolution`` divides the fine grid ``n_fine``.

    Parameters
    ----------
    problem : str
        Problem name for the message.
    resolution : int
        Requested points per axis.
    n_fine : int
        Points per axis of the grid the solver runs on.
    hint : str
        How to get a fine grid for an unusual resolution (appended to the message).
    """
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, (int, np.integer))
        or resolution < 2
        or n_fine % int(resolution)
    ):
        raise TransferTuneError(
            f"{problem} resolution {resolution!r} is not a subsample of the fine grid "
            f"n_fine={n_fine}: it must divide n_fine (allowed: {_shown(divisors(n_fine))}). "
            f"Pick one of those, or {hint}"
        )


#: Trial divisions :func:`divisors` makes at most (n up to 10^12 is factored completely).
_MAX_TRIALS = 10**6


def divisors(n: int) -> list[int]:
    """The divisors ``d >= 2`` of ``n``, ascending, by trial division up to ``sqrt(n)``.

    Above ``_MAX_TRIALS**2`` only the divisors found by ``_MAX_TRIALS`` trial divisions (the
    small ones and their cofactors) are listed: the answer stays instant for any ``n``.
    """
    small, large = [], []
    for d in range(1, min(math.isqrt(n), _MAX_TRIALS) + 1):
        if n % d == 0:
            small.append(d)
            if d != n // d:
                large.append(n // d)
    return [d for d in small + large[::-1] if d >= 2]


def _shown(values: list[int], most: int = 24) -> str:
    """``values`` joined by commas, the middle elided past ``most`` entries."""
    if len(values) <= most:
        return ", ".join(map(str, values))
    half = most // 2
    return ", ".join(map(str, values[:half])) + ", ..., " + ", ".join(map(str, values[-half:]))


def sample_generators(seed: int, start: int, stop: int) -> list[np.random.Generator]:
    """One independent generator per sample index in ``range(start, stop)``.

    Sample ``i`` uses ``np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))``,
    which is the ``i``-th child of ``np.random.default_rng(seed)`` (``.spawn``).

    Parameters
    ----------
    seed : int
        Non-negative dataset seed.
    start, stop : int
        Sample index range.
    """
    seed = as_int(seed, "seed", minimum=0)
    return [
        np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
        for i in range(start, stop)
    ]


def resolve_params(
    defaults: Mapping[str, Any], params: Mapping[str, Any], problem: str
) -> dict[str, Any]:
    """Merge ``params`` over ``defaults``; an unknown key raises :class:`TransferTuneError`.

    Parameters
    ----------
    defaults : mapping
        The problem's ``DEFAULTS``.
    params : mapping
        User overrides.
    problem : str
        Problem name for the error message.
    """
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise TransferTuneError(
            f"unknown {problem} parameter(s) {unknown}; valid keys: {sorted(defaults)}."
        )
    out = dict(defaults)
    out.update(params)
    return out


def map_chunks(
    fn: Callable[..., tuple[np.ndarray, ...]],
    n_samples: int,
    chunk_size: int,
    *args: Any,
    n_jobs: int = 1,
    progress: bool = False,
    desc: str = "",
) -> tuple[np.ndarray, ...]:
    """Run ``fn(start, stop, *args)`` over consecutive sample chunks and concatenate the outputs.

    Parameters
    ----------
    fn : callable
        Picklable (module-level) function returning a tuple of arrays with ``stop - start`` rows.
    n_samples, chunk_size : int
        Total samples and samples per call.
    *args
        Extra positional arguments for ``fn``.
    n_jobs : int
        joblib worker processes (``1``: run in this process; ``-1``: all cores).
    progress : bool
        Show a tqdm bar counting samples.
    desc : str
        Bar label.

    Returns
    -------
    tuple of ndarray
        Each output of ``fn`` concatenated along axis 0 in sample order.
    """
    bounds = [(s, min(s + chunk_size, n_samples)) for s in range(0, n_samples, chunk_size)]
    if not bounds:
        return fn(0, 0, *args)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_samples, desc=desc, unit="sample")

    results: list[tuple[np.ndarray, ...]] = []
    if n_jobs == 1 or len(bounds) == 1:
        iterator: Iterator[tuple[np.ndarray, ...]] = (fn(a, b, *args) for a, b in bounds)
    else:
        from joblib import delayed

        from pdes.processes import parallel  # workers that die with this process

        iterator = parallel(n_jobs, return_as="generator")(
            delayed(fn)(a, b, *args) for a, b in bounds
        )
    for (a, b), res in zip(bounds, iterator, strict=True):
        results.append(res)
        if bar is not None:
            bar.update(b - a)
    if bar is not None:
        bar.close()
    return tuple(np.concatenate(parts, axis=0) for parts in zip(*results, strict=True))


#: A chunk solver: ``chunk(start, stop, seed, resolution, params) -> (x, y)`` for samples
#: ``start..stop-1``; module-level so that joblib can pickle it.
ChunkSolver = Callable[[int, int, int, int, dict[str, Any]], tuple[np.ndarray, np.ndarray]]


class Solver(NamedTuple):
    """What :func:`generate_pairs` needs of a solver module (each module defines one)."""

    #: Problem name (error messages and the progress bar).
    problem: str
    #: The solver's chunk function (see :data:`ChunkSolver`).
    chunk: ChunkSolver
    #: Samples per ``chunk`` call (does not change the data).
    chunk_size: int
    #: ``resolve(params) -> p``: the parameters checked and merged over ``DEFAULTS``.
    resolve: Callable[[dict[str, Any]], dict[str, Any]]
    #: ``check_resolution(resolution, **params)``; raises unless the grid is allowed.
    check_resolution: Callable[..., None]


def generate_pairs(
    solver: Solver,
    n_samples: int,
    resolution: int,
    seed: int,
    *,
    progress: bool = False,
    n_jobs: int = 1,
    params: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """What every solver's ``generate`` does: check the arguments, solve chunk by chunk.

    Parameters
    ----------
    solver : Solver
        The solver module's name, chunk function, chunk size and checks.
    n_samples : int
        Number of pairs (>= 0).
    resolution : int
        Output grid points per axis.
    seed : int
        Non-negative; sample ``i`` depends only on ``(seed, i, params)``, not on
        ``n_samples``, the chunking or ``n_jobs``.
    progress : bool
        Show a tqdm bar.
    n_jobs : int
        joblib processes over chunks of samples (``1``: this process; ``-1``: all cores).
    params : mapping, optional
        Overrides of the solver's ``DEFAULTS``.

    Returns
    -------
    x, y : ndarray, float32
        Shaped ``(n_samples, C, *grid)``, as the solver's ``chunk`` returns them.
    """
    n_samples = as_int(n_samples, "n_samples", minimum=0)
    seed = as_int(seed, "seed", minimum=0)
    params = dict(params or {})
    p = solver.resolve(params)
    solver.check_resolution(resolution, **params)
    x, y = map_chunks(
        solver.chunk,
        n_samples,
        solver.chunk_size,
        seed,
        int(resolution),
        p,
        n_jobs=n_jobs,
        progress=progress,
        desc=solver.problem,
    )
    return x, y


def generate_function(solver: Solver, doc: str) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """A solver module's ``generate(n_samples, resolution, seed, *, progress, n_jobs, **params)``.

    The one body every solver shares (:func:`generate_pairs` on ``solver``), with the module's
    own docstring ``doc``; it is the ``generate`` that :mod:`pdes.registry` calls.
    """

    def generate(
        n_samples: int,
        resolution: int,
        seed: int,
        *,
        progress: bool = False,
        n_jobs: int = 1,
        **params: Any,
    ) -> tuple[np.ndarray, np.ndarray]:
        return generate_pairs(
            solver, n_samples, resolution, seed, progress=progress, n_jobs=n_jobs, params=params
        )

    generate.__doc__ = doc
    generate.__module__ = f"pdes.{solver.problem}"
    return generate


def check_even_grid(p: dict[str, Any], problem: str) -> None:
    """Check (in place) that ``p["n_fine"]`` is an even integer >= 4: a spectral solver's grid."""
    p["n_fine"] = as_int(p["n_fine"], f"{problem} n_fine", minimum=4)
    if p["n_fine"] % 2:
        raise TransferTuneError(
            f"{problem} n_fine must be an even integer >= 4, got {p['n_fine']!r}."
        )
