"""The FNO's modes convention, resolution independence and input validation."""

import math

import pytest
import torch

from transfer_tune.core.model import FNO, SpectralConv, check_modes, mode_shape
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.errors import TransferTuneError


def identity_conv(channels: int, modes: int, dim: int) -> SpectralConv:
    conv = SpectralConv(channels, channels, modes, dim)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(channels, dtype=torch.cfloat).expand_as(conv.weight))
    return conv


def cosines(grid: int, freqs: list[tuple[int, ...]], dim: int) -> torch.Tensor:
    axes = torch.meshgrid(*[torch.arange(grid, dtype=torch.float64) / grid] * dim, indexing="ij")
    out = torch.zeros([grid] * dim, dtype=torch.float64)
    for i, f in enumerate(freqs):
        phase = sum(2 * math.pi * k * a for k, a in zip(f, axes, strict=True))
        out += (1.0 + 0.1 * i) * torch.cos(phase + 0.3 * i)
    return out


def test_identity_r_is_exact_lowpass_1d():
    k, n = 6, 64
    kept = [(0,), (1,), (3,), (5,)]
    dropped = [(6,), (7,), (20,), (32,)]
    x = cosines(n, kept + dropped, 1)
    expected = cosines(n, kept, 1)
    conv = identity_conv(1, k, 1)
    y = conv(x[None, None].float())[0, 0].double()
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=0)


def test_identity_r_is_exact_lowpass_2d():
    k, n = 4, 32
    kept = [(0, 0), (3, 0), (0, 3), (-3, 2), (2, -3), (3, 3), (1, -1)]
    dropped = [(4, 0), (0, 4), (4, 4), (-4, 1), (1, -4), (10, 2), (2, 10)]
    x = cosines(n, kept + dropped, 2)
    expected = cosines(n, kept, 2)
    conv = identity_conv(1, k, 2)
    y = conv(x[None, None].float())[0, 0].double()
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=0)


def test_spectral_weight_shapes_follow_convention():
    for dim, shape in [(1, (5,)), (2, (9, 5)), (3, (9, 9, 5))]:
        conv = SpectralConv(3, 2, 5, dim)
        assert mode_shape(5, dim) == shape
        assert conv.mode_shape == shape
        assert conv.weight.shape == (math.prod(shape), 3, 2)
        assert conv.weight.is_complex()


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_spectral_conv_is_resolution_independent(dim):
    torch.manual_seed(0)
    conv = SpectralConv(2, 3, 3, dim)
    with torch.no_grad():
        conv.weight.normal_()
    # a band-limited input sampled on 8 and 16 points per axis
    coarse_n, fine_n = 8, 16
    freqs = [(1,) * dim, (2,) + (0,) * (dim - 1), (0,) * (dim - 1) + (2,)]
    fine = torch.stack([cosines(fine_n, freqs, dim), cosines(fine_n, freqs[:1], dim)])
    coarse = torch.stack([cosines(coarse_n, freqs, dim), cosines(coarse_n, freqs[:1], dim)])
    y_fine = conv(fine[None].float())
    y_coarse = conv(coarse[None].float())
    sub = y_fine[(slice(None), slice(None)) + (slice(None, None, 2),) * dim]
    torch.testing.assert_close(sub, y_coarse, atol=1e-5, rtol=1e-5)


def test_model_built_at_64_evaluates_at_128():
    model = FNO(dim=1, modes=16, width=8, n_layers=2)
    get_parametrization("sp", base_modes=16).initialize(model, torch.Generator().manual_seed(0))
    x64 = torch.sin(2 * math.pi * torch.arange(64) / 64).reshape(1, 1, 64)
    x128 = torch.sin(2 * math.pi * torch.arange(128) / 128).reshape(1, 1, 128)
    y64, y128 = model(x64), model(x128)
    assert y128.shape == (1, 1, 128)
    assert torch.isfinite(y128).all()
    # the same smooth function in, nearly the same function out (GELU adds small aliasing)
    rel = (y128[..., ::2] - y64).norm() / y64.norm()
    assert rel < 0.05


def test_fno_2d_and_3d_shapes():
    m2 = FNO(dim=2, modes=3, width=4, n_layers=2, in_channels=2, out_channels=3)
    assert m2(torch.zeros(2, 2, 8, 10)).shape == (2, 3, 8, 10)
    m3 = FNO(dim=3, modes=2, width=4, n_layers=1)
    assert m3(torch.zeros(1, 1, 4, 4, 6)).shape == (1, 1, 4, 4, 6)


def test_modes_validation_messages():
    with pytest.raises(TransferTuneError, match="integer >= 2"):
        FNO(dim=1, modes=1, width=4)
    with pytest.raises(TransferTuneError, match="integer >= 2"):
        SpectralConv(1, 1, 0, 1)
    with pytest.raises(TransferTuneError, match=r"K = 20 .*\(32,\).*<= n // 2 \+ 1 = 17"):
        FNO(dim=1, modes=20, width=4)(torch.zeros(1, 1, 32))
    check_modes(17, (32,))  # the limit itself is allowed
    with pytest.raises(TransferTuneError, match="expects input"):
        FNO(dim=2, modes=2, width=4)(torch.zeros(1, 1, 8))
    with pytest.raises(TransferTuneError, match="expects input"):
        FNO(dim=1, modes=2, width=4, in_channels=2)(torch.zeros(1, 1, 8))
    with pytest.raises(TransferTuneError, match="dim must be"):
        FNO(dim=4, modes=2, width=4)


def test_integer_arguments_are_checked():
    with pytest.raises(TransferTuneError, match="K = 1 is rejected"):
        FNO(dim=1, modes=1, width=4)
    with pytest.raises(TransferTuneError, match="modes"):
        SpectralConv(1, 1, True, 1)
    with pytest.raises(TransferTuneError, match="width must be a positive integer, got 0"):
        FNO(dim=1, modes=4, width=0)
    with pytest.raises(TransferTuneError, match="n_layers must be a positive integer"):
        FNO(dim=1, modes=4, width=4, n_layers=2.5)
    with pytest.raises(TransferTuneError, match="projection_width"):
        FNO(dim=1, modes=4, width=4, projection_width="8")
    with pytest.raises(TransferTuneError, match="in_channels must be a positive integer"):
        SpectralConv(0, 1, 4, 1)
    with pytest.raises(TransferTuneError, match="dim must be"):
        SpectralConv(1, 1, 4, 0)
    # integral numbers (as TOML and JSON give them) become ints
    model = FNO(dim=1.0, modes=4.0, width=4, n_layers=1)
    assert model.config()["modes"] == 4 and type(model.config()["modes"]) is int
    assert model.layers[0].spectral.mode_shape == (4,)


def test_every_parameter_has_a_role():
    model = FNO(dim=2, modes=3, width=4, n_layers=3)
    roles = model.param_roles()
    assert set(roles) == {n for n, _ in model.named_parameters()}
    assert sum(r == "spectral" for r in roles.values()) == 3
    assert set(roles.values()) == {"lifting", "spectral", "pointwise", "projection", "bias"}
