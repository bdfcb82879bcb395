"""Spectrum diagnostic: how much of a problem's energy lies beyond the modes an FNO keeps.

An FNO with ``K`` modes per dimension sees the data only through the Fourier modes it keeps
(the original FNO convention, as in ``transfer_tune.core.model``): along the *last* spatial
axis the real FFT keeps frequencies ``0 .. K-1``; along every other axis it keeps both signs,
``|k| < K`` (``2K - 1`` rows). "Energy beyond K" is the energy of every mode that such a model
does *not* keep. If a problem's target has almost no energy beyond a proxy's ``K``, a larger
target ``K`` has nothing more to learn and a proxy -> target transfer cannot show its worth.

Energies are those of the discrete Fourier transform of the data on its own grid (Parseval:
the sum over modes equals the sum of squares over grid points), summed over samples and
channels, *without* the constant mode ``k = 0`` (the spatial mean): every fraction is
``(non-mean energy in modes not kept) / (non-mean energy)``, i.e. the energy-weighted average
over samples and channels. A per-channel affine normalisation (scalar mean and std, as in
:mod:`pdes.normalize`) changes only the mean mode and the overall scale, so the fractions are
the same on normalised and physical data; the diagnostic reads physical units.

Public: :func:`energy_beyond`, :func:`spectrum_table` (-> :class:`SpectrumReport`) and
:func:`added_energy`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft as sfft

from pdes.errors import TransferTuneError

__all__ = [
    "DEFAULT_MODES",
    "SpectrumReport",
    "SpectrumRow",
    "added_energy",
    "energy_beyond",
    "mode_energy",
    "spectrum_table",
]

#: K values of :func:`spectrum_table` by default (those that fit the grid are used).
DEFAULT_MODES: tuple[int, ...] = (2, 4, 8, 12, 16, 24, 32, 64, 128)

_CHUNK = 256  # samples per FFT batch (bounds memory; does not change the result)


def _as_array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, on any device
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim < 3:
        raise TransferTuneError(
            f"the spectrum diagnostic expects an array shaped (N, C, *grid) with at least one "
            f"grid axis; got shape {tuple(x.shape)}. Add the channel axis, e.g. x[:, None]."
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise TransferTuneError(f"the spectrum diagnostic got an empty array {tuple(x.shape)}.")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise TransferTuneError(f"the spectrum diagnostic needs real data, got {x.dtype}.")
    return x


def mode_energy(x: Any) -> np.ndarray:
    """Energy per Fourier mode of real data ``x`` shaped ``(N, C, *grid)``, summed over N and C.

    Returns
    -------
    ndarray, float64, shape ``(*grid[:-1], grid[-1] // 2 + 1)``
        ``|rfftn(x)|^2`` over the grid axes, with the columns of the last axis that stand for
        two modes (``k`` and ``-k``) counted twice, so the total equals
        ``n_points * sum(x**2)`` (Parseval). Index ``(0, ..., 0)`` is the mean mode.
    """
    x = _as_array(x)
    axes = tuple(range(2, x.ndim))
    n_last = x.shape[-1]
    total = None
    for start in range(0, x.shape[0], _CHUNK):
        block = np.asarray(x[start : start + _CHUNK], dtype=np.float64)
        power = np.abs(sfft.rfftn(block, axes=axes)) ** 2
        power = power.sum(axis=(0, 1))
        total = power if total is None else total + power
    weight = np.full(n_last // 2 + 1, 2.0)
    weight[0] = 1.0
    if n_last % 2 == 0:
        weight[-1] = 1.0  # the Nyquist column has no partner
    return total * weight


def _kept_mask(shape: Sequence[int], grid: Sequence[int], modes: int) -> np.ndarray:
    """Boolean mask over the rfftn grid: the modes an FNO with ``modes`` per axis keeps."""
    mask = np.ones(tuple(shape), dtype=bool)
    for axis, n in enumerate(grid[:-1]):
        i = np.arange(n)
        k = np.minimum(i, n - i)  # |k| of fft index i
        sl = [None] * len(grid)
        sl[axis] = slice(None)
        mask &= (k < modes)[tuple(sl)]
    last = np.arange(shape[-1]) < modes
    return mask & last[(None,) * (len(grid) - 1) + (slice(None),)]


def _check_modes(modes: Any, grid: Sequence[int]) -> int:
    if isinstance(modes, bool) or not isinstance(modes, (int, np.integer)) or modes < 1:
        raise TransferTuneError(f"modes (K) must be a positive int, got {modes!r}.")
    return int(modes)


def _fractions(energy: np.ndarray, grid: Sequence[int], modes: Iterable[int]) -> list[float]:
    total = float(energy.sum() - energy.flat[0])
    out = []
    for k in modes:
        k = _check_modes(k, grid)
        if total <= 0.0:
            out.append(0.0)
            continue
        mask = _kept_mask(energy.shape, grid, k)
        mask.flat[0] = False
        kept = float(energy[mask].sum())
        out.append(max(0.0, (total - kept) / total))
    return out


def energy_beyond(x: Any, modes: int) -> float:
    """Fraction of the non-mean energy of ``x`` in the modes an FNO with ``modes`` does not keep.

    Parameters
    ----------
    x : ndarray or torch.Tensor, shape (N, C, *grid)
        Real data (any number of grid axes).
    modes : int
        K. Kept: ``0 .. K-1`` of the real FFT on the last axis and ``|k| < K`` on every other
        axis (see the module docstring); a K larger than the grid keeps everything.

    Returns
    -------
    float
        In ``[0, 1]``: energy of the modes not kept over the energy of all modes but ``k = 0``,
        both summed over samples and channels; 0.0 for data with no non-mean energy.
    """
    x = _as_array(x)
    return _fractions(mode_energy(x), x.shape[2:], [modes])[0]


@dataclass(frozen=True)
class SpectrumRow:
    """One K: the fractions of input and target non-mean energy beyond it."""

    modes: int
    input_beyond: float
    target_beyond: float


@dataclass(frozen=True)
class SpectrumReport:
    """Fractions of input and target energy beyond each K (see :func:`spectrum_table`).

    Attributes
    ----------
    rows : tuple of SpectrumRow
        One per K, in increasing K.
    name : str
        What was measured (problem name and grid, or ``"data"``).
    grid : tuple of int
        Grid shape of the data.
    n_samples : int
        Samples the fractions are averaged over.
    proxy_modes, target_modes : int or None
        The K pair to mark in figures, if given.
    """

    rows: tuple[SpectrumRow, ...]
    name: str = "data"
    grid: tuple[int, ...] = ()
    n_samples: int = 0
    proxy_modes: int | None = None
    target_modes: int | None = None

    def to_records(self) -> list[dict[str, Any]]:
        """The rows as JSON-able dicts ``{"modes", "input_beyond", "target_beyond"}``."""
        return [
            {"modes": r.modes, "input_beyond": r.input_beyond, "target_beyond": r.target_beyond}
            for r in self.rows
        ]

    def text(self) -> str:
        """A small table to print: K, and the input and target energy fractions beyond it."""
        grid = "x".join(map(str, self.grid))
        head = (
            f"energy beyond K ({self.name}, grid {grid}, {self.n_samples} samples; "
            "fraction of non-mean energy in modes an FNO with K modes does not keep)"
        )
        lines = [head, f"{'K':>6}  {'input':>10}  {'target':>10}"]
        for r in self.rows:
            mark = ""
            if r.modes == self.proxy_modes:
                mark = "  <- proxy"
            elif r.modes == self.target_modes:
                mark = "  <- target"
            lines.append(f"{r.modes:>6}  {r.input_beyond:>10.3e}  {r.target_beyond:>10.3e}{mark}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def _xy(problem_or_xy: Any, split: str) -> tuple[Any, Any, str]:
    if isinstance(problem_or_xy, (tuple, list)):
        if len(problem_or_xy) != 2:
            raise TransferTuneError(
                "spectrum_table takes a Problem, a problem name or an (x, y) pair; got a "
                f"sequence of length {len(problem_or_xy)}."
            )
        x, y = problem_or_xy
        return x, y, "data"
    problem = problem_or_xy
    if isinstance(problem, str) or isinstance(problem, dict):
        from pdes.registry import load_problem

        problem = load_problem(problem)
    if not hasattr(problem, "dataset"):
        raise TransferTuneError(
            "spectrum_table takes a pdes Problem, a problem name or config dict, or an (x, y) "
            f"pair of arrays; got {type(problem_or_xy).__name__}."
        )
    x, y = problem.dataset(split, normalized=False)
    return x, y, str(getattr(problem, "name", "problem"))


def _max_modes(grid: Sequence[int]) -> int:
    """The largest K that can keep a mode on every axis (beyond it nothing is left out)."""
    return min(n // 2 + 1 for n in grid)


def spectrum_table(
    problem_or_xy: Any,
    modes: Iterable[int] | None = None,
    *,
    split: str = "train",
    proxy_modes: int | None = None,
    target_modes: int | None = None,
) -> SpectrumReport:
    """Fractions of input and target non-mean energy beyond each K.

    Parameters
    ----------
    problem_or_xy : Problem, str, dict or (x, y)
        A :class:`pdes.Problem` (or a name / config dict for :func:`pdes.load_problem`), whose
        ``split`` is read in physical units, or a pair of arrays shaped ``(N, C, *grid)``.
    modes : iterable of int, optional
        The K values; default :data:`DEFAULT_MODES` up to the largest that fits the grid
        (``n // 2 + 1`` on the smallest axis), plus ``proxy_modes``/``target_modes``.
    split : str, default "train"
        Which split of a problem to read.
    proxy_modes, target_modes : int, optional
        Added to the K values and marked in :meth:`SpectrumReport.text` and in figures.

    Returns
    -------
    SpectrumReport
    """
    x, y, name = _xy(problem_or_xy, split)
    x, y = _as_array(x), _as_array(y)
    grid = tuple(int(n) for n in y.shape[2:])
    if modes is None:
        limit = _max_modes(grid)
        ks = {k for k in DEFAULT_MODES if k <= limit}
    else:
        ks = {_check_modes(k, grid) for k in modes}
    ks |= {k for k in (proxy_modes, target_modes) if k is not None}
    ks = sorted(_check_modes(k, grid) for k in ks)
    fin = _fractions(mode_energy(x), x.shape[2:], ks)
    fout = _fractions(mode_energy(y), grid, ks)
    rows = tuple(SpectrumRow(k, a, b) for k, a, b in zip(ks, fin, fout, strict=True))
    return SpectrumReport(
        rows=rows,
        name=f"{name} {split}" if name != "data" else name,
        grid=grid,
        n_samples=int(y.shape[0]),
        proxy_modes=proxy_modes,
        target_modes=target_modes,
    )


def added_energy(
    problem: Any, proxy_modes: int, target_modes: int, *, split: str = "train"
) -> float:
    """Target energy kept by ``target_modes`` but not by ``proxy_modes``.

    As a fraction of the target's non-mean energy: ``beyond(K_proxy) - beyond(K_target)``
    (>= 0 for ``K_target >= K_proxy``). Below about 1e-3, the larger model has next to
    nothing more to learn than the proxy.

    Parameters
    ----------
    problem : Problem, str, dict or (x, y)
        As for :func:`spectrum_table`.
    proxy_modes, target_modes : int
        K of the proxy and of the target.
    split : str, default "train"
        Which split of a problem to read.
    """
    _, y, _ = _xy(problem, split)
    y = _as_array(y)
    grid = y.shape[2:]
    lo, hi = _fractions(mode_energy(y), grid, [proxy_modes, target_modes])
    return max(0.0, lo - hi)
