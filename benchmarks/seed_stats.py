"""Summaries over seeds that the benchmarks report: mean, sample sd and a paired t interval.

The interval is the project's one Student-t interval
(:func:`transfer_tune.analysis.stats.t_interval`); a benchmark reports it as NaN when the
differences do not vary (every seed gave the same difference), as its tables always have.
"""

from __future__ import annotations

import math


def mean(xs: list[float]) -> float:
    """Arithmetic mean."""
    return sum(xs) / len(xs)


def sd(xs: list[float]) -> float:
    """Sample standard deviation (n - 1); 0 for fewer than two values."""
    if len(xs) < 2:
        return 0.0
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def t95(diffs: list[float]) -> list[float]:
    """95 % Student-t interval ``[low, high]`` of the mean of ``diffs``; NaNs when n < 2 or
    the differences are all equal."""
    from transfer_tune.analysis.stats import t_interval

    if len(diffs) < 2 or sd(diffs) == 0:
        return [math.nan, math.nan]
    ci = t_interval(diffs)
    return [ci.low, ci.high]


def finite_mean(xs: list[float]) -> float:
    """Mean of the finite values (a diverged run is ``inf``); NaN when there are none."""
    finite = [x for x in xs if math.isfinite(x)]
    return sum(finite) / len(finite) if finite else math.nan


def per_seed(record: dict, arm: str, key: str = "test_l2") -> list[float]:
    """``key`` of ``arm``'s run in every seed of an audit record (``record["seeds"]``)."""
    return [s["runs"][arm][key] for s in record["seeds"]]


def paired(record: dict, a: str, b: str, key: str = "test_l2") -> list[float]:
    """Per-seed differences ``a - b`` of ``key`` (the paired contrasts of an audit)."""
    return [x - y for x, y in zip(per_seed(record, a, key), per_seed(record, b, key), strict=True)]


def pp(x: float) -> str:
    """A fraction as signed percentage points, three decimals; ``n/a`` when not finite."""
    return "n/a" if not math.isfinite(x) else f"{100 * x:+.3f}"


#: The header of an audit's table of paired tests (one :func:`test_row` per test).
TESTS_HEADER = [
    "| difference | mean [interval] (pp) | level | seeds > 0 | p | p (Holm) | at 5 % |",
    "|---|---|---|---|---|---|---|",
]


def test_row(name: str, t: dict) -> str:
    """One row of :data:`TESTS_HEADER`'s table from a
    :func:`transfer_tune.analysis.stats.family_tests` entry."""
    return (
        f"| {name} | {pp(t['estimate'])} [{pp(t['low'])}, {pp(t['high'])}] | "
        f"{t['level'] * 100:.2f} % | {t['positive']}/{t['n']} | {t['p']:.3g} | "
        f"{t['p_holm']:.3g} | {t['decision']} |"
    )
