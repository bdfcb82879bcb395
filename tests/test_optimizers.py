"""Adam and AdamW under µP: the decoupled weight-decay rule, exact per group; searchable wd."""

import math

import optuna
import pytest
import torch

from tests.sizes import TINY_BURGERS
from tests.synthetic import operator_task
from transfer_tune.core.hparams import HParams, make_optimizer
from transfer_tune.core.model import FNO
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.core.train import TrainData, fit
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.search_space import SearchSpace


def fno(modes=32, seed=0):
    model = FNO(dim=1, modes=modes, width=4, n_layers=2)
    get_parametrization("mup", base_modes=4).initialize(model, torch.Generator().manual_seed(seed))
    return model


def test_optimizer_choice_and_validation():
    assert HParams().optimizer == "adam"
    assert isinstance(make_optimizer(fno(), HParams()), torch.optim.Adam)
    assert isinstance(make_optimizer(fno(), HParams(optimizer="adamw")), torch.optim.AdamW)
    with pytest.raises(TransferTuneError, match="adam, adamw"):
        HParams(optimizer="sgd")


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_each_groups_lr_and_weight_decay_equal_the_rule(optimizer):
    lr, wd, k_base, k = 2e-3, 0.05, 4, 32
    model = fno(k)
    mup = get_parametrization("mup", base_modes=k_base)
    opt = make_optimizer(model, HParams(lr=lr, weight_decay=wd, optimizer=optimizer), mup)
    m = math.sqrt(math.log(k_base) / math.log(k))
    for group in opt.param_groups:
        mult = m if group["role"] == "spectral" else 1.0
        assert abs(group["lr"] - lr * mult) <= 1e-12 * lr
        if optimizer == "adamw":  # decoupled: wd / multiplier, so lr_g * wd_g = lr * wd
            assert abs(group["weight_decay"] - wd / mult) <= 1e-12 * wd / mult
            assert abs(group["lr"] * group["weight_decay"] - lr * wd) <= 1e-12 * lr * wd
        else:  # L2 penalty, part of the loss: the same in every group
            assert group["weight_decay"] == wd


def test_adamw_decays_every_tensor_by_the_same_fraction_per_step():
    """With zero gradients one AdamW step only decays: p <- p (1 - lr_g wd_g) = p (1 - lr wd)."""
    lr, wd = 1e-2, 0.5
    model = fno(32)
    mup = get_parametrization("mup", base_modes=4)
    opt = make_optimizer(model, HParams(lr=lr, weight_decay=wd, optimizer="adamw"), mup)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, p in model.named_parameters():
        assert torch.allclose(p.detach(), before[name] * (1 - lr * wd), rtol=1e-6, atol=0), name


def test_adamw_trains_and_mup_equals_sp_at_base():
    x, y = operator_task(16, 32, 0)
    data = TrainData(x, y, x[:4], y[:4])
    hp = HParams(lr=3e-3, batch_size=8, weight_decay=1e-2, optimizer="adamw")
    runs = []
    for kind in ("sp", "mup"):
        model = FNO(dim=1, modes=8, width=4, n_layers=2)
        par = get_parametrization(kind, base_modes=8)
        par.initialize(model, torch.Generator().manual_seed(0))
        runs.append(fit(model, data, hp, 2, parametrization=par, device="cpu").train_loss)
    assert runs[0] == runs[1] and math.isfinite(runs[0])


def test_weight_decay_in_the_search_space():
    default = SearchSpace.default()
    assert default.weight_decay.unset and "weight_decay" not in default.to_dict()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    assert "weight_decay" not in default.suggest(trial)
    space = SearchSpace.from_dict({"weight_decay": {"low": 1e-6, "high": 1e-2}})
    assert space.weight_decay.log  # log-uniform by default
    assert SearchSpace.from_dict(space.to_dict()) == space
    for _ in range(10):
        trial = study.ask()
        values = space.suggest(trial)
        assert 1e-6 <= values["weight_decay"] <= 1e-2
        assert space.values_from_params(trial.params) == values
        HParams(**values)
        study.tell(trial, 0.0)
    assert SearchSpace.from_dict({"weight_decay": 0}).suggest(study.ask())["weight_decay"] == 0
    with pytest.raises(TransferTuneError, match="low > 0"):
        SearchSpace.from_dict({"weight_decay": {"low": 0.0, "high": 1e-2}})


def test_searched_weight_decay_reaches_the_target_plan(tmp_path):
    from transfer_tune.search.transfer import plan_transfer
    from transfer_tune.search.tune import tune

    url = f"sqlite:///{tmp_path / 's.db'}"
    common = dict(
        storage=url,
        problem_overrides=TINY_BURGERS,
        width=4,
        n_layers=1,
        epochs=1,
        device="cpu",
        progress=False,
    )
    space = {"batch_size": [16], "weight_decay": {"low": 1e-4, "high": 1e-1}}
    with pytest.raises(TransferTuneError, match="both in train"):
        tune("burgers", 4, n_trials=1, search_space=space, train={"weight_decay": 0.1}, **common)
    study = tune(
        "burgers",
        4,
        n_trials=2,
        search_space=space,
        train={"optimizer": "adamw"},
        study_name="wd",
        **common,
    )
    plan = plan_transfer(study, 16)
    wd = study.best_trial.params["weight_decay"]
    assert plan.train == {"optimizer": "adamw", "weight_decay": wd}
    assert plan.hparams().weight_decay == wd and plan.hparams().optimizer == "adamw"
    m = math.sqrt(math.log(4) / math.log(16))
    groups = {g.role: g for g in plan.groups}
    assert abs(groups["spectral"].weight_decay - wd / m) <= 1e-12 * wd / m
    assert groups["pointwise"].weight_decay == wd
    assert all(
        abs(g.lr * g.weight_decay - plan.lr * wd) <= 1e-12 * plan.lr * wd for g in groups.values()
    )
