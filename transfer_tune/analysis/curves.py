"""Loss curves of a sweep along one hyperparameter, and their refined minimisers.

:class:`Curves` holds, per (parametrization, K), the final loss at every grid value and seed;
:func:`landscape_curves` builds them from a
:class:`~transfer_tune.analysis.landscape.SweepResult` (two-parameter sweeps along one
parameter: at a fixed value of the other, or on the profile); :func:`refine_minimum` finds
the minimiser below the grid spacing (a parabola in ``log(loss)`` through the grid minimum
and its two neighbours, on the sweep's scale: ``log2(value)``, ``log2(1 - value)`` for the
Adam betas). The statistics over seeds are in :mod:`transfer_tune.analysis.optimum`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transfer_tune.errors import TransferTuneError

__all__ = [
    "LOSSES",
    "Curves",
    "Scale",
    "landscape_curves",
    "refine_minimum",
    "scale_for",
    "seed_mean",
]

LOSSES = ("train_loss", "val_loss", "test_loss")


@dataclass(frozen=True)
class Scale:
    """How a hyperparameter is measured for the optimum analysis."""

    label: str
    forward: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[np.ndarray], np.ndarray]


_LOG2 = Scale("log2", np.log2, lambda x: np.power(2.0, x))
_LOG2_ONE_MINUS = Scale("log2(1-value)", lambda v: np.log2(1.0 - v), lambda x: 1.0 - 2.0**x)


def scale_for(param: str) -> Scale:
    """``log2`` for learning rate, batch size, weight decay; ``log2(1 - value)`` for betas."""
    return _LOG2_ONE_MINUS if param.startswith("beta") else _LOG2


def seed_mean(losses: np.ndarray) -> np.ndarray:
    """Mean over the last axis, ignoring missing runs (NaN); any diverged run (inf) -> inf."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(losses, axis=-1)


@dataclass
class Curves:
    """Per (parametrization, K), the loss at every grid value of one parameter and seed.

    Attributes
    ----------
    param : str
        The hyperparameter along the curves.
    values : numpy.ndarray
        Its grid values, ascending.
    losses : dict
        ``(parametrization, K) -> array (n_values, n_seeds)``; ``inf`` marks a diverged run,
        NaN a missing one.
    base_modes : int
        K_base of the parametrizations.
    seeds : list of int
        Seeds along the last axis.
    loss : str
        Which loss the curves hold.
    note : str
        How other swept parameters were handled ("" for one-parameter sweeps).
    """

    param: str
    values: np.ndarray
    losses: dict[tuple[str, int], np.ndarray]
    base_modes: int
    seeds: list[int] = field(default_factory=list)
    loss: str = "test_loss"
    note: str = ""

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=float)
        if self.values.ndim != 1 or self.values.size == 0:
            raise TransferTuneError("curve values must be a non-empty 1-d sequence")
        if np.any(np.diff(self.values) <= 0):
            raise TransferTuneError("curve values must be strictly increasing")
        for key, arr in list(self.losses.items()):
            arr = np.asarray(arr, dtype=float)
            if arr.ndim == 1:
                arr = arr[:, None]
            if arr.shape[0] != self.values.size:
                raise TransferTuneError(
                    f"losses of {key} have {arr.shape[0]} rows for {self.values.size} values"
                )
            self.losses[key] = arr
        if not self.seeds:
            n = max((a.shape[1] for a in self.losses.values()), default=0)
            self.seeds = list(range(n))

    @property
    def parametrizations(self) -> list[str]:
        """Parametrization kinds, in first-seen order."""
        out: list[str] = []
        for kind, _ in self.losses:
            if kind not in out:
                out.append(kind)
        return out

    def modes(self, parametrization: str | None = None) -> list[int]:
        """K values (of one parametrization), ascending."""
        return sorted({k for p, k in self.losses if parametrization in (None, p)})

    def mean(self, parametrization: str, modes: int) -> np.ndarray:
        """Seed-averaged curve (``inf`` where any seed diverged)."""
        return seed_mean(self.losses[(parametrization, modes)])


def landscape_curves(
    result: Any,
    param: str | None = None,
    loss: str = "test_loss",
    fixed: Mapping[str, float] | None = None,
) -> Curves:
    """Curves along ``param`` from a :class:`~transfer_tune.analysis.landscape.SweepResult`.

    Parameters
    ----------
    result : SweepResult
        A finished (or partly finished) sweep.
    param : str, optional
        The parameter along the curves; the first swept one by default.
    loss : {"test_loss", "train_loss", "val_loss"}
        Which final loss to use.
    fixed : mapping, optional
        For two-parameter sweeps, the value of the other parameter (a grid value); without
        it each point of the curve takes the other parameter at its best seed-averaged value
        (the profile).
    """
    if loss not in LOSSES:
        raise TransferTuneError(f"unknown loss {loss!r}; use one of {', '.join(LOSSES)}")
    params = result.params
    param = param or params[0]
    if param not in params:
        raise TransferTuneError(f"{param!r} was not swept; the sweep varies {', '.join(params)}")
    axis = params.index(param)
    fixed = dict(fixed or {})
    unknown = sorted(set(fixed) - set(params) | ({param} & set(fixed)))
    if unknown:
        raise TransferTuneError(f"fixed= names {unknown}, which are not the other swept params")
    losses: dict[tuple[str, int], np.ndarray] = {}
    note = ""
    for kind in result.parametrizations:
        for k in result.modes:
            arr = result.loss_array(kind, k, loss)  # (*n_values, n_seeds)
            arr = np.moveaxis(arr, axis, 0)
            others = [p for p in params if p != param]
            for other in others:
                if other in fixed:
                    grid = [float(v) for v in result.values[other]]
                    if float(fixed[other]) not in grid:
                        raise TransferTuneError(
                            f"fixed {other} = {fixed[other]} is not on the grid {grid}"
                        )
                    arr = arr[:, grid.index(float(fixed[other]))]
                    note = f"{other} = {fixed[other]:g}"
                else:
                    # the profile: the other parameter at its best seed-averaged value
                    mean = seed_mean(arr)  # (n_param, n_other)
                    filled = np.where(np.isnan(mean), np.inf, mean)
                    best = np.argmin(filled, axis=1)
                    arr = arr[np.arange(arr.shape[0]), best]
                    note = f"{other} at its best value for each {param}"
            losses[(kind, k)] = arr
    return Curves(
        param=param,
        values=np.asarray(result.values[param], dtype=float),
        losses=losses,
        base_modes=result.base_modes,
        seeds=result.seeds,
        loss=loss,
        note=note,
    )


def refine_minimum(x: np.ndarray, curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refined minimisers of curves sampled at ``x``, vectorised over leading axes.

    Parameters
    ----------
    x : array (n,)
        Grid positions on the analysis scale, increasing.
    curves : array (..., n)
        Positive losses; ``inf``/NaN mark unusable points.

    Returns
    -------
    xmin : array (...)
        The vertex of the parabola through the grid minimum and its neighbours, fitted to
        ``log(loss)`` and clamped to the neighbours' bracket; the grid minimum itself when a
        neighbour is missing or the three points are not convex; NaN when no point is usable.
    index : array (...) of int
        Index of the grid minimum (-1 when no point is usable).
    at_edge : array (...) of bool
        The grid minimum is the first or last grid point.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(curves, dtype=float)
    n = x.size
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.where(np.isfinite(y) & (y > 0), np.log(np.where(y > 0, y, 1.0)), np.inf)
    usable = np.isfinite(ly).any(axis=-1)
    idx = np.argmin(ly, axis=-1)
    xmin = x[idx].astype(float)
    at_edge = (idx == 0) | (idx == n - 1)
    if n >= 3:
        i = np.clip(idx, 1, n - 2)
        y0 = np.take_along_axis(ly, (i - 1)[..., None], -1)[..., 0]
        y1 = np.take_along_axis(ly, i[..., None], -1)[..., 0]
        y2 = np.take_along_axis(ly, (i + 1)[..., None], -1)[..., 0]
        x0, x1, x2 = x[i - 1], x[i], x[i + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
            num = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)
            vertex = x1 - 0.5 * num / den
            # convex: the parabola's second derivative sign, from divided differences
            curv = ((y2 - y1) / (x2 - x1) - (y1 - y0) / (x1 - x0)) / (x2 - x0)
        ok = (
            ~at_edge
            & np.isfinite(y0)
            & np.isfinite(y2)
            & np.isfinite(vertex)
            & (curv > 0)
            & (den != 0)
        )
        xmin = np.where(ok, np.clip(vertex, x0, x2), xmin)
    xmin = np.where(usable, xmin, np.nan)
    idx = np.where(usable, idx, -1)
    return xmin, idx, at_edge & usable
