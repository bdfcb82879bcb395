"""The µP table: exact rates and init scales, and µP == SP at K = K_base."""

import math

import pytest
import torch
from torch import nn

from transfer_tune.core.hparams import HParams
from transfer_tune.core.model import FNO
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.core.train import _schedule
from transfer_tune.errors import TransferTuneError


def build(modes, kind, base, dim=1, width=8, seed=0):
    model = FNO(dim=dim, modes=modes, width=width, n_layers=3)
    par = get_parametrization(kind, base_modes=base)
    par.initialize(model, generator=torch.Generator().manual_seed(seed))
    return model, par


@pytest.mark.parametrize("dim", [1, 2])
def test_mup_equals_sp_bit_for_bit_at_base(dim):
    m_sp, sp = build(6, "sp", 6, dim)
    m_mu, mu = build(6, "mup", 6, dim)
    for (name, a), (_, b) in zip(m_sp.named_parameters(), m_mu.named_parameters(), strict=True):
        assert torch.equal(a, b), name
    g_sp = {g["role"]: g["lr"] for g in sp.param_groups(m_sp, 3e-3)}
    g_mu = {g["role"]: g["lr"] for g in mu.param_groups(m_mu, 3e-3)}
    assert g_sp == g_mu


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_group_learning_rates_equal_the_formula(dim):
    lr = 2.5e-3
    model = FNO(dim=dim, modes=64 if dim == 1 else 5, width=4, n_layers=2)
    k = model.modes
    mup = get_parametrization("mup", base_modes=4)
    groups = {g["role"]: g for g in mup.param_groups(model, lr, betas=(0.9, 0.98))}
    expected = lr * math.sqrt(math.log(4) / math.log(k))  # d cancels in c(K) / c(K_base)
    assert abs(groups["spectral"]["lr"] - expected) < 1e-12 * lr
    for role in ("lifting", "pointwise", "projection", "bias"):
        assert groups[role]["lr"] == lr
        assert groups[role]["lr_multiplier"] == 1.0
    assert groups["spectral"]["betas"] == (0.9, 0.98)
    sp = get_parametrization("sp", base_modes=4)
    assert {g["lr"] for g in sp.param_groups(model, lr)} == {lr}


def test_issue_example_k64_d1():
    mup = get_parametrization("mup", base_modes=4)
    rates = mup.learning_rates(64, dim=1, lr=1.0)
    assert abs(rates["spectral"] - math.sqrt(math.log(4) / math.log(64))) < 1e-12
    assert abs(rates["spectral"] ** 2 - 1 / 3) < 1e-12


def test_init_std_table_and_empirical_scale():
    model, mup = build(64, "mup", 4, width=32)
    rows = {r.name: r for r in mup.table(model)}
    spec = rows["layers.0.spectral.weight"]
    expected = math.sqrt(2 / 64) * math.sqrt(math.log(4) / math.log(64))
    assert abs(spec.init_std - expected) < 1e-12
    assert rows["layers.0.pointwise.weight"].init_std == 1 / math.sqrt(32)
    assert rows["layers.0.pointwise.bias"].init_std == 0.0
    # the drawn weights have that std: E|z|^2 = std^2 (64 * 32 * 32 complex draws)
    w = model.layers[0].spectral.weight.detach()
    measured = w.abs().pow(2).mean().sqrt().item()
    assert abs(measured / expected - 1) < 0.02
    assert model.layers[0].pointwise.bias.abs().max() == 0


def test_same_seed_same_model_different_seed_different_model():
    a, _ = build(8, "mup", 4, seed=1)
    b, _ = build(8, "mup", 4, seed=1)
    c, _ = build(8, "mup", 4, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.layers[0].spectral.weight, c.layers[0].spectral.weight)


def test_schedules_keep_every_groups_multiplier():
    model = FNO(dim=1, modes=32, width=4, n_layers=2)
    mup = get_parametrization("mup", base_modes=4)
    opt = torch.optim.Adam(mup.param_groups(model, 1e-2))
    for schedule in ("cosine", "step"):
        hp = HParams(schedule=schedule, step_size=1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(hp, 5, 4))
        for _ in range(7):
            opt.step()
            sched.step()
        lrs = {g["role"]: g["lr"] for g in opt.param_groups}
        ratio = lrs["spectral"] / lrs["pointwise"]
        assert lrs["pointwise"] < 1e-2
        assert abs(ratio - math.sqrt(math.log(4) / math.log(32))) < 1e-12


def test_rule_round_trips_as_plain_data():
    mup = get_parametrization("mup", base_modes=4, spectral_std=0.5)
    data = mup.to_dict()
    assert data == {"kind": "mup", "base_modes": 4, "spectral_std": 0.5}
    assert type(mup).from_dict(data) == mup


def test_bad_arguments_raise_our_error():
    with pytest.raises(TransferTuneError, match="unknown parametrization"):
        get_parametrization("ntk", base_modes=4)
    with pytest.raises(TransferTuneError, match="ln K"):
        get_parametrization("mup", base_modes=1)
    mup = get_parametrization("mup", base_modes=4)
    with pytest.raises(TransferTuneError, match=">= 2"):
        mup.spectral_multiplier(1, dim=1)
    model = FNO(dim=1, modes=4, width=2, n_layers=1)
    with pytest.raises(TransferTuneError, match="learning rate"):
        mup.param_groups(model, -1.0)
    model.extra = nn.Parameter(torch.zeros(3))
    with pytest.raises(TransferTuneError, match="without a role"):
        mup.param_groups(model, 1e-3)
    with pytest.raises(TransferTuneError, match="param_roles"):
        mup.param_groups(nn.Linear(2, 2), 1e-3)


class Kernel(nn.Module):
    """A user's spectral layer: a complex weight per kept mode, owned by a module that says
    its channels (in_channels / out_channels), so the default init std is known."""

    def __init__(self, channels, n_modes):
        super().__init__()
        self.in_channels = self.out_channels = channels
        self.kernel = nn.Parameter(torch.zeros(n_modes, channels, channels, dtype=torch.cfloat))


class MyOperator(nn.Module):
    """Not an FNO of ours: a lifting, two spectral kernels, a mixer and a head."""

    def __init__(self, modes=16, channels=8):
        super().__init__()
        self.up = nn.Linear(1, channels)
        self.blocks = nn.ModuleList(Kernel(channels, modes) for _ in range(2))
        self.mix = nn.Linear(channels, channels)
        self.head = nn.Linear(channels, 1, bias=False)


def test_custom_module_with_named_spectral_weights():
    torch.manual_seed(0)
    model = MyOperator()
    by_predicate = lambda name: name.endswith(".kernel")  # noqa: E731
    by_mapping = {
        "blocks.0.kernel": "spectral",
        "blocks.1.kernel": "spectral",
        "up.weight": "lifting",
    }
    mup = get_parametrization("mup", base_modes=4)
    lr, k = 1e-3, 16
    expected = math.sqrt(math.log(4) / math.log(k))
    for roles in (by_predicate, by_mapping):
        spec = mup.roles(model, roles, modes=k, dim=1)
        assert [n for n, r in spec.roles.items() if r == "spectral"] == [
            "blocks.0.kernel",
            "blocks.1.kernel",
        ]
        assert spec.roles["mix.bias"] == "bias" and spec.roles["head.weight"] in (
            "pointwise",
            "lifting",
        )
        groups = {g["role"]: g for g in mup.param_groups(model, lr, roles=roles, modes=k, dim=1)}
        assert abs(groups["spectral"]["lr"] - lr * expected) <= 1e-12 * lr
        assert all(g["lr"] == lr for r, g in groups.items() if r != "spectral")
    # the spectral weights are drawn at the µP std, every other parameter keeps its own init
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    mup.initialize(model, torch.Generator().manual_seed(0), roles=by_predicate, modes=k, dim=1)
    std = math.sqrt(2 / 16) * expected
    rows = {r.name: r for r in mup.table(model, by_predicate, modes=k, dim=1)}
    assert (
        abs(rows["blocks.0.kernel"].init_std - std) < 1e-12 and rows["up.weight"].init_std is None
    )
    for name, p in model.named_parameters():
        if name.startswith("blocks"):
            assert not torch.equal(p, before[name])
        else:
            assert torch.equal(p, before[name]), name
    # the same seed under SP gives the same draw, scaled by c(K) / c(K_base) exactly
    twin = MyOperator()
    get_parametrization("sp", base_modes=4).initialize(
        twin, torch.Generator().manual_seed(0), roles=by_predicate, modes=k, dim=1
    )
    assert torch.allclose(model.blocks[0].kernel, twin.blocks[0].kernel * expected, rtol=1e-6)


def test_a_module_may_declare_its_own_roles():
    class Declared(MyOperator):
        modes, dim = 16, 1

        def param_roles(self):
            return {"blocks.0.kernel": "spectral", "blocks.1.kernel": "spectral"}

    groups = get_parametrization("mup", base_modes=4).param_groups(Declared(), 1e-3)
    assert {g["role"] for g in groups} == {"spectral", "pointwise", "bias"}


def test_custom_module_mistakes_are_clear():
    model, mup = MyOperator(), get_parametrization("mup", base_modes=4)
    with pytest.raises(TransferTuneError, match="param_roles"):
        mup.param_groups(model, 1e-3)
    with pytest.raises(TransferTuneError, match="modes=K"):
        mup.param_groups(model, 1e-3, roles=lambda n: "kernel" in n)
    with pytest.raises(TransferTuneError, match="no parameter .* is named spectral"):
        mup.param_groups(model, 1e-3, roles=lambda n: False, modes=16, dim=1)
    with pytest.raises(TransferTuneError, match="does not have"):
        mup.param_groups(model, 1e-3, roles={"blocks.9.kernel": "spectral"}, modes=16, dim=1)
    with pytest.raises(TransferTuneError, match="unknown role"):
        mup.param_groups(model, 1e-3, roles={"blocks.0.kernel": "fourier"}, modes=16, dim=1)
    with pytest.raises(TransferTuneError, match="ln K|>= 2"):
        mup.param_groups(model, 1e-3, roles=lambda n: "kernel" in n, modes=1, dim=1)
    # a spectral weight whose module does not say its channels needs spectral_std
    bare = nn.Module()
    bare.w = nn.Parameter(torch.zeros(4, 2, 2, dtype=torch.cfloat))
    with pytest.raises(TransferTuneError, match="spectral_std"):
        mup.initialize(bare, roles={"w": "spectral"}, modes=4, dim=1)
    get_parametrization("mup", base_modes=4, spectral_std=0.5).initialize(
        bare, roles={"w": "spectral"}, modes=4, dim=1
    )
    assert bare.w.abs().max() > 0
