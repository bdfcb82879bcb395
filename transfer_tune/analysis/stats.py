"""Intervals over seeds that are what they say, each carrying the name of its method.

A landscape is trained with a handful of seeds (5 to 10), and every interval the project
prints is an interval over those seeds. Three methods, named in every table:

``"student-t"`` (the default)
    The t interval of the mean, ``mean ± t_{n-1, (1+c)/2} * sd / sqrt(n)``. Exact when the
    per-seed values are normal, and robust to moderate non-normality at n >= 5; valid for
    paired differences (compute the per-seed difference first, then the interval).
``"sign"``
    The distribution-free interval of the median from order statistics: ``[x_(j), x_(n+1-j)]``
    with the largest ``j`` whose binomial coverage ``1 - 2 P(Bin(n, 1/2) < j)`` is at least
    ``c``; when even ``[min, max]`` covers less (n < 6 at 95 %), ``[min, max]`` is returned
    and :attr:`Interval.coverage` says how much it covers (93.75 % at n = 5).
``"bootstrap"``
    The percentile bootstrap. With n seeds there are only ``C(2n-1, n)`` distinct
    resamples (10 at n = 3, 126 at n = 5) and the percentile interval under-covers at small n;
    it warns below :data:`BOOTSTRAP_MIN_N` seeds. Kept for comparison, not as the default.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

from transfer_tune.errors import TransferTuneError

METHODS = ("student-t", "sign", "bootstrap")
#: Fewer seeds than this and the percentile bootstrap warns (its interval under-covers).
BOOTSTRAP_MIN_N = 10
#: How each method is named in tables.
METHOD_LABELS = {
    "student-t": "Student-t",
    "sign": "exact sign (order statistics)",
    "bootstrap": "percentile bootstrap",
}


@dataclass(frozen=True)
class Interval:
    """A point estimate and its interval over ``n`` per-seed values.

    Attributes
    ----------
    estimate : float
        Mean (``"student-t"``, ``"bootstrap"``) or median (``"sign"``) of the finite values.
    low, high : float
        Interval bounds (NaN when fewer than two finite values).
    n : int
        Finite per-seed values used.
    method : str
        One of :data:`METHODS`.
    confidence : float
        The coverage asked for.
    coverage : float
        The coverage the method delivers at this n (``confidence`` for the t interval, the
        exact binomial coverage for ``"sign"``, NaN for the bootstrap: unknown).
    """

    estimate: float
    low: float
    high: float
    n: int
    method: str
    confidence: float
    coverage: float

    @property
    def width(self) -> float:
        """``high - low`` (NaN when undefined)."""
        return self.high - self.low

    def contains(self, value: float) -> bool:
        """``low <= value <= high``."""
        return bool(self.low <= value <= self.high)

    def label(self) -> str:
        """The method as tables name it, with its coverage, e.g. ``"95% Student-t, n=5"``."""
        cov = self.coverage if math.isfinite(self.coverage) else self.confidence
        return f"{100 * cov:.3g}% {METHOD_LABELS[self.method]}, n={self.n}"

    def text(self, digits: int = 2) -> str:
        """``"+0.12 [-0.05, +0.29]"``."""
        f = f"{{:+.{digits}f}}"
        if not math.isfinite(self.low):
            return f.format(self.estimate) + " [n/a]"
        return f"{f.format(self.estimate)} [{f.format(self.low)}, {f.format(self.high)}]"

    def to_dict(self) -> dict:
        """Plain data."""
        return asdict(self)


def _finite(values: np.ndarray | list[float]) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    return v[np.isfinite(v)]


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise TransferTuneError(f"confidence must be in (0, 1), got {confidence}")


def t_interval(values: np.ndarray | list[float], confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean of the finite ``values`` (NaN bounds when n < 2)."""
    _check_confidence(confidence)
    v = _finite(values)
    n = v.size
    mean = float(v.mean()) if n else math.nan
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, "student-t", confidence, confidence)
    half = float(sps.t.ppf((1 + confidence) / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n, "student-t", confidence, confidence)


def sign_coverage(n: int, j: int) -> float:
    """Exact coverage of ``[x_(j), x_(n+1-j)]`` for the median of a continuous distribution."""
    return float(1 - 2 * sps.binom.cdf(j - 1, n, 0.5))


def sign_interval(values: np.ndarray | list[float], confidence: float = 0.95) -> Interval:
    """Distribution-free order-statistic interval of the median (see the module notes)."""
    _check_confidence(confidence)
    v = np.sort(_finite(values))
    n = v.size
    median = float(np.median(v)) if n else math.nan
    if n < 2:
        return Interval(median, math.nan, math.nan, n, "sign", confidence, math.nan)
    j = 1
    while j + 1 <= n // 2 and sign_coverage(n, j + 1) >= confidence:
        j += 1
    return Interval(
        median, float(v[j - 1]), float(v[n - j]), n, "sign", confidence, sign_coverage(n, j)
    )


def distinct_resamples(n: int) -> int:
    """Number of distinct bootstrap resamples of ``n`` values (multisets): C(2n-1, n)."""
    return math.comb(2 * n - 1, n) if n > 0 else 0


def bootstrap_interval(
    values: np.ndarray | list[float],
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap of the mean; warns when there are too few seeds for it."""
    _check_confidence(confidence)
    v = _finite(values)
    n = v.size
    mean = float(v.mean()) if n else math.nan
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, "bootstrap", confidence, math.nan)
    if n < BOOTSTRAP_MIN_N:
        warnings.warn(
            f"percentile bootstrap over {n} values: only {distinct_resamples(n)} distinct "
            f"resamples, and the interval under-covers; use the Student-t interval",
            RuntimeWarning,
            stacklevel=2,
        )
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    alpha = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [alpha, 100 - alpha])
    return Interval(mean, float(low), float(high), n, "bootstrap", confidence, math.nan)


def interval(
    values: np.ndarray | list[float], method: str = "student-t", confidence: float = 0.95
) -> Interval:
    """The interval of ``method`` (one of :data:`METHODS`) over the finite ``values``."""
    if method == "student-t":
        return t_interval(values, confidence)
    if method == "sign":
        return sign_interval(values, confidence)
    if method == "bootstrap":
        return bootstrap_interval(values, confidence)
    raise TransferTuneError(f"unknown interval method {method!r}; choose one of {METHODS}")


# -- many intervals read together -----------------------------------------------------------


def t_pvalue(values: np.ndarray | list[float], null: float = 0.0) -> float:
    """Two-sided p of the one-sample t test of ``mean(values) == null`` (NaN when n < 2 or
    the values do not vary)."""
    v = _finite(values)
    if v.size < 2 or float(v.std(ddof=1)) == 0.0:
        return math.nan
    return float(sps.ttest_1samp(v, null).pvalue)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (NaN stays NaN).

    The i-th smallest of the m finite p-values is multiplied by ``m - i`` (i from 0), the
    running maximum is taken so the adjusted values keep the order, and each is capped at 1.
    Rejecting where the adjusted p is below alpha controls the family-wise error at alpha.
    """
    finite = [(p, i) for i, p in enumerate(pvalues) if math.isfinite(p)]
    m = len(finite)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(finite)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def family_level(confidence: float, m: int) -> float:
    """Bonferroni's per-interval level ``1 - (1 - confidence) / m`` for a family of ``m``.

    An interval at this level excludes 0 whenever Holm's first step rejects, and the ``m``
    intervals cover their means jointly with probability at least ``confidence``.
    """
    _check_confidence(confidence)
    return 1.0 - (1.0 - confidence) / max(int(m), 1)


def family_tests(diffs: dict[str, list[float]], confidence: float = 0.95) -> dict[str, dict]:
    """Paired t tests of a family of per-seed differences against 0, Holm-corrected.

    Parameters
    ----------
    diffs : dict
        Name -> per-seed differences (one family; a family of one is an uncorrected test).
    confidence : float
        Family-wise coverage; alpha is ``1 - confidence``.

    Returns
    -------
    dict
        Name -> ``estimate``, ``low``, ``high`` (Student-t at :func:`family_level`),
        ``level``, ``n``, ``positive`` (seeds above 0), ``p``, ``p_holm`` and ``decision``
        (``"> 0"`` or ``"< 0"`` where Holm rejects at alpha, else ``"not resolved"``: not
        significant is not "no effect").
    """
    names = list(diffs)
    level = family_level(confidence, len(names))
    p = [t_pvalue(diffs[n]) for n in names]
    adjusted = holm(p)
    out = {}
    for name, raw, adj in zip(names, p, adjusted, strict=True):
        ci = t_interval(diffs[name], level)
        resolved = math.isfinite(adj) and adj < 1 - confidence
        decision = ("> 0" if ci.estimate > 0 else "< 0") if resolved else "not resolved"
        out[name] = {
            "estimate": ci.estimate,
            "low": ci.low,
            "high": ci.high,
            "level": level,
            "n": ci.n,
            "positive": int(sum(x > 0 for x in _finite(diffs[name]))),
            "p": raw,
            "p_holm": adj,
            "decision": decision,
        }
    return out
