"""Viscous Burgers equation on the periodic unit interval: data ``u(., 0) -> u(., T)``.

Problem
-------
``u_t + (u^2 / 2)_x = nu u_xx`` on ``[0, 1)`` with periodic boundary conditions, ``nu = 1e-3``,
``T = 1``, initial data ``u0 ~ N(0, 625 (-d^2/dx^2 + 25 I)^(-2))`` (``sigma = 25``, ``tau = 5``,
``alpha = 2``, zero-mean; see :mod:`pdes.grf` for the covariance convention), the original FNO
initial field.  The original FNO data used ``nu = 0.1`` (``nu=0.1`` reproduces it).

Method
------
Fourier pseudo-spectral in space on a fixed fine grid of ``n_fine`` points, exponential time
differencing RK4 in time (ETDRK4, Cox & Matthews 2002) with the Kassam & Trefethen (2005)
contour-integral evaluation of its coefficients.  The diffusion ``-nu (2 pi k)^2`` is integrated
exactly, so the step is limited by the explicit advection term, not by stiffness.  The
nonlinear term ``-(u^2/2)_x`` is evaluated in conservative form with the 2/3 rule: the state is
truncated to ``|k| <= n_fine/3`` before squaring and the product to the same band, so the zero
mode (the spatial mean) is never touched and is conserved exactly.  All samples of a chunk
advance together (batched FFTs).

Defaults and why
----------------
* ``nu = 1e-3``: a problem where a large K has something to learn.  At ``nu = 0.1`` every mode
  ``k != 0`` decays at least like ``exp(-0.1 (2 pi)^2 t)``: ``u(., 1)`` is about 2 % of ``u0``
  and its energy beyond the first 4 modes is ~1e-13 of its non-mean energy, so an FNO with
  K = 4 already sees all of it.  At ``nu = 1e-3`` the initial field steepens into viscous
  shocks (fronts of width ~ ``4 nu / [u]``, down to ~0.005 around ``t = 0.2``, ~0.01 at
  ``t = 1``) and the target keeps ~5e-2, 1.6e-2, 2.6e-3 and 1.2e-4 of its non-mean energy
  beyond K = 8, 16, 32 and 64 on the 1024-point grid (:mod:`pdes.spectrum`).
* ``n_fine = 1024``: the default training resolution is 1024 and every coarser power of two
  (``512, ..., 64``) is an exact subsample of it.  At ``nu = 1e-3`` the steepest fronts have
  ~4e-7 of the energy beyond the 2/3 cut-off ``k = 341``; for the same (band-limited) initial
  field, 1024 points agree with a 4096-point solve to 3e-8 relative L2 at ``T = 1`` (2e-12 at
  ``nu = 2e-3``).  512 points would not do (1e-4).  Set ``n_fine = 8192`` to solve on the
  original FNO grid (the initial field is then sampled with modes up to 4096).
* ``dt = 1e-3`` (at least 1000 steps to ``T = 1``) and ``CFL = 2``: the explicit advection
  term limits the step.  ETDRK4 went unstable on these data near ``max|u0| k_max h ~ 4.5``
  (``k_max = 2 pi floor(n_fine / 3)``; at ``dt = 1e-3`` a field with ``max|u0| = 2.8``, about
  one in a thousand draws, blows up), so every sample's step is also at most
  ``CFL / (max|u0| k_max)`` (:func:`step_counts`; it depends only on that sample).  The time
  error is then ~5e-9 relative.  The mean step count is ~1220 and the default 1300 samples at
  1024 points cost ~60 CPU-seconds (~30 s on two cores).  The limit ignores diffusion, so it
  is pessimistic at large ``nu``: for the original ``nu = 0.1`` data, ``dt = 0.01`` with
  ``cfl = 1e9`` (no limit) is stable and accurate (the tests check it) and ~10x cheaper.
  The tests check the defaults against an exact Cole-Hopf solution with viscous shocks as
  steep as the data's.

Resolutions: any ``resolution`` that divides ``n_fine``; the data is
``u[:, ::n_fine // resolution]``, so data at resolution 64 is exactly every other point of the
data at resolution 128.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.fft as sfft

from pdes import generation as gen
from pdes.errors import TransferTuneError
from pdes.grf import GaussianRandomField

__all__ = [
    "CFL",
    "DEFAULTS",
    "DIM",
    "check_resolution",
    "etdrk4_coefficients",
    "generate",
    "solve",
    "step_counts",
    "trajectory",
]

DIM = 1

#: Largest advective number ``max|u0| k_max dt`` :func:`solve` allows by default: ETDRK4 on
#: these data went unstable near 4.5 at ``nu = 1e-3`` (n = 1024), so 2 leaves a 2x margin.
CFL = 2.0

DEFAULTS: dict[str, Any] = {
    "nu": 1e-3,  # viscosity (the original FNO data: 0.1, nothing beyond K = 4 to learn)
    "T": 1.0,  # final time of the map u(0) -> u(T)
    "n_fine": 1024,  # solver grid points; data is subsampled from it
    "dt": 1e-3,  # largest time step (the step used is T / ceil(T / dt))
    "cfl": CFL,  # and at most cfl / (max|u0| k_max) per sample (see solve)
    "alpha": 2.0,  # GRF covariance sigma^2 (-Laplacian + tau^2)^(-alpha)
    "tau": 5.0,
    "sigma": 25.0,
}

_CHUNK = 64  # samples per batched solve (cache-friendly; does not change the data)


def etdrk4_coefficients(lin: np.ndarray, h: float, n_contour: int = 32) -> tuple[np.ndarray, ...]:
    """ETDRK4 coefficients for a diagonal real linear operator (Kassam & Trefethen contour means).

    Parameters
    ----------
    lin : ndarray
        Diagonal of the linear operator (real, <= 0 here).
    h : float
        Time step.
    n_contour : int
        Points on the upper half of a unit circle around each ``h * lin``.

    Returns
    -------
    E, E2, Q, f1, f2, f3 : ndarray
        ``exp(h L)``, ``exp(h L / 2)`` and the phi-function weights of Cox & Matthews' scheme.
    """
    lin = np.asarray(lin, dtype=np.float64)
    r = np.exp(1j * np.pi * (np.arange(1, n_contour + 1) - 0.5) / n_contour)
    lr = h * lin[..., None] + r
    exp_lr = np.exp(lr)
    q = h * np.real(np.mean((np.exp(lr / 2) - 1) / lr, axis=-1))
    f1 = h * np.real(np.mean((-4 - lr + exp_lr * (4 - 3 * lr + lr**2)) / lr**3, axis=-1))
    f2 = h * np.real(np.mean((2 + lr + exp_lr * (lr - 2)) / lr**3, axis=-1))
    f3 = h * np.real(np.mean((-4 - 3 * lr - lr**2 + exp_lr * (4 - lr)) / lr**3, axis=-1))
    return np.exp(h * lin), np.exp(h * lin / 2), q, f1, f2, f3


def _advance(v: np.ndarray, n: int, nu: float, h: float, n_steps: int) -> np.ndarray:
    """``n_steps`` ETDRK4 steps of size ``h`` on rfft coefficients ``v`` of an ``n``-point grid."""
    k = np.arange(n // 2 + 1, dtype=np.float64)  # rfft wavenumbers
    kk = 2.0 * np.pi * k
    E, E2, Q, f1, f2, f3 = etdrk4_coefficients(-nu * kk**2, h)
    keep = k <= n / 3.0  # 2/3 rule (drops Nyquist too)
    g = np.where(keep, -0.5j * kk, 0.0)  # -(1/2) d/dx, band-limited

    def nonlinear(v: np.ndarray) -> np.ndarray:
        w = sfft.irfft(v * keep, n=n, axis=-1)
        return g * sfft.rfft(w * w, axis=-1)

    for _ in range(n_steps):
        nv = nonlinear(v)
        e2v = E2 * v
        a = e2v + Q * nv
        na = nonlinear(a)
        b = e2v + Q * na
        nb = nonlinear(b)
        c = E2 * a + Q * (2.0 * nb - nv)
        nc = nonlinear(c)
        v = E * v + f1 * nv + 2.0 * f2 * (na + nb) + f3 * nc
    return v


def step_counts(u0: np.ndarray, *, T: float, dt: float, cfl: float | None = CFL) -> np.ndarray:
    """Steps each sample of ``u0`` (shape ``(..., n)``) takes to reach ``T``; see :func:`solve`.

    ``max(ceil(T / dt), ceil(T * max|u0| * k_max / cfl))`` with ``k_max = 2 pi floor(n / 3)``,
    the latter rounded up to 8 values per octave (few distinct steps, so samples share batched
    solves); ``cfl=None`` gives ``ceil(T / dt)`` for all.
    """
    u0 = np.asarray(u0, dtype=np.float64)
    base = math.ceil(T / dt - 1e-9) if T > 0 else 0
    counts = np.full(u0.shape[:-1], base, dtype=np.int64)
    if cfl is None or base == 0:
        return counts
    k_max = 2.0 * np.pi * (u0.shape[-1] // 3)
    umax = np.max(np.abs(u0), axis=-1) if u0.shape[-1] else np.zeros(u0.shape[:-1])
    need = np.maximum(np.ceil(T * umax * k_max / cfl - 1e-9), 1).astype(np.int64)
    # round up to 8 values per octave: at most 12.5 % more steps, few distinct counts
    quantum = np.maximum(1, 2 ** np.floor(np.log2(need)).astype(np.int64) // 8)
    need = -(-need // quantum) * quantum
    return np.maximum(counts, need)


def _checked(
    u0: np.ndarray, *, nu: float, T: float, dt: float, cfl: float | None
) -> tuple[np.ndarray, int]:
    """``u0`` as float64 and its grid size, or a clear error for arguments no solve can use."""
    u0 = np.asarray(u0, dtype=np.float64)
    n = u0.shape[-1]
    if n < 4 or n % 2:
        raise TransferTuneError(f"Burgers grid needs an even number of points >= 4, got {n}.")
    if not (dt > 0 and T >= 0 and nu >= 0):
        raise TransferTuneError(f"need dt > 0, T >= 0 and nu >= 0, got dt={dt}, T={T}, nu={nu}.")
    if cfl is not None and not cfl > 0:
        raise TransferTuneError(f"cfl must be > 0 or None, got {cfl!r}.")
    return u0, n


def _finite(v: np.ndarray, nu: float, h: float) -> np.ndarray:
    """``v`` (rfft coefficients after some steps of size ``h``), or a clear error when the
    solution blew up."""
    if not np.all(np.isfinite(v)):
        n = 2 * (v.shape[-1] - 1)
        raise TransferTuneError(
            f"Burgers solution became non-finite (nu={nu}, dt={h:g}, n={n}); lower dt or "
            "cfl, or refine the grid (n_fine) for steeper data."
        )
    return v


def solve(u0: np.ndarray, *, nu: float, T: float, dt: float, cfl: float | None = CFL) -> np.ndarray:
    """Advance ``u_t + (u^2/2)_x = nu u_xx`` on the periodic unit interval from 0 to ``T``.

    Fourier pseudo-spectral (2/3 dealiasing) with ETDRK4; see the module docstring.

    Parameters
    ----------
    u0 : ndarray, shape (..., n)
        Initial values at ``x_j = j / n`` (any leading batch shape), ``n >= 4`` even.
    nu : float
        Viscosity (>= 0).
    T : float
        Final time (>= 0).
    dt : float
        Largest step; the step used is ``T / ceil(T / dt)`` unless ``cfl`` asks for less.
    cfl : float or None, default :data:`CFL`
        Advective limit of the explicit part: each sample's step is also at most
        ``cfl / (max|u0| k_max)``, ``k_max = 2 pi floor(n / 3)`` (``max|u|`` never grows under
        viscous Burgers), rounded to a few shared step counts (:func:`step_counts`). The step
        of a sample depends only on that sample. ``None``: ``dt`` alone.

    Returns
    -------
    ndarray, same shape as ``u0``, float64
        ``u(., T)`` on the same grid.
    """
    u0, n = _checked(u0, nu=nu, T=T, dt=dt, cfl=cfl)
    if T == 0:
        return u0.copy()
    batch = u0.reshape(-1, n)
    counts = step_counts(batch, T=T, dt=dt, cfl=cfl)
    out = np.empty_like(batch)
    for n_steps in np.unique(counts):
        rows = counts == n_steps
        h = T / int(n_steps)
        v = _finite(_advance(sfft.rfft(batch[rows], axis=-1), n, nu, h, int(n_steps)), nu, h)
        out[rows] = sfft.irfft(v, n=n, axis=-1)
    return out.reshape(u0.shape)


def trajectory(
    u0: np.ndarray,
    *,
    nu: float,
    T: float,
    dt: float,
    n_times: int,
    cfl: float | None = CFL,
    every: int = 1,
) -> np.ndarray:
    """``u`` at the ``n_times`` times ``t_j = j T / n_times``, ``j = 0, ..., n_times - 1``.

    The time grid includes ``t = 0`` and excludes ``T``, like the periodic space grid
    ``x_i = i / n``: every ``s``-th snapshot of an ``n_times``-point trajectory is the
    ``n_times / s``-point time grid.  Same scheme as :func:`solve`; each sample's step count
    (:func:`step_counts`) is rounded up to a multiple of ``n_times`` so that the snapshots
    fall on steps (the step is ``T / count``).  Where that count equals the one :func:`solve`
    uses for ``T = t_j`` (e.g. ``cfl=None`` and ``T / dt`` a multiple of ``n_times``), snapshot
    ``j`` equals ``solve(u0, T=t_j)`` to round-off; otherwise to the solver's accuracy.

    Parameters
    ----------
    u0 : ndarray, shape (..., n)
        Initial values at ``x_i = i / n``, ``n >= 4`` even.
    nu, T, dt, cfl
        As for :func:`solve`.
    n_times : int
        Number of snapshots (>= 1); ``n_times = 1`` gives ``u0`` alone.
    every : int, default 1
        Keep only snapshots ``0, every, 2 every, ...`` (``every`` divides ``n_times``): the
        values are those of the full trajectory (the same steps), so a coarse time grid is an
        exact subsample of the fine one without storing it.

    Returns
    -------
    ndarray, shape (..., n_times // every, n), float64
    """
    u0, n = _checked(u0, nu=nu, T=T, dt=dt, cfl=cfl)
    if isinstance(n_times, bool) or not isinstance(n_times, (int, np.integer)) or n_times < 1:
        raise TransferTuneError(f"n_times must be an integer >= 1, got {n_times!r}.")
    n_times = int(n_times)
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise TransferTuneError(f"every must be an integer >= 1, got {every!r}.")
    every = int(every)
    if n_times % every:
        raise TransferTuneError(f"every={every} must divide n_times={n_times}.")
    batch = u0.reshape(-1, n)
    out = np.empty((batch.shape[0], n_times // every, n))
    out[:, 0] = batch
    if n_times == 1 or T == 0:
        out[:, 1:] = batch[:, None]
        return out.reshape(*u0.shape[:-1], n_times // every, n)
    counts = step_counts(batch, T=T, dt=dt, cfl=cfl)
    counts = -(-counts // n_times) * n_times  # snapshots on steps
    for n_steps in np.unique(counts):
        rows = counts == n_steps
        h = T / int(n_steps)
        per = int(n_steps) // n_times  # steps between snapshots
        v = sfft.rfft(batch[rows], axis=-1)
        for j in range(1, n_times // every):
            v = _finite(_advance(v, n, nu, h, per * every), nu, h)
            out[rows, j] = sfft.irfft(v, n=n, axis=-1)
    return out.reshape(*u0.shape[:-1], n_times // every, n)


def _params(params: dict[str, Any]) -> dict[str, Any]:
    p = gen.resolve_params(DEFAULTS, params, "burgers")
    gen.check_even_grid(p, "burgers")
    return p


def check_resolution(resolution: int, **params: Any) -> None:
    """Raise :class:`TransferTuneError` unless ``resolution`` divides the fine grid ``n_fine``.

    Parameters
    ----------
    resolution : int
        Requested number of grid points.
    **params
        Overrides of :data:`DEFAULTS` (``n_fine`` matters here).
    """
    p = _params(params)
    gen.check_subsample_resolution(
        "burgers",
        resolution,
        int(p["n_fine"]),
        f"set n_fine to a multiple of {resolution} (e.g. n_fine={_suggest(resolution)}).",
    )


def fine_grid_for(resolution: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """The solver grid for a ``resolution`` the default ``n_fine`` cannot give.

    The smallest even multiple of ``resolution`` that is at least 1024 (the grid on which the
    default viscosity is resolved), e.g. 8192 for resolution 8192, 1536 for 768.
    """
    return {"n_fine": _suggest(resolution)}


def _suggest(resolution: Any) -> int:
    try:
        r = max(2, int(resolution))
    except (TypeError, ValueError):
        return 8192
    n_fine = r * max(1, math.ceil(1024 / r))
    return n_fine if n_fine % 2 == 0 else 2 * n_fine


def _chunk(start: int, stop: int, seed: int, resolution: int, p: dict[str, Any]):
    grf = GaussianRandomField(1, int(p["n_fine"]), alpha=p["alpha"], tau=p["tau"], sigma=p["sigma"])
    u0 = grf.sample(stop - start, gen.sample_generators(seed, start, stop))
    uT = solve(u0, nu=p["nu"], T=p["T"], dt=p["dt"], cfl=p["cfl"])
    stride = int(p["n_fine"]) // resolution
    return (
        u0[:, None, ::stride].astype(np.float32),
        uT[:, None, ::stride].astype(np.float32),
    )


#: This module as :func:`pdes.generation.generate_pairs` uses it.
SOLVER = gen.Solver("burgers", _chunk, _CHUNK, _params, check_resolution)
generate = gen.generate_function(
    SOLVER,
    """Generate Burgers pairs ``(u(., 0), u(., T))``.

    ``resolution`` must divide ``n_fine`` (see :func:`check_resolution`); ``**params``
    overrides :data:`DEFAULTS`; the other arguments are those of
    :func:`pdes.generation.generate_pairs` (sample ``i`` depends only on ``(seed, i, params)``).

    Returns
    -------
    x, y : ndarray, shape (n_samples, 1, resolution), float32
        Initial and final states at ``x_j = j / resolution``.
    """,
)
