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
