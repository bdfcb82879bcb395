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
model built for one grid evaluates on a finer one (zero-shot super-resolution). The inverse
transform uses only the real part of the last-axis columns 0 and ``n/2`` (when kept), as a
full ``irfftn`` does; the transforms and their adjoints live in
:mod:`transfer_tune.core.spectral_autograd`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from pdes.checks import as_int
from transfer_tune.core.adapters import ModelRoles
from transfer_tune.core.spectral_autograd import from_modes, mode_matmul, to_modes
from transfer_tune.errors import TransferTuneError


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
    if limit < 2:
        raise TransferTuneError(
            f"a grid of {tuple(grid)} points is too small for any K (K >= 2 needs at least 2 "
            "points on every axis); use a finer grid."
        )
    if modes > limit:
        raise TransferTuneError(
            f"K = {modes} Fourier modes do not fit a grid of {tuple(grid)} points: K must be "
            f"<= n // 2 + 1 = {limit} on every axis. Use K <= {limit} or a finer grid."
        )


def mode_shape(modes: int, dim: int) -> tuple[int, ...]:
    """Shape of the kept Fourier coefficients per channel: ``(2K - 1,) * (d - 1) + (K,)``.

    The one home of the mode-count formula (the model's weights, the FLOP estimates): ``K``
    frequencies on the last axis, ``|k| < K`` (``2K - 1`` rows) on every other axis. The
    number of kept modes is ``math.prod(mode_shape(modes, dim))``.
    """
    return (2 * modes - 1,) * (dim - 1) + (modes,)


def _check_dim(dim: int) -> int:
    return as_int(dim, "dim", minimum=1, maximum=3)


def _check_modes_value(modes: int) -> int:
    try:
        return as_int(modes, "modes (K)", minimum=2)
    except TransferTuneError as exc:
        raise TransferTuneError(
            f"{exc}; K = 1 is rejected because the µP rule scales by 1/sqrt(ln K)."
        ) from None


class SpectralConv(nn.Module):
    """Spectral convolution ``R``: FFT, a learned complex matrix per kept mode, inverse FFT.

    Only the kept modes are transformed: the real FFT runs along the last axis, the kept
    ``K`` columns are sliced, and each earlier axis is transformed on those columns alone (and
    likewise backwards). The per-mode contraction is one batched complex matmul over modes.
    Both transforms are autograd Functions whose backward is the other truncated transform,
    rescaled (never an FFT of the whole zero-padded spectrum); they live in
    :mod:`transfer_tune.core.spectral_autograd`, with the exact adjoints spelled out.

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
        dim = _check_dim(dim)
        modes = _check_modes_value(modes)
        self.in_channels = as_int(in_channels, "in_channels")
        self.out_channels = as_int(out_channels, "out_channels")
        self.modes = modes
        self.dim = dim
        self.mode_shape = mode_shape(modes, dim)
        n_modes = math.prod(self.mode_shape)
        self.weight = nn.Parameter(
            torch.zeros(n_modes, self.in_channels, self.out_channels, dtype=torch.cfloat)
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
        z = to_modes(x, self.modes)
        # batched matmul over modes: (M, B, Cin) @ (M, Cin, Cout) -> (M, B, Cout)
        z = z.reshape(batch, self.in_channels, -1).permute(2, 0, 1).contiguous()
        z = mode_matmul(z, self.weight)
        z = z.permute(1, 2, 0).reshape(batch, self.out_channels, *self.mode_shape)
        # inverse transform: scatter the kept rows back, one axis at a time
        return from_modes(z, tuple(grid))


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

    The constructor initialises every parameter as SP at the model's own K
    (:meth:`reset_parameters`, drawing from the global RNG as torch modules do), so a fresh
    model trains. For µP, or a reproducible draw from a seeded generator, redraw them with
    ``get_parametrization(...).initialize(model, generator)``, which overwrites every
    parameter (the constructor's draw does not change what it gives).

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
        dim = _check_dim(dim)
        modes = _check_modes_value(modes)
        width = as_int(width, "width")
        n_layers = as_int(n_layers, "n_layers")
        in_channels = as_int(in_channels, "in_channels")
        out_channels = as_int(out_channels, "out_channels")
        projection_width = as_int(projection_width, "projection_width")
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
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw every parameter as SP at this model's own K (in place).

        The std of each parameter is read from the one parametrization table
        (:mod:`transfer_tune.core.parametrization`): this is exactly
        ``get_parametrization("sp", base_modes=self.modes).initialize(self, generator)``.
        The constructor calls it; call it again (or ``initialize``) to redraw.

        Parameters
        ----------
        generator : torch.Generator, optional
            Source of the draws; ``None`` draws from the global RNG (``torch.manual_seed``).
        """
        # imported here: the table (parametrization -> adapters) sits above the model
        from transfer_tune.core.parametrization import get_parametrization

        get_parametrization("sp", base_modes=self.modes).initialize(self, generator)

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

    def role_spec(self) -> ModelRoles:
        """Roles, K, dimension and spectral fan-in/out of this model, for the SP/µP table
        (what :func:`transfer_tune.core.adapters.model_roles` returns for it)."""
        return ModelRoles(
            self.param_roles(),
            self.modes,
            self.dim,
            {
                f"layers.{i}.spectral.weight": (conv.in_channels, conv.out_channels)
                for i, conv in enumerate(self.spectral_layers())
            },
            draw_all=True,
            source="transfer_tune",
        )

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
