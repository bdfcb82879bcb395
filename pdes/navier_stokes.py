"""2-D incompressible Navier-Stokes in vorticity form on the unit torus: data ``w(t0) -> w(T)``.

Problem
-------
``w_t + u . grad w = nu Laplacian w + f``, ``u = (psi_y, -psi_x)``, ``-Laplacian psi = w`` on
``[0, 1)^2`` (periodic), ``nu = 1e-3``, forcing ``f = A (sin 2 pi (x + y) + cos 2 pi (x + y))``
with ``A = 0.1`` (``forcing_amplitude``; 0 turns it off), initial vorticity from the Gaussian
random field ``N(0, sigma^2 (-Laplacian + 49 I)^(-2.5))`` (zero mean, periodic; see
:mod:`pdes.grf`), as in the original FNO Navier-Stokes data.

Amplitude convention: the FNO paper writes the measure as
``N(0, 7^(3/2) (-Laplacian + 49 I)^(-2.5))``, but the generator that made the public data
multiplies the square roots of the eigenvalues by ``7^(3/2)`` (its ``sigma``), so its covariance
is ``7^3 (-Laplacian + 49 I)^(-2.5)``.  The default ``sigma = 7^(3/2)`` reproduces that amplitude
(pointwise standard deviation of ``w0`` about 0.18); ``sigma = 7^(3/4)`` is the literal reading of
the paper's formula (about 0.04, a nearly linear problem).

Method
------
Fourier pseudo-spectral on a fixed ``n_fine x n_fine`` grid with the 2/3 rule (the state is
truncated to ``|k_x|, |k_y| <= n_fine/3`` before forming ``u . grad w`` and the product to the
same band, so the semi-discrete advection conserves energy and enstrophy exactly).  Time
stepping: the three-stage low-storage Runge-Kutta / Crank-Nicolson scheme of Spalart, Moser &
Rogers (1991) - explicit third-order Runge-Kutta for advection and forcing, Crank-Nicolson for
the viscous term inside every stage (second order overall, unconditionally stable viscous part,
stability on the advective imaginary axis up to ``|lambda| dt <= sqrt(3)``).  All samples of a
chunk advance together (batched real FFTs).

Defaults and why
----------------
* ``n_fine = 64``: the default data resolution; at ``nu = 1e-3`` and ``T = 10`` the flow is
  well resolved on 64^2 (the enstrophy spectrum has fallen by many decades at the 2/3 cut-off).
  ``n_fine = 128`` (or 256) gives data whose 64^2 version is an exact subsample of the finer one,
  at ~10x (~80x) the cost.
* ``T = 10``, ``t0 = 0``: a fifth of the original ``T = 50`` horizon keeps 1200 samples at about
  a minute on two cores, while the forcing has built up the large-scale vorticity (time scale
  ``1 / (8 pi^2 nu) ~ 13``) and advected and sheared the initial field.  The 64^2 solution agrees
  with a 128^2 solve of the same (spectrally padded) initial field to 2e-7 relative at ``T = 10``.
* ``dt = 0.025`` (400 steps): velocities on these data stay near ``max(|u| + |v|) ~ 0.2``, so the
  advective CFL number ``max(|u| + |v|) dt k_max`` (``k_max = 2 pi floor(n_fine / 3)``) is about
  0.7, well inside the scheme's ``sqrt(3)`` limit; halving ``dt`` changes the data by ~3e-7
  relative.  ``generate`` checks the CFL number (limit 1.5) and raises with advice if a run
  leaves the stable range.
* ``precision = "float32"``: single-precision FFTs are ~2x faster and the output is float32
  anyway (float32 and float64 data differ by ~1e-5 relative); :func:`simulate` defaults to
  float64 (the conservation tests use it).

Inputs and outputs: ``n_in`` input snapshots at ``t0, t0 + s, ..., t0 + (n_in - 1) s`` and
``n_out`` output snapshots at ``T - (n_out - 1) s, ..., T`` (``s = snapshot_interval``) become the
channels of ``x`` and ``y``; the defaults give ``C = 1``: ``w(0) -> w(10)``.
Resolutions: any ``resolution`` that divides ``n_fine`` (exact subsampling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.fft as sfft

from pdes import generation as gen
from pdes.checks import as_int
from pdes.errors import TransferTuneError
from pdes.grf import GaussianRandomField

__all__ = [
    "DEFAULTS",
    "DIM",
    "check_resolution",
    "energy",
    "enstrophy",
    "fno_forcing",
    "generate",
    "simulate",
    "velocity",
]

DIM = 2

DEFAULTS: dict[str, Any] = {
    "nu": 1e-3,  # viscosity
    "t0": 0.0,  # time of the (first) input snapshot
    "T": 10.0,  # time of the (last) output snapshot
    "dt": 0.025,  # largest time step (the step used is T / ceil(T / dt))
    "n_fine": 64,  # solver grid points per axis; data is subsampled from it
    "alpha": 2.5,  # GRF covariance sigma^2 (-Laplacian + tau^2)^(-alpha)
    "tau": 7.0,
    "sigma": 7.0**1.5,
    "forcing_amplitude": 0.1,  # f = A (sin 2pi(x+y) + cos 2pi(x+y)); 0 switches it off
    "n_in": 1,  # input snapshots (channels of x)
    "n_out": 1,  # output snapshots (channels of y)
    "snapshot_interval": 1.0,  # time between consecutive snapshots
    "precision": "float32",  # arithmetic of the solver: "float32" or "float64"
}

_CHUNK = 16  # samples per batched solve (small = cache-resident, ~2x faster; no effect on data)
_CFL_MAX = 1.5  # abort above this advective CFL number (RK3 limit sqrt(3))

# Spalart-Moser-Rogers RK3/CN: (gamma, zeta, alpha = beta) per stage
_SMR = ((8 / 15, 0.0, 4 / 15), (5 / 12, -17 / 60, 1 / 15), (3 / 4, -5 / 12, 1 / 6))


def fno_forcing(n: int, amplitude: float = 0.1) -> np.ndarray:
    """The FNO forcing ``amplitude * (sin 2 pi (x + y) + cos 2 pi (x + y))`` on an ``n x n`` grid.

    Grid points ``x_i = i / n``, ``y_j = j / n`` (array axis 0 is x, axis 1 is y).
    """
    x = np.arange(n) / n
    s = 2.0 * np.pi * (x[:, None] + x[None, :])
    return amplitude * (np.sin(s) + np.cos(s))


class _Spectral:
    """Wavenumber tables for an ``n x n`` periodic grid in rfft2 layout."""

    def __init__(self, n: int, real: type) -> None:
        k = np.fft.fftfreq(n, d=1.0 / n)
        kr = np.arange(n // 2 + 1, dtype=np.float64)
        kx = 2.0 * np.pi * k[:, None] * np.ones_like(kr)[None, :]  # axis 0 <-> x
        ky = 2.0 * np.pi * kr[None, :] * np.ones_like(k)[:, None]  # axis 1 <-> y (rfft axis)
        k2 = kx**2 + ky**2
        # first derivatives of the (real, cosine-only) Nyquist modes are zero on the grid
        kx[n // 2, :] = 0.0
        ky[:, n // 2] = 0.0
        inv_k2 = np.divide(1.0, k2, out=np.zeros_like(k2), where=k2 > 0)
        keep = (np.abs(k)[:, None] <= n / 3.0) & (kr[None, :] <= n / 3.0)
        complex_t = np.complex64 if real is np.float32 else np.complex128
        self.n = n
        self.real = real
        self.kx, self.ky, self.k2 = kx, ky, k2
        self.keep = keep
        # multipliers taking w_hat to the band-limited (u, v, w) hats (2/3 rule), and the
        # band-limited derivatives applied to the products (u w, v w)
        mask = keep.astype(np.float64)
        self.ops = np.stack([1j * ky * inv_k2 * mask, -1j * kx * inv_k2 * mask, mask + 0j])
        self.ops = self.ops.astype(complex_t)[:, None]
        self.dx = (-1j * kx * mask).astype(complex_t)
        self.dy = (-1j * ky * mask).astype(complex_t)
        self.kmax_dealiased = 2.0 * np.pi * math.floor(n / 3.0)

    def advection(self, w_hat: np.ndarray, want_speed: bool) -> tuple[np.ndarray, float]:
        """Band-limited ``-(u . grad w) = -div(u w)`` hat, and max ``|u| + |v|`` if asked.

        Uses the divergence form (3 inverse + 2 forward FFTs); with exact 2/3 dealiasing it is
        the same Galerkin-truncated term as the advective form.
        """
        u, v, w = sfft.irfft2(self.ops * w_hat[None], s=(self.n, self.n), axes=(-2, -1))
        speed = float(np.max(np.abs(u) + np.abs(v))) if want_speed and u.size else 0.0
        u *= w
        v *= w
        prod = sfft.rfft2(np.stack([u, v]), axes=(-2, -1))
        return self.dx * prod[0] + self.dy * prod[1], speed


def _check_times(times: Sequence[float], h: float, n_steps: int) -> list[int]:
    steps = []
    for t in times:
        s = t / h
        r = round(s)
        if t < 0 or abs(s - r) > 1e-6 * max(1.0, s) or r > n_steps:
            raise TransferTuneError(
                f"snapshot time {t} is not a multiple of the time step {h:g} in "
                f"[0, {n_steps * h:g}]; choose dt so that every snapshot time is a whole "
                "number of steps."
            )
        steps.append(int(r))
    return steps


def simulate(
    w0: np.ndarray,
    times: Sequence[float],
    *,
    nu: float,
    dt: float,
    forcing: np.ndarray | None = None,
    precision: str = "float64",
    cfl_max: float | None = None,
) -> np.ndarray:
    """Integrate the vorticity equation and return snapshots at ``times``.

    Pseudo-spectral (2/3 rule), Spalart-Moser-Rogers RK3 for advection and forcing with
    Crank-Nicolson for viscosity; see the module docstring.

    Parameters
    ----------
    w0 : ndarray, shape (n, n) or (batch, n, n)
        Initial vorticity at ``(i/n, j/n)`` (axis -2 is x, axis -1 is y), ``n`` even.
    times : sequence of float
        Non-negative snapshot times (any order, repeats allowed); each must be a whole number of
        steps ``h = max(times) / ceil(max(times) / dt)``.
    nu : float
        Viscosity (>= 0; 0 gives the Euler equations).
    dt : float
        Largest time step.
    forcing : ndarray, shape (n, n), optional
        Time-independent forcing ``f`` (e.g. :func:`fno_forcing`); ``None`` for none.
    precision : {"float64", "float32"}
        Arithmetic of the solver.
    cfl_max : float, optional
        Raise :class:`TransferTuneError` if the advective CFL number
        ``max(|u| + |v|) * h * k_max`` exceeds it (checked once per step).

    Returns
    -------
    ndarray, shape (batch, len(times), n, n) (or (len(times), n, n) for a 2-D ``w0``), float64
        or float32 following ``precision``.
    """
    real = {"float64": np.float64, "float32": np.float32}.get(precision)
    if real is None:
        raise TransferTuneError(f"precision must be 'float32' or 'float64', got {precision!r}.")
    w0 = np.asarray(w0)
    single = w0.ndim == 2
    if single:
        w0 = w0[None]
    if w0.ndim != 3 or w0.shape[-1] != w0.shape[-2] or w0.shape[-1] % 2 or w0.shape[-1] < 4:
        raise TransferTuneError(
            f"w0 must be (n, n) or (batch, n, n) with n even >= 4, got shape {w0.shape}."
        )
    if not (dt > 0 and nu >= 0):
        raise TransferTuneError(f"need dt > 0 and nu >= 0, got dt={dt}, nu={nu}.")
    times = [float(t) for t in times]
    if not times:
        raise TransferTuneError("times must hold at least one snapshot time.")
    n = w0.shape[-1]
    t_end = max(times)
    n_steps = math.ceil(t_end / dt - 1e-9) if t_end > 0 else 0
    h = t_end / n_steps if n_steps else dt
    steps = _check_times(times, h, n_steps)

    sp = _Spectral(n, real)
    w_hat = sfft.rfft2(w0.astype(real), axes=(-2, -1))
    f_hat = None
    if forcing is not None:
        forcing = np.asarray(forcing, dtype=np.float64)
        if forcing.shape != (n, n):
            raise TransferTuneError(f"forcing must have shape ({n}, {n}), got {forcing.shape}.")
        f_hat = sfft.rfft2(forcing).astype(w_hat.dtype)
    lin = -nu * sp.k2
    coefs = []
    for gamma, zeta, ab in _SMR:
        num = (1.0 + ab * h * lin) / (1.0 - ab * h * lin)
        den = h / (1.0 - ab * h * lin)
        coefs.append((num.astype(real), (gamma * den).astype(real), (zeta * den).astype(real)))

    out = np.empty((w0.shape[0], len(times), n, n), dtype=real)
    wanted: dict[int, list[int]] = {}
    for i, s in enumerate(steps):
        wanted.setdefault(s, []).append(i)

    def record(step: int) -> None:
        if step in wanted:
            w = sfft.irfft2(w_hat, s=(n, n), axes=(-2, -1))
            for i in wanted[step]:
                out[:, i] = w

    record(0)
    for step in range(1, n_steps + 1):
        n_prev = None
        for stage, (num, g_dt, z_dt) in enumerate(coefs):
            n_cur, speed = sp.advection(w_hat, want_speed=cfl_max is not None and stage == 0)
            if stage == 0 and cfl_max is not None and speed * h * sp.kmax_dealiased > cfl_max:
                raise TransferTuneError(
                    f"Navier-Stokes time step too large: CFL number "
                    f"{speed * h * sp.kmax_dealiased:.2f} > {cfl_max} at t = {step * h:.3g} "
                    f"(max |u|+|v| = {speed:.3g}); lower dt (now {h:g})."
                )
            if f_hat is not None:
                n_cur += f_hat
            w_hat *= num
            w_hat += g_dt * n_cur
            if n_prev is not None:
                w_hat += z_dt * n_prev
            n_prev = n_cur
        if not np.all(np.isfinite(w_hat)):
            raise TransferTuneError(
                f"Navier-Stokes solution became non-finite at t = {step * h:.3g}; lower dt."
            )
        record(step)
    return out[0] if single else out


def velocity(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Velocity ``(u, v) = (psi_y, -psi_x)`` of a periodic vorticity field ``w`` (..., n, n)."""
    w = np.asarray(w, dtype=np.float64)
    n = w.shape[-1]
    sp = _Spectral(n, np.float64)
    w_hat = sfft.rfft2(w, axes=(-2, -1))
    inv_k2 = np.divide(1.0, sp.k2, out=np.zeros_like(sp.k2), where=sp.k2 > 0)
    u = sfft.irfft2(1j * sp.ky * inv_k2 * w_hat, s=(n, n), axes=(-2, -1))
    v = sfft.irfft2(-1j * sp.kx * inv_k2 * w_hat, s=(n, n), axes=(-2, -1))
    return u, v


def energy(w: np.ndarray) -> np.ndarray:
    """Kinetic energy ``(1/2) int |u|^2`` over the unit torus of each field in ``w`` (..., n, n)."""
    u, v = velocity(w)
    return 0.5 * np.mean(u**2 + v**2, axis=(-2, -1))


def enstrophy(w: np.ndarray) -> np.ndarray:
    """Enstrophy ``(1/2) int w^2`` over the unit torus of each field in ``w`` (..., n, n)."""
    w = np.asarray(w, dtype=np.float64)
    return 0.5 * np.mean(w**2, axis=(-2, -1))


def _params(params: dict[str, Any]) -> dict[str, Any]:
    p = gen.resolve_params(DEFAULTS, params, "navier_stokes")
    gen.check_even_grid(p, "navier_stokes")
    for key in ("n_in", "n_out"):
        p[key] = as_int(p[key], f"navier_stokes {key}")
    if p["precision"] not in ("float32", "float64"):
        raise TransferTuneError(
            f"navier_stokes precision must be 'float32' or 'float64', got {p['precision']!r}."
        )
    _snapshot_times(p)
    return p


def _snapshot_times(p: dict[str, Any]) -> tuple[list[float], list[float]]:
    s = float(p["snapshot_interval"])
    t_in = [float(p["t0"]) + i * s for i in range(int(p["n_in"]))]
    t_out = [float(p["T"]) - (int(p["n_out"]) - 1 - i) * s for i in range(int(p["n_out"]))]
    if (int(p["n_in"]) > 1 or int(p["n_out"]) > 1) and s <= 0:
        raise TransferTuneError(
            "navier_stokes snapshot_interval must be > 0 for several snapshots."
        )
    if t_in[0] < 0 or t_out[0] <= t_in[-1]:
        raise TransferTuneError(
            f"navier_stokes snapshots must satisfy 0 <= t0 and last input < first output; got "
            f"inputs at {t_in} and outputs at {t_out} (t0={p['t0']}, T={p['T']}, "
            f"n_in={p['n_in']}, n_out={p['n_out']}, snapshot_interval={s})."
        )
    return t_in, t_out


def check_resolution(resolution: int, **params: Any) -> None:
    """Refuse a ``resolution`` (points per axis) that does not divide ``n_fine`` of ``params``.

    See :func:`pdes.generation.check_subsample_resolution`.
    """
    n_fine = int(_params(params)["n_fine"])
    gen.check_subsample_resolution(
        "navier_stokes",
        resolution,
        n_fine,
        f"set n_fine to an even multiple of it (e.g. n_fine={_suggest(resolution)}; "
        "the cost grows like n_fine^3).",
    )


def _suggest(resolution: Any) -> int:
    try:
        r = max(2, int(resolution))
    except (TypeError, ValueError):
        return 128
    return r if r % 2 == 0 else 2 * r


def _chunk(start: int, stop: int, seed: int, resolution: int, p: dict[str, Any]):
    n = int(p["n_fine"])
    grf = GaussianRandomField(2, n, alpha=p["alpha"], tau=p["tau"], sigma=p["sigma"])
    w0 = grf.sample(stop - start, gen.sample_generators(seed, start, stop))
    t_in, t_out = _snapshot_times(p)
    forcing = fno_forcing(n, p["forcing_amplitude"]) if p["forcing_amplitude"] else None
    w = simulate(
        w0,
        t_in + t_out,
        nu=p["nu"],
        dt=p["dt"],
        forcing=forcing,
        precision=p["precision"],
        cfl_max=_CFL_MAX,
    )
    if p["t0"] == 0:
        w[:, 0] = w0  # the input is the sampled field itself, at full precision
    stride = n // resolution
    w = w[..., ::stride, ::stride].astype(np.float32)
    return w[:, : len(t_in)], w[:, len(t_in) :]


#: This module as :func:`pdes.generation.generate_pairs` uses it.
SOLVER = gen.Solver("navier_stokes", _chunk, _CHUNK, _params, check_resolution)
generate = gen.generate_function(
    SOLVER,
    """Generate Navier-Stokes pairs (input vorticity snapshots, output vorticity snapshots).

    ``resolution`` (grid points per axis) must divide ``n_fine`` (see
    :func:`check_resolution`); ``**params`` overrides :data:`DEFAULTS`; the other arguments
    are those of :func:`pdes.generation.generate_pairs` (sample ``i`` depends only on
    ``(seed, i, params)``).

    Returns
    -------
    x : ndarray, shape (n_samples, n_in, resolution, resolution), float32
        Vorticity at the input times (grid ``(i/res, j/res)``, axis -2 is x).
    y : ndarray, shape (n_samples, n_out, resolution, resolution), float32
        Vorticity at the output times.
    """,
)
