"""Where is the loss minimum, and does it move with K? The optimum analysis of a sweep.

For every (parametrization, K) of a :class:`~transfer_tune.analysis.landscape.SweepResult`:

1. the **seed-averaged curve**: the mean loss over seeds at every grid value (a grid value
   where any seed diverged counts as ``inf``: it is not a safe choice);
2. the **grid minimiser**, refined below the grid spacing by a parabola through the minimum
   and its two neighbours, fitted to ``log(loss)`` against the value on the sweep's scale
   (``log2(value)``; ``log2(1 - value)`` for the Adam betas) and clamped to the bracket of
   the two neighbours. At the edge of the grid no refinement is possible and the optimum is
   flagged ``at_edge`` (widen the grid);
3. a **bootstrap interval over seeds**: seeds are resampled with replacement (the same
   resample for every K of a parametrization, so shifts are paired) and steps 1-2 repeated;
4. the **shift** of the optimum relative to K_base, in units of the scale (log2: +1 means a
   twice larger value);
5. a **verdict** per parametrization: ``"transfers"`` when every shift is within one grid
   step (DESIGN.md §2), ``"drifts"`` otherwise, as one line with the numbers.

Two-parameter sweeps are analysed along one parameter: either at fixed values of the other
(``fixed={"batch_size": 16}``) or on the profile (for each value of ``param``, the other at
its best seed-averaged value).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from transfer_tune.core.parametrization import display_name
from transfer_tune.errors import TransferTuneError

__all__ = [
    "Curves",
    "Optimum",
    "OptimumAnalysis",
    "Verdict",
    "analyze_optimum",
    "landscape_curves",
    "refine_minimum",
    "scale_for",
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


def _seed_mean(losses: np.ndarray) -> np.ndarray:
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
        return _seed_mean(self.losses[(parametrization, modes)])


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
                    mean = _seed_mean(arr)  # (n_param, n_other)
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


@dataclass(frozen=True)
class Optimum:
    """The loss-minimising value of one (parametrization, K).

    Attributes
    ----------
    value : float
        Refined optimum (NaN if every grid value diverged).
    grid_value : float
        The grid value with the lowest seed-averaged loss.
    low, high : float
        Bootstrap interval of ``value`` over seeds.
    position : float
        ``value`` on the analysis scale (e.g. ``log2(value)``).
    shift : float
        ``position`` minus that of the reference K (K_base), in scale units.
    shift_low, shift_high : float
        Bootstrap interval of ``shift`` (paired resampling of seeds).
    loss : float
        Seed-averaged loss at the grid minimum.
    at_edge : bool
        The grid minimum is at an end of the grid (the true optimum may lie outside).
    n_seeds, n_diverged : int
        Seeds per grid value, and diverged runs on the curve.
    """

    parametrization: str
    modes: int
    param: str
    value: float
    grid_value: float
    low: float
    high: float
    position: float
    shift: float
    shift_low: float
    shift_high: float
    loss: float
    at_edge: bool
    n_seeds: int
    n_diverged: int


@dataclass(frozen=True)
class Verdict:
    """Whether the optimum of one parametrization stays within one grid step across K."""

    parametrization: str
    verdict: str  # "transfers", "drifts" or "undetermined"
    max_shift: float  # the shift of largest magnitude (signed), scale units
    worst_modes: int | None
    grid_step: float
    line: str

    @property
    def transfers(self) -> bool:
        """The verdict is ``"transfers"``."""
        return self.verdict == "transfers"


def _fmt(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.3g}"


@dataclass
class OptimumAnalysis:
    """Optima of every (parametrization, K), their shifts, and a verdict per parametrization."""

    param: str
    loss: str
    scale: str
    grid_step: float
    base_modes: int
    reference_modes: int
    confidence: float
    n_boot: int
    optima: list[Optimum]
    verdicts: dict[str, Verdict]
    note: str = ""

    def optimum(self, parametrization: str, modes: int) -> Optimum:
        """The optimum of one (parametrization, K)."""
        for o in self.optima:
            if o.parametrization == parametrization and o.modes == modes:
                return o
        raise TransferTuneError(f"no optimum for {parametrization} at K = {modes}")

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per (parametrization, K)."""
        return [asdict(o) for o in self.optima]

    def lines(self) -> list[str]:
        """The one-line verdicts, one per parametrization."""
        return [v.line for v in self.verdicts.values()]

    def markdown(self) -> str:
        """A Markdown table of the optima and the verdicts (for dashboard notes)."""
        pct = round(100 * self.confidence)
        head = (
            f"| parametrization | K | optimum {self.param} | {pct}% interval | "
            f"shift vs K={self.reference_modes} ({self.scale}) | {self.loss} |\n"
            "|---|---|---|---|---|---|\n"
        )
        body = ""
        for o in self.optima:
            edge = " (grid edge)" if o.at_edge else ""
            body += (
                f"| {display_name(o.parametrization)} | {o.modes} | "
                f"{_fmt(o.value)}{edge} | {_fmt(o.low)} .. {_fmt(o.high)} | "
                f"{o.shift:+.2f} [{o.shift_low:+.2f}, {o.shift_high:+.2f}] | {_fmt(o.loss)} |\n"
            )
        verdicts = "\n".join(f"- {line}" for line in self.lines())
        note = f"\n\n({self.note})" if self.note else ""
        return head + body + "\n" + verdicts + note

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = 100 * (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low = np.nanpercentile(samples, alpha, axis=0)
        high = np.nanpercentile(samples, 100 - alpha, axis=0)
    return low, high


def analyze_optimum(
    data: Any,
    param: str | None = None,
    loss: str = "test_loss",
    fixed: Mapping[str, float] | None = None,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    reference_modes: int | None = None,
) -> OptimumAnalysis:
    """Optimum, bootstrap interval, shift vs K_base and verdict for every curve of a sweep.

    Parameters
    ----------
    data : SweepResult or Curves
        The sweep (or curves built by :func:`landscape_curves` or by hand).
    param, loss, fixed
        See :func:`landscape_curves` (ignored for :class:`Curves`).
    n_boot : int
        Bootstrap resamples of the seeds.
    confidence : float
        Coverage of the bootstrap intervals.
    seed : int
        Seed of the bootstrap.
    reference_modes : int, optional
        The K shifts are measured from; K_base when it was swept, else the smallest K.

    Returns
    -------
    OptimumAnalysis
    """
    curves = data if isinstance(data, Curves) else landscape_curves(data, param, loss, fixed)
    if not 0 < confidence < 1:
        raise TransferTuneError(f"confidence must be in (0, 1), got {confidence}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise TransferTuneError(f"n_boot must be a positive integer, got {n_boot!r}")
    scale = scale_for(curves.param)
    x = scale.forward(curves.values)
    order = np.argsort(x)  # for betas log2(1 - beta) decreases with beta
    x_sorted = x[order]
    grid_step = float(np.median(np.abs(np.diff(x_sorted)))) if x.size > 1 else math.nan
    all_modes = curves.modes()
    if reference_modes is None:
        reference_modes = curves.base_modes if curves.base_modes in all_modes else min(all_modes)
    rng = np.random.default_rng(seed)
    optima: list[Optimum] = []
    verdicts: dict[str, Verdict] = {}
    for kind in curves.parametrizations:
        modes = curves.modes(kind)
        n_seeds = max(curves.losses[(kind, k)].shape[1] for k in modes)
        picks = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
        est: dict[int, tuple[float, float, bool, float, int]] = {}
        boots: dict[int, np.ndarray] = {}
        for k in modes:
            arr = curves.losses[(kind, k)][order]  # (n, S)
            mean = _seed_mean(arr)
            pos, idx, edge = refine_minimum(x_sorted, mean)
            loss_at = float(mean[idx]) if idx >= 0 else math.nan
            diverged = int(np.isinf(arr).sum())
            grid_pos = float(x_sorted[idx]) if idx >= 0 else math.nan
            est[k] = (float(pos), loss_at, bool(edge), grid_pos, diverged)
            cols = picks if arr.shape[1] == n_seeds else picks % arr.shape[1]
            boots[k] = refine_minimum(x_sorted, _seed_mean(arr[:, cols]).T)[0]  # (B,)
        ref = reference_modes if reference_modes in est else modes[0]
        for k in modes:
            pos, loss_at, edge, grid_pos, diverged = est[k]
            low, high = _percentiles(boots[k], confidence)
            shift = pos - est[ref][0]
            slow, shigh = _percentiles(boots[k] - boots[ref], confidence)
            value = float(scale.inverse(np.asarray(pos)))
            lo_v, hi_v = sorted([float(scale.inverse(low)), float(scale.inverse(high))])
            optima.append(
                Optimum(
                    parametrization=kind,
                    modes=k,
                    param=curves.param,
                    value=value,
                    grid_value=float(scale.inverse(np.asarray(grid_pos))),
                    low=lo_v,
                    high=hi_v,
                    position=pos,
                    shift=float(shift),
                    shift_low=float(slow),
                    shift_high=float(shigh),
                    loss=loss_at,
                    at_edge=edge,
                    n_seeds=n_seeds,
                    n_diverged=diverged,
                )
            )
        verdicts[kind] = _verdict(
            kind,
            [o for o in optima if o.parametrization == kind],
            ref,
            grid_step,
            curves.param,
            scale.label,
            confidence,
        )
    return OptimumAnalysis(
        param=curves.param,
        loss=curves.loss,
        scale=scale.label,
        grid_step=grid_step,
        base_modes=curves.base_modes,
        reference_modes=reference_modes,
        confidence=confidence,
        n_boot=n_boot,
        optima=optima,
        verdicts=verdicts,
        note=curves.note,
    )


def _verdict(
    kind: str,
    optima: list[Optimum],
    ref: int,
    grid_step: float,
    param: str,
    scale: str,
    confidence: float,
) -> Verdict:
    name = display_name(kind)
    others = [o for o in optima if o.modes != ref and math.isfinite(o.shift)]
    base = next((o for o in optima if o.modes == ref), None)
    values = ", ".join(f"K={o.modes}: {_fmt(o.value)}" for o in optima)
    edges = [o.modes for o in optima if o.at_edge]
    edge_note = (
        f"; optimum at the grid edge for K = {', '.join(map(str, edges))} (widen the grid)"
        if edges
        else ""
    )
    if base is None or not math.isfinite(base.value) or not others or not math.isfinite(grid_step):
        line = (
            f"{name}: undetermined — no usable optimum at K = {ref} or no other K to compare "
            f"({values}){edge_note}"
        )
        return Verdict(kind, "undetermined", math.nan, None, grid_step, line)
    worst = max(others, key=lambda o: abs(o.shift))
    tolerance = grid_step * (1 + 1e-9)
    pct = round(100 * confidence)
    ratio = 2.0**worst.shift if scale == "log2" else None
    ratio_text = f" (x{ratio:.2f})" if ratio is not None else ""
    interval = (
        f"[{pct}% interval {worst.shift_low:+.2f} .. {worst.shift_high:+.2f}]"
        if worst.n_seeds > 1
        else "(one seed: no interval)"
    )
    if abs(worst.shift) <= tolerance:
        line = (
            f"{name}: transfers — the optimum {param} stays within {abs(worst.shift):.2f} "
            f"{scale} of its K={ref} value (largest shift {worst.shift:+.2f}{ratio_text} at "
            f"K={worst.modes} {interval}; one grid step = {grid_step:.2f}): {values}{edge_note}"
        )
        verdict = "transfers"
    else:
        beyond = [o.modes for o in others if abs(o.shift) > tolerance]
        line = (
            f"{name}: drifts — the optimum {param} moves {worst.shift:+.2f} {scale}"
            f"{ratio_text} from K={ref} to K={worst.modes} {interval}, more than one grid step "
            f"({grid_step:.2f}) at K = {', '.join(map(str, beyond))}: {values}{edge_note}"
        )
        verdict = "drifts"
    return Verdict(kind, verdict, worst.shift, worst.modes, grid_step, line)
