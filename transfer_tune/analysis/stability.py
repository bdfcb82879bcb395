"""The stability edge: the largest learning rate at which training still works, per K.

A run **fails** when it diverged (NaN/inf or an exploding loss: the sweep records ``inf``) or
**collapsed**: its final relative L2 error is at least :data:`COLLAPSE` (0.99). A model that
predicts zero scores exactly 1, so such a run has learnt nothing and is as lost as a NaN.

Per (parametrization, K), on a grid of values ``v_1 < ... < v_n``:

* the **edge** is the lowest grid value at which at least half the seeds fail
  (``2 * failures >= seeds``);
* the **largest stable value** is the grid value just below the edge (``None`` when the
  lowest value already fails);
* when no grid value fails the edge lies beyond the grid: ``edge`` is ``None`` and
  :attr:`StabilityEdge.censored` is true (the edge is above ``v_n``).

The shift of the edge from K_base is reported in log2 units (grid resolution; no interval):
under SP the spectral weights' effective step grows with K, so SP's edge is expected to move
down as K grows, and µP's to stay put.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from transfer_tune.errors import TransferTuneError

__all__ = ["COLLAPSE", "StabilityEdge", "failed_runs", "stability_edge", "stability_edges"]

#: Final relative L2 error at or above which a run counts as collapsed (zero predictor: 1.0).
COLLAPSE = 0.99


def failed_runs(losses: np.ndarray, collapse: float = COLLAPSE) -> np.ndarray:
    """Boolean array: the run diverged (``inf``) or collapsed (loss >= ``collapse``).

    NaN marks a missing run and is not a failure.
    """
    arr = np.asarray(losses, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isinf(arr) | (np.isfinite(arr) & (arr >= collapse))


@dataclass(frozen=True)
class StabilityEdge:
    """The stability edge of one (parametrization, K).

    Attributes
    ----------
    edge : float or None
        Lowest grid value at which at least half the seeds fail; ``None`` when none does.
    stable : float or None
        The largest grid value below ``edge`` (the largest grid value when ``edge`` is
        ``None``; ``None`` when the lowest grid value already fails).
    censored : bool
        No grid value fails: the edge is above the grid.
    failures : list of int
        Failed seeds at every grid value.
    n_seeds : int
        Seeds with a result at each grid value (the largest count).
    shift : float
        log2 of ``edge`` over the K_base edge (NaN when either is censored or missing).
    shift_bound : str
        ``""`` when ``shift`` is exact; ``">= x"`` / ``"<= x"`` when one edge is censored and
        only a bound is known (e.g. the K_base edge is beyond the grid).
    """

    parametrization: str
    modes: int
    edge: float | None
    stable: float | None
    censored: bool
    failures: list[int]
    n_seeds: int
    shift: float = math.nan
    shift_bound: str = ""

    def to_dict(self) -> dict:
        """Plain data."""
        return asdict(self)

    def text(self) -> str:
        """``"2^-3.00 (3/5 fail)"`` or ``"> 2^-2.50"`` for a censored edge."""
        if self.edge is None:
            return f"> 2^{math.log2(self.stable):.2f}" if self.stable else "n/a"
        i = self._index()
        return f"2^{math.log2(self.edge):.2f} ({self.failures[i]}/{self.n_seeds} fail)"

    def _index(self) -> int:
        return next(i for i, f in enumerate(self.failures) if 2 * f >= self.n_seeds)


def stability_edge(
    values: np.ndarray | list[float],
    losses: np.ndarray,
    parametrization: str = "",
    modes: int = 0,
    collapse: float = COLLAPSE,
) -> StabilityEdge:
    """The edge of one curve: ``losses`` is ``(n_values, n_seeds)`` over ascending ``values``."""
    values = np.asarray(values, dtype=float)
    arr = np.asarray(losses, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[0] != values.size:
        raise TransferTuneError(f"{arr.shape[0]} loss rows for {values.size} values")
    if np.any(np.diff(values) <= 0):
        raise TransferTuneError("values must be strictly increasing")
    fails = failed_runs(arr, collapse).sum(axis=1)
    n_seeds = int(np.max((~np.isnan(arr)).sum(axis=1))) if arr.size else 0
    edge_i = next((i for i, f in enumerate(fails) if n_seeds and 2 * f >= n_seeds), None)
    if edge_i is None:
        return StabilityEdge(
            parametrization, modes, None, float(values[-1]), True, fails.tolist(), n_seeds
        )
    stable = float(values[edge_i - 1]) if edge_i > 0 else None
    return StabilityEdge(
        parametrization, modes, float(values[edge_i]), stable, False, fails.tolist(), n_seeds
    )


def _with_shift(edge: StabilityEdge, ref: StabilityEdge) -> StabilityEdge:
    from dataclasses import replace

    if edge.edge is not None and ref.edge is not None:
        return replace(edge, shift=math.log2(edge.edge / ref.edge))
    if edge.edge is not None and ref.censored and ref.stable:
        # the reference edge is above the grid: the shift is below log2(edge / v_max)
        return replace(edge, shift_bound=f"< {math.log2(edge.edge / ref.stable):+.2f}")
    if edge.censored and ref.edge is not None and edge.stable:
        return replace(edge, shift_bound=f"> {math.log2(edge.stable / ref.edge):+.2f}")
    return edge


def stability_edges(curves, reference_modes: int | None = None, collapse: float = COLLAPSE):
    """The edge of every (parametrization, K) of ``curves``, with its shift from K_base.

    Parameters
    ----------
    curves : Curves
        From :func:`~transfer_tune.analysis.curves.landscape_curves` (any loss: a failed run
        is ``inf`` in every loss; use the test loss for the collapse criterion).
    reference_modes : int, optional
        The K the shifts are measured from; K_base when present, else the smallest K.

    Returns
    -------
    list of StabilityEdge
    """
    out: list[StabilityEdge] = []
    for kind in curves.parametrizations:
        modes = curves.modes(kind)
        ref_k = reference_modes
        if ref_k is None or ref_k not in modes:
            ref_k = curves.base_modes if curves.base_modes in modes else modes[0]
        edges = {
            k: stability_edge(curves.values, curves.losses[(kind, k)], kind, k, collapse)
            for k in modes
        }
        out.extend(_with_shift(edges[k], edges[ref_k]) for k in modes)
    return out
