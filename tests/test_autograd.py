"""The spectral layer's custom autograd: exact adjoints, double backward, full-FFT reference.

Tiny float64 / complex128 cases for d = 1, 2, 3, including the edge cases of the modes
convention: the Nyquist column kept (K = n//2 + 1 on an even last axis), 2K - 1 close to or
above n on the other axes (at K = n//2 + 1 on an even axis the row n/2 is kept twice), and
odd grids.
"""

import itertools
import math

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from transfer_tune.core.model import SpectralConv, mode_shape
from transfer_tune.core.spectral_autograd import from_modes, mode_matmul, to_modes

# (grid, K): what each case exercises
CASES = [
    ((8,), 5),  # Nyquist column kept
    ((7,), 4),  # odd grid at the limit K = n//2 + 1 (no Nyquist column)
    ((8,), 3),
    ((8, 8), 5),  # Nyquist column kept, row 4 kept twice (2K - 1 = 9 > 8)
    ((8, 6), 4),  # 2K - 1 = 7 of 8 rows, Nyquist column of the last axis kept
    ((5, 7), 3),  # odd grid, 2K - 1 = n on the first axis
    ((4, 4, 4), 3),  # d = 3: Nyquist column kept, row 2 kept twice on both other axes
    ((5, 6, 4), 3),  # d = 3: 2K - 1 = n on axis 0, 5 of 6 rows on axis 1, Nyquist kept
    ((3, 5, 7), 2),  # d = 3, odd everywhere
]
IDS = [f"grid={'x'.join(map(str, g))}-K={k}" for g, k in CASES]


def _real(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _complex(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.complex128)


def _full_weight(weight, grid, k):
    """The layer's per-mode weight placed at each mode's frequency in the rfftn spectrum.

    Written from the convention alone: weight row ``j`` of a non-last axis is frequency
    ``j`` for ``j < K`` and ``j - (2K - 1)`` (negative) otherwise; a frequency reached twice
    (row n/2 at K = n//2 + 1) gets the sum of both weights, the layer's own convention.
    """
    spectrum = tuple(grid[:-1]) + (grid[-1] // 2 + 1,)
    full = torch.zeros(*spectrum, *weight.shape[1:], dtype=weight.dtype)
    shape = mode_shape(k, len(grid))
    for flat, index in enumerate(itertools.product(*[range(s) for s in shape])):
        freq = [j if j < k else j - (2 * k - 1) for j in index[:-1]]
        position = tuple(f % n for f, n in zip(freq, grid[:-1], strict=True)) + (index[-1],)
        full[position] += weight[flat]
    return full


def full_fft_reference(x, weight, k):
    """SpectralConv by the full transforms: rfftn, zero the dropped modes, W per mode, irfftn."""
    grid = x.shape[2:]
    axes = tuple(range(2, x.dim()))
    spectrum = torch.fft.rfftn(x, dim=axes)
    full_w = _full_weight(weight, grid, k)
    kept = torch.zeros(spectrum.shape[2:], dtype=torch.bool)
    for index in itertools.product(*[range(s) for s in kept.shape]):
        freq = [i if i <= n // 2 else i - n for i, n in zip(index[:-1], grid[:-1], strict=True)]
        kept[index] = all(abs(f) < k for f in freq) and index[-1] < k
    spectrum = spectrum * kept
    out = torch.einsum("bi...,...io->bo...", spectrum, full_w)
    return torch.fft.irfftn(out, s=tuple(grid), dim=axes)


def real_part_reference(z, grid):
    """``from_modes`` as ``Re(ifftn(h * Z))``: complex transforms only, no inverse real FFT.

    ``Z`` is the full spectrum holding the kept coefficients (a row kept twice adds up) and
    ``h`` is 1 on the last-axis columns 0 and n/2 (their own conjugates), 2 on the others
    (they also stand for their conjugates). Taking the real part at the end is what "use
    only the real part of the self-conjugate columns" means, independent of any FFT library's
    handling of their imaginary parts.
    """
    k = z.shape[-1]
    h = torch.full((k,), 2.0, dtype=torch.float64)
    h[0] = 1.0
    if grid[-1] % 2 == 0 and k == grid[-1] // 2 + 1:
        h[-1] = 1.0
    full = torch.zeros(*z.shape[:2], *grid, dtype=torch.complex128)
    for index in itertools.product(*[range(s) for s in z.shape[2:]]):
        freq = [j if j < k else j - (2 * k - 1) for j in index[:-1]]
        position = tuple(f % n for f, n in zip(freq, grid[:-1], strict=True)) + (index[-1],)
        full[(slice(None), slice(None)) + position] += h[index[-1]] * z[(...,) + index]
    return torch.fft.ifftn(full, dim=tuple(range(2, 2 + len(grid)))).real


def _conv(grid, k, c_in=2, c_out=2, seed=0):
    conv = SpectralConv(c_in, c_out, k, len(grid))
    conv.weight = torch.nn.Parameter(_complex(conv.weight.shape, seed))
    return conv


# --- forward: the full-FFT reference and the explicit real part of columns 0 and n/2 --------


@pytest.mark.parametrize(("grid", "k"), CASES, ids=IDS)
def test_spectral_conv_matches_full_fft_reference(grid, k):
    conv = _conv(grid, k, c_in=3, c_out=2)
    x = _real((2, 3, *grid), 1)
    expected = full_fft_reference(x, conv.weight.detach(), k)
    got = conv(x)
    assert got.dtype == torch.float64
    assert (got - expected).abs().max().item() < 1e-12
    assert expected.abs().max().item() > 1e-2  # the comparison is not between zeros


@pytest.mark.parametrize(("grid", "k"), CASES, ids=IDS)
def test_from_modes_uses_only_the_real_part_of_self_conjugate_columns(grid, k):
    # arbitrary coefficients: the DC column (and a kept Nyquist column) is not Hermitian
    z = _complex((2, 1, *mode_shape(k, len(grid))), 2)
    got = from_modes(z, grid)
    assert (got - real_part_reference(z, grid)).abs().max().item() < 1e-12


def test_from_modes_ignores_dc_and_nyquist_imaginary_parts_1d():
    n, k = 8, 5  # columns 0 and 4 = n/2 are real components of a real signal
    z = _complex((1, 1, k), 3)
    bumped = z.clone()
    bumped.imag[..., 0] += 5.0
    bumped.imag[..., -1] -= 7.0
    torch.testing.assert_close(from_modes(bumped, (n,)), from_modes(z, (n,)), atol=1e-13, rtol=0)
    # ...while the same change on an ordinary column does change the output
    other = z.clone()
    other.imag[..., 1] += 5.0
    assert (from_modes(other, (n,)) - from_modes(z, (n,))).abs().max() > 1.0


@pytest.mark.parametrize(("grid", "k"), [((8,), 5), ((8, 8), 5)])
def test_from_modes_leaves_its_input_unchanged(grid, k):
    z = _complex((1, 1, *mode_shape(k, len(grid))), 15)
    before = z.clone()
    from_modes(z, grid)
    assert torch.equal(z, before)


def test_dc_column_keeps_the_hermitian_part_of_row_pairs_2d():
    """For d >= 2 the DC column's rows r and -r are conjugate partners: the output depends on
    (Z[r, 0] + conj(Z[-r, 0])) / 2, not on the real part of each coefficient."""
    grid, k = (8, 8), 4
    z = _complex((1, 1, *mode_shape(k, 2)), 14)
    rows = [j if j < k else j - (2 * k - 1) for j in range(2 * k - 1)]
    partner = [rows.index(-r) for r in rows]
    hermitian = z.clone()
    hermitian[..., 0] = (z[..., 0] + z[..., partner, 0].conj()) / 2
    torch.testing.assert_close(from_modes(hermitian, grid), from_modes(z, grid), atol=1e-13, rtol=0)
    real_only = z.clone()
    real_only.imag[..., 0] = 0.0  # the wrong fix: drops the DC column's odd-in-r sine part
    assert (from_modes(real_only, grid) - from_modes(z, grid)).abs().max() > 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (cuFFT)")
@pytest.mark.parametrize(("grid", "k"), CASES, ids=IDS)
def test_from_modes_on_cuda_matches_the_real_part_reference(grid, k):
    z = _complex((2, 1, *mode_shape(k, len(grid))), 4)
    got = from_modes(z.cuda(), grid).cpu()
    assert (got - real_part_reference(z, grid)).abs().max().item() < 1e-12


# --- backward: exact adjoints (gradcheck) and double backward (gradgradcheck) ---------------


@pytest.mark.parametrize(("grid", "k"), CASES, ids=IDS)
def test_to_modes_gradients(grid, k):
    x = _real((1, 1, *grid), 5).requires_grad_()
    assert gradcheck(lambda t: to_modes(t, k), (x,))
    assert gradgradcheck(lambda t: to_modes(t, k), (x,))


@pytest.mark.parametrize(("grid", "k"), CASES, ids=IDS)
def test_from_modes_gradients(grid, k):
    z = _complex((1, 1, *mode_shape(k, len(grid))), 6).requires_grad_()
    assert gradcheck(lambda t: from_modes(t, grid), (z,))
    assert gradgradcheck(lambda t: from_modes(t, grid), (z,))


@pytest.mark.parametrize("modes", [1, 9])
def test_mode_matmul_gradients(modes):
    z = _complex((modes, 2, 3), 7).requires_grad_()
    w = _complex((modes, 3, 2), 8).requires_grad_()
    assert gradcheck(mode_matmul, (z, w))
    assert gradgradcheck(mode_matmul, (z, w))


@pytest.mark.parametrize(("grid", "k"), CASES, ids=IDS)
def test_spectral_conv_gradients(grid, k):
    conv = _conv(grid, k, c_in=1, c_out=1)
    x = _real((1, 1, *grid), 9).requires_grad_()
    w = conv.weight.detach().clone().requires_grad_()

    def layer(x, w):
        return torch.func.functional_call(conv, {"weight": w}, (x,))

    assert gradcheck(layer, (x, w))
    assert gradgradcheck(layer, (x, w), fast_mode=len(grid) == 3)  # d = 3: a random projection


def test_backward_is_the_adjoint_of_forward():
    """<from_modes(z), g> = Re <z, grad_z>, and <to_modes(x), g> = <x, grad_x>, to 1e-12."""
    grid, k = (8, 6), 4
    z = _complex((2, 2, *mode_shape(k, 2)), 10).requires_grad_()
    g = _real((2, 2, *grid), 11)
    y = from_modes(z, grid)
    (grad_z,) = torch.autograd.grad(y, z, g)
    lhs = (y * g).sum()
    rhs = (z.conj() * grad_z).real.sum()
    assert math.isclose(lhs.item(), rhs.item(), rel_tol=1e-12, abs_tol=1e-12)
    x = _real((2, 2, *grid), 12).requires_grad_()
    h = _complex(z.shape, 13)
    m = to_modes(x, k)
    (grad_x,) = torch.autograd.grad(m, x, h)
    lhs = (m.conj() * h).real.sum()
    rhs = (x * grad_x).sum()
    assert math.isclose(lhs.item(), rhs.item(), rel_tol=1e-12, abs_tol=1e-12)
