"""Calibrating the rule: the exponent fit, its verdicts, the calibrated plan, the command.

The fit and the verdicts run on synthetic landscapes whose optimum moves with a known alpha
(no training); one tiny end-to-end run checks the sweep, the stored calibration and the plan.
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import optuna
import pytest

from tests.sizes import TINY_BURGERS
from transfer_tune.analysis.calibrate import (
    Calibration,
    calibration_from_curves,
    classify,
    fit_exponent,
    load_calibration,
    rate_grid,
)
from transfer_tune.analysis.curves import Curves
from transfer_tune.core.parametrization import (
    Calibrated,
    Parametrization,
    get_parametrization,
    rule_multiplier,
)
from transfer_tune.errors import TransferTuneError
from transfer_tune.report import calibration_figure

GRID = 2.0 ** np.arange(-12.0, -1.99, 0.5)


def synthetic_curves(alpha, kind="mup", modes=(4, 8, 16, 64), seeds=6, noise=0.05, rng=0):
    """Curves of R's base rate whose per-seed optimum of R's actual rate is (ln K)^-alpha.

    ``log(loss)`` is a parabola in log2(rate), so the refinement is exact; each seed's optimum
    is jittered by ``noise`` (log2 units).
    """
    gen = np.random.default_rng(rng)
    base = min(modes)
    par = get_parametrization(kind, base_modes=base)
    x = np.log2(GRID)
    losses = {}
    jitter = gen.normal(0.0, noise, size=(len(modes), seeds))
    for i, k in enumerate(modes):
        actual = -7.0 - alpha * math.log2(math.log(k))  # log2 of R's optimal rate
        base_opt = actual - math.log2(par.role_scales(k, 1)["spectral"].lr)
        cols = [0.05 * np.exp(0.4 * (x - (base_opt + jitter[i, s])) ** 2) for s in range(seeds)]
        losses[(kind, k)] = np.stack(cols, axis=1)
    return Curves("spectral_lr", GRID, losses, base, loss="val_loss")


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.8])
@pytest.mark.parametrize("kind", ["mup", "sp"])
def test_the_fit_recovers_a_known_exponent(alpha, kind):
    cal = calibration_from_curves(synthetic_curves(alpha, kind), dim=1, parametrization=kind)
    assert abs(cal.alpha - alpha) <= 0.1
    assert cal.low <= alpha <= cal.high
    assert cal.n_seeds == 6 and not any(cal.at_edge)
    # the line passes through the per-K means
    for k, m in zip(cal.modes, cal.k_mean, strict=True):
        assert abs(cal.fitted(k) - m) < 0.15


def test_the_fit_recovers_alpha_from_three_k_and_noisier_seeds():
    for alpha in (0.0, 0.5, 1.0):
        cal = calibration_from_curves(
            synthetic_curves(alpha, modes=(4, 8, 16), seeds=10, noise=0.05, rng=3), dim=1
        )
        assert abs(cal.alpha - alpha) <= 0.1


def test_per_seed_slopes_equal_the_slope_of_the_means():
    modes = [4, 8, 16]
    y = np.array([[1.0, 2.0, 0.5], [0.7, 1.6, 0.1], [0.2, 1.0, -0.4]])
    where, alphas, intercept = fit_exponent(modes, y)
    x = np.log2(np.log(modes))
    slope = np.polyfit(x, y.mean(axis=1), 1)[0]
    assert math.isclose(where.estimate, -slope, rel_tol=1e-12)
    assert alphas.shape == (3,)
    assert math.isclose(intercept, y.mean() + where.estimate * x.mean(), rel_tol=1e-12)


@pytest.mark.parametrize(
    ("args", "verdict", "rule"),
    [
        ((0.46, 0.31, 0.62, 5, []), "fits", "mup"),
        ((0.05, -0.2, 0.3, 5, []), "over-corrects", "calibrated"),
        ((0.9, 0.7, 1.1, 5, []), "under-corrects", "calibrated"),
        ((0.3, -0.1, 0.7, 5, []), "inconclusive", "mup"),  # holds both 0.5 and 0
        ((0.3, -0.9, 1.5, 5, []), "inconclusive", "mup"),  # too wide
        ((0.05, -0.2, 0.3, 5, [16]), "inconclusive", "mup"),  # grid edge
        ((0.05, math.nan, math.nan, 1, []), "inconclusive", "mup"),  # one seed
    ],
)
def test_verdict_rules(args, verdict, rule):
    got, line, recommended = classify(*args)
    assert (got, recommended) == (verdict, rule)
    assert f"alpha = {args[0]:.2f}" in line
    if verdict == "fits":
        assert line.startswith("the µP rule fits your problem (alpha = 0.46 [0.31, 0.62]")
    if rule == "calibrated":
        assert "--rule calibrated" in line


def test_an_optimum_at_the_grid_edge_is_inconclusive():
    curves = synthetic_curves(0.5)
    curves.values = curves.values[:4]  # every optimum lies beyond the kept grid
    curves.losses = {k: v[:4] for k, v in curves.losses.items()}
    cal = calibration_from_curves(curves, dim=1)
    assert cal.verdict == "inconclusive" and "grid edge" in cal.line
    assert all(cal.at_edge)


def test_calibration_round_trips_as_plain_data_and_draws():
    cal = calibration_from_curves(synthetic_curves(0.25), dim=1)
    data = cal.to_dict()
    import json

    json.dumps(data, allow_nan=False)  # what a study's user attribute can hold
    back = Calibration.from_dict(data)
    assert back.alpha == cal.alpha and back.positions == cal.positions
    assert "alpha =" in cal.markdown()
    fig = calibration_figure(cal)
    roles = {t.meta["role"] for t in fig.data}
    assert {"seed", "mean", "fit", "mup", "sp"} <= roles
    mup = next(t for t in fig.data if t.meta["role"] == "mup")
    fit = next(t for t in fig.data if t.meta["role"] == "fit")
    assert math.isclose(mup.y[0], fit.y[0])  # the lines meet at K_base


def test_rate_grid_is_centred_in_log2_steps():
    grid = rate_grid(1e-3, span=1.0, step=0.5)
    assert len(grid) == 5 and math.isclose(grid[2], 1e-3)
    assert np.allclose(np.diff(np.log2(grid)), 0.5)
    with pytest.raises(TransferTuneError):
        rate_grid(0.0)


# -- the rule table ---------------------------------------------------------------------------
def test_mup_is_unchanged_and_the_power_rule_matches_it():
    mup = get_parametrization("mup", base_modes=4)
    assert type(mup) is Parametrization
    assert mup.to_dict() == {"kind": "mup", "base_modes": 4, "spectral_std": None}
    for k in (4, 8, 64):
        exact = math.sqrt(math.log(4) / math.log(k))
        assert mup.spectral_multiplier(k, 1) == (
            1.0 if k == 4 else (1 / math.sqrt(math.log(k))) / (1 / math.sqrt(math.log(4)))
        )
        assert abs(rule_multiplier(k, 4, 0.5) - exact) < 1e-12
        assert rule_multiplier(k, 4, 0.0) == 1.0


def test_calibrated_rule_is_table_data():
    cal = get_parametrization("calibrated", base_modes=4, lr_exponent=0.2)
    assert isinstance(cal, Calibrated)
    scales = cal.role_scales(32, 2)
    assert abs(scales["spectral"].lr - (math.log(4) / math.log(32)) ** 0.2) < 1e-12
    assert abs(scales["spectral"].init - (math.log(4) / math.log(32)) ** 0.5) < 1e-12
    assert scales["pointwise"].lr == 1.0 and scales["lifting"].init == 1.0
    assert Parametrization.from_dict(cal.to_dict()) == cal
    assert get_parametrization(**cal.to_dict()) == cal
    with pytest.raises(TransferTuneError, match="calibrate"):
        get_parametrization("calibrated", base_modes=4)
    with pytest.raises(TransferTuneError, match="fixed exponent"):
        get_parametrization("mup", base_modes=4, lr_exponent=0.3)
    with pytest.raises(TransferTuneError, match="lr_exponent"):
        get_parametrization("calibrated", base_modes=4, lr_exponent=math.nan)


# -- end to end: tune, calibrate, plan ---------------------------------------------------------
@pytest.fixture(scope="module")
def _proxy_db(tmp_path_factory):
    """A two-trial proxy study, searched once per module (the tests below get copies)."""
    from transfer_tune.search.tune import tune

    path = tmp_path_factory.mktemp("cal") / "s.db"
    url = f"sqlite:///{path}"
    tune(
        "burgers",
        4,
        width=4,
        n_layers=1,
        n_trials=2,
        epochs=1,
        problem_overrides=TINY_BURGERS,
        search_space={"batch_size": [16]},
        storage=url,
        study_name="cal-proxy",
        device="cpu",
        progress=False,
        pruner="none",
    )
    return path


@pytest.fixture
def proxy(_proxy_db, tmp_path):
    """A fresh copy of the proxy study for each test: calibrating it in one test (which stores
    the fit in the study) leaves the next test's study uncalibrated, in any order."""
    path = tmp_path / "proxy.db"
    shutil.copyfile(_proxy_db, path)
    url = f"sqlite:///{path}"
    study = optuna.load_study(study_name="cal-proxy", storage=url)
    assert "calibration" not in study.user_attrs
    return study, url


def test_calibrated_rule_without_a_calibration_names_the_command(proxy):
    from transfer_tune.search.transfer import plan_transfer

    study, url = proxy
    with pytest.raises(TransferTuneError, match="transfer-tune calibrate cal-proxy"):
        plan_transfer(study, 8, rule="calibrated")
    with pytest.raises(TransferTuneError, match="transfer-tune calibrate cal-proxy"):
        load_calibration("cal-proxy", url)
    with pytest.raises(TransferTuneError, match="unknown transfer rule"):
        plan_transfer(study, 8, rule="magic")


def test_calibrate_stores_the_fit_and_the_plan_follows_it(proxy, tmp_path, capsys):
    from transfer_tune.analysis.calibrate import calibrate
    from transfer_tune.cli import main
    from transfer_tune.search.transfer import plan_transfer

    study, url = proxy
    default = plan_transfer(study, 16)
    cal = calibrate(
        "cal-proxy",
        url,
        modes=(4, 8),
        seeds=(0, 1),
        span=0.5,
        step=0.5,
        epochs=1,
        device="cpu",
        progress=False,
    )
    assert cal.runs == 2 * 2 * 3 and cal.seconds > 0 and cal.flops > 0
    assert cal.verdict in ("fits", "over-corrects", "under-corrects", "inconclusive")
    study = optuna.load_study(study_name="cal-proxy", storage=url)
    stored = load_calibration(study)
    assert stored.to_dict() == cal.to_dict()

    mup = plan_transfer(study, 16, rule="mup")
    assert mup.to_dict() == default.to_dict()  # µP unchanged, bit for bit
    sp = plan_transfer(study, 16, rule="sp")
    assert {g.lr for g in sp.groups} == {sp.lr}
    plan = plan_transfer(study, 16, rule="calibrated")
    spectral = next(g for g in plan.groups if g.role == "spectral")
    if math.isfinite(cal.alpha):
        expected = plan.lr * (math.log(4) / math.log(16)) ** cal.alpha
        assert abs(spectral.lr - expected) <= 1e-12 * expected
    assert "calibrated rule" in plan.table()
    assert plan.parametrization["kind"] == "calibrated"

    out = tmp_path / "fig"
    code = main(
        ["calibrate", "cal-proxy", "--storage", url, "--modes", "4,8", "--seeds", "2",
         "--span", "0.5", "--epochs", "1", "--device", "cpu", "--out", str(out)]
    )  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0 and "alpha =" in text and cal.line in text
    assert out.with_suffix(".html").exists()
    code = main(["transfer", "cal-proxy", "--modes", "16", "--storage", url, "--plan-only",
                 "--rule", "calibrated"])  # fmt: skip
    assert code == 0 and "calibrated rule" in capsys.readouterr().out


def test_plan_rates_equal_a_stored_fitted_rule_to_1e_12(proxy):
    from transfer_tune.search.transfer import plan_transfer

    study, url = proxy
    cal = calibration_from_curves(synthetic_curves(0.2), dim=1)
    data = {**cal.to_dict(), "base_modes": 4}
    study.set_user_attr("calibration", data)
    for k in (5, 8, 16):
        plan = plan_transfer(study, k, rule="calibrated")
        groups = {g.role: g for g in plan.groups}
        factor = (math.log(4) / math.log(k)) ** data["alpha"]
        assert abs(groups["spectral"].lr - plan.lr * factor) <= 1e-12 * plan.lr
        assert abs(groups["spectral"].lr_multiplier - factor) <= 1e-12
        assert (
            abs(groups["spectral"].init_multiplier - math.sqrt(math.log(4) / math.log(k))) < 1e-12
        )
        assert all(g.lr == plan.lr for role, g in groups.items() if role != "spectral")
    study.set_user_attr("calibration", {**data, "base_modes": 2})
    with pytest.raises(TransferTuneError, match="K_base"):
        plan_transfer(study, 8, rule="calibrated")
