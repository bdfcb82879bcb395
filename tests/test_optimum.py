"""The optimum analysis: known minimisers, honest intervals, and verdicts whose answers are known.

Synthetic landscapes only (no training): fast and deterministic.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from transfer_tune.analysis.curves import Curves, landscape_curves, refine_minimum
from transfer_tune.analysis.landscape import LandscapeRow, SweepResult
from transfer_tune.analysis.optimum import analyze_optimum, classify_shift, rule_shift
from transfer_tune.analysis.stability import failed_runs, stability_edge, stability_edges
from transfer_tune.analysis.stats import (
    Interval,
    bootstrap_interval,
    distinct_resamples,
    interval,
    sign_interval,
    t_interval,
)
from transfer_tune.errors import TransferTuneError

LRS = 2.0 ** np.arange(-14, -4.5, 0.5)  # 2^(1/2) spacing, as DESIGN.md asks
FINE = 2.0 ** np.arange(-7.5, -1.49, 0.25)  # 2^(1/4) spacing, as the benchmark uses
MODES = (4, 8, 16, 32, 64)


def bowl(x_star: float, curvature: float = 0.3, floor: float = 0.05, lrs=LRS) -> np.ndarray:
    """A loss curve over ``lrs`` whose minimiser is exactly 2**x_star."""
    x = np.log2(lrs)
    return floor * np.exp(curvature * (x - x_star) ** 2)


def family(drift: float, seeds: int = 5, noise: float = 0.02, seed: int = 0, lrs=LRS):
    """Curves for every K whose optimum moves by ``drift`` log2 per doubling of K."""
    rng = np.random.default_rng(seed)
    curves, truth = {}, {}
    for k in MODES:
        x_star = -9.3 + drift * math.log2(k / 4) if lrs is LRS else -4.6 + drift * math.log2(k / 4)
        arr = bowl(x_star, lrs=lrs)[:, None] * np.exp(
            noise * rng.standard_normal((lrs.size, seeds))
        )
        arr[np.log2(lrs) > -5.6 + (0 if lrs is LRS else 3.6)] = np.inf  # large rates diverge
        curves[k], truth[k] = arr, x_star
    return curves, truth


# -- refinement --------------------------------------------------------------------------------


@pytest.mark.parametrize("x_star", [-11.0, -10.13, -9.5, -8.77, -7.26])
def test_noise_free_minimiser_is_recovered_below_the_grid_spacing(x_star):
    pos, idx, edge = refine_minimum(np.log2(LRS), bowl(x_star))
    assert abs(pos - x_star) < 1e-9  # log-loss is an exact parabola: the vertex is exact
    assert not edge
    assert abs(np.log2(LRS[idx]) - x_star) <= 0.25 + 1e-12


def test_refinement_is_within_a_tenth_of_log2_for_a_non_parabolic_bowl():
    x = np.log2(LRS)
    for x_star in (-11.2, -9.9, -8.4):
        loss = 0.02 + 0.01 * np.abs(x - x_star) ** 3 + 0.03 * (x - x_star) ** 2
        pos, _, _ = refine_minimum(x, loss)
        assert abs(pos - x_star) < 0.1


def test_edges_divergence_and_vectorisation():
    x = np.log2(LRS)
    pos, idx, edge = refine_minimum(x, bowl(-20.0))  # minimiser left of the grid
    assert edge and idx == 0 and pos == x[0]
    pos, idx, edge = refine_minimum(x, np.full(LRS.size, np.inf))
    assert math.isnan(pos) and idx == -1 and not edge
    curves = np.stack([bowl(-10.0), bowl(-8.0)])
    curves[1, np.argmin(curves[1]) + 1] = np.inf  # a neighbour diverged: no refinement
    pos, idx, _ = refine_minimum(x, curves)
    assert pos[0] == pytest.approx(-10.0) and pos[1] == pytest.approx(-8.0)


# -- intervals ---------------------------------------------------------------------------------


def test_t_interval_is_the_textbook_formula():
    v = np.array([0.1, -0.3, 0.4, 0.2, 0.0])
    ci = t_interval(v, 0.95)
    half = 2.7764451051977987 * v.std(ddof=1) / math.sqrt(5)  # t_{4, 0.975}
    assert ci.estimate == pytest.approx(v.mean())
    assert (ci.low, ci.high) == pytest.approx((v.mean() - half, v.mean() + half))
    assert ci.method == "student-t" and ci.n == 5 and ci.coverage == 0.95
    assert ci.label() == "95% Student-t, n=5"
    assert t_interval([np.nan, 1.0, np.inf]).n == 1  # only finite values count
    assert math.isnan(t_interval([1.0]).low)


def test_sign_interval_reports_the_coverage_it_can_deliver():
    ci = sign_interval([3.0, 1.0, 2.0, 5.0, 4.0], 0.95)
    assert (ci.low, ci.high, ci.estimate) == (1.0, 5.0, 3.0)
    assert ci.coverage == pytest.approx(1 - 2 / 32)  # 93.75 %: n = 5 cannot reach 95 %
    ci = sign_interval(np.arange(12.0), 0.95)
    assert ci.coverage >= 0.95 and (ci.low, ci.high) == (2.0, 9.0)


def test_percentile_bootstrap_warns_at_small_n_and_under_covers():
    assert distinct_resamples(3) == 10 and distinct_resamples(5) == 126
    with pytest.warns(RuntimeWarning, match="10 distinct resamples"):
        bootstrap_interval([0.1, 0.2, 0.4])
    rng = np.random.default_rng(0)
    data = rng.standard_normal((400, 3))
    t_cover = np.mean([t_interval(d).contains(0.0) for d in data])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        b_cover = np.mean([bootstrap_interval(d, n_boot=200).contains(0.0) for d in data])
    assert 0.92 <= t_cover <= 0.98  # the t interval is valid at n = 3
    assert b_cover < 0.85  # the 3-seed percentile bootstrap is not a 95 % interval
    with pytest.raises(TransferTuneError, match="unknown interval method"):
        interval([1.0, 2.0], "jackknife")


# -- verdict rules -----------------------------------------------------------------------------


def iv(low: float, high: float, n: int = 5) -> Interval:
    return Interval((low + high) / 2, low, high, n, "student-t", 0.95, 0.95)


@pytest.mark.parametrize(
    ("low", "high", "edge", "expected"),
    [
        (-0.2, 0.2, False, "transfers"),  # within ±1 step (0.25)
        (-0.25, 0.25, False, "transfers"),  # the bounds are inclusive
        (0.3, 0.7, False, "drifts"),  # beyond one step
        (-0.9, -0.4, False, "drifts"),
        (0.1, 0.6, False, "inconclusive"),  # straddles +1 step
        (-0.3, 0.3, False, "inconclusive"),  # straddles ±1 step
        (0.3, 0.9, False, "drifts"),  # wholly beyond one step, however wide (0.6 > 2 steps)
        # the real case of transfer_repro.json (µP, Burgers width 8, K = 16, test loss): an
        # interval of width 0.52 > 2h that lies wholly above +h is a drift, not "inconclusive"
        (0.27, 0.79, False, "drifts"),
        (-1.2, -0.26, False, "drifts"),
        (-1.0, 1.0, False, "inconclusive"),  # wide and straddling both steps
        (-0.1, 0.1, True, "inconclusive"),  # an optimum at a grid edge
        (0.3, 0.7, True, "inconclusive"),  # at an edge the measured shift is not the shift
    ],
)
def test_classify_shift(low, high, edge, expected):
    verdict, reason = classify_shift(iv(low, high), 0.25, edge)
    assert verdict == expected, reason
    assert classify_shift(iv(0.0, 0.0, n=1), 0.25, False)[0] == "inconclusive"


def test_stable_family_transfers_and_drifting_family_drifts():
    stable, truth_stable = family(drift=0.0, seed=1)
    drifting, truth_drift = family(drift=-0.8, seed=2)
    losses = {("mup", k): stable[k] for k in MODES}
    losses.update({("sp", k): drifting[k] for k in MODES})
    analysis = analyze_optimum(Curves("lr", LRS, losses, base_modes=4))

    for o in analysis.optima:
        truth = (truth_stable if o.parametrization == "mup" else truth_drift)[o.modes]
        assert abs(math.log2(o.value) - truth) < 0.1, o
        assert o.low <= o.value <= o.high and o.method == "student-t"
        assert o.n_seeds == 5 and o.n_diverged == 5 * int((np.log2(LRS) > -5.6).sum())
        expected = truth - (truth_stable if o.parametrization == "mup" else truth_drift)[4]
        assert abs(o.shift - expected) < 0.2
        assert o.shift_low - 0.05 <= expected <= o.shift_high + 0.05
        assert len(o.seed_positions) == 5
    assert analysis.grid_step == pytest.approx(0.5)
    mup, sp = analysis.verdicts["mup"], analysis.verdicts["sp"]
    assert mup.verdict == "transfers" and abs(mup.max_shift) < 0.1
    assert sp.verdict == "drifts" and sp.worst_modes == 64
    assert sp.max_shift == pytest.approx(-0.8 * 4, abs=0.1)
    assert mup.line.startswith("µP: transfers") and "one grid step = 0.50" in mup.line
    assert analysis.method_label == "95% Student-t over 5 seeds"
    table = analysis.markdown()
    assert table.count("\n| µP |") == 5 and "SP: drifts" in table and "Student-t" in table
    assert len(analysis.to_records()) == 10
    # the paired SP - µP gap and the rule's factor on R's rate
    gap = analysis.gap(64)
    assert gap.interval.estimate == pytest.approx(truth_drift[64] - truth_stable[64], abs=0.15)
    assert gap.rule == pytest.approx(math.log2(math.sqrt(math.log(4) / math.log(64))))
    assert rule_shift(4, 4) == 0.0


def test_verdicts_on_landscapes_with_known_answers():
    """Fine grid (2^(1/4)): a one-step shift is not a drift, an edge or noise is inconclusive."""
    x = np.log2(FINE)
    rng = np.random.default_rng(3)

    def curves(shift64: float, scatter: float = 0.0) -> np.ndarray:
        centres = -4.6 + shift64 + scatter * rng.standard_normal(5)
        return np.stack([bowl(c, lrs=FINE) for c in centres], axis=1)

    base = np.repeat(bowl(-4.6, lrs=FINE)[:, None], 5, axis=1)
    cases = {
        "still": (curves(0.0, 0.03), "transfers"),
        "drift": (curves(-0.8, 0.05), "drifts"),
        "edge": (curves(-5.0), "inconclusive"),  # optimum left of the grid
        "noisy": (curves(0.0, 0.6), "inconclusive"),  # interval wider than two steps
        "small": (curves(0.2, 0.08), "inconclusive"),  # 0.2 ± 0.1: straddles one step
        "just over": (curves(0.35, 0.02), "drifts"),  # tight and beyond one step
    }
    for name, (arr, expected) in cases.items():
        a = analyze_optimum(Curves("lr", FINE, {("mup", 4): base, ("mup", 64): arr}, 4))
        o = a.optimum("mup", 64)
        assert a.grid_step == pytest.approx(0.25)
        assert o.verdict == expected, (name, o.shift, o.shift_low, o.shift_high, o.reason)
        assert a.verdicts["mup"].verdict == expected
        if name == "edge":
            assert o.at_edge and o.reason == "optimum at a grid edge"
    assert x.size == FINE.size


def test_one_drifting_k_makes_the_parametrization_drift_and_nothing_transfers_by_default():
    stable, _ = family(drift=0.0, seed=4)
    losses = {("mup", k): stable[k] for k in (4, 8)}
    losses[("mup", 64)] = np.repeat(bowl(-11.0)[:, None], 5, axis=1)
    a = analyze_optimum(Curves("lr", LRS, losses, base_modes=4))
    assert a.optimum("mup", 8).verdict == "transfers"
    assert a.optimum("mup", 64).verdict == "drifts"
    assert a.verdicts["mup"].verdict == "drifts"
    only_base = analyze_optimum(Curves("lr", LRS, {("mup", 4): stable[4]}, base_modes=4))
    assert only_base.verdicts["mup"].verdict == "inconclusive"


def test_a_diverged_seed_disqualifies_its_grid_value_for_the_mean_not_for_other_seeds():
    arr = np.repeat(bowl(-9.0)[:, None], 2, axis=1)
    best = int(np.argmin(arr[:, 0]))
    arr[best, 1] = np.inf
    a = analyze_optimum(Curves("lr", LRS, {("mup", 4): arr, ("mup", 8): arr}, base_modes=4))
    o = a.optimum("mup", 4)
    assert o.grid_value != LRS[best] and o.n_diverged == 1
    assert o.seed_positions[0] == pytest.approx(-9.0)


# -- stability edge ----------------------------------------------------------------------------


def test_stability_edge_counts_divergence_and_collapse():
    values = 2.0 ** np.arange(-6, -1.9, 1.0)  # 2^-6 .. 2^-2
    losses = np.array(
        [
            [0.2, 0.2, 0.2, 0.2],
            [0.1, 0.1, 0.1, 0.1],
            [0.1, 0.995, 0.1, 0.1],  # one collapse: 1/4, stable
            [np.inf, 1.0, 0.1, 0.2],  # a divergence and a zero predictor: 2/4 fail
            [np.inf, np.inf, np.inf, np.inf],
        ]
    )
    assert failed_runs(losses).sum(axis=1).tolist() == [0, 0, 1, 2, 4]
    assert not failed_runs(np.array([np.nan])).any()  # a missing run is not a failure
    e = stability_edge(values, losses, "sp", 64)
    assert e.edge == 2.0**-3 and e.stable == 2.0**-4 and not e.censored
    assert e.text() == "2^-3.00 (2/4 fail)"
    calm = stability_edge(values, np.full((5, 4), 0.1))
    assert calm.edge is None and calm.censored and calm.stable == 2.0**-2


def test_stability_edges_shift_from_k_base():
    values = 2.0 ** np.arange(-6, -1.9, 0.5)
    ok = np.full((values.size, 5), 0.1)

    def failing_from(i: int) -> np.ndarray:
        arr = ok.copy()
        arr[i:] = 1.0
        return arr

    curves = Curves(
        "lr",
        values,
        {
            ("mup", 4): failing_from(7),
            ("mup", 64): failing_from(7),
            ("sp", 4): failing_from(7),
            ("sp", 64): failing_from(5),  # SP's edge moves down one log2 unit
            ("sp", 16): ok,  # beyond the grid: a bound
        },
        base_modes=4,
    )
    edges = {(e.parametrization, e.modes): e for e in stability_edges(curves)}
    assert edges[("mup", 64)].shift == 0.0
    assert edges[("sp", 64)].shift == pytest.approx(-1.0)
    assert edges[("sp", 16)].shift_bound == "> +0.50" and math.isnan(edges[("sp", 16)].shift)


# -- sweep results -----------------------------------------------------------------------------


def sweep_result(rows: list[LandscapeRow], **config) -> SweepResult:
    base = {
        "params": ["lr"],
        "values": {"lr": LRS.tolist()},
        "seeds": [0, 1],
        "modes": [4, 16],
        "parametrizations": ["mup", "sp"],
        "base_modes": 4,
        "epochs": 1,
    }
    base.update(config)
    return SweepResult(name="synthetic", config=base, rows=rows)


def row(kind, k, point, seed, loss) -> LandscapeRow:
    return LandscapeRow(kind, k, point, seed, loss, loss, loss, not math.isfinite(loss), 0, 0.0)


def test_analysis_of_a_sweep_result_matches_its_curves():
    rows = []
    for kind, drift in (("mup", 0.0), ("sp", -1.0)):
        for k in (4, 16):
            curve = bowl(-9.0 + drift * math.log2(k / 4))
            for seed in (0, 1):
                for lr, loss in zip(LRS, curve * (1 + 0.01 * seed), strict=True):
                    rows.append(row(kind, k, {"lr": float(lr)}, seed, float(loss)))
    result = sweep_result(rows)
    assert result.complete
    a = analyze_optimum(result)
    assert a.optimum("mup", 16).shift == pytest.approx(0.0, abs=1e-9)
    assert a.optimum("sp", 16).shift == pytest.approx(-2.0, abs=1e-9)
    # identical seeds: a zero-width interval; the rules still apply
    assert a.verdicts["sp"].verdict == "drifts" and a.verdicts["mup"].verdict == "transfers"
    with pytest.raises(TransferTuneError, match="was not swept"):
        analyze_optimum(result, param="beta1")
    with pytest.raises(TransferTuneError, match="unknown interval method"):
        analyze_optimum(result, method="jackknife")


def test_two_parameter_profile_and_slice():
    batches = [8, 32]
    rows = []
    for b in batches:
        # the best rate grows with the batch size; the larger batch is better overall
        curve = bowl(-10.0 + math.log2(b / 8) / 2, floor=0.05 if b == 32 else 0.08)
        for k in (4, 16):
            for lr, loss in zip(LRS, curve, strict=True):
                rows.append(row("mup", k, {"lr": float(lr), "batch_size": b}, 0, float(loss)))
    result = sweep_result(
        rows,
        params=["lr", "batch_size"],
        values={"lr": LRS.tolist(), "batch_size": batches},
        seeds=[0],
        parametrizations=["mup"],
    )
    profile = analyze_optimum(result)
    assert math.log2(profile.optimum("mup", 4).value) == pytest.approx(-9.0, abs=0.1)
    assert "batch_size at its best value" in profile.note
    at8 = analyze_optimum(result, fixed={"batch_size": 8})
    assert math.log2(at8.optimum("mup", 4).value) == pytest.approx(-10.0, abs=0.1)
    along_batch = landscape_curves(result, param="batch_size")
    assert along_batch.values.tolist() == batches
    with pytest.raises(TransferTuneError, match="not on the grid"):
        analyze_optimum(result, fixed={"batch_size": 16})
