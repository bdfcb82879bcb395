"""The optimum analysis recovers known minimisers and tells a drifting family from a stable one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from transfer_tune.analysis.landscape import LandscapeRow, SweepResult
from transfer_tune.analysis.optimum import Curves, analyze_optimum, landscape_curves, refine_minimum
from transfer_tune.errors import TransferTuneError

LRS = 2.0 ** np.arange(-14, -4.5, 0.5)  # 2^(1/2) spacing, as DESIGN.md asks
MODES = (4, 8, 16, 32, 64)


def bowl(x_star: float, curvature: float = 0.3, floor: float = 0.05) -> np.ndarray:
    """A loss curve over LRS whose minimiser is exactly 2**x_star."""
    x = np.log2(LRS)
    return floor * np.exp(curvature * (x - x_star) ** 2)


def family(drift: float, seeds: int = 3, noise: float = 0.02, seed: int = 0) -> dict:
    """Curves for every K whose optimum moves by ``drift`` log2 per doubling of K."""
    rng = np.random.default_rng(seed)
    curves, truth = {}, {}
    for k in MODES:
        x_star = -9.3 + drift * math.log2(k / 4)
        arr = bowl(x_star)[:, None] * np.exp(noise * rng.standard_normal((LRS.size, seeds)))
        arr[np.log2(LRS) > -5.6] = np.inf  # the largest rates diverge
        curves[k], truth[k] = arr, x_star
    return curves, truth


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


def test_stable_family_transfers_and_drifting_family_drifts():
    stable, truth_stable = family(drift=0.0, seed=1)
    drifting, truth_drift = family(drift=-0.8, seed=2)
    losses = {("mup", k): stable[k] for k in MODES}
    losses.update({("sp", k): drifting[k] for k in MODES})
    analysis = analyze_optimum(Curves("lr", LRS, losses, base_modes=4), n_boot=400)

    for o in analysis.optima:
        truth = (truth_stable if o.parametrization == "mup" else truth_drift)[o.modes]
        assert abs(math.log2(o.value) - truth) < 0.1, o
        assert o.low <= o.value <= o.high
        assert o.n_seeds == 3 and o.n_diverged == 3 * int((np.log2(LRS) > -5.6).sum())
        expected_shift = truth - (truth_stable if o.parametrization == "mup" else truth_drift)[4]
        assert abs(o.shift - expected_shift) < 0.2  # two estimates, each within 0.1
        assert o.shift_low - 0.2 <= expected_shift <= o.shift_high + 0.2
    assert analysis.grid_step == pytest.approx(0.5)
    assert analysis.reference_modes == 4
    mup, sp = analysis.verdicts["mup"], analysis.verdicts["sp"]
    assert mup.verdict == "transfers" and abs(mup.max_shift) < 0.1
    assert sp.verdict == "drifts" and sp.worst_modes == 64
    assert sp.max_shift == pytest.approx(-0.8 * 4, abs=0.1)
    assert mup.line.startswith("µP: transfers") and "grid step = 0.50" in mup.line
    assert sp.line.startswith("SP: drifts") and "K = 8, 16, 32, 64" in sp.line
    table = analysis.markdown()
    assert table.count("\n| µP |") == 5 and "SP: drifts" in table
    assert len(analysis.to_records()) == 10


def test_a_diverged_seed_disqualifies_its_grid_value():
    arr = np.repeat(bowl(-9.0)[:, None], 2, axis=1)
    best = int(np.argmin(arr[:, 0]))
    arr[best, 1] = np.inf
    a = analyze_optimum(Curves("lr", LRS, {("mup", 4): arr, ("mup", 8): arr}, base_modes=4))
    o = a.optimum("mup", 4)
    assert o.grid_value != LRS[best] and o.n_diverged == 1


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
    assert a.verdicts["sp"].verdict == "drifts" and a.verdicts["mup"].verdict == "transfers"
    with pytest.raises(TransferTuneError, match="was not swept"):
        analyze_optimum(result, param="beta1")


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
