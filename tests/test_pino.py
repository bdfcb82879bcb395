"""Physics-informed training (loss="pino"): the loss, fit, search, transfer, spec and CLI.

The residuals themselves are verified in ``tests/test_darcy_residual.py`` and
``tests/test_burgers_time.py``; here a tiny Darcy problem solved on its own grid (so the
labels' residual is round-off) carries the training path end to end.
"""

import math

import optuna
import pytest
import torch

from pdes import darcy, get_problem
from tests.sizes import PROXY_MODEL
from transfer_tune.cli import main
from transfer_tune.core.hparams import HParams
from transfer_tune.core.model import FNO
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.core.train import TrainData, _fingerprint, evaluate, evaluate_physics, fit
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.transfer import plan_transfer, run_target
from transfer_tune.search.tune import tune

#: Darcy solved on the 17 x 17 grid it trains on: the labels' residual is round-off.
DARCY = {"resolution": 17, "n_fine": 17, "n_train": 32, "n_val": 8, "n_test": 8}


@pytest.fixture(scope="module")
def problem():
    return get_problem("darcy", **DARCY)


def model(seed: int = 0, modes: int = 6) -> FNO:
    m = FNO(dim=2, modes=modes, width=16, n_layers=3, in_channels=1, out_channels=1)
    get_parametrization("sp", base_modes=modes).initialize(m, torch.Generator().manual_seed(seed))
    return m


def test_loss_settings_are_checked():
    with pytest.raises(TransferTuneError, match="loss must be one of data, pino"):
        HParams(loss="physics")
    with pytest.raises(TransferTuneError, match="physics_weight"):
        HParams(loss="pino", physics_weight=-1.0)
    with pytest.raises(TransferTuneError, match="nothing to train on"):
        HParams(loss="pino", data_weight=0, physics_weight=0)
    with pytest.raises(TransferTuneError, match="physics_resolution"):
        HParams(loss="pino", physics_resolution=1)
    assert HParams(loss="pino").physics and not HParams().physics
    assert not HParams(loss="pino", physics_weight=0).physics  # pino without its residual
    assert not HParams(loss="pino", data_weight=0).uses_labels and HParams().uses_labels


def test_physics_decodes_to_physical_units(problem):
    """problem.physics on normalised tensors is the equation's loss on the decoded ones, and
    the labels (solved on this grid) have a round-off residual."""
    x, y = problem.dataset("train")
    xp, yp = problem.dataset("train", normalized=False)
    got = problem.physics(x[:4], y[:4])
    want = darcy.physics_loss(xp[:4], yp[:4], **problem.params)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert got.max().item() < 1e-4  # measured ~6e-6 (float32 labels)
    assert problem.has_physics and not get_problem("burgers", resolution=16).has_physics


def test_zero_physics_weight_is_the_data_loss_bit_for_bit(problem):
    data = TrainData.from_problem(problem)
    a, b = model(), model()
    fit(a, data, HParams(lr=1e-2, batch_size=8), 2, device="cpu")
    fit(b, data, HParams(lr=1e-2, batch_size=8, loss="pino", physics_weight=0), 2, device="cpu")
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_pino_lowers_the_residual_and_records_it(problem):
    """Measured over 40 epochs at lr 1e-2: data loss alone test 0.191 (normalised rel-L2),
    residual 5.62 -> 1.62; data + 0.1 x residual test 0.173, residual 1.03."""
    xt, yt = problem.dataset("test")
    hp = HParams(lr=1e-2, batch_size=8, loss="pino", physics_weight=0.1)
    m = model()
    before = evaluate_physics(m, xt, problem.physics)
    result = fit(m, TrainData.from_problem(problem, hp), hp, 40, device="cpu")
    after = evaluate_physics(m, xt, problem.physics)
    assert before > 4.0 and after < before / 3, (before, after)
    assert evaluate(m, xt, yt) < 0.3
    last = result.history[-1]
    assert last.physics_loss is not None and last.val_physics_loss is not None
    # train_loss is the weighted objective: data part plus 0.1 x the residual
    assert last.train_loss > 0.1 * last.physics_loss
    assert all(r.physics_loss is None for r in fit(model(), TrainData.from_problem(problem),
                                                   HParams(lr=1e-2, batch_size=8), 1,
                                                   device="cpu").history)  # fmt: skip


def test_physics_only_training_reads_no_labels(problem):
    """data_weight=0 trains on the equation alone: no y_train needed, NaN labels change
    nothing. Measured residual 5.62 -> 1.01 over 40 epochs (lr 1e-2)."""
    hp = HParams(lr=1e-2, batch_size=8, loss="pino", data_weight=0)
    base = TrainData.from_problem(problem, hp)
    xt = problem.dataset("test")[0]
    runs = []
    for labels in (None, torch.full_like(base.y_train, math.nan)):
        data = TrainData(base.x_train, labels, base.x_val, base.y_val, physics=base.physics)
        m = model()
        fit(m, data, hp, 40, device="cpu")
        runs.append(m)
    for p, q in zip(runs[0].parameters(), runs[1].parameters(), strict=True):
        assert torch.equal(p, q)
    assert evaluate_physics(runs[0], xt, problem.physics) < 1.5
    with pytest.raises(TransferTuneError, match="training labels are missing"):
        fit(model(), TrainData(base.x_train, None), HParams(lr=1e-2, batch_size=8), 1)


def test_residual_on_a_finer_grid(problem):
    """physics_resolution: the same samples' inputs on a finer grid, where the residual is
    evaluated (the data loss stays on the training grid)."""
    fine = get_problem("darcy", **{**DARCY, "resolution": 9})  # coarse data ...
    hp = HParams(lr=1e-2, batch_size=8, loss="pino", physics_weight=0.1, physics_resolution=17)
    data = TrainData.from_problem(fine, hp)  # ... fine physics
    assert tuple(data.x_train.shape[2:]) == (9, 9) and tuple(data.x_physics.shape[2:]) == (17, 17)
    # the same samples, in the coarse problem's encoding: every other node of the fine inputs
    torch.testing.assert_close(data.x_train, data.x_physics[:, :, ::2, ::2], rtol=0, atol=1e-6)
    raw = fine.normalizers.x.decode(data.x_physics)
    torch.testing.assert_close(
        raw, problem.dataset("train", normalized=False)[0], atol=1e-5, rtol=0
    )
    result = fit(model(modes=4), data, hp, 2, device="cpu")
    assert math.isfinite(result.history[-1].physics_loss)
    with pytest.raises(TransferTuneError, match="coarser than the training grid"):
        TrainData.from_problem(problem, HParams(loss="pino", physics_resolution=9))


def test_pino_needs_a_problem_with_a_residual(tmp_path):
    burgers = get_problem("burgers", resolution=16, n_train=8, n_val=2, n_test=2, n_fine=64)
    with pytest.raises(TransferTuneError, match="defines no PDE residual.*burgers_time"):
        TrainData.from_problem(burgers, HParams(loss="pino"))
    with pytest.raises(TransferTuneError, match="defines no PDE residual"):
        tune(burgers, 4, n_trials=1, epochs=1, storage=str(tmp_path / "s.db"),
             train={"loss": "pino"}, **PROXY_MODEL)  # fmt: skip
    with pytest.raises(TransferTuneError, match="train={'loss': 'pino'}"):
        tune(burgers, 4, n_trials=1, epochs=1, storage=str(tmp_path / "s.db"),
             search_space={"physics_weight": {"low": 0.1, "high": 1.0}}, **PROXY_MODEL)  # fmt: skip
    assert not list(tmp_path.iterdir())  # refused before any study or data was written


def test_search_the_physics_weight_and_transfer_it_unchanged(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    problem = get_problem("darcy", **{**DARCY, "n_fine": 33})  # solved on 33: evaluable there
    study = tune(
        problem, 4, n_trials=3, epochs=1, storage=storage, study_name="pino",
        search_space={"batch_size": [8], "physics_weight": {"low": 0.01, "high": 10.0}},
        train={"loss": "pino"}, **PROXY_MODEL,
    )  # fmt: skip
    weights = [t.params["physics_weight"] for t in study.trials]
    assert len(weights) == 3 and all(0.01 <= w <= 10.0 for w in weights)
    dist = study.trials[0].distributions["physics_weight"]
    assert isinstance(dist, optuna.distributions.FloatDistribution) and dist.log
    plan = plan_transfer(study, 8, 1)
    best = study.best_trial.params["physics_weight"]
    assert plan.train["loss"] == "pino" and plan.train["physics_weight"] == best
    assert plan.hparams().physics_weight == best
    assert "loss weights transfer unchanged" in plan.table()
    result = run_target(plan, storage, seed=0, device="cpu", progress=False, eval_resolution=33)
    m = result.metrics
    assert 0 < m["test_residual"] < 100 and 0 < m["test_residual_fine"] < 100
    assert "test residual" in str(result)
    # the dashboard's note tells the loss and the residual
    from optuna_dashboard import get_note

    from transfer_tune.report import annotate_proxy_study

    annotate_proxy_study(storage, "pino", image_formats=())
    note = get_note(optuna.load_study(study_name="pino", storage=storage))
    assert "Loss: pino (data weight 1, physics weight" in note
    assert f"test residual {m['test_residual']:.4g}"[:16] in note


def test_spec_and_cli_take_the_loss(tmp_path, capsys):
    spec = tmp_path / "pino.toml"
    spec.write_text(
        """
[problem]
name = "darcy"
resolution = 17
n_fine = 17
n_train = 16
n_val = 4
n_test = 4

[model]
proxy_modes = 4
width = 8
n_layers = 2

[tune]
n_trials = 1
epochs = 1
study_name = "pino-cli"

[train]
loss = "pino"
physics_weight = 0.5

[search_space]
batch_size = [8]
"""
    )
    db = str(tmp_path / "s.db")
    args = ["tune", str(spec), "--storage", db, "--device", "cpu", "--physics-weight", "0.25"]
    assert main(args) == 0
    study = optuna.load_study(study_name="pino-cli", storage=f"sqlite:///{db}")
    assert study.user_attrs["train"] == {"loss": "pino", "physics_weight": 0.25}
    capsys.readouterr()
    assert main([*args[:-2], "--physics-weight", "-1", "--study-name", "other"]) == 2
    err = capsys.readouterr().err
    assert "physics_weight" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        main([*args[:-2], "--loss", "nonsense"])
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err


def test_old_training_states_still_resume():
    """States saved before the loss settings existed hold no such keys; default settings
    must fingerprint the same, and a PINO run differently."""
    old = _fingerprint(HParams(), 3, 0, 10)
    assert not {"loss", "data_weight", "physics_weight", "physics_resolution"} & set(old["hparams"])
    assert _fingerprint(HParams(loss="pino"), 3, 0, 10) != old


def test_a_coarse_proxy_with_fine_physics(tmp_path):
    """The README's pattern: the proxy's data on a coarse grid, its residual on the problem's
    own grid (physics_resolution); the target trains on the full grid, residual there."""
    storage = f"sqlite:///{tmp_path / 's.db'}"
    problem = get_problem("darcy", **DARCY)
    train = {"loss": "pino", "physics_weight": 0.1, "physics_resolution": 17}
    study = tune(problem, 2, n_trials=1, epochs=1, storage=storage, resolution=9,
                 search_space={"batch_size": [8]}, train=train, **PROXY_MODEL)  # fmt: skip
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    plan = plan_transfer(study, 4, 1)
    assert "residual on 17 points" in plan.table() and plan.proxy["resolution"] == 9
    # one proxy step also runs the fine grid: its FLOPs are in the step ratio
    from transfer_tune.core.flops import train_step_flops

    proxy_model = optuna.load_study(study_name=study.study_name, storage=storage).user_attrs
    config, batch = proxy_model["model"], plan.batch_size
    proxy_step = train_step_flops(config, (9, 9), batch) + train_step_flops(config, (17, 17), batch)
    target_step = train_step_flops(plan.model, (17, 17), batch)  # its residual is on its grid
    assert plan.step_flop_ratio == pytest.approx(proxy_step / target_step, rel=1e-12)
    result = run_target(plan, storage, seed=0, device="cpu", progress=False)
    assert result.metrics["resolution"] == 17 and 0 < result.metrics["test_residual"] < 100


def test_burgers_in_space_time_trains_physics_informed():
    """A 2-D FNO on (x, t): PINO at weight 0.1 lowers the residual of a fresh model.
    Measured over 15 epochs: residual 2.96 -> 0.48, test rel-L2 1.08 -> 0.073."""
    problem = get_problem("burgers_time", resolution=16, n_train=32, n_val=8, n_test=8)
    xt, yt = problem.dataset("test")
    hp = HParams(lr=1e-2, batch_size=8, loss="pino", physics_weight=0.1)
    m = FNO(dim=2, modes=4, width=16, n_layers=3, in_channels=2, out_channels=1)
    get_parametrization("sp", base_modes=4).initialize(m, torch.Generator().manual_seed(0))
    before = evaluate_physics(m, xt, problem.physics), evaluate(m, xt, yt)
    fit(m, TrainData.from_problem(problem, hp), hp, 15, device="cpu")
    after = evaluate_physics(m, xt, problem.physics), evaluate(m, xt, yt)
    assert after[0] < before[0] / 4 and after[1] < before[1] / 5, (before, after)


def test_a_landscape_over_the_physics_weight(tmp_path):
    """Sweeps take the PINO loss from hparams and can sweep its weight (log scale)."""
    from transfer_tune.analysis.landscape import sweep

    result = sweep(
        "darcy", [4], param="physics_weight", values=[0.01, 1.0], parametrizations=["mup"],
        seeds=[0], epochs=2, storage=str(tmp_path / "s.db"), width=8, n_layers=2,
        hparams={"loss": "pino", "lr": 1e-2, "batch_size": 8}, problem_overrides=DARCY,
        device="cpu", progress=False,
    )  # fmt: skip
    rows = sorted(result.rows, key=lambda r: r.point["physics_weight"])
    assert [r.point["physics_weight"] for r in rows] == [0.01, 1.0]
    assert all(math.isfinite(r.test_loss) for r in rows)
    assert rows[0].test_loss != rows[1].test_loss  # the weight changes the run


def test_compute_counts_the_fine_physics_passes():
    from transfer_tune.core.flops import TrialEpochs, train_step_flops
    from transfer_tune.search.compute import fine_physics_flops

    config = dict(dim=2, modes=4, width=8, n_layers=2, in_channels=1, out_channels=1)
    runs = [TrialEpochs(8, 2), TrialEpochs(8, 1)]
    fine = {"loss": "pino", "physics_resolution": 17}
    extra = fine_physics_flops(fine, config, (9, 9), 16, runs)
    assert extra == 3 * train_step_flops(config, (17, 17), 16) > 0
    assert fine_physics_flops({"loss": "pino"}, config, (9, 9), 16, runs) == 0.0
    assert fine_physics_flops({"physics_resolution": 17}, config, (9, 9), 16, runs) == 0.0
    assert fine_physics_flops(fine, config, (17, 17), 16, runs) == 0.0  # the grid itself
