"""Where is the loss minimum, and does it move with K? The optimum analysis of a sweep.

For every (parametrization, K) of a :class:`~transfer_tune.analysis.landscape.SweepResult`
(or of :class:`~transfer_tune.analysis.curves.Curves`):

1. **per seed**, the grid minimiser of that seed's curve, refined below the grid spacing by a
   parabola through the minimum and its two neighbours in ``log(loss)`` against the scale
   (``log2(value)``; ``log2(1 - value)`` for the Adam betas):
   :func:`~transfer_tune.analysis.curves.refine_minimum`;
2. the **optimum**: the mean of the per-seed positions, with an interval over seeds
   (:mod:`transfer_tune.analysis.stats`; Student-t by default, its name in every table);
3. the **shift** from the reference K (K_base): per seed, the seed's position at K minus the
   same seed's position at K_base (paired), then the interval of those differences;
4. a **verdict per K** and one per parametrization (:func:`classify_shift`), and, when µP
   and SP were both swept, the **paired SP - µP gap** per K beside the rule's own factor on
   R's rate, log2 sqrt(ln K_base / ln K) (read from the parametrization table).

The seed-averaged curve (any diverged seed makes its grid value ``inf``) still gives
``grid_value`` and ``loss``, the values a user would pick from the mean landscape.

Verdict rules, with ``h`` the grid step and ``[lo, hi]`` the interval of a shift:

* ``"inconclusive"`` when fewer than two seeds give a shift, or when the optimum of K or of
  K_base sits at a grid edge for the seed average or for any seed (the true optimum may lie
  outside the grid, so the measured shift is not the shift);
* else ``"drifts"`` when the interval lies wholly beyond one grid step (``lo > h`` or
  ``hi < -h``), whatever its width;
* else ``"transfers"`` when the interval lies within one grid step (``-h <= lo`` and
  ``hi <= h``);
* else ``"inconclusive"``: the interval straddles ``+h`` or ``-h`` (the data cannot tell).

"Inconclusive" never means "stayed": only "transfers" says the optimum stays within one step.
Intervals are at ``confidence``; a caller that reads many verdicts together passes a family
level (:func:`~transfer_tune.analysis.stats.family_level`) and Holm-corrects the shifts'
p-values (``shift_p``, two-sided t test of a zero shift) over the family.

A parametrization **drifts** when any K drifts, **transfers** only when every K transfers,
and is **inconclusive** otherwise: nothing says "transfers" by default.

Two-parameter sweeps are analysed along one parameter (``fixed=`` or the profile; see
:func:`~transfer_tune.analysis.curves.landscape_curves`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from transfer_tune.analysis.curves import (
    Curves,
    landscape_curves,
    refine_minimum,
    scale_for,
    seed_mean,
)
from transfer_tune.analysis.stats import (
    METHOD_LABELS,
    METHODS,
    Interval,
    bootstrap_interval,
    interval,
    t_pvalue,
)
from transfer_tune.core.parametrization import display_name, get_parametrization
from transfer_tune.errors import TransferTuneError

__all__ = [
    "Gap",
    "Optimum",
    "OptimumAnalysis",
    "Verdict",
    "analyze_optimum",
    "classify_shift",
    "rule_shift",
]

VERDICTS = ("transfers", "drifts", "inconclusive")


def rule_shift(modes: int, base_modes: int) -> float:
    """log2 of µP's factor on R's rate at ``modes`` (the table's; d cancels in the ratio)."""
    return math.log2(
        get_parametrization("mup", base_modes=base_modes).spectral_multiplier(modes, 1)
    )


def classify_shift(shift: Interval, grid_step: float, at_edge: bool) -> tuple[str, str]:
    """Verdict and reason for one K's shift (the rules of the module docstring)."""
    h = grid_step * (1 + 1e-9)
    if shift.n < 2 or not math.isfinite(shift.low) or not math.isfinite(grid_step):
        return "inconclusive", "fewer than two seeds give a shift"
    if at_edge:
        return "inconclusive", "optimum at a grid edge"
    if shift.low > h or shift.high < -h:
        return "drifts", "interval beyond one grid step"
    if shift.low >= -h and shift.high <= h:
        return "transfers", "interval within one grid step"
    return "inconclusive", f"interval straddles ±one grid step (width {shift.width:.2f})"


@dataclass(frozen=True)
class Optimum:
    """The loss-minimising value of one (parametrization, K).

    Attributes
    ----------
    value : float
        The optimum: the scale's inverse of the mean per-seed refined position.
    grid_value : float
        The grid value with the lowest seed-averaged loss.
    low, high : float
        Interval of ``value`` over seeds (``method``).
    position : float
        Mean per-seed position on the analysis scale (e.g. ``log2(value)``).
    shift : float
        Mean per-seed (paired) shift of the position from the reference K, scale units.
    shift_low, shift_high : float
        Interval of ``shift``.
    loss : float
        Seed-averaged loss at the grid minimum.
    at_edge : bool
        The seed-averaged minimum or any seed's minimum is at an end of the grid.
    n_seeds, n_diverged, n_edge_seeds : int
        Seeds, diverged runs on the curve, seeds whose minimum is at a grid edge.
    method : str
        The interval method (:data:`~transfer_tune.analysis.stats.METHODS`).
    seed_positions, seed_shifts : list of float
        Per-seed refined positions and paired shifts (NaN where a seed has none).
    shift_p : float
        Two-sided p of the paired t test of a zero shift (NaN for the reference K).
    verdict, reason : str
        Per-K verdict (``"reference"`` for the reference K) and why.
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
    n_edge_seeds: int = 0
    method: str = "student-t"
    seed_positions: list[float] = field(default_factory=list)
    seed_shifts: list[float] = field(default_factory=list)
    shift_p: float = math.nan
    verdict: str = "inconclusive"
    reason: str = ""


@dataclass(frozen=True)
class Gap:
    """Paired SP - µP difference of the optimum position at one K, beside the rule's shift."""

    modes: int
    interval: Interval
    rule: float  # log2 of µP's factor on R's rate at this K
    p: float = math.nan  # two-sided p of the paired t test of a zero gap

    def to_dict(self) -> dict:
        """Plain data."""
        return {"modes": self.modes, "rule": self.rule, "p": self.p, **self.interval.to_dict()}


@dataclass(frozen=True)
class Verdict:
    """Whether the optimum of one parametrization stays within one grid step across K."""

    parametrization: str
    verdict: str  # "transfers", "drifts" or "inconclusive"
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
    """Optima of every (parametrization, K), their shifts, gaps and verdicts."""

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
    method: str = "student-t"
    gaps: list[Gap] = field(default_factory=list)

    @property
    def method_label(self) -> str:
        """E.g. ``"95% Student-t over 5 seeds"``."""
        n = max((o.n_seeds for o in self.optima), default=0)
        return f"{100 * self.confidence:.4g}% {METHOD_LABELS[self.method]} over {n} seeds"

    def optimum(self, parametrization: str, modes: int) -> Optimum:
        """The optimum of one (parametrization, K)."""
        for o in self.optima:
            if o.parametrization == parametrization and o.modes == modes:
                return o
        raise TransferTuneError(f"no optimum for {parametrization} at K = {modes}")

    def gap(self, modes: int) -> Gap | None:
        """The SP - µP gap at K (``None`` when not both were swept at K)."""
        return next((g for g in self.gaps if g.modes == modes), None)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per (parametrization, K)."""
        return [asdict(o) for o in self.optima]

    def lines(self) -> list[str]:
        """The one-line verdicts, one per parametrization."""
        return [v.line for v in self.verdicts.values()]

    def markdown(self) -> str:
        """A Markdown table of the optima and the verdicts (for dashboard notes)."""
        head = (
            f"| parametrization | K | optimum {self.param} | interval | "
            f"shift vs K={self.reference_modes} ({self.scale}) [interval] | verdict | "
            f"{self.loss} |\n|---|---|---|---|---|---|---|\n"
        )
        body = ""
        for o in self.optima:
            edge = " (grid edge)" if o.at_edge else ""
            body += (
                f"| {display_name(o.parametrization)} | {o.modes} | "
                f"{_fmt(o.value)}{edge} | {_fmt(o.low)} .. {_fmt(o.high)} | "
                f"{o.shift:+.2f} [{o.shift_low:+.2f}, {o.shift_high:+.2f}] | {o.verdict} | "
                f"{_fmt(o.loss)} |\n"
            )
        verdicts = "\n".join(f"- {line}" for line in self.lines())
        note = f"\n\n({self.note})" if self.note else ""
        return f"Intervals: {self.method_label}.\n\n" + head + body + "\n" + verdicts + note

    def __str__(self) -> str:
        return "\n".join(self.lines())


def analyze_optimum(
    data: Any,
    param: str | None = None,
    loss: str = "test_loss",
    fixed: Mapping[str, float] | None = None,
    *,
    method: str = "student-t",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    reference_modes: int | None = None,
) -> OptimumAnalysis:
    """Optimum, interval over seeds, paired shift vs K_base and verdicts for every curve.

    Parameters
    ----------
    data : SweepResult or Curves
        The sweep (or curves built by :func:`landscape_curves` or by hand).
    param, loss, fixed
        See :func:`landscape_curves` (ignored for :class:`Curves`).
    method : {"student-t", "sign", "bootstrap"}
        Interval over the per-seed values (:mod:`transfer_tune.analysis.stats`).
    n_boot, seed : int
        Resamples and seed of the bootstrap (``method="bootstrap"`` only).
    confidence : float
        Coverage of the intervals.
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
    if method not in METHODS:
        raise TransferTuneError(f"unknown interval method {method!r}; choose one of {METHODS}")
    scale = scale_for(curves.param)
    x = scale.forward(curves.values)
    order = np.argsort(x)  # for betas log2(1 - beta) decreases with beta
    xs = x[order]
    grid_step = float(np.median(np.abs(np.diff(xs)))) if x.size > 1 else math.nan
    all_modes = curves.modes()
    if reference_modes is None:
        reference_modes = curves.base_modes if curves.base_modes in all_modes else min(all_modes)

    def ci(values: np.ndarray) -> Interval:
        if method == "bootstrap":
            return bootstrap_interval(values, confidence, n_boot=n_boot, seed=seed)
        return interval(values, method, confidence)

    optima: list[Optimum] = []
    verdicts: dict[str, Verdict] = {}
    per_seed: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    for kind in curves.parametrizations:
        modes = curves.modes(kind)
        ref = reference_modes if reference_modes in modes else modes[0]
        for k in modes:
            arr = curves.losses[(kind, k)][order]  # (n, S)
            pos, _, edge = refine_minimum(xs, arr.T)  # per seed
            per_seed[(kind, k)] = (np.asarray(pos, float), np.asarray(edge, bool))
        ref_pos, ref_edge = per_seed[(kind, ref)]
        ref_mean_edge = bool(refine_minimum(xs, seed_mean(curves.losses[(kind, ref)][order]))[2])
        kind_optima = []
        for k in modes:
            arr = curves.losses[(kind, k)][order]
            mean = seed_mean(arr)
            _, idx, mean_edge = refine_minimum(xs, mean)
            pos, edge = per_seed[(kind, k)]
            n_edge = int(edge.sum())
            at_edge = bool(mean_edge) or n_edge > 0
            where = ci(pos)
            n = min(pos.size, ref_pos.size)
            shifts = pos[:n] - ref_pos[:n]
            shift = ci(shifts)
            if k == ref:
                verdict, reason = "reference", ""
            else:
                ref_at_edge = ref_mean_edge or bool(ref_edge.any())
                verdict, reason = classify_shift(shift, grid_step, at_edge or ref_at_edge)
            lo_v, hi_v = sorted([float(scale.inverse(where.low)), float(scale.inverse(where.high))])
            o = Optimum(
                parametrization=kind,
                modes=k,
                param=curves.param,
                value=float(scale.inverse(np.asarray(where.estimate))),
                grid_value=float(scale.inverse(np.asarray(xs[idx]))) if idx >= 0 else math.nan,
                low=lo_v,
                high=hi_v,
                position=where.estimate,
                shift=0.0 if k == ref else shift.estimate,
                shift_low=0.0 if k == ref else shift.low,
                shift_high=0.0 if k == ref else shift.high,
                loss=float(mean[idx]) if idx >= 0 else math.nan,
                at_edge=at_edge,
                n_seeds=int(arr.shape[1]),
                n_diverged=int(np.isinf(arr).sum()),
                n_edge_seeds=n_edge,
                method=method,
                seed_positions=[float(p) for p in pos],
                seed_shifts=[float(s) for s in shifts],
                shift_p=math.nan if k == ref else t_pvalue(shifts),
                verdict=verdict,
                reason=reason,
            )
            kind_optima.append(o)
        optima.extend(kind_optima)
        verdicts[kind] = _verdict(kind, kind_optima, ref, grid_step, curves.param, scale.label)
    gaps = []
    if {"mup", "sp"} <= set(curves.parametrizations) and curves.param in ("lr", "spectral_lr"):
        for k in sorted(set(curves.modes("mup")) & set(curves.modes("sp"))):
            sp, mup = per_seed[("sp", k)][0], per_seed[("mup", k)][0]
            n = min(sp.size, mup.size)
            diff = sp[:n] - mup[:n]
            gaps.append(Gap(k, ci(diff), rule_shift(k, curves.base_modes), t_pvalue(diff)))
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
        method=method,
        gaps=gaps,
    )


def _verdict(
    kind: str, optima: list[Optimum], ref: int, grid_step: float, param: str, scale: str
) -> Verdict:
    name = display_name(kind)
    others = [o for o in optima if o.modes != ref]
    values = ", ".join(f"K={o.modes}: {_fmt(o.value)}" for o in optima)
    edges = [o.modes for o in optima if o.at_edge]
    edge_note = (
        f"; optimum at the grid edge for K = {', '.join(map(str, edges))} (widen the grid)"
        if edges
        else ""
    )
    if not others:
        line = f"{name}: inconclusive — no K other than K = {ref} to compare ({values})"
        return Verdict(kind, "inconclusive", math.nan, None, grid_step, line)
    finite = [o for o in others if math.isfinite(o.shift)]
    worst = max(finite, key=lambda o: abs(o.shift)) if finite else others[0]
    per_k = "; ".join(
        f"K={o.modes}: {o.shift:+.2f} [{o.shift_low:+.2f}, {o.shift_high:+.2f}] {o.verdict}"
        + (f" ({o.reason})" if o.verdict == "inconclusive" else "")
        for o in others
    )
    kinds = {o.verdict for o in others}
    step = f"one grid step = {grid_step:.2f} {scale}"
    if "drifts" in kinds:
        verdict = "drifts"
        worst = max((o for o in others if o.verdict == "drifts"), key=lambda o: abs(o.shift))
        ratio = f" (x{2.0**worst.shift:.2f})" if scale == "log2" else ""
        head = (
            f"the optimum {param} moves {worst.shift:+.2f} {scale}{ratio} from K={ref} to "
            f"K={worst.modes} [{worst.shift_low:+.2f}, {worst.shift_high:+.2f}], beyond one grid "
            f"step ({grid_step:.2f})"
        )
    elif kinds == {"transfers"}:
        verdict = "transfers"
        head = f"the optimum {param} stays within one grid step of its K={ref} value ({step})"
    else:
        verdict = "inconclusive"
        head = f"the data cannot tell whether the optimum {param} moves ({step})"
    line = f"{name}: {verdict} — {head}; shift from K={ref} per K: {per_k}{edge_note}"
    return Verdict(kind, verdict, worst.shift, worst.modes, grid_step, line)
