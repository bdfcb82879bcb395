"""Viscous Burgers equation on the periodic unit interval: data ``u(., 0) -> u(., T)``.

Problem
-------
``u_t + (u^2 / 2)_x = nu u_xx`` on ``[0, 1)`` with periodic boundary conditions, ``nu = 0.1``,
``T = 1``, initial data ``u0 ~ N(0, 625 (-d^2/dx^2 + 25 I)^(-2))`` (``sigma = 25``, ``tau = 5``,
``alpha = 2``, zero-mean; see :mod:`pdes.grf` for the covariance convention), as in the original
FNO Burgers data.

Method
------
Fourier pseudo-spectral in space on a fixed fine grid of ``n_fine`` points, exponential time
differencing RK4 in time (ETDRK4, Cox & Matthews 2002) with the Kassam & Trefethen (2005)
contour-integral evaluation of its coefficients.  The diffusion ``-nu (2 pi k)^2`` is integrated
exactly, so the step is limited by accuracy, not stiffness.  The nonlinear term
``-(u^2/2)_x`` is evaluated in conservative form with the 2/3 rule: the state is truncated to
``|k| <= n_fine/3`` before squaring and the product to the same band, so the zero mode (the
spatial mean) is never touched and is conserved exactly.  All samples of a chunk advance
together (batched FFTs).

Defaults and why
----------------
* ``n_fine = 1024``: the default training resolution is 1024 and every coarser power of two
  (``512, ..., 64``) is an exact subsample of it.  ``u(., 1)`` is analytic (its spectrum falls
  like ``exp(-nu (2 pi k)^2 t)``) so the spatial error is at round-off; a finer grid only adds
  more (tiny) high modes of ``u0``.  Set ``n_fine = 8192`` to reproduce the original FNO grid.
* ``dt = 0.01`` (100 steps to ``T = 1``): the time error of ETDRK4 at this step is about 1e-6
  (relative L2) on the default data and 3e-5 on the steeper Cole-Hopf reference of the tests
  (which assert < 1e-4), and 1200 samples at 1024 points take seconds on two cores
  (``benchmarks/pde_speed.py``).  The step actually used is ``T / ceil(T / dt)``.

Note: with ``nu = 0.1`` every mode ``k != 0`` decays at least like ``exp(-0.1 (2 pi)^2 t)``, so
``u(., 1)`` is about 2 % of ``u0`` in amplitude and dominated by the first Fourier modes.

Resolutions: any ``resolution`` that divides ``n_fine``; the data is
``u[:, ::n_fine // resolution]``, so data at resolution 64 is exactly every other point of the
data at resolution 128.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.fft as sfft

from pdes.checks import as_int
from pdes.errors import TransferTuneError
from pdes.generation import (
    check_subsample_resolution,
    generate_pairs,
    resolve_params,
    sample_generators,
)
from pdes.grf import GaussianRandomField

__all__ = ["DEFAULTS", "DIM", "check_resolution", "etdrk4_coefficients", "generate", "solve"]

DIM = 1

DEFAULTS: dict[str, Any] = {
    "nu": 0.1,  # viscosity
    "T": 1.0,  # final time of the map u(0) -> u(T)
    "n_fine": 1024,  # solver grid points; data is subsampled from it
    "dt": 0.01,  # largest time step (the step used is T / ceil(T / dt))
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


def solve(u0: np.ndarray, *, nu: float, T: float, dt: float) -> np.ndarray:
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
        Largest step; the step used is ``T / ceil(T / dt)``.

    Returns
    -------
    ndarray, same shape as ``u0``, float64
        ``u(., T)`` on the same grid.
    """
    u0 = np.asarray(u0, dtype=np.float64)
    n = u0.shape[-1]
    if n < 4 or n % 2:
        raise TransferTuneError(f"Burgers grid needs an even number of points >= 4, got {n}.")
    if not (dt > 0 and T >= 0 and nu >= 0):
        raise TransferTuneError(f"need dt > 0, T >= 0 and nu >= 0, got dt={dt}, T={T}, nu={nu}.")
    n_steps = math.ceil(T / dt - 1e-9) if T > 0 else 0
    if n_steps == 0:
        return u0.copy()
    h = T / n_steps
    k = np.arange(n // 2 + 1, dtype=np.float64)  # rfft wavenumbers
    kk = 2.0 * np.pi * k
    E, E2, Q, f1, f2, f3 = etdrk4_coefficients(-nu * kk**2, h)
    keep = k <= n / 3.0  # 2/3 rule (drops Nyquist too)
    g = np.where(keep, -0.5j * kk, 0.0)  # -(1/2) d/dx, band-limited

    def nonlinear(v: np.ndarray) -> np.ndarray:
        w = sfft.irfft(v * keep, n=n, axis=-1)
        return g * sfft.rfft(w * w, axis=-1)

    v = sfft.rfft(u0, axis=-1)
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
    if not np.all(np.isfinite(v)):
        raise TransferTuneError(
            f"Burgers solution became non-finite (nu={nu}, dt={h:g}, n={n}); lower dt or refine "
            "the grid (n_fine) for steeper data."
        )
    return sfft.irfft(v, n=n, axis=-1)


def _params(params: dict[str, Any]) -> dict[str, Any]:
    p = resolve_params(DEFAULTS, params, "burgers")
    p["n_fine"] = as_int(p["n_fine"], "burgers n_fine", minimum=4)
    if p["n_fine"] % 2:
        raise TransferTuneError(
            f"burgers n_fine must be an even integer >= 4, got {p['n_fine']!r}."
        )
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
    check_subsample_resolution(
        "burgers",
        resolution,
        int(p["n_fine"]),
        f"set n_fine to a multiple of {resolution} (e.g. n_fine={_suggest(resolution)}).",
    )


def _suggest(resolution: Any) -> int:
    try:
        r = max(2, int(resolution))
    except (TypeError, ValueError):
        return 8192
    n_fine = r * max(1, math.ceil(1024 / r))
    return n_fine if n_fine % 2 == 0 else 2 * n_fine


def _chunk(start: int, stop: int, seed: int, resolution: int, p: dict[str, Any]):
    grf = GaussianRandomField(1, int(p["n_fine"]), alpha=p["alpha"], tau=p["tau"], sigma=p["sigma"])
    u0 = grf.sample(stop - start, sample_generators(seed, start, stop))
    uT = solve(u0, nu=p["nu"], T=p["T"], dt=p["dt"])
    stride = int(p["n_fine"]) // resolution
    return (
        u0[:, None, ::stride].astype(np.float32),
        uT[:, None, ::stride].astype(np.float32),
    )


def generate(
    n_samples: int,
    resolution: int,
    seed: int,
    *,
    progress: bool = False,
    n_jobs: int = 1,
    **params: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate Burgers pairs ``(u(., 0), u(., T))``.

    ``resolution`` must divide ``n_fine`` (see :func:`check_resolution`); ``**params``
    overrides :data:`DEFAULTS`; the other arguments are those of
    :func:`pdes.generation.generate_pairs` (sample ``i`` depends only on ``(seed, i, params)``).

    Returns
    -------
    x, y : ndarray, shape (n_samples, 1, resolution), float32
        Initial and final states at ``x_j = j / resolution``.
    """
    return generate_pairs(
        "burgers",
        _chunk,
        _CHUNK,
        _params,
        check_resolution,
        n_samples,
        resolution,
        seed,
        progress=progress,
        n_jobs=n_jobs,
        params=params,
    )
