"""Fourier Neural Operator: spectral convolution for d = 1, 2, 3 and the FNO built from it.

The model knows nothing of µP: it only names the *role* of every parameter when it is built
(``lifting``, ``spectral``, ``pointwise``, ``projection``, ``bias``), and
:mod:`transfer_tune.core.parametrization` reads those roles to initialise it and to build the
optimizer's parameter groups.

Modes convention (the original FNO's)
-------------------------------------
With ``K`` modes per dimension, along the *last* spatial axis the real FFT keeps the
frequencies ``0 .. K-1``; along every other axis it keeps both signs, ``|k| < K``, i.e.
``2K - 1`` rows (``0 .. K-1`` and ``-(K-1) .. -1``). ``K`` must satisfy ``K <= n // 2 + 1`` on
every axis of an ``n``-point grid. The weights depend only on ``K``, never on the grid, so a
model built for one grid evaluates on a finer one (zero-shot super-resolution).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from transfer_tune.errors import TransferTuneError

ROLES = ("lifting", "spectral", "pointwise", "projection", "bias")


def check_modes(modes: int, grid: Sequence[int]) -> None:
    """Raise :class:`TransferTuneError` unless ``modes`` fits every axis of ``grid``.

    Parameters
    ----------
    modes : int
        Fourier modes kept per dimension (K).
    grid : sequence of int
        Points per spatial axis.
    """
    limit = min(n // 2 + 1 for n in grid)
    if modes > limit:
        raise TransferTuneError(
            f"K = {modes} Fourier modes do not fit a grid of {tuple(grid)} points: K must be "
            f"<= n // 2 + 1 = {limit} on every axis. Use K <= {limit} or a finer grid."
        )


def _check_dim(dim: int) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim not in (1, 2, 3):
        raise TransferTuneError(f"dim must be the integer 1, 2 or 3, got {dim!r}")


def _check_modes_value(modes: int) -> None:
    if isinstance(modes, bool) or not isinstance(modes, int) or modes < 2:
        raise TransferTuneError(
            f"modes (K) must be an integer >= 2, got {modes!r}; K = 1 is rejected because the "
            "µP rule scales by 1/sqrt(ln K)."
        )


class SpectralConv(nn.Module):
    """Spectral convolution ``R``: FFT, a learned complex matrix per kept mode, inverse FFT.

    Only the kept modes are transformed: the real FFT runs along the last axis, the kept
    ``K`` columns are sliced, and each earlier axis is transformed on those columns alone (and
    likewise backwards). The per-mode contraction is one batched complex matmul over modes.
    Both transforms are autograd Functions whose backward is the other truncated transform,
    rescaled (never an FFT of the whole zero-padded spectrum).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels m_in and m_out.
    modes : int
        K, Fourier modes kept per dimension (>= 2); see the module docstring for the convention.
    dim : int
        Spatial dimension d (1, 2 or 3).

    Attributes
    ----------
    weight : torch.nn.Parameter
        Complex tensor of shape ``(n_modes, in_channels, out_channels)`` stored modes-major for
        the batched matmul; ``n_modes = (2K - 1)**(d - 1) * K`` and the mode order is that of
        ``mode_shape = (2K - 1,) * (d - 1) + (K,)`` flattened row-major.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int, dim: int) -> None:
        super().__init__()
        _check_dim(dim)
        _check_modes_value(modes)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes = modes
        self.dim = dim
        self.mode_shape = (2 * modes - 1,) * (dim - 1) + (modes,)
        n_modes = math.prod(self.mode_shape)
        self.weight = nn.Parameter(
            torch.zeros(n_modes, in_channels, out_channels, dtype=torch.cfloat)
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, modes={self.modes}, dim={self.dim}, "
            f"mode_shape={self.mode_shape}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply R to ``x`` of shape ``(batch, in_channels, *grid)`` with ``len(grid) == dim``."""
        grid = x.shape[2:]
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            raise TransferTuneError(
                f"SpectralConv(dim={self.dim}) expects input (batch, {self.in_channels}, "
                f"{', '.join(['n'] * self.dim)}), got shape {tuple(x.shape)}"
            )
        check_modes(self.modes, grid)
        batch = x.shape[0]
        if batch == 0:  # FFT libraries reject empty batches; the answer is empty anyway
            return x.new_zeros(0, self.out_channels, *grid)
        # forward transform, touching only the kept modes: (B, Cin, *mode_shape)
        z = _ToModes.apply(x, self.modes)
        # batched matmul over modes: (M, B, Cin) @ (M, Cin, Cout) -> (M, B, Cout)
        z = z.reshape(batch, self.in_channels, -1).permute(2, 0, 1).contiguous()
        z = _ModeMatmul.apply(z, self.weight)
        z = z.permute(1, 2, 0).reshape(batch, self.out_channels, *self.mode_shape)
        # inverse transform: scatter the kept rows back, one axis at a time
        return _FromModes.apply(z, tuple(grid))


def _kept_rows(n: int, k: int, device: torch.device) -> torch.Tensor:
    """Indices of the kept rows ``0..K-1, n-K+1..n-1`` of a non-last axis of length n."""
    return torch.cat([torch.arange(k, device=device), torch.arange(n - k + 1, n, device=device)])


def _to_modes(x: torch.Tensor, k: int) -> torch.Tensor:
    """Kept Fourier coefficients of ``x`` (batch, C, *grid): shape (batch, C, *mode_shape).

    The real FFT runs along the last axis and keeps columns ``0..K-1``; every earlier axis is
    then transformed on those columns alone and cut to its kept rows.
    """
    grid = x.shape[2:]
    z = torch.fft.rfft(x, dim=-1)[..., :k]
    for axis in range(2, x.dim() - 1):
        z = torch.fft.fft(z, dim=axis).index_select(axis, _kept_rows(grid[axis - 2], k, x.device))
    return z


def _from_modes(z: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """The real function on ``grid`` whose kept coefficients are ``z`` (the others zero).

    Kept rows are scattered back with ``index_add_`` (a row kept twice, the Nyquist row when
    ``2K - 1 > n``, adds up: this is the adjoint of :func:`_to_modes`' selection).
    """
    k = z.shape[-1]
    for axis in range(2, z.dim() - 1):
        n = grid[axis - 2]
        shape = list(z.shape)
        shape[axis] = n
        z = z.new_zeros(shape).index_add_(axis, _kept_rows(n, k, z.device), z)
        z = torch.fft.ifft(z, dim=axis)
    return torch.fft.irfft(z, n=grid[-1], dim=-1)


def _hermitian_weights(k: int, n: int, like: torch.Tensor) -> torch.Tensor:
    """Weight of each kept last-axis column in a real signal: 1 at frequency 0 (and at the
    Nyquist frequency n/2 of an even n), 2 at the others (they stand for their conjugates).

    Real, in the precision of ``like`` (float64 for complex128 gradients)."""
    dtype = like.real.dtype if like.is_complex() else like.dtype
    weights = torch.full((k,), 2.0, dtype=dtype, device=like.device)
    weights[0] = 1.0
    if n % 2 == 0 and k == n // 2 + 1:
        weights[-1] = 1.0
    return weights


class _ToModes(torch.autograd.Function):
    """:func:`_to_modes` with a cheap backward.

    With ``N`` grid points and the Hermitian weights ``h`` of the last axis, the gradient of
    ``z = to_modes(x)`` is ``N * from_modes(g / h)``: one truncated inverse transform, where
    PyTorch's own ``rfft`` backward zero-pads the gradient to the full grid and runs a complex
    FFT over all of it. The backward is itself built from these Functions, so it is
    differentiable again.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, k: int) -> torch.Tensor:  # type: ignore[override]
        ctx.grid = tuple(x.shape[2:])
        ctx.k = k
        return _to_modes(x, k)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        weights = _hermitian_weights(ctx.k, ctx.grid[-1], grad)
        scale = math.prod(ctx.grid) / weights
        return _FromModes.apply(grad * scale, ctx.grid), None


class _FromModes(torch.autograd.Function):
    """:func:`_from_modes` with a cheap backward: ``to_modes(g) * h / N`` (see _ToModes)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:  # type: ignore[override]
        ctx.grid = grid
        ctx.k = z.shape[-1]
        return _from_modes(z, grid)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        weights = _hermitian_weights(ctx.k, ctx.grid[-1], grad)
        scale = weights / math.prod(ctx.grid)
        return _ToModes.apply(grad, ctx.k) * scale, None


class _ModeMatmul(torch.autograd.Function):
    """``bmm(z, w)`` over modes, with a backward that avoids slow conjugate-view matmuls.

    ``grad_z = g w^H`` is computed as ``conj(conj(g) w^T)`` and ``grad_w = z^H g`` from the
    conjugate-transposed view: both as fast as the forward on the CPU, where PyTorch's own
    backward of a complex ``bmm`` can fall back to one small matmul per mode.
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


class Pointwise(nn.Module):
    """A pointwise (1x1) linear map over channels of a ``(batch, channels, *grid)`` tensor."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.zeros(out_channels, in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, bias={self.bias is not None}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``W x + b`` to ``x`` of shape ``(batch, in_channels, *grid)``."""
        return self._linear(x)

    def _linear(self, x: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
        """``W x + b`` (plus ``add``, a tensor of the output's shape, when given).

        One batched matmul ``(batch, out, in) @ (batch, in, points)`` with the weight
        broadcast over the batch: the result is contiguous in the ``(batch, channels, *grid)``
        layout, so the activation and its backward run on contiguous memory (a plain
        ``weight @ x`` would be computed as ``x^T W^T`` and hand back a transposed view).
        """
        batch = x.shape[0]
        flat = x.reshape(batch, self.in_channels, -1)
        weight = self.weight.expand(batch, -1, -1)
        if add is None:
            if self.bias is None:
                y = torch.bmm(weight, flat)
            else:
                y = torch.baddbmm(self.bias[None, :, None], weight, flat)
        else:
            y = torch.baddbmm(add.reshape(batch, self.out_channels, -1), weight, flat)
            if self.bias is not None:
                y.add_(self.bias[:, None])  # in place: baddbmm's backward does not need y
        return y.view(batch, self.out_channels, *x.shape[2:])


class FourierLayer(nn.Module):
    """One Fourier layer: ``act(R(x) + W(x))`` (no activation on the last layer)."""

    def __init__(self, width: int, modes: int, dim: int, activation: bool) -> None:
        super().__init__()
        self.spectral = SpectralConv(width, width, modes, dim)
        self.pointwise = Pointwise(width, width)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pointwise._linear(x, add=self.spectral(x))
        return F.gelu(y) if self.activation else y


class FNO(nn.Module):
    """Fourier Neural Operator for d = 1, 2, 3.

    ``x -> P -> [R + W, GELU] x n_layers -> Q``: a pointwise lifting ``P`` to ``width``
    channels, ``n_layers`` Fourier layers (the last without activation, as in the original
    FNO), and a two-layer pointwise projection ``Q``. With ``grid_features=True`` the
    coordinates of the grid points in ``[0, 1]`` are appended as ``dim`` extra input channels,
    computed from the input's own grid so the model is resolution-independent.

    Parameters are left at zero by the constructor: initialise them with
    ``get_parametrization(...).initialize(model)``.

    Parameters
    ----------
    dim : int
        Spatial dimension d (1, 2 or 3).
    modes : int
        K, Fourier modes kept per dimension (>= 2). See the module docstring.
    width : int
        Hidden channels m (fixed while K varies).
    n_layers : int
        Number of Fourier layers.
    in_channels, out_channels : int
        Channels of the input and output functions.
    projection_width : int
        Hidden channels of the projection ``Q``.
    grid_features : bool
        Append grid coordinates as input channels.

    Examples
    --------
    >>> model = FNO(dim=1, modes=16, width=32, n_layers=4, in_channels=1, out_channels=1)
    >>> model(torch.zeros(2, 1, 64)).shape
    torch.Size([2, 1, 64])
    """

    def __init__(
        self,
        dim: int,
        modes: int,
        width: int,
        n_layers: int = 4,
        in_channels: int = 1,
        out_channels: int = 1,
        projection_width: int = 128,
        grid_features: bool = True,
    ) -> None:
        super().__init__()
        _check_dim(dim)
        _check_modes_value(modes)
        for name, value in (
            ("width", width),
            ("n_layers", n_layers),
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("projection_width", projection_width),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TransferTuneError(f"{name} must be a positive integer, got {value!r}")
        self.dim = dim
        self.modes = modes
        self.width = width
        self.n_layers = n_layers
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.projection_width = projection_width
        self.grid_features = grid_features
        lift_in = in_channels + (dim if grid_features else 0)
        self.lifting = Pointwise(lift_in, width)
        self.layers = nn.ModuleList(
            FourierLayer(width, modes, dim, activation=i < n_layers - 1) for i in range(n_layers)
        )
        self.projection1 = Pointwise(width, projection_width)
        self.projection2 = Pointwise(projection_width, out_channels)
        self._roles = self._assign_roles()

    def config(self) -> dict:
        """Constructor arguments, as plain data (saved with checkpoints and studies)."""
        return {
            "dim": self.dim,
            "modes": self.modes,
            "width": self.width,
            "n_layers": self.n_layers,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "projection_width": self.projection_width,
            "grid_features": self.grid_features,
        }

    def _assign_roles(self) -> dict[str, str]:
        roles = {"lifting.weight": "lifting", "lifting.bias": "bias"}
        for i in range(self.n_layers):
            roles[f"layers.{i}.spectral.weight"] = "spectral"
            roles[f"layers.{i}.pointwise.weight"] = "pointwise"
            roles[f"layers.{i}.pointwise.bias"] = "bias"
        for j in (1, 2):
            roles[f"projection{j}.weight"] = "projection"
            roles[f"projection{j}.bias"] = "bias"
        names = {name for name, _ in self.named_parameters()}
        if names != set(roles):
            missing = sorted(names - set(roles))
            raise RuntimeError(f"parameters without a role: {missing}")
        return roles

    def param_roles(self) -> dict[str, str]:
        """Role of every parameter by name, assigned when the model was built."""
        return dict(self._roles)

    def spectral_layers(self) -> list[SpectralConv]:
        """The spectral convolutions R, one per Fourier layer."""
        return [layer.spectral for layer in self.layers]

    def _coordinates(self, x: torch.Tensor) -> torch.Tensor:
        batch, grid = x.shape[0], x.shape[2:]
        axes = [torch.linspace(0, 1, n, device=x.device, dtype=x.dtype) for n in grid]
        mesh = torch.meshgrid(*axes, indexing="ij")
        coords = torch.stack(mesh, dim=0).unsqueeze(0)
        return coords.expand(batch, *coords.shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` (batch, in_channels, *grid) to (batch, out_channels, *grid)."""
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            raise TransferTuneError(
                f"FNO(dim={self.dim}, in_channels={self.in_channels}) expects input of shape "
                f"(batch, {self.in_channels}, {', '.join(['n'] * self.dim)}), "
                f"got {tuple(x.shape)}"
            )
        check_modes(self.modes, x.shape[2:])
        x = x.to(self.lifting.weight.dtype)  # e.g. float64 data into a float32 model
        if x.shape[0] == 0:  # FFT libraries reject empty batches; the answer is empty anyway
            return x.new_zeros(0, self.out_channels, *x.shape[2:])
        if self.grid_features:
            x = torch.cat([x, self._coordinates(x)], dim=1)
        x = self.lifting(x)
        for layer in self.layers:
            x = layer(x)
        return self.projection2(F.gelu(self.projection1(x)))
