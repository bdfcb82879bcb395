"""µP over width: the table against its formulas, the base-shape reading, mup as a reference."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from transfer_tune.core.adapters import model_roles
from transfer_tune.core.base_shapes import base_shapes, width_ratios
from transfer_tune.core.model import FNO
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.errors import TransferTuneError


def c(k: int, d: int) -> float:
    return 1.0 / math.sqrt(d * math.log(k))


def fno(width: int, modes: int = 4, projection_width: int = 32, **kw) -> FNO:
    return FNO(dim=2, modes=modes, width=width, n_layers=2, projection_width=projection_width, **kw)


def rows_of(par, model):
    return {row.name: row for row in par.table(model)}


def test_width_table_of_transfer_tune_fno_matches_the_formulas():
    """Width 8 -> 32 (r = 4), K 4 -> 6, d = 2, projection width fixed: every row by hand."""
    proxy, target = fno(8), fno(32, modes=6)
    mup = get_parametrization("mup", base_modes=4, base_shapes=proxy)
    rows = rows_of(mup, target)
    k = c(6, 2) / c(4, 2)
    expected = {  # name: (width class, init std, lr multiplier)
        "lifting.weight": ("input", 1 / math.sqrt(3), 1.0),  # 1 channel + 2 coordinates
        "lifting.bias": ("input", 0.0, 1.0),
        "layers.0.spectral.weight": ("hidden", math.sqrt(2 / 64) * k, k / 4),
        "layers.1.pointwise.weight": ("hidden", 1 / math.sqrt(32), 1 / 4),
        "layers.1.pointwise.bias": ("input", 0.0, 1.0),
        "projection1.weight": ("output", 1 / math.sqrt(32) / 2, 1 / 4),  # readout: r^-1/2
        "projection1.bias": ("fixed", 0.0, 1.0),
        "projection2.weight": ("fixed", 1 / math.sqrt(32), 1.0),
    }
    for name, (width, std, lr) in expected.items():
        row = rows[name]
        assert row.width == width, name
        assert abs(row.init_std - std) < 1e-12, name
        assert abs(row.lr_multiplier - lr) < 1e-12, name
    # SP at the same shapes: no width factor anywhere, K factor absent too
    sp = rows_of(get_parametrization("sp", base_modes=4, base_shapes=proxy), target)
    assert all(r.lr_multiplier == 1.0 and r.init_multiplier == 1.0 for r in sp.values())


def test_a_growing_projection_makes_the_last_layer_the_readout():
    proxy, target = fno(8, projection_width=16), fno(32, projection_width=64)
    rows = rows_of(get_parametrization("mup", base_modes=4, base_shapes=proxy), target)
    assert rows["projection1.weight"].width == "hidden"
    assert rows["projection1.weight"].lr_multiplier == pytest.approx(1 / 4, abs=1e-12)
    assert rows["projection1.weight"].init_multiplier == 1.0
    assert rows["projection2.weight"].width == "output"  # (1, 64): fan-in 16 -> 64
    assert abs(rows["projection2.weight"].init_std - 1 / 8 / 2) < 1e-12
    assert abs(rows["projection2.weight"].lr_multiplier - 1 / 4) < 1e-12


def test_non_power_of_two_ratio():
    proxy, target = fno(16), fno(24)
    rows = rows_of(get_parametrization("mup", base_modes=4, base_shapes=proxy), target)
    assert abs(rows["layers.0.pointwise.weight"].lr_multiplier - 16 / 24) < 1e-12
    assert abs(rows["projection1.weight"].init_multiplier - math.sqrt(16 / 24)) < 1e-12


def test_at_the_base_width_mup_is_sp_bit_for_bit():
    proxy = fno(8)
    mup = get_parametrization("mup", base_modes=4, base_shapes=proxy)
    sp = get_parametrization("sp", base_modes=4)
    a, b = fno(8), fno(8)
    mup.initialize(a, torch.Generator().manual_seed(3))
    sp.initialize(b, torch.Generator().manual_seed(3))
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name
    lrs = [g["lr"] for g in mup.param_groups(a, lr=0.01)]
    assert lrs == [g["lr"] for g in sp.param_groups(b, lr=0.01)]
    assert all(lr == 0.01 for lr in lrs)


def test_rule_with_base_shapes_round_trips_as_plain_data():
    mup = get_parametrization("mup", base_modes=4, base_shapes=fno(8))
    data = mup.to_dict()
    assert data["base_shapes"]["layers.0.spectral.weight"] == [8, 8]
    assert data["base_shapes"]["projection1.weight"] == [32, 8]
    assert type(mup).from_dict(data) == mup
    cal = get_parametrization("calibrated", base_modes=4, base_shapes=fno(8), lr_exponent=0.3)
    assert type(cal).from_dict(cal.to_dict()) == cal
    target = fno(32, modes=8)
    rows = rows_of(cal, target)
    k_lr = (math.log(4) / math.log(8)) ** 0.3
    assert abs(rows["layers.0.spectral.weight"].lr_multiplier - k_lr / 4) < 1e-12


def test_adamw_decay_per_step_is_the_proxys_in_every_group():
    mup = get_parametrization("mup", base_modes=4, base_shapes=fno(8))
    groups = mup.param_groups(fno(32, modes=6), 0.01, weight_decay=0.1, decoupled_weight_decay=True)
    assert len({(g["role"], g["width"]) for g in groups}) == len(groups) >= 6
    for g in groups:
        assert abs(g["lr"] * g["weight_decay"] - 0.01 * 0.1) < 1e-15
    adam = mup.param_groups(fno(32, modes=6), 0.01, weight_decay=0.1)
    assert all(g["weight_decay"] == 0.1 for g in adam)  # L2 is part of the loss


def test_shapes_that_cannot_transfer_are_clear_errors():
    mup = get_parametrization("mup", base_modes=4, base_shapes=fno(16))
    with pytest.raises(TransferTuneError, match="shrinks from the proxy"):
        mup.table(fno(8))
    with pytest.raises(TransferTuneError, match="same parameters"):
        mup.table(FNO(dim=2, modes=4, width=32, n_layers=3, projection_width=32))
    with pytest.raises(TransferTuneError, match="base_shapes must map"):
        get_parametrization("mup", base_modes=4, base_shapes={"w": [0]})
    with pytest.raises(TransferTuneError, match="base_shapes must map"):
        get_parametrization("mup", base_modes=4, base_shapes=[1, 2])


def test_kernel_dimensions_may_not_change():
    class Net(nn.Module):
        def __init__(self, width: int, kernel: int):
            super().__init__()
            self.in_channels = self.out_channels = width
            self.kernel = nn.Parameter(torch.zeros(4, width, width, dtype=torch.cfloat))
            self.conv = nn.Conv1d(width, width, kernel)

    spec = lambda m: model_roles(m, lambda n: n == "kernel", modes=4, dim=1)  # noqa: E731
    base = base_shapes(Net(8, 3), lambda n: n == "kernel", modes=4, dim=1)
    ratios = width_ratios(Net(16, 3), spec(Net(16, 3)), base)
    assert ratios["conv.weight"].kind == "hidden" and ratios["conv.bias"].kind == "input"
    assert ratios["kernel"].fan_in == 2.0
    with pytest.raises(TransferTuneError, match="only channel dimensions"):
        width_ratios(Net(16, 5), spec(Net(16, 5)), base)


class MuReadoutRef(nn.Module):
    """mup's ``MuReadout`` as its source defines it: ``W (x / r)``, W drawn at SP x sqrt(r)
    (``_rescale_parameters``), trained at the base rate (vector-like to ``MuAdam``)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, ratio: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = nn.Parameter(bias.detach().clone())
        self.ratio = ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = (x / self.ratio).movedim(1, -1)
        return F.linear(flat, self.weight, self.bias).movedim(-1, 1)


def test_init_and_rate_readout_trains_as_mureadout_with_muadam():
    """Our readout (std SP r^-1/2, lr / r) against mup's (W (x / r), std SP sqrt(r), base lr,
    hidden lr / r by MuAdam): the same function at init and after five Adam steps."""
    torch.manual_seed(0)
    r, lr = 4.0, 3e-3
    proxy, ours = fno(8, projection_width=16), fno(32, projection_width=16)
    mup = get_parametrization("mup", base_modes=4, base_shapes=proxy)
    mup.initialize(ours, torch.Generator().manual_seed(1))
    ref = copy.deepcopy(ours)
    # the same effective readout: W_ref / r == W_ours, so W_ref = W_ours * r has std
    # SP r^-1/2 * r = SP sqrt(r), mup's rescaled init
    ref.projection1 = MuReadoutRef(ours.projection1.weight * r, ours.projection1.bias, r)
    x, y = torch.randn(4, 1, 12, 12), torch.randn(4, 1, 12, 12)
    assert torch.allclose(ours(x), ref(x), rtol=1e-5, atol=1e-6)
    opt_ours = torch.optim.Adam(mup.param_groups(ours, lr), eps=1e-12)
    hidden = [p for n, p in ref.named_parameters() if p.dim() >= 2 and n.startswith("layers")]
    hidden_ids = {id(p) for p in hidden}
    vector = [p for p in ref.parameters() if id(p) not in hidden_ids]  # MuAdam: vector-like
    groups = [{"params": hidden, "lr": lr / r}, {"params": vector}]
    opt_ref = torch.optim.Adam(groups, lr=lr, eps=1e-12)
    for _ in range(5):
        for model, opt in ((ours, opt_ours), (ref, opt_ref)):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
    effective = ref.projection1.weight / r
    assert torch.allclose(ours.projection1.weight, effective, rtol=1e-4, atol=1e-7)
    assert torch.allclose(ours(x), ref(x), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(ours(x), fno(32, projection_width=16)(x))  # it did train


def test_width_rule_agrees_with_mup_base_shapes_and_muadam():
    mup_lib = pytest.importorskip("mup")
    proxy, target = fno(8), fno(32)
    ours = rows_of(get_parametrization("mup", base_modes=4, base_shapes=proxy), target)
    mup_lib.set_base_shapes(target, proxy, rescale_params=False)
    groups = mup_lib.MuAdam(target.parameters(), lr=1.0).param_groups
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    for name, param in target.named_parameters():
        row, shape = ours[name], param.infshape
        if row.width == "output":  # mup: a MuReadout (vector-like to MuAdam, x / r forward)
            assert shape.ninf() == 1 and shape[1].isinf() and not shape[0].isinf(), name
            assert abs(row.init_multiplier - shape.width_mult() ** -0.5) < 1e-12, name
            assert abs(row.lr_multiplier - 1 / shape.width_mult()) < 1e-12, name
        else:
            assert (shape.ninf() == 2) == (row.width == "hidden"), name
            assert abs(row.lr_multiplier - lr_of[id(param)]) < 1e-12, name


def test_width_table_of_neuralop_fno():
    pytest.importorskip("neuralop")
    from neuralop.models import FNO as NeuralopFNO

    def build(width, n_modes):
        torch.manual_seed(0)
        return NeuralopFNO(
            n_modes=(n_modes,), hidden_channels=width, in_channels=1, out_channels=1, n_layers=2
        )

    proxy, target = build(8, 6), build(32, 10)  # K = 4 -> 6, r = 4
    mup = get_parametrization("mup", base_modes=4, base_shapes=proxy)
    rows = rows_of(mup, target)
    k = c(6, 1) / c(4, 1)
    expected = {  # name: (width class, lr multiplier, init multiplier)
        "fno_blocks.convs.0.weight.tensor": ("hidden", k / 4, k),
        "fno_blocks.convs.0.bias": ("input", 1.0, 1.0),  # (C, 1): a bias
        "fno_blocks.fno_skips.0.conv.weight": ("hidden", 1 / 4, 1.0),
        "fno_blocks.channel_mlp.0.fcs.0.weight": ("hidden", 1 / 4, 1.0),
        "fno_blocks.channel_mlp_skips.0.weight": ("input", 1.0, 1.0),  # soft gating (1, C, 1)
        "lifting.fcs.0.weight": ("input", 1.0, 1.0),
        "lifting.fcs.1.weight": ("hidden", 1 / 4, 1.0),
        "projection.fcs.0.weight": ("hidden", 1 / 4, 1.0),
        "projection.fcs.1.weight": ("output", 1 / 4, 1 / 2),
    }
    for name, (width, lr, init) in expected.items():
        row = rows[name]
        assert row.width == width, name
        assert abs(row.lr_multiplier - lr) < 1e-12, name
        assert abs(row.init_multiplier - init) < 1e-12, name
    before = {n: p.detach().clone() for n, p in target.named_parameters()}
    mup.initialize(target, torch.Generator().manual_seed(0))
    after = dict(target.named_parameters())
    assert torch.equal(after["projection.fcs.1.weight"], before["projection.fcs.1.weight"] / 2)
    assert torch.equal(after["lifting.fcs.1.weight"], before["lifting.fcs.1.weight"])  # own init
    spectral = after["fno_blocks.convs.0.weight.tensor"].detach()
    std = math.sqrt(2 / 64) * k
    assert abs(float(spectral.abs().pow(2).mean().sqrt()) / std - 1) < 0.05
