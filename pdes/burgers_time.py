"""Space-time viscous Burgers (PINO): data ``u0(x) -> u(x, t)`` on an ``(x, t)`` grid.

Problem
-------
``u_t + (u^2 / 2)_x = nu u_xx`` on ``[0, 1)`` (periodic), ``0 <= t < T``, with ``nu = 0.01`` and
``T = 1`` as in the Burgers experiment of PINO (Li et al. 2021, arXiv:2111.03794), initial data
``u0 ~ N(0, sigma^2 (-d^2/dx^2 + 25 I)^(-alpha))`` with ``sigma = 25``, ``tau = 5`` and
``alpha = 2.5`` (see :mod:`pdes.grf`): the FNO / PINO initial field made smoother
(``alpha = 2`` there; see "Physics loss of the data" below).  The operator maps ``u0`` to the whole
space-time field ``u(x, t)`` and is learned by a 2-D FNO on the grid
``x_i = i / r`` (periodic), ``t_j = j T / r`` (``i, j = 0, ..., r - 1``; ``t = 0`` included,
``T`` excluded, so the time grid nests under subsampling exactly like the periodic x grid).

* ``x``: shape ``(N, 2, r, r)`` (axis 2 is x, axis 3 is t); channel 0 is ``u0(x_i)`` repeated
  along t, channel 1 is ``t_j`` (the FNO needs the time coordinate: channel 0 is constant in t).
* ``y``: shape ``(N, 1, r, r)``, ``u(x_i, t_j)``; ``y[..., 0]`` equals ``u0`` (``t_0 = 0``).

:func:`physics_loss` is the PINO loss: the equation's residual (:func:`residual`, spectral in
x, second-order finite differences in t) plus the initial-condition mismatch.

Method
------
:func:`pdes.burgers.trajectory` (the Burgers solver: Fourier pseudo-spectral in x with the 2/3
rule, ETDRK4 in time) on ``n_fine`` points, recording ``n_times_fine`` snapshots at
``t_j = j T / n_times_fine``; each sample's step count is rounded up to a multiple of
``n_times_fine`` so the snapshots fall on steps.  Resolution ``r`` keeps every
``n_fine / r``-th point in x and every ``n_times_fine / r``-th snapshot in t, both from index
0: data at resolution 32 is exactly every other point (both axes) of the data at 64.

Defaults and why
----------------
* ``nu = 0.01``, ``T = 1``: PINO's Burgers problem.  The initial field steepens into fronts
  (``max |u_x|`` ~ 80 on 64 draws, ``max |u|`` ~ 1.5) that stay resolved on a modest grid.
* ``n_fine = 256``: for ``t > 0`` the solution's energy beyond the 2/3 cut-off ``k = 85`` is at
  most ~4e-13 of its non-mean energy (64 draws, 1024-point reference), and the 256-point
  trajectories agree with 1024-point solves (``dt = 1e-4``) of the same band-limited initial
  field to 6e-7 relative L2 at every snapshot.  Only ``u0`` itself is rough (its spectrum
  decays like ``k^-4``: ~2e-6 of its energy lies beyond ``k = 85``, ~4e-4 at worst beyond the
  Nyquist ``k = 32`` of the default resolution); viscosity removes that within ``t ~ 0.01``.
  Resolutions: the divisors of 256 (2, 4, ..., 256), the default 64 among them.
* ``n_times_fine = 256`` snapshots: the same nesting in t (resolution ``r`` keeps every
  ``256 / r``-th).  Steps are rounded up to a multiple of it: with ``dt = 1e-3`` every sample
  takes 1024 steps (``h = 1/1024``) unless its ``max |u0|`` exceeds ~3.8 (the ``cfl`` limit of
  :func:`pdes.burgers.step_counts` then asks for more).
* ``dt = 1e-3``, ``cfl = 2`` (as :mod:`pdes.burgers`): the time error is far below the space
  error above (``dt = 1/256`` gives the same 7e-7), and generation stays cheap: the default
  1300 samples at resolution 64 took 13 s in one process (the cost is the 1024 steps on 256
  points, whatever the resolution).
* ``tau``, ``sigma``: the FNO / PINO initial field, as :mod:`pdes.burgers`; ``alpha = 2.5``
  instead of 2 (below). With ``alpha = 2`` sample ``i`` of a seed has the same ``u0`` as
  :mod:`pdes.burgers` with ``n_fine = 256``.

Physics loss of the data (why ``alpha = 2.5``, and why the residual skips ``t = 0``): the
FNO's initial field (``alpha = 2``) is rough (its spectrum decays like ``k^-4``, so ``u0_xx``
grows with the grid) and at ``nu = 0.01`` its modes ``k >= 10`` decay on time scales
``1 / (nu (2 pi k)^2) <= 0.025``, under two steps ``T / r`` of the data's time grid: faster
than finite differences in t can follow, so the exact data's residual does not vanish.
Measured mean residual term of :func:`physics_loss` over 20 exact samples:

=========  ============  ================  ==================
alpha      resolution    all time rows     rows ``t_j > 0``
=========  ============  ================  ==================
2          32            0.45              0.29
2          64            0.32              0.082
2.5        32            0.061             0.020
2.5        64            0.066             0.014
=========  ============  ================  ==================

So :func:`physics_loss` evaluates the equation at ``t_j > 0`` only (``t = 0`` is the
initial-condition term's) and the default field is ``alpha = 2.5``, which keeps a floor of
~0.02 on the exact data while the targets still hold 1.3e-2 of their energy beyond K = 4 and
3e-3 beyond K = 8 (:mod:`pdes.spectrum`, resolution 32). Smooth solutions have residuals of
the finite differences' second order in ``T / r`` (the tests check it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from pdes import burgers
from pdes import generation as gen
from pdes.checks import as_int
from pdes.errors import TransferTuneError
from pdes.grf import GaussianRandomField

__all__ = [
    "DEFAULTS",
    "DEFAULT_RESOLUTION",
    "DIM",
    "IN_CHANNELS",
    "OUT_CHANNELS",
    "check_resolution",
    "fine_grid_for",
    "generate",
    "physics_loss",
    "residual",
]

DIM = 2  # grid axes (x, t)
IN_CHANNELS = 2  # u0 repeated along t, and t
OUT_CHANNELS = 1  # u(x, t)
DEFAULT_RESOLUTION = 64
VERSION = "1"

DEFAULTS: dict[str, Any] = {
    "nu": 0.01,  # viscosity (PINO's Burgers)
    "T": 1.0,  # the time grid is t_j = j T / r, j < r
    "n_fine": 256,  # solver grid points in x; data is subsampled from it
    "n_times_fine": 256,  # snapshots on the fine time grid; data is subsampled from them
    "dt": 1e-3,  # largest time step (rounded so that snapshots fall on steps)
    "cfl": burgers.CFL,  # and at most cfl / (max|u0| k_max) per sample (burgers.step_counts)
    "alpha": 2.5,  # GRF covariance sigma^2 (-Laplacian + tau^2)^(-alpha); FNO's is 2
    "tau": 5.0,
    "sigma": 25.0,
}

_CHUNK = 64  # samples per batched solve (does not change the data)
_NAME = "burgers_time"
_TINY = 1e-20  # floor of ||u0|| in physics_loss (a zero initial field)


def _params(params: dict[str, Any]) -> dict[str, Any]:
    p = gen.resolve_params(DEFAULTS, params, _NAME)
    gen.check_even_grid(p, _NAME)
    p["n_times_fine"] = as_int(p["n_times_fine"], f"{_NAME} n_times_fine", minimum=2)
    return p


def check_resolution(resolution: int, **params: Any) -> None:
    """Raise :class:`TransferTuneError` unless ``resolution`` divides ``n_fine`` and
    ``n_times_fine`` (resolution ``r`` means ``r`` points in x and ``r`` times in t).

    Parameters
    ----------
    resolution : int
        Requested points per axis.
    **params
        Overrides of :data:`DEFAULTS` (``n_fine`` and ``n_times_fine`` matter here).
    """
    p = _params(params)
    gen.check_subsample_resolution(
        _NAME,
        resolution,
        int(p["n_fine"]),
        f"set n_fine to a multiple of {resolution} (e.g. n_fine={_suggest(resolution, True)}).",
    )
    n_t = int(p["n_times_fine"])
    if n_t % int(resolution):
        raise TransferTuneError(
            f"{_NAME} resolution {resolution} is not a subsample of the fine time grid "
            f"n_times_fine={n_t}: it must divide n_times_fine (allowed: "
            f"{', '.join(map(str, gen.divisors(n_t)[:24]))}). Pick one of those, or set "
            f"n_times_fine to a multiple of {resolution} (e.g. "
            f"n_times_fine={_suggest(resolution, False)})."
        )


def fine_grid_for(resolution: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """The fine grids (``n_fine``, ``n_times_fine``) a ``resolution`` needs, where the current
    ones cannot give it: the smallest multiples of ``resolution`` that are at least 256 (even
    for ``n_fine``), e.g. ``{"n_fine": 512, "n_times_fine": 512}`` for 512, 288 for 96."""
    out: dict[str, Any] = {}
    try:
        r = int(resolution)
    except (TypeError, ValueError):
        return out
    for key, even in (("n_fine", True), ("n_times_fine", False)):
        current = params.get(key, DEFAULTS[key])
        if not isinstance(current, int) or r < 2 or current % r:
            out[key] = _suggest(r, even)
    return out


def _suggest(resolution: Any, even: bool) -> int:
    base = DEFAULTS["n_fine"]
    try:
        r = max(2, int(resolution))
    except (TypeError, ValueError):
        return base
    n = r * max(1, math.ceil(base / r))
    return 2 * n if even and n % 2 else n


def _chunk(start: int, stop: int, seed: int, resolution: int, p: dict[str, Any]):
    n_fine, n_t = int(p["n_fine"]), int(p["n_times_fine"])
    grf = GaussianRandomField(1, n_fine, alpha=p["alpha"], tau=p["tau"], sigma=p["sigma"])
    u0 = grf.sample(stop - start, gen.sample_generators(seed, start, stop))
    every = n_t // resolution
    u = burgers.trajectory(  # (m, resolution, n_fine): every `every`-th snapshot
        u0, nu=p["nu"], T=p["T"], dt=p["dt"], n_times=n_t, cfl=p["cfl"], every=every
    )
    stride = n_fine // resolution
    y = np.swapaxes(u[:, :, ::stride], 1, 2)[:, None]  # (m, 1, x, t)
    m = stop - start
    x = np.empty((m, IN_CHANNELS, resolution, resolution), dtype=np.float32)
    x[:, 0] = u0[:, ::stride, None]
    x[:, 1] = (np.arange(resolution) * (p["T"] / resolution))[None, None, :]
    return x, y.astype(np.float32)


#: This module as :func:`pdes.generation.generate_pairs` uses it.
SOLVER = gen.Solver(_NAME, _chunk, _CHUNK, _params, check_resolution)
generate = gen.generate_function(
    SOLVER,
    """Generate space-time Burgers pairs ``(u0 and t, u(x, t))`` on an ``(x, t)`` grid.

    ``resolution`` must divide ``n_fine`` and ``n_times_fine`` (see :func:`check_resolution`);
    ``**params`` overrides :data:`DEFAULTS`; the other arguments are those of
    :func:`pdes.generation.generate_pairs` (sample ``i`` depends only on ``(seed, i, params)``).

    Returns
    -------
    x : ndarray, shape (n_samples, 2, resolution, resolution), float32
        Channel 0: ``u0(x_i)`` for every ``t_j``; channel 1: ``t_j = j T / resolution``.
    y : ndarray, shape (n_samples, 1, resolution, resolution), float32
        ``u(x_i, t_j)`` with ``x_i = i / resolution`` (axis 2) and ``t_j`` (axis 3).
    """,
)


# --------------------------------------------------------------------------------------------
# Physics (PINO): torch, differentiable, batched
# --------------------------------------------------------------------------------------------


def _check_tensor(t: Any, name: str, channels: int, what: str) -> None:
    expected = f"(N, {channels}, nx, nt) with nx >= 2 and nt >= 3 (axis 2 is x, axis 3 is t)"
    if not isinstance(t, torch.Tensor):
        raise TransferTuneError(
            f"{_NAME} {what}: {name} must be a torch.Tensor shaped {expected}, got "
            f"{type(t).__name__}; convert it with torch.as_tensor."
        )
    shape = tuple(t.shape)
    if t.ndim != 4 or shape[1] != channels or shape[2] < 2 or shape[3] < 3:
        raise TransferTuneError(f"{_NAME} {what}: {name} must be shaped {expected}, got {shape}.")
    if not t.is_floating_point():
        raise TransferTuneError(
            f"{_NAME} {what}: {name} must be a floating-point tensor, got {t.dtype}."
        )


def _check_constants(nu: float, T: float, what: str) -> tuple[float, float]:
    nu, T = float(nu), float(T)
    if not (math.isfinite(nu) and nu >= 0 and math.isfinite(T) and T > 0):
        raise TransferTuneError(f"{_NAME} {what}: need nu >= 0 and T > 0, got nu={nu}, T={T}.")
    return nu, T


def _residual(u: torch.Tensor, nu: float, T: float) -> torch.Tensor:
    """:func:`residual` on ``u`` shaped ``(N, nx, nt)`` (checked)."""
    nx, nt = u.shape[-2], u.shape[-1]
    real = u.dtype
    # x: Fourier coefficients of the trigonometric interpolant (norm="forward": the c_k)
    c = torch.fft.rfft(u, dim=-2, norm="forward")  # (N, nx // 2 + 1, nt)
    k = torch.arange(nx // 2 + 1, device=u.device, dtype=real)
    two_pi_k = (2.0 * math.pi) * k
    u_xx = torch.fft.irfft(-(two_pi_k**2)[:, None] * c, n=nx, dim=-2, norm="forward")
    # (u^2/2)_x of the interpolant, exactly at the nodes: square it on the 2 nx grid (no
    # aliasing; an even grid's Nyquist coefficient is split between +-nx/2), differentiate
    # there, keep the even points.
    split = torch.ones(nx // 2 + 1, device=u.device, dtype=real)
    if nx % 2 == 0:
        split[-1] = 0.5
    fine = torch.fft.irfft(c * split[:, None], n=2 * nx, dim=-2, norm="forward")
    cw = torch.fft.rfft(0.5 * fine * fine, dim=-2, norm="forward")  # (N, nx + 1, nt)
    kw = (2.0 * math.pi) * torch.arange(nx + 1, device=u.device, dtype=real)
    kw[-1] = 0.0  # the 2 nx grid's Nyquist mode: its derivative vanishes at the nodes
    flux_x = torch.fft.irfft((1j * kw)[:, None] * cw, n=2 * nx, dim=-2, norm="forward")[..., ::2, :]
    # t: second-order finite differences on t_j = j T / nt
    inv = nt / (2.0 * T)
    inside = (u[..., 2:] - u[..., :-2]) * inv
    first = (-3.0 * u[..., 0] + 4.0 * u[..., 1] - u[..., 2]) * inv
    last = (3.0 * u[..., -1] - 4.0 * u[..., -2] + u[..., -3]) * inv
    u_t = torch.cat([first[..., None], inside, last[..., None]], dim=-1)
    return u_t + flux_x - nu * u_xx


def residual(u: torch.Tensor, *, nu: float, T: float) -> torch.Tensor:
    """Pointwise residual ``u_t + (u^2 / 2)_x - nu u_xx`` on the ``(x, t)`` grid, in torch.

    x-derivatives are spectral, of the trigonometric interpolant of each time row in x
    (periodic unit interval): ``u_xx`` and ``(u^2 / 2)_x`` are the exact derivatives of the
    interpolant and of its square at the nodes.  The product is dealiased by forming the
    square on a twice finer grid (zero padding) and sampling its derivative back at the
    nodes, so a band-limited field incurs no aliasing error (it costs FFTs of length
    ``2 nx``); the pseudo-spectral product on the ``nx`` nodes would fold the square's modes
    above ``nx / 2`` onto the low ones.  ``u_t`` is the second-order finite difference on
    ``t_j = j T / nt`` (central inside, one-sided ``(-3 u_0 + 4 u_1 - u_2) / (2 dt)`` at the
    first time and its mirror at the last), so for a smooth field the residual is accurate to
    ``O((T / nt)^2)``.  Differentiable in ``u``; float32 or float64, any device.

    Parameters
    ----------
    u : torch.Tensor, shape (N, 1, nx, nt)
        ``u(x_i, t_j)``, ``x_i = i / nx``, ``t_j = j T / nt`` (``nx >= 2``, ``nt >= 3``), in
        physical units.
    nu : float
        Viscosity (>= 0).
    T : float
        The time grid's period-like span (> 0): the spacing in t is ``T / nt``.

    Returns
    -------
    torch.Tensor, shape (N, nx, nt)
        The residual at every node, in units of ``u`` per unit time.

    Raises
    ------
    TransferTuneError
        If ``u`` is not a floating tensor shaped ``(N, 1, nx, nt)``, or ``nu < 0`` or
        ``T <= 0``.
    """
    _check_tensor(u, "u", 1, "residual")
    nu, T = _check_constants(nu, T, "residual")
    return _residual(u[:, 0], nu, T)


def physics_loss(
    x: torch.Tensor, y: torch.Tensor, *, nu: float, T: float, **params: Any
) -> torch.Tensor:
    """Per-sample PINO loss: PDE residual plus initial-condition mismatch, dimensionless.

    ``loss = ||r||_rms T / ||u0||_rms + ||y(., t_0) - u0||_2 / ||u0||_2`` with ``r`` the
    :func:`residual` of ``y`` over the nodes at ``t_j > 0`` (``t_0 = 0`` belongs to the
    initial condition; the residual there is dominated by the finite differences' error on
    the initial layer, see the module docstring) and ``u0 = x[:, 0, :, 0]``;
    the norms of ``u0`` are floored at 1e-20 (a zero initial field).  The first term is the
    equation's residual in units of ``||u0|| / T``, the second the relative error of the initial
    condition (the residual alone is blind to it: every solution has a small residual).  For
    solver data it is the discretisation error of the residual (finite differences in t), not
    zero.

    Parameters
    ----------
    x : torch.Tensor, shape (N, 2, nx, nt)
        The physical input: channel 0 is ``u0`` repeated along t (only ``t_0`` is read),
        channel 1 the time (not read: the spacing is ``T / nt``).
    y : torch.Tensor, shape (N, 1, nx, nt)
        The physical prediction ``u(x_i, t_j)`` on the same grid.
    nu, T : float
        Viscosity and the time span (:data:`DEFAULTS`).
    **params
        Other solver parameters (``n_fine``, ``dt``, ...): accepted and ignored, so the
        problem's whole parameter dict can be passed.

    Returns
    -------
    torch.Tensor, shape (N,)
        The loss of each sample, differentiable in ``x`` and ``y``.

    Raises
    ------
    TransferTuneError
        On bad shapes (the expected ones are named), or ``nu < 0`` or ``T <= 0``.
    """
    _check_tensor(x, "x", IN_CHANNELS, "physics_loss")
    _check_tensor(y, "y", OUT_CHANNELS, "physics_loss")
    if x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[2:]:
        raise TransferTuneError(
            f"{_NAME} physics_loss: x {tuple(x.shape)} and y {tuple(y.shape)} must be the same "
            f"samples on the same grid: x (N, {IN_CHANNELS}, nx, nt), y (N, {OUT_CHANNELS}, "
            "nx, nt)."
        )
    if x.device != y.device:
        raise TransferTuneError(
            f"{_NAME} physics_loss: x is on {x.device} but y on {y.device}; put both on one device."
        )
    nu, T = _check_constants(nu, T, "physics_loss")
    u = y[:, 0]
    u0 = x[:, 0, :, 0].to(u.dtype)
    r = _residual(u, nu, T)
    u0_rms = u0.square().mean(dim=1).sqrt().clamp_min(_TINY)
    pde = r[..., 1:].square().mean(dim=(1, 2)).sqrt() * T / u0_rms  # t_j > 0
    ic = torch.linalg.vector_norm(u[..., 0] - u0, dim=1) / torch.linalg.vector_norm(
        u0, dim=1
    ).clamp_min(_TINY)
    return pde + ic
