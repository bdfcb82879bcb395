"""µP on neuraloperator 2.0's FNO: roles by name, K mapped, exact rates and init, the workflow."""

import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from tests.sizes import TINY_BURGERS
from transfer_tune.core.adapters import model_roles, modes_of, neuralop_modes, neuralop_n_modes
from transfer_tune.core.factory import build_model, model_config
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.errors import TransferTuneError

neuralop = pytest.importorskip("neuralop")
from neuralop.models import FNO as NeuralopFNO  # noqa: E402


def nl_fno(n_modes, width=8, n_layers=2, seed=0, **kwargs):
    torch.manual_seed(seed)
    return NeuralopFNO(
        n_modes=n_modes,
        in_channels=1,
        out_channels=1,
        hidden_channels=width,
        n_layers=n_layers,
        **kwargs,
    )


def test_k_mapping_is_m_floordiv_2_plus_1_on_every_axis():
    assert neuralop_modes((16,)) == 9  # rfft frequencies 0..8 on the last axis
    assert neuralop_modes((16, 16)) == 9  # rows -8..7 on the first axis, 0..8 on the last
    assert neuralop_modes((15, 15)) == 8  # odd M: exactly transfer-tune's K = 8 (15 x 8)
    assert neuralop_n_modes(9, 2) == (16, 16)
    for k in (2, 5, 9):
        for d in (1, 2, 3):
            assert neuralop_modes(neuralop_n_modes(k, d)) == k
    with pytest.raises(TransferTuneError, match="one K for every axis"):
        neuralop_modes((16, 12))
    with pytest.raises(TransferTuneError, match="ln K"):
        neuralop_modes((1,))
    # what neuraloperator keeps on the last axis is K columns of the rfft
    model = nl_fno((16, 16), n_layers=1)
    assert model.fno_blocks.convs[0].weight.shape[-2:] == (16, 9)
    assert modes_of(model) == 9


def test_roles_are_read_by_name():
    model = nl_fno((8,), n_layers=2)
    roles = model_roles(model).roles
    assert roles["fno_blocks.convs.0.weight.tensor"] == "spectral"
    assert roles["fno_blocks.convs.1.weight.tensor"] == "spectral"
    assert roles["fno_blocks.convs.0.bias"] == "bias"
    assert roles["lifting.fcs.0.weight"] == "lifting"
    assert roles["projection.fcs.1.weight"] == "projection"
    assert roles["projection.fcs.1.bias"] == "bias"
    assert roles["fno_blocks.fno_skips.0.conv.weight"] == "pointwise"
    assert roles["fno_blocks.channel_mlp.1.fcs.0.weight"] == "pointwise"
    assert roles["fno_blocks.channel_mlp_skips.0.weight"] == "scale"  # soft gating (1, C, 1)
    assert [n for n, r in roles.items() if r == "spectral"] == [
        "fno_blocks.convs.0.weight.tensor",
        "fno_blocks.convs.1.weight.tensor",
    ]
    # other options map too: group norm, linear channel-MLP skips, soft-gating FNO skips
    other = nl_fno((6, 6), norm="group_norm", channel_mlp_skip="linear", fno_skip="soft-gating")
    assert model_roles(other).roles["fno_blocks.norm.1.bias"] == "bias"
    other.extra = nn.Parameter(torch.zeros(3))
    with pytest.raises(TransferTuneError, match="'extra' has no role"):
        model_roles(other)


@pytest.mark.parametrize("n_modes", [(32,), (12, 12)])
def test_group_rates_equal_the_formula(n_modes):
    lr, k_base = 3e-3, 3
    model = nl_fno(n_modes)
    k = modes_of(model)
    mup = get_parametrization("mup", base_modes=k_base)
    groups = {g["role"]: g for g in mup.param_groups(model, lr, betas=(0.9, 0.99))}
    expected = lr * math.sqrt(math.log(k_base) / math.log(k))
    assert abs(groups["spectral"]["lr"] - expected) <= 1e-12 * lr
    for role in ("lifting", "pointwise", "projection", "bias"):
        assert groups[role]["lr"] == lr and groups[role]["lr_multiplier"] == 1.0
    grouped = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # each exactly once
    spectral = {id(p) for p in groups["spectral"]["params"]}
    assert spectral == {id(c.weight.tensor) for c in model.fno_blocks.convs}


def test_init_std_ratio_is_exact_and_other_parameters_keep_their_init():
    k_base = 3
    sp_model, mu_model = nl_fno((16,), seed=1), nl_fno((16,), seed=1)
    before = {n: p.detach().clone() for n, p in mu_model.named_parameters()}
    get_parametrization("sp", base_modes=k_base).initialize(
        sp_model, torch.Generator().manual_seed(0)
    )
    get_parametrization("mup", base_modes=k_base).initialize(
        mu_model, torch.Generator().manual_seed(0)
    )
    ratio = math.sqrt(math.log(k_base) / math.log(9))  # c(K) / c(K_base), K = 9
    for (name, a), (_, b) in zip(
        sp_model.named_parameters(), mu_model.named_parameters(), strict=True
    ):
        if name.endswith("weight.tensor"):
            assert torch.allclose(b, a * ratio, rtol=1e-6, atol=0)
            assert not torch.equal(b, before[name])
        else:  # neuraloperator's own init, untouched
            assert torch.equal(a, before[name]) and torch.equal(b, before[name])


def test_init_std_on_a_large_weight_and_sp_equals_mup_at_base():
    model = nl_fno((64,), width=32, n_layers=1)  # K = 33: 32 x 32 x 33 complex entries
    mup = get_parametrization("mup", base_modes=4)
    mup.initialize(model, torch.Generator().manual_seed(0))
    w = model.fno_blocks.convs[0].weight.tensor.detach()
    expected = math.sqrt(2 / 64) * math.sqrt(math.log(4) / math.log(33))
    assert abs(w.abs().pow(2).mean().sqrt().item() / expected - 1) < 0.02
    rows = {r.name: r for r in mup.table(model)}
    assert abs(rows["fno_blocks.convs.0.weight.tensor"].init_std - expected) < 1e-12
    assert rows["lifting.fcs.0.weight"].init_std is None  # kept
    a, b = nl_fno((8,), seed=2), nl_fno((8,), seed=2)
    get_parametrization("sp", base_modes=5).initialize(a, torch.Generator().manual_seed(3))
    get_parametrization("mup", base_modes=5).initialize(b, torch.Generator().manual_seed(3))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("factorization", ["tucker", "cp", "tt"])
def test_factorized_spectral_weights_are_refused(factorization):
    model = nl_fno((8, 8), factorization=factorization, rank=0.5)
    mup = get_parametrization("mup", base_modes=3)
    with pytest.raises(TransferTuneError, match="factorization=None"):
        mup.param_groups(model, 1e-3)
    with pytest.raises(TransferTuneError, match="factorization=None"):
        mup.initialize(model)
    dense = nl_fno((8, 8), factorization="dense")
    assert model_roles(dense).modes == 5


def test_other_refusals():
    with pytest.raises(TransferTuneError, match="max_n_modes"):
        model_roles(nl_fno((8,), max_n_modes=(12,)))


def test_model_config_round_trip_and_factories(monkeypatch):
    shape = dict(dim=1, modes=5, width=8, n_layers=2, in_channels=1, out_channels=1)
    config = model_config("neuralop", **shape)
    assert config["kind"] == "neuralop" and config["modes"] == 5
    model = build_model(config, seed=4)
    assert isinstance(model, NeuralopFNO) and tuple(model.n_modes) == (8,)
    again = build_model(config, seed=4)
    assert all(
        torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters(), strict=True)
    )
    assert build_model({**config, "modes": 9}).n_modes == (16,)
    path = model_config("transfer_tune.core.model:FNO", **shape)
    assert path["kind"] == "factory" and type(build_model(path)).__name__ == "FNO"
    from transfer_tune.core.model import FNO

    assert model_config(FNO, **shape)["factory"] == "transfer_tune.core.model:FNO"
    with pytest.raises(TransferTuneError, match="module level"):
        model_config(lambda **kw: FNO(**kw), **shape)
    with pytest.raises(TransferTuneError, match="unknown model"):
        model_config("resnet", **shape)
    with pytest.raises(TransferTuneError, match="not allowed"):  # a path must be allowed
        model_config("no_such_module:make", **shape)
    monkeypatch.setenv("TRANSFER_TUNE_ALLOW_MODELS", "no_such_module:make")
    with pytest.raises(TransferTuneError, match="cannot import"):
        model_config("no_such_module:make", **shape)


def test_missing_extra_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "neuralop", None)
    monkeypatch.setitem(sys.modules, "neuralop.models", None)
    from transfer_tune.search.tune import tune

    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(TransferTuneError, match=r'pip install "transfer-tune\[neuralop\]"'):
        tune(
            "burgers",
            4,
            n_trials=1,
            storage=url,
            problem_overrides=TINY_BURGERS,
            search_space={"batch_size": [8]},
            model="neuralop",
            progress=False,
            device="cpu",
        )
    import optuna

    assert not optuna.get_all_study_summaries(url)  # refused before any study


RELOAD = """
import sys, torch
from transfer_tune.search.transfer import transfer
plan, target = transfer("nl", 6, sys.argv[1], epochs=1, device="cpu", progress=False)
ckpt = torch.load(target.checkpoint, map_location="cpu", weights_only=True)
print(type(ckpt["model_state"]).__name__, ckpt["model_config"]["kind"], plan.modes)
"""


@pytest.mark.subprocess
def test_one_call_workflow_on_neuralop(tmp_path):
    from transfer_tune.api import tune_then_transfer
    from transfer_tune.search.transfer import load_checkpoint, physical_error

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    result = tune_then_transfer(
        "burgers",
        proxy_modes=4,
        target_modes=12,
        width=8,
        n_layers=2,
        n_trials=2,
        proxy_epochs=2,
        target_epochs=2,
        storage=url,
        study_name="nl",
        device="cpu",
        problem_overrides=TINY_BURGERS,
        search_space={"batch_size": [8, 16]},
        progress=False,
        model="neuralop",
    )
    assert result.study.user_attrs["model"]["kind"] == "neuralop"
    groups = {g.role: g for g in result.target_plan.groups}
    lr = result.proxy_params["lr"]
    assert abs(groups["spectral"].lr - lr * math.sqrt(math.log(4) / math.log(12))) <= 1e-12 * lr
    metrics = result.target.metrics
    assert 0 < metrics["test_l2"] < 2 and 0 < metrics["test_l2_fine"] < 2
    # the checkpoint reads with weights_only and reloads into a neuraloperator FNO
    raw = torch.load(result.target.checkpoint, map_location="cpu", weights_only=True)
    assert "fno_blocks.convs.0.weight.tensor" in raw["model_state"]
    ckpt = load_checkpoint(result.target.checkpoint)
    model = build_model(ckpt["model_config"])
    assert isinstance(model, NeuralopFNO) and modes_of(model) == 12
    model.load_state_dict(ckpt["model_state"])
    from pdes import load_problem

    problem = load_problem(ckpt["problem"])
    xt, yt = problem.dataset("test")
    assert abs(physical_error(model, problem, xt, yt) - metrics["test_l2"]) < 1e-6
    # transfer in another process rebuilds the neuraloperator model from the study alone
    proc = subprocess.run(
        [sys.executable, "-c", RELOAD, url], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["dict", "neuralop", "6"]
