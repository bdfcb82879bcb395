"""Navier-Stokes vorticity solver: exact decaying and forced modes, inviscid invariants, data."""

from __future__ import annotations

import numpy as np
import pytest

from pdes import navier_stokes as ns
from pdes.grf import GaussianRandomField
from transfer_tune.errors import TransferTuneError

P = ns.DEFAULTS


def grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(n) / n
    return np.meshgrid(x, x, indexing="ij")


@pytest.mark.parametrize(("kx", "ky"), [(1, 1), (2, 1)])
def test_taylor_green_decays_at_the_exact_rate(kx, ky):
    # a single Laplacian eigenfunction has psi parallel to w, so u . grad w = 0 exactly
    X, Y = grid(32)
    w0 = 2.0 * np.sin(2 * np.pi * kx * X) * np.sin(2 * np.pi * ky * Y)
    nu, T = P["nu"], P["T"]
    w = ns.simulate(w0, [T], nu=nu, dt=P["dt"])[0]
    exact = w0 * np.exp(-4 * np.pi**2 * (kx**2 + ky**2) * nu * T)
    assert np.max(np.abs(w - exact)) < 1e-3 * np.max(np.abs(exact))


def test_fno_forcing_builds_the_exact_forced_mode():
    # w(0) = 0: w(t) = f (1 - exp(-nu lam t)) / (nu lam), lam = 8 pi^2, a steady Euler flow
    n, nu, T = 32, P["nu"], P["T"]
    f = ns.fno_forcing(n, P["forcing_amplitude"])
    w = ns.simulate(np.zeros((n, n)), [T], nu=nu, dt=P["dt"], forcing=f)[0]
    lam = 8 * np.pi**2
    exact = f * (1 - np.exp(-nu * lam * T)) / (nu * lam)
    assert np.max(np.abs(w - exact)) < 1e-3 * np.max(np.abs(exact))


def test_inviscid_unforced_flow_conserves_energy_and_enstrophy():
    n = 32
    grf = GaussianRandomField(2, n, alpha=4.0, tau=3.0, sigma=1000.0)
    w0 = grf.sample(2, np.random.default_rng(0))
    assert 0.5 < np.std(w0) < 2.0  # vorticity O(1): eddy turnover time O(1)
    w = ns.simulate(w0, [0.0, 1.0], nu=0.0, dt=0.01)
    assert np.max(np.abs(w[:, 1] - w[:, 0])) > 0.1 * np.max(np.abs(w0))  # the flow evolved
    energy, enstrophy = ns.energy(w), ns.enstrophy(w)
    np.testing.assert_allclose(energy[:, 1], energy[:, 0], rtol=1e-6)
    np.testing.assert_allclose(enstrophy[:, 1], enstrophy[:, 0], rtol=1e-6)
    # the mean vorticity (zero mode) is untouched
    assert np.max(np.abs(w.mean(axis=(-2, -1)))) < 1e-12


def test_time_error_falls_under_refinement():
    n = 32
    w0 = GaussianRandomField(2, n, alpha=4.0, tau=3.0, sigma=1000.0).sample(
        1, np.random.default_rng(1)
    )
    f = ns.fno_forcing(n)
    runs = [ns.simulate(w0, [1.0], nu=1e-3, dt=dt, forcing=f) for dt in (0.1, 0.05, 0.025, 0.0125)]
    diffs = [np.max(np.abs(a - b)) for a, b in zip(runs, runs[1:], strict=False)]
    assert diffs[1] < diffs[0] / 3.5 and diffs[2] < diffs[1] / 3.5  # at least second order


def test_velocity_is_divergence_free_and_recovers_vorticity():
    n = 32
    w = GaussianRandomField(2, n, alpha=3.0, tau=3.0, sigma=100.0).sample(
        1, np.random.default_rng(2)
    )[0]
    wh = np.fft.fft2(w)
    wh[n // 2, :] = wh[:, n // 2] = 0.0  # drop the Nyquist modes (they carry no derivative)
    w = np.fft.ifft2(wh).real
    u, v = ns.velocity(w)
    k = 2j * np.pi * np.fft.fftfreq(n, d=1.0 / n)
    k[n // 2] = 0.0
    uh, vh = np.fft.fft2(u), np.fft.fft2(v)
    div = np.fft.ifft2(k[:, None] * uh + k[None, :] * vh).real
    curl = np.fft.ifft2(k[:, None] * vh - k[None, :] * uh).real  # v_x - u_y
    assert np.max(np.abs(div)) < 1e-10
    np.testing.assert_allclose(curl, w - w.mean(), atol=1e-10)


def test_generate_shapes_dtypes_and_channels():
    x, y = ns.generate(2, 32, seed=0, T=0.5)
    assert x.shape == y.shape == (2, 1, 32, 32)
    assert x.dtype == y.dtype == np.float32
    xs, ys = ns.generate(2, 32, seed=0, T=1.0, n_in=2, n_out=3, snapshot_interval=0.25)
    assert xs.shape == (2, 2, 32, 32) and ys.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(xs[:, :1], x)  # first input is w(0)
    _, y1 = ns.generate(2, 32, seed=0, T=1.0)
    np.testing.assert_allclose(ys[:, -1:], y1, rtol=0, atol=1e-6)  # last output is w(T)
    _, y_quarter = ns.generate(2, 32, seed=0, T=0.25)
    np.testing.assert_allclose(xs[:, 1:2], y_quarter, rtol=0, atol=1e-6)  # second input w(0.25)
    assert np.all(np.isfinite(ys))


def test_coarse_data_is_a_subsample_of_fine_data():
    x64, y64 = ns.generate(2, 64, seed=4, n_fine=128, T=0.2)
    x128, y128 = ns.generate(2, 128, seed=4, n_fine=128, T=0.2)
    np.testing.assert_array_equal(x64, x128[..., ::2, ::2])
    np.testing.assert_allclose(y64, y128[..., ::2, ::2], rtol=0, atol=1e-6 * np.abs(y128).max())


def test_seeds():
    a = ns.generate(2, 32, seed=1, T=0.2)
    b = ns.generate(2, 32, seed=1, T=0.2)
    c = ns.generate(2, 32, seed=2, T=0.2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.max(np.abs(a[0] - c[0])) > 0.1 * np.std(a[0])


def test_errors():
    with pytest.raises(TransferTuneError, match="valid keys"):
        ns.generate(1, 64, seed=0, reynolds=100)
    with pytest.raises(TransferTuneError, match="n_fine"):
        ns.check_resolution(128)
    ns.check_resolution(128, n_fine=256)
    ns.check_resolution(32)
    with pytest.raises(TransferTuneError, match="multiple of the time step"):
        ns.generate(1, 32, seed=0, T=1.0, n_out=2, snapshot_interval=0.01)
    with pytest.raises(TransferTuneError, match="CFL"):
        ns.generate(1, 64, seed=0, T=10.0, dt=2.0)
    with pytest.raises(TransferTuneError, match="last input < first output"):
        ns.generate(1, 32, seed=0, T=1.0, n_in=3, snapshot_interval=0.5)
