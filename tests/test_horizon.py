"""The training horizon: rank statistics per epoch, the auto rule, the pilot, reading back."""

from __future__ import annotations

import math

import optuna
import pytest

from tests.sizes import HORIZON_MODEL, TINY_BURGERS
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.horizon_stats import (
    CurveSet,
    analyse,
    analyse_all,
    choose_horizon,
    markdown_table,
)


def settling_curves(settle: int = 3, epochs: int = 8, n: int = 6) -> dict[str, dict[int, float]]:
    """``n`` configurations whose ranking is reversed before epoch ``settle``, final after."""
    final = [0.1 + 0.05 * i for i in range(n)]
    curves = {}
    for i, f in enumerate(final):
        curve = {}
        for e in range(1, epochs + 1):
            reversed_rank = final[n - 1 - i]
            value = (reversed_rank if e < settle else f) * (1 + 0.5 / e)
            curve[e] = value
        curves[f"c{i}"] = curve
    return curves


def test_synthetic_ranking_settles_at_epoch_3():
    r = analyse(CurveSet("synthetic", settling_curves(settle=3)))
    assert r.horizon == 3 and r.final_epoch == 8 and r.n_configs == 6
    assert r.at(1).spearman == pytest.approx(-1) and r.at(1).kendall == pytest.approx(-1)
    assert r.at(1).regret == pytest.approx(0.25 / 0.1)  # the worst became the leader
    for e in range(3, 9):
        assert r.at(e).spearman == pytest.approx(1) and r.at(e).regret == 0
    assert r.fraction == pytest.approx(3 / 8)
    assert "horizon 3/8" in r.summary()
    table = markdown_table([r])
    assert (
        table.count("\n") == 1 + 8 and "| synthetic | 3 | 6 | 1.000 | 1.000 | 0.0 % | * |" in table
    )


def test_a_lucky_early_epoch_does_not_count():
    curves = settling_curves(settle=4)
    for i, c in enumerate(curves.values()):  # epoch 1 already in the final order
        c[1] = 0.1 + 0.05 * i
    r = analyse(CurveSet("lucky", curves))
    assert r.at(1).spearman == pytest.approx(1) and r.horizon == 4


def test_thresholds_and_never_settling():
    curves = settling_curves(settle=8, epochs=8)
    assert analyse(CurveSet("late", curves)).horizon == 8  # only the final epoch qualifies
    r = analyse(CurveSet("s", settling_curves(settle=3)), min_correlation=1.0, max_regret=0.0)
    assert r.horizon == 3
    assert choose_horizon([], 5) == 5


def test_pruned_and_short_are_excluded_and_counted():
    curves = settling_curves(settle=2, epochs=5, n=4)
    curves["short"] = {1: 0.01, 2: 0.01}  # stopped early: no final loss
    r = analyse(CurveSet("p", curves, n_pruned=3))
    assert (r.n_configs, r.n_pruned, r.n_short) == (4, 3, 1)
    assert "3 pruned or diverged, 1 stopped before epoch 5" in r.summary()
    assert r.to_dict()["stats"][0]["epoch"] == 1


def test_bad_inputs_give_clear_errors():
    with pytest.raises(TransferTuneError, match="no per-epoch"):
        analyse(CurveSet("empty", {"trial 0": {}}))
    with pytest.raises(TransferTuneError, match="every trial of 'p' was pruned or diverged"):
        analyse(CurveSet("p", {}, n_pruned=4))
    with pytest.raises(TransferTuneError, match="1 configuration.*at least two"):
        analyse(CurveSet("one", {"trial 0": {1: 0.5, 2: 0.4}}))
    with pytest.raises(TransferTuneError, match="min_correlation"):
        analyse(CurveSet("x", settling_curves()), min_correlation=1.5)
    with pytest.raises(TransferTuneError, match="no studies"):
        analyse_all([])


def test_constant_losses_have_no_ranking():
    curves = {f"c{i}": {1: 0.5, 2: 0.1 * (i + 1)} for i in range(3)}
    r = analyse(CurveSet("flat", curves))
    assert math.isnan(r.at(1).spearman) and r.horizon == 2
    assert r.to_dict()["stats"][0]["spearman"] is None


def test_figure_draws_mup_beside_sp():
    from transfer_tune.report import horizon_figure

    results = [
        analyse(CurveSet(f"{k}/K{m}", settling_curves(settle=s), k, m))
        for k, s in (("mup", 2), ("sp", 4))
        for m in (4, 16)
    ]
    fig = horizon_figure(results)
    curves = [t for t in fig.data if t.meta["role"] == "curve"]
    assert len(curves) == 8 and {t.meta["modes"] for t in curves} == {4, 16}
    assert (
        fig.layout.annotations[0].text.startswith("µP") and "SP" in fig.layout.annotations[1].text
    )
    stars = [t for t in fig.data if t.meta["role"] == "horizon"]
    assert sorted({t.x[0] for t in stars}) == [2, 4]


# -- real studies ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('horizon') / 'h.db'}"


def _tune(storage, name, **kw):
    from transfer_tune.search.tune import tune

    args = dict(problem="burgers", proxy_modes=2, n_trials=4, epochs=3, pruner="none", seed=0)
    args.update(kw)
    return tune(
        storage=storage,
        study_name=name,
        problem_overrides=TINY_BURGERS,
        device="cpu",
        **{**HORIZON_MODEL, **args},
    )


def test_real_study_reads_back_the_same(storage, capsys, tmp_path):
    from transfer_tune.cli import main
    from transfer_tune.report import read_curves
    from transfer_tune.search.storage import get_storage

    _tune(storage, "plain")
    (first,) = read_curves(storage, "plain")
    assert len(first.curves) == 4 and all(sorted(c) == [1, 2, 3] for c in first.curves.values())
    result = analyse(first)
    (again,) = read_curves(get_storage(storage), "plain")  # a rebuild from storage alone
    assert analyse(again).to_dict() == result.to_dict()
    study = optuna.load_study(study_name="plain", storage=storage)
    for t in study.get_trials():
        assert first.curves[f"trial {t.number}"][3] == pytest.approx(t.value)
    assert main(["horizon", "plain", "--storage", storage, "--out", str(tmp_path / "h")]) == 0
    out = capsys.readouterr().out
    assert "| plain | 3 | 4 |" in out and "horizon" in out and (tmp_path / "h.html").exists()
    assert main(["horizon", "nothing", "--storage", storage]) == 2
    assert "no study named 'nothing'" in capsys.readouterr().err


def test_study_without_intermediate_values(storage):
    from transfer_tune.report import read_curves

    study = optuna.create_study(study_name="bare", storage=storage)
    for x in (1.0, 2.0):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": x},
                distributions={"x": optuna.distributions.FloatDistribution(0, 3)},
                value=x,
            )
        )
    with pytest.raises(TransferTuneError, match="no per-epoch"):
        analyse(read_curves(storage, "bare")[0])


def test_fixed_horizon_trains_that_many_epochs(storage):
    study = _tune(storage, "fixed", horizon=2)
    assert study.user_attrs["horizon"] == {"mode": "fixed", "epochs": 2, "of": 3}
    trials = study.get_trials()
    assert len(trials) == 4 and all(sorted(t.intermediate_values) == [0, 1] for t in trials)
    assert all(t.value == t.intermediate_values[1] for t in trials)
    with pytest.raises(TransferTuneError, match="already runs 2 epochs per trial"):
        _tune(storage, "fixed", horizon=3)
    for bad in (0, 4, "soon", 2.5):
        with pytest.raises(TransferTuneError, match="horizon"):
            _tune(storage, f"bad-{bad}", horizon=bad)


def test_auto_horizon_pilot(storage):
    from transfer_tune.search.compute import trial_epochs
    from transfer_tune.search.horizon import PILOT_TRIALS

    study = _tune(storage, "auto", horizon="auto", n_trials=PILOT_TRIALS + 2)
    evidence = study.user_attrs["horizon"]
    h = evidence["epochs"]
    assert evidence["mode"] == "auto" and 1 <= h <= 3 and evidence["of"] == 3
    assert evidence["pilot_study"] == "auto-pilot" and len(evidence["stats"]) == 3
    trials = study.get_trials()
    assert len(trials) == PILOT_TRIALS + 2
    pilot = [t for t in trials if "pilot_trial" in t.user_attrs]
    rest = [t for t in trials if "pilot_trial" not in t.user_attrs]
    assert len(pilot) == PILOT_TRIALS and len(rest) == 2
    for t in pilot:  # the pilot's full curves are kept (their compute counts); value after h
        assert len(t.intermediate_values) == 3 and t.value == t.intermediate_values[h - 1]
    assert all(len(t.intermediate_values) == h for t in rest)
    source = {
        t.number: t for t in optuna.load_study(study_name="auto-pilot", storage=storage).trials
    }
    for t in pilot:  # the copies keep the pilot's wall time (result.compute counts it)
        assert t.duration == source[t.user_attrs["pilot_trial"]].duration
    epochs = sorted(r.train_epochs for r in trial_epochs(study))
    assert epochs == sorted([3] * PILOT_TRIALS + [h] * 2)
    # the evidence is the analysis of the pilot study, read back from storage
    from transfer_tune.report import read_curves

    (pilot_curves,) = read_curves(storage, "auto-pilot")
    assert analyse(pilot_curves).horizon == h
    again = _tune(storage, "auto", horizon="auto", n_trials=PILOT_TRIALS + 2)  # resume: no-op
    assert len(again.get_trials()) == PILOT_TRIALS + 2
    # the dashboard note of the proxy study shows the horizon and the pilot's evidence
    from transfer_tune.report import read_proxy_history
    from transfer_tune.report.notes import proxy_note

    note = proxy_note(read_proxy_history(storage, "auto"))
    assert f"Each trial trained {h} of 3 epochs (auto)" in note and "`auto-pilot`" in note
    rows = [line for line in note.splitlines() if line.startswith("| ") and "%" in line]
    assert len(rows) == 3  # one per epoch of the pilot


def test_sweep_curves_mup_first(storage):
    from transfer_tune.analysis.landscape import sweep
    from transfer_tune.report import read_curves

    sweep(
        "burgers",
        modes=[2, 4],
        values=[1e-3, 1e-2, 3e-2],
        seeds=[0],
        epochs=2,
        storage=storage,
        width=4,
        n_layers=1,
        sweep_name="hsweep",
        problem_overrides=TINY_BURGERS,
        device="cpu",
        progress=False,
        hparams={"batch_size": 16},
    )
    sets = read_curves(storage, "hsweep")
    assert [(s.parametrization, s.modes) for s in sets] == [
        ("mup", 2),
        ("mup", 4),
        ("sp", 2),
        ("sp", 4),
    ]
    for s in sets:
        assert s.n_pruned + len(s.curves) == 3
    results = analyse_all([s for s in sets if len(s.curves) >= 2])
    assert all(r.final_epoch == 2 for r in results)


def test_cli_horizon_option_parses():
    from transfer_tune.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["tune", "s.toml", "--horizon", "auto"]).horizon == "auto"
    assert parser.parse_args(["tune", "s.toml", "--horizon", "3"]).horizon == 3
    assert parser.parse_args(["tune", "s.toml"]).horizon is None
    with pytest.raises(SystemExit):
        parser.parse_args(["tune", "s.toml", "--horizon", "soon"])
