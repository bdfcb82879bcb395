"""Issue 20, item 12: a model that cannot learn is never silent.

A newly built FNO is initialised (SP at its own K, read from the one parametrization table),
``initialize`` redraws exactly as before, and ``fit`` refuses a model whose parameters are all
zero with the fix.
"""

import math

import pytest
import torch
from torch import nn

from tests.synthetic import operator_task
from transfer_tune.core.hparams import HParams
from transfer_tune.core.model import FNO
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.core.train import TrainData, fit
from transfer_tune.errors import TransferTuneError

SHAPE = {"dim": 1, "modes": 8, "width": 32, "n_layers": 2, "projection_width": 64}


def _zeroed(model: nn.Module) -> nn.Module:
    """The model as the constructor used to leave it: every parameter zero."""
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model


def _data() -> TrainData:
    x, y = operator_task(32, 64, 0)
    return TrainData(x, y)


@pytest.mark.parametrize("dim", [1, 2])
def test_a_fresh_fno_has_the_sp_init_std_of_its_own_k(dim):
    torch.manual_seed(0)  # construction draws from the global RNG, as torch modules do
    model = FNO(dim=dim, modes=6, width=32, n_layers=2, projection_width=64)
    rows = get_parametrization("sp", base_modes=model.modes).table(model)
    params = dict(model.named_parameters())
    for row in rows:
        p = params[row.name].detach()
        if row.init_std == 0.0:  # biases start at zero, as the table says
            assert not p.any(), row.name
            continue
        assert p.any(), f"{row.name} is all zero"
        # E|z|^2 = std^2 for complex weights (std / sqrt(2) on each part), E x^2 = std^2 else
        empirical = math.sqrt(float(p.abs().pow(2).mean()))
        draws = p.numel() * (2 if p.is_complex() else 1)
        tolerance = 5 / math.sqrt(2 * draws)  # five standard errors of a sample std
        assert empirical == pytest.approx(row.init_std, rel=tolerance), row.name
    # the spectral std is the SP one, independent of K: sqrt(2 / (m_in + m_out))
    spectral = next(r for r in rows if r.role == "spectral")
    assert spectral.init_std == pytest.approx(math.sqrt(2.0 / 64))


def test_a_fresh_fno_learns_without_initialize():
    torch.manual_seed(0)
    model = FNO(**SHAPE)
    result = fit(model, _data(), HParams(lr=1e-2, batch_size=8), epochs=3, device="cpu")
    assert result.train_loss < 0.9  # an all-zero FNO sits at exactly 1.000


def test_construction_is_seeded_by_torch_manual_seed_like_torch_modules():
    torch.manual_seed(5)
    a = FNO(**SHAPE)
    b = FNO(**SHAPE)
    torch.manual_seed(5)
    c = FNO(**SHAPE)
    for (name, pa), pb, pc in zip(
        a.named_parameters(), b.parameters(), c.parameters(), strict=True
    ):
        assert torch.equal(pa, pc), name
        if pa.any():
            assert not torch.equal(pa, pb), name


def test_reset_parameters_redraws_from_a_generator():
    model = FNO(**SHAPE)
    twin = _zeroed(FNO(**SHAPE))
    model.reset_parameters(torch.Generator().manual_seed(4))
    twin.reset_parameters(torch.Generator().manual_seed(4))
    sp = get_parametrization("sp", base_modes=SHAPE["modes"])
    ref = sp.initialize(_zeroed(FNO(**SHAPE)), torch.Generator().manual_seed(4))
    for (name, p), q, r in zip(
        model.named_parameters(), twin.parameters(), ref.parameters(), strict=True
    ):
        assert torch.equal(p, q), name
        assert torch.equal(p, r), name


@pytest.mark.parametrize("kind,base", [("mup", 4), ("sp", 8)])
def test_initialize_gives_the_same_weights_as_before(kind, base):
    """A fresh (now initialised) model and an all-zero one (the old constructor) are drawn
    bit for bit alike by ``initialize`` with equal generators: seeded results do not move."""
    par = get_parametrization(kind, base_modes=base)
    fresh = par.initialize(FNO(**SHAPE), torch.Generator().manual_seed(7))
    old = par.initialize(_zeroed(FNO(**SHAPE)), torch.Generator().manual_seed(7))
    for (name, p), q in zip(fresh.named_parameters(), old.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_building_an_fno_does_not_change_what_initialize_draws_next():
    """Construction draws from the global RNG only; a seeded generator is never touched."""
    gen = torch.Generator().manual_seed(0)
    first = torch.randn(3, generator=gen)
    gen = torch.Generator().manual_seed(0)
    FNO(**SHAPE)
    assert torch.equal(torch.randn(3, generator=gen), first)


def test_fit_refuses_an_all_zero_model_with_the_fix():
    model = _zeroed(FNO(**SHAPE))
    with pytest.raises(TransferTuneError, match=r"all zero.*initialize.*reset_parameters"):
        fit(model, _data(), HParams(lr=1e-2, batch_size=8), epochs=1, device="cpu")


def test_fit_refuses_an_all_zero_custom_module_too():
    class Zero(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = nn.Parameter(torch.zeros(8, 1, 1, dtype=torch.cfloat))
            self.mix = nn.Parameter(torch.zeros(1, 1))
            self.modes, self.dim = 8, 1

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.mix.sum() + self.kernel.real.sum()

    with pytest.raises(TransferTuneError, match="all zero"):
        fit(
            Zero(),
            _data(),
            HParams(lr=1e-2, batch_size=8),
            epochs=1,
            device="cpu",
            roles=lambda name: name == "kernel",
        )


def test_fit_accepts_a_model_with_zero_biases_only():
    model = FNO(**SHAPE)  # biases are zero, weights are not: a healthy start
    assert not model.lifting.bias.any()
    fit(model, _data(), HParams(lr=1e-3, batch_size=8), epochs=1, device="cpu")


def test_building_from_a_config_with_a_seed_leaves_the_global_rng_alone():
    from transfer_tune.core.factory import build_model, model_config

    shape = {"dim": 1, "modes": 8, "width": 16, "n_layers": 2, "in_channels": 1}
    config = model_config("fno", **shape, out_channels=1)
    state = torch.random.get_rng_state()
    a, b = build_model(config, seed=3), build_model(config, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # the FNO's own draw is forked
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
