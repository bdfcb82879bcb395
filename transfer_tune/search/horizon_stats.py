"""How early does the ranking of configurations settle? The training horizon of a search.

From per-epoch validation losses already stored (a landscape sweep or a proxy study; read by
:func:`transfer_tune.report.read_curves`; nothing is retrained), for every epoch e:

* **Spearman** and **Kendall** rank correlation (``scipy.stats``) across configurations
  between the loss after e epochs and the final loss;
* **regret**: the final loss of the configuration that is best after e epochs, relative to
  the best final loss, ``L_final[argmin L_e] / min L_final - 1`` (0 when the early leader is
  the final winner).

Epochs count epochs *trained* (1 = after the first epoch); Optuna's step ``s`` of
transfer-tune's objectives is epoch ``s + 1``. A configuration counts when it reached the final
epoch (the largest one reported): pruned and diverged trials have no final loss and are
excluded, and so are complete trials stopped short (e.g. by a horizon); both are counted in the
result.

**The horizon rule** (:func:`choose_horizon`, used by ``tune(..., horizon="auto")``): the
shortest e such that at e *and every later epoch* the Spearman correlation is at least
``min_correlation`` (0.9) and the regret at most ``max_regret`` (2 %). Requiring the later
epochs too means a lucky early epoch followed by a reshuffle does not count as settled. When
no epoch before the last qualifies, the horizon is the final epoch (no saving).

Compute only: no storage, no figures (:mod:`transfer_tune.report.horizon_figure` draws).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from transfer_tune.errors import TransferTuneError

__all__ = [
    "MAX_REGRET",
    "MIN_CORRELATION",
    "CurveSet",
    "EpochStat",
    "HorizonResult",
    "analyse",
    "analyse_all",
    "choose_horizon",
    "markdown_table",
]

#: Defaults of the horizon rule.
MIN_CORRELATION = 0.9
MAX_REGRET = 0.02


@dataclass(frozen=True)
class CurveSet:
    """Per-epoch losses of the configurations of one study (plain data, no storage).

    Attributes
    ----------
    name : str
        The study (or any label).
    curves : mapping
        Configuration label -> ``{epochs trained: loss}``; every curve that reached the final
        epoch counts.
    parametrization : str or None
        ``"mup"`` / ``"sp"`` (sweeps) or ``None``.
    modes : int or None
        K of the study's model.
    n_pruned : int
        Trials left out before the analysis because they have no final loss (pruned or
        diverged), as the reader counted them.
    """

    name: str
    curves: Mapping[Any, Mapping[int, float]]
    parametrization: str | None = None
    modes: int | None = None
    n_pruned: int = 0


@dataclass(frozen=True)
class EpochStat:
    """The statistics of one epoch."""

    epoch: int
    spearman: float
    kendall: float
    regret: float
    leader: str

    def meets(self, min_correlation: float, max_regret: float) -> bool:
        """Both thresholds of the horizon rule hold at this epoch."""
        return (
            math.isfinite(self.spearman)
            and self.spearman >= min_correlation
            and self.regret <= max_regret
        )


@dataclass(frozen=True)
class HorizonResult:
    """The horizon analysis of one :class:`CurveSet`.

    Attributes
    ----------
    name, parametrization, modes :
        As in the curve set.
    final_epoch : int
        The last epoch (the one whose loss is "final").
    n_configs : int
        Configurations that reached it (those the statistics are over).
    n_pruned, n_short : int
        Excluded: no final loss (pruned, diverged), and stopped before the final epoch.
    stats : tuple of EpochStat
        One per epoch 1 .. final_epoch with a loss for every counted configuration.
    horizon : int
        The rule's choice (``final_epoch`` when nothing earlier qualifies).
    min_correlation, max_regret : float
        The thresholds used.
    """

    name: str
    parametrization: str | None
    modes: int | None
    final_epoch: int
    n_configs: int
    n_pruned: int
    n_short: int
    stats: tuple[EpochStat, ...]
    horizon: int
    min_correlation: float = MIN_CORRELATION
    max_regret: float = MAX_REGRET

    @property
    def epochs(self) -> list[int]:
        """The epochs analysed."""
        return [s.epoch for s in self.stats]

    @property
    def fraction(self) -> float:
        """``horizon / final_epoch``: the share of the epochs a trial needs."""
        return self.horizon / self.final_epoch

    def at(self, epoch: int) -> EpochStat:
        """The statistics of ``epoch``."""
        for s in self.stats:
            if s.epoch == epoch:
                return s
        raise TransferTuneError(f"epoch {epoch} is not in the analysis (epochs {self.epochs})")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready; NaN correlations become ``None``)."""
        data = asdict(self)
        for s in data["stats"]:
            for key in ("spearman", "kendall"):
                if not math.isfinite(s[key]):
                    s[key] = None
        return data

    def summary(self) -> str:
        """One line: the horizon and what was excluded."""
        return (
            f"{self.name}: horizon {self.horizon}/{self.final_epoch} epochs "
            f"(Spearman >= {self.min_correlation:g} and regret <= {100 * self.max_regret:g} % "
            f"from then on) over {self.n_configs} configurations; excluded: {self.n_pruned} "
            f"pruned or diverged, {self.n_short} stopped before epoch {self.final_epoch}"
        )


def _rank_stats(early: np.ndarray, final: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    if np.ptp(early) == 0 or np.ptp(final) == 0:  # a constant column has no ranking
        return math.nan, math.nan
    rho = stats.spearmanr(early, final).statistic
    tau = stats.kendalltau(early, final).statistic
    return float(rho), float(tau)


def analyse(
    curves: CurveSet,
    min_correlation: float = MIN_CORRELATION,
    max_regret: float = MAX_REGRET,
) -> HorizonResult:
    """Rank correlation and regret of every epoch against the final one, and the horizon.

    Raises
    ------
    TransferTuneError
        When no trial reported per-epoch values, when every trial was pruned or diverged,
        or when fewer than two configurations reached the final epoch (a ranking needs two).
    """
    if not 0 < min_correlation <= 1:
        raise TransferTuneError(f"min_correlation must be in (0, 1], got {min_correlation!r}")
    if not max_regret >= 0:
        raise TransferTuneError(f"max_regret must be >= 0, got {max_regret!r}")
    reported = {
        str(label): {int(e): float(v) for e, v in curve.items()}
        for label, curve in curves.curves.items()
        if curve
    }
    where = f"{curves.name!r}"
    if not reported:
        if curves.n_pruned:
            raise TransferTuneError(
                f"every trial of {where} was pruned or diverged ({curves.n_pruned}); there "
                "is no final loss to rank against: run trials without a pruner, or lower the "
                "learning-rate range if they diverge"
            )
        raise TransferTuneError(
            f"{where} holds no per-epoch (intermediate) values; the horizon needs studies "
            "whose trials report their validation loss every epoch (transfer-tune's proxy "
            "studies and landscape sweeps do)"
        )
    final_epoch = max(max(c) for c in reported.values())
    full = {k: c for k, c in reported.items() if final_epoch in c and math.isfinite(c[final_epoch])}
    n_short = len(reported) - len(full)
    if len(full) < 2:
        raise TransferTuneError(
            f"{where} has {len(full)} configuration(s) that reached the final epoch "
            f"{final_epoch} ({curves.n_pruned} pruned or diverged, {n_short} stopped earlier); "
            "rank correlations need at least two (run more trials, without pruning)"
        )
    labels = sorted(full)
    final = np.array([full[k][final_epoch] for k in labels])
    best_final = float(final.min())
    stats: list[EpochStat] = []
    for epoch in range(1, final_epoch + 1):
        if not all(epoch in full[k] and math.isfinite(full[k][epoch]) for k in labels):
            continue
        early = np.array([full[k][epoch] for k in labels])
        rho, tau = _rank_stats(early, final)
        lead = int(np.argmin(early))
        regret = float(final[lead] / best_final - 1) if best_final > 0 else float(final[lead])
        stats.append(EpochStat(epoch, rho, tau, max(regret, 0.0), labels[lead]))
    return HorizonResult(
        name=curves.name,
        parametrization=curves.parametrization,
        modes=curves.modes,
        final_epoch=final_epoch,
        n_configs=len(labels),
        n_pruned=curves.n_pruned,
        n_short=n_short,
        stats=tuple(stats),
        horizon=choose_horizon(stats, final_epoch, min_correlation, max_regret),
        min_correlation=min_correlation,
        max_regret=max_regret,
    )


def choose_horizon(
    stats: Sequence[EpochStat],
    final_epoch: int,
    min_correlation: float = MIN_CORRELATION,
    max_regret: float = MAX_REGRET,
) -> int:
    """The shortest epoch from which every later epoch meets both thresholds (see above)."""
    horizon = final_epoch
    for s in sorted(stats, key=lambda s: s.epoch, reverse=True):
        if s.epoch == final_epoch or s.meets(min_correlation, max_regret):
            horizon = s.epoch
        else:
            break
    return horizon


def analyse_all(
    sets: Sequence[CurveSet],
    min_correlation: float = MIN_CORRELATION,
    max_regret: float = MAX_REGRET,
) -> list[HorizonResult]:
    """:func:`analyse` of every curve set (a sweep's studies), in order."""
    if not sets:
        raise TransferTuneError("no studies to analyse")
    return [analyse(s, min_correlation, max_regret) for s in sets]


def _cell(x: float, pct: bool = False) -> str:
    if not math.isfinite(x):
        return "nan"
    return f"{100 * x:.1f} %" if pct else f"{x:.3f}"


def markdown_table(results: Sequence[HorizonResult]) -> str:
    """One row per (study, epoch): correlations and regret; ``*`` marks each horizon."""
    lines = [
        "| study | epoch | configs | Spearman | Kendall | regret | horizon |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for s in r.stats:
            lines.append(
                f"| {r.name} | {s.epoch} | {r.n_configs} | {_cell(s.spearman)} | "
                f"{_cell(s.kendall)} | {_cell(s.regret, pct=True)} | "
                f"{'*' if s.epoch == r.horizon else ''} |"
            )
    return "\n".join(lines)
