"""A cheap proxy: narrower, fewer modes, a coarser grid; one way to say proxy and target."""

from __future__ import annotations

import math

import pytest

from pdes import load_problem
from tests.sizes import TINY_BURGERS
from transfer_tune.api import tune_then_transfer
from transfer_tune.core.checkpoint import load as load_checkpoint
from transfer_tune.core.flops import train_step_flops
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.proxy import ProxySetup
from transfer_tune.search.sides import Side, resolve_sides

#: The proxy: K 2, width 4, every other point of the 64-point grid; the target K 4, width 8.
PROXY = {"modes": 2, "width": 4, "resolution": 32, "epochs": 1}
TARGET = {"modes": 4, "width": 8, "epochs": 1}
RUN = dict(
    n_layers=2,
    n_trials=2,
    device="cpu",
    search_space={"batch_size": [8]},
    progress=False,
    annotate=False,
    problem_overrides=TINY_BURGERS,
)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('cheap') / 's.db'}"
    return tune_then_transfer("burgers", proxy=PROXY, target=TARGET, storage=url, **RUN)


def test_the_proxy_trained_narrow_and_coarse_and_the_target_wide_and_fine(result):
    setup = ProxySetup.from_study(result.study)
    assert setup.model["width"] == 4 and setup.model["modes"] == 2
    assert load_problem(setup.problem).resolution == 32
    assert load_problem(setup.target_problem).resolution == 64
    plan = result.target_plan
    assert plan.proxy == {"modes": 2, "width": 4, "resolution": 32, "epochs": 1}
    assert plan.target == {"modes": 4, "width": 8, "resolution": 64, "epochs": 1}
    assert plan.model["width"] == 8 and plan.model["modes"] == 4
    assert result.target.metrics["resolution"] == 64
    assert result.target.study_name.endswith("-target-K4-w8")


def test_the_plan_applies_mup_over_width_and_k(result):
    plan, lr = result.target_plan, result.target_plan.lr
    groups = {g.name: g for g in plan.groups}
    k = math.sqrt(math.log(2) / math.log(4))  # R's K factor, d = 1
    assert abs(groups["spectral"].lr - lr * k / 2) <= 1e-12 * lr  # x base / width = 1/2
    assert abs(groups["spectral"].init_multiplier - k) < 1e-12
    assert abs(groups["pointwise"].lr - lr / 2) <= 1e-12 * lr
    readout = groups["projection (output)"]  # the first projection layer: fan-in 4 -> 8
    assert abs(readout.init_multiplier - 2**-0.5) < 1e-12 and abs(readout.lr - lr / 2) < 1e-15
    assert groups["projection (fixed)"].lr == lr and groups["lifting"].lr == lr
    assert plan.parametrization["base_shapes"]["layers.0.pointwise.weight"] == [4, 4]


def test_compute_and_the_printed_result_say_what_the_proxy_saved(result):
    plan, c = result.target_plan, result.compute
    setup = ProxySetup.from_study(result.study)
    proxy_step = train_step_flops(setup.model, (32,), plan.batch_size)
    target_step = train_step_flops(plan.model, (64,), plan.batch_size)
    assert c["step_flop_ratio"] == pytest.approx(proxy_step / target_step, rel=1e-12)
    assert plan.step_flop_ratio == pytest.approx(c["step_flop_ratio"], rel=1e-12)
    k_only = train_step_flops({**plan.model, "modes": 2}, (64,), plan.batch_size) / target_step
    assert c["step_flop_ratio"] < 0.3 < 0.9 < k_only  # the projection (width 128) is fixed
    text = str(result)
    for line in ("modes (K)   2 -> 4", "width       4 -> 8", "grid        32 -> 64"):
        assert line in text
    assert f"costs {plan.step_flop_ratio:.3g} of the target's" in text


def test_the_target_model_is_the_planned_one(result):
    saved = load_checkpoint(result.target.checkpoint)
    assert saved["model_state"]["layers.0.pointwise.weight"].shape == (8, 8)
    assert saved["model_config"]["width"] == 8
    assert load_problem(saved["problem"]).resolution == 64  # the target's full grid


def test_sides_fill_from_each_other_and_shortcuts():
    p, t = resolve_sides({"width": 16}, {"modes": 16}, resolution=64)
    assert p == Side(modes=16, width=16, resolution=64, epochs=10)  # K from the target
    assert t == Side(modes=16, width=16, resolution=64, epochs=40)
    p, t = resolve_sides(proxy_modes=4, target_modes=32, width=8, resolution=64)
    assert (p.modes, p.width, t.modes, t.width) == (4, 8, 32, 8)
    p, t = resolve_sides(resolution=64)  # today's defaults
    assert (p.modes, t.modes, p.width, p.epochs, t.epochs) == (4, 32, 32, 10, 40)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"proxy": {"modes": 4}, "proxy_modes": 8}, "proxy_modes=8 disagrees with proxy"),
        ({"proxy": {"width": 64}, "target": {"width": 32}}, "proxy's width 64 is larger"),
        ({"proxy": {"resolution": 128}}, "proxy's resolution 128 is larger"),
        ({"target": {"resolution": 32}}, "not the problem's grid 64"),
        ({"proxy": {"depth": 2}}, r"unknown field\(s\) \['depth'\]"),
        ({"proxy": [4, 16]}, "must be a dict"),
        ({"proxy": {"modes": 8}, "target": {"modes": 4}}, "smaller than the proxy"),
    ],
)
def test_side_mistakes_are_one_clear_error(kwargs, message):
    with pytest.raises(TransferTuneError, match=message):
        resolve_sides(resolution=64, **kwargs)


def test_a_proxy_grid_that_is_no_subsample_fails_before_any_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(TransferTuneError, match="not a subsample"):
        tune_then_transfer(
            "burgers", proxy={**PROXY, "resolution": 48}, target=TARGET, storage=url, **RUN
        )
    assert not (tmp_path / "s.db").exists() or "proxy" not in (
        tmp_path / "s.db"
    ).read_bytes().decode("latin-1")


def test_the_dashboard_note_shows_each_axis(result):
    from transfer_tune.report import read_proxy_history
    from transfer_tune.report.notes import proxy_note

    note = proxy_note(read_proxy_history(result.storage, result.study.study_name))
    line = next(x for x in note.splitlines() if x.strip().startswith("Proxy -> target:"))
    assert "modes (K)   2 -> 4" in line and "width       4 -> 8" in line
    assert "grid        32 -> 64" in line
    assert f"costs {result.target_plan.step_flop_ratio:.3g} of the target's" in line
    assert "projection (output): init x0.7071, lr x0.5000" in note
