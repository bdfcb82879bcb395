"""Truncated Fourier transforms and the per-mode complex matmul, with hand-written adjoints.

The spectral convolution of :mod:`transfer_tune.core.model` needs three linear maps, each an
:class:`torch.autograd.Function` whose backward is the exact adjoint of its forward (for the
real inner product ``Re <a, b>`` on complex tensors, PyTorch's convention for the gradient of
a real loss) and is itself built from these Functions or from differentiable operations, so
double backward (``gradgradcheck``, Hessian-vector products) works too:

* :func:`to_modes` -- real grid values to the kept Fourier coefficients;
* :func:`from_modes` -- kept coefficients to the real function on a grid (others zero);
* :func:`mode_matmul` -- one complex matrix per mode, as a batched matmul.

Modes convention (the original FNO's)
-------------------------------------
With ``K`` modes per dimension, along the *last* spatial axis the real FFT keeps the
frequencies ``0 .. K-1``; along every other axis both signs are kept, ``|k| < K``, i.e. the
``2K - 1`` rows ``0 .. K-1`` followed by ``-(K-1) .. -1`` (stored at ``n-K+1 .. n-1``). The
kept coefficients of a ``(batch, C, *grid)`` tensor therefore have shape
``(batch, C, 2K-1, ..., 2K-1, K)``. ``K <= n // 2 + 1`` on every axis (checked by the model);
at the limit on an even non-last axis the row ``n/2`` is kept twice (as ``K-1`` and as
``-(K-1)``), and on an even last axis the Nyquist column ``n/2`` is kept.

Why hand-written backwards: PyTorch's backward of ``rfft`` followed by slicing zero-pads the
gradient to the whole grid and transforms all of it; the adjoints below transform only the
kept modes, as the forwards do.
"""

from __future__ import annotations

import functools
import math

import torch

__all__ = ["FromModes", "ModeMatmul", "ToModes", "from_modes", "mode_matmul", "to_modes"]


@functools.lru_cache(maxsize=64)
def _column_scale(
    k: int, n: int, factor: float, inverse: bool, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``factor / h`` (``inverse``) or ``factor * h``, cached: the backwards' rescaling."""
    weights = hermitian_weights(k, n, torch.empty(0, dtype=dtype, device=device))
    return factor / weights if inverse else factor * weights


def _take_rows(z: torch.Tensor, axis: int, k: int) -> torch.Tensor:
    """Rows ``0..K-1`` then ``n-K+1..n-1`` of ``z`` along a non-last ``axis`` of length ``n``.

    ``2K - 1`` rows (two slices: faster than a gather); when ``2K - 1 > n`` (``K = n/2 + 1``
    on an even ``n``) the row ``n/2`` appears twice.
    """
    n = z.shape[axis]
    return torch.cat([z.narrow(axis, 0, k), z.narrow(axis, n - k + 1, k - 1)], dim=axis)


def _put_rows(z: torch.Tensor, axis: int, n: int) -> torch.Tensor:
    """Adjoint of :func:`_take_rows`: ``z``'s ``2K - 1`` rows placed on an axis of length ``n``.

    The other rows are zero; a row kept twice (``n/2`` when ``2K - 1 > n``) gets the sum.
    """
    k = (z.shape[axis] + 1) // 2
    shape = list(z.shape)
    shape[axis] = n
    out = z.new_zeros(shape)
    out.narrow(axis, 0, k).copy_(z.narrow(axis, 0, k))
    negative = out.narrow(axis, n - k + 1, k - 1)
    if 2 * k - 1 > n:  # the two slices overlap in row n/2
        negative.add_(z.narrow(axis, k, k - 1))
    else:
        negative.copy_(z.narrow(axis, k, k - 1))
    return out


def hermitian_weights(k: int, n: int, like: torch.Tensor) -> torch.Tensor:
    """Weight ``h`` of each kept last-axis column of a real signal of ``n`` points.

    ``h = 1`` at frequency 0 and, when kept, at the Nyquist frequency ``n/2`` of an even
    ``n`` (these columns are their own conjugates); ``h = 2`` elsewhere (each such column also
    stands for its conjugate, which the real FFT does not store). Real, in the precision of
    ``like`` (float64 for complex128 tensors).
    """
    dtype = like.real.dtype if like.is_complex() else like.dtype
    weights = torch.full((k,), 2.0, dtype=dtype, device=like.device)
    weights[0] = 1.0
    if n % 2 == 0 and k == n // 2 + 1:
        weights[-1] = 1.0
    return weights


def _truncated_rfftn(x: torch.Tensor, k: int) -> torch.Tensor:
    """Kept Fourier coefficients of real ``x`` (batch, C, *grid): (batch, C, 2K-1, ..., K).

    The real FFT runs along the last axis and keeps columns ``0..K-1``; every earlier axis is
    then transformed on those columns alone and cut to its kept rows.
    """
    z = torch.fft.rfft(x, dim=-1)[..., :k]
    for axis in range(2, x.dim() - 1):
        z = _take_rows(torch.fft.fft(z, dim=axis), axis, k)
    return z


def _truncated_irfftn(z: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """The real function on ``grid`` whose kept coefficients are ``z`` (all others zero).

    Kept rows are placed back by :func:`_put_rows` (a row kept twice adds up: the adjoint of
    :func:`_truncated_rfftn`'s selection) and inverse-transformed one axis at a time. The
    last-axis columns 0 and (when kept) ``n/2`` stand for real components, so before the
    inverse real FFT their imaginary parts, on every row of the other axes (after those axes'
    inverse transforms), are set to zero explicitly rather than left to the FFT library:
    pocketfft and MKL ignore them, cuFFT can turn them into artifacts. This is exactly what a
    full ``torch.fft.irfftn`` computes on the CPU: ``Re(ifftn(h * Z))`` with ``Z`` the kept
    coefficients placed in a full spectrum and ``h`` the :func:`hermitian_weights`; on the
    DC column it keeps the Hermitian part ``(Z[r, 0] + conj(Z[-r, 0])) / 2`` of each pair of
    rows, not the real part of each coefficient.
    """
    n, k = grid[-1], z.shape[-1]
    if z.dim() == 3:
        z = z.clone()  # the caller's tensor (d >= 2 gets a fresh one from the transforms)
    for axis in range(2, z.dim() - 1):
        z = torch.fft.ifft(_put_rows(z, axis, grid[axis - 2]), dim=axis)
    # z is now a fresh tensor: drop the imaginary parts of columns 0 and (if kept) n/2
    if n % 2 == 0 and k == n // 2 + 1:
        z.imag[..., :: n // 2].zero_()
    else:
        z.imag.select(-1, 0).zero_()
    return torch.fft.irfft(z, n=n, dim=-1)


class ToModes(torch.autograd.Function):
    """``z = to_modes(x, K)``: the kept Fourier coefficients of a real ``x``.

    Forward: :func:`_truncated_rfftn`, ``(batch, C, *grid)`` real to
    ``(batch, C, 2K-1, ..., 2K-1, K)`` complex.

    Backward (the adjoint): with ``N`` the number of grid points and ``h`` the
    :func:`hermitian_weights` of the last axis, ``grad_x = N * from_modes(g / h)``. Each kept
    coefficient ``z_k = sum_t x_t exp(-2 pi i k.t / n)``, so ``dL/dx_t = sum_k Re(g_k
    exp(+2 pi i k.t / n))``, which is the inverse transform of ``g`` rescaled by ``N`` with the
    column weights undone (the inverse real FFT counts columns ``0 < k < n/2`` twice); on the
    self-conjugate columns only ``Re g`` enters, as :func:`from_modes` makes it. A row kept
    twice gets the sum of its two gradients. One truncated inverse transform, built from
    :class:`FromModes`, so it is differentiable again.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, k: int) -> torch.Tensor:  # type: ignore[override]
        ctx.grid = tuple(x.shape[2:])
        ctx.k = k
        return _truncated_rfftn(x, k)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        dtype = grad.real.dtype if grad.is_complex() else grad.dtype
        scale = _column_scale(ctx.k, ctx.grid[-1], math.prod(ctx.grid), True, dtype, grad.device)
        return FromModes.apply(grad * scale, ctx.grid), None


class FromModes(torch.autograd.Function):
    """``y = from_modes(z, grid)``: the real function whose kept coefficients are ``z``.

    Forward: :func:`_truncated_irfftn`, ``(batch, C, 2K-1, ..., K)`` complex to
    ``(batch, C, *grid)`` real; the imaginary parts of the self-conjugate columns (0 and a
    kept Nyquist column) are dropped, after the inverse transforms of the other axes.

    Backward (the adjoint): ``grad_z = to_modes(g) * h / N``. The forward is
    ``y_t = (1/N) sum_k h_k Re(z_k exp(2 pi i k.t / n))`` over the kept modes (dropping the
    imaginary parts above is exactly this real part), so ``dL/dz_k = (h_k / N) sum_t g_t
    exp(-2 pi i k.t / n)`` (a row kept twice gets the same value in both places). Built from
    :class:`ToModes`, so it is differentiable again.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:  # type: ignore[override]
        ctx.grid = grid
        ctx.k = z.shape[-1]
        return _truncated_irfftn(z, grid)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        dtype = grad.real.dtype if grad.is_complex() else grad.dtype
        factor = 1.0 / math.prod(ctx.grid)
        scale = _column_scale(ctx.k, ctx.grid[-1], factor, False, dtype, grad.device)
        return ToModes.apply(grad, ctx.k) * scale, None


class ModeMatmul(torch.autograd.Function):
    """``y = mode_matmul(z, w) = bmm(z, w)``: a complex matrix per mode.

    ``z`` is ``(modes, batch, m_in)``, ``w`` is ``(modes, m_in, m_out)``.

    Backward (the adjoint): ``grad_z = g w^H`` and ``grad_w = z^H g``. ``grad_z`` is computed as
    ``conj(conj(g) w^T)`` and ``grad_w`` from the conjugate-transposed view, both as fast as the
    forward on the CPU, where PyTorch's own backward of a complex ``bmm`` can fall back to one
    small matmul per mode. Plain differentiable operations, so double backward works.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(z, w)
        return torch.bmm(z, w)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        z, w = ctx.saved_tensors
        grad_z = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_z = torch.bmm(grad.conj().resolve_conj(), w.transpose(1, 2)).conj()
        if ctx.needs_input_grad[1]:
            grad_w = torch.bmm(z.mH, grad)
        return grad_z, grad_w


def to_modes(x: torch.Tensor, k: int) -> torch.Tensor:
    """Kept Fourier coefficients (K = ``k``) of real ``x`` (batch, C, *grid); see ToModes."""
    return ToModes.apply(x, k)


def from_modes(z: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """Real function on ``grid`` with kept coefficients ``z``; see :class:`FromModes`."""
    return FromModes.apply(z, tuple(grid))


def mode_matmul(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``bmm(z, w)`` over modes with the adjoint backward of :class:`ModeMatmul`."""
    return ModeMatmul.apply(z, w)
