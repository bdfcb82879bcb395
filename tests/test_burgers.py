"""Burgers solver against exact Cole-Hopf solutions, and the dataset contract."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from pdes import burgers
from transfer_tune.errors import TransferTuneError

NU = burgers.DEFAULTS["nu"]
NU_SMOOTH = 0.1  # the smooth Cole-Hopf solution below is checked at the original FNO viscosity

# phi(x, t) = C + sum_m A_m exp(-nu (2 pi m)^2 t) cos(2 pi m x + theta_m) solves phi_t = nu phi_xx,
# so u = -2 nu phi_x / phi solves u_t + u u_x = nu u_xx (Cole-Hopf).  C > sum |A_m| keeps phi > 0.
_C, _MODES = 1.6, ((1.0, 1, 0.0), (0.4, 3, 1.0))


def cole_hopf(x: np.ndarray, t: float, nu: float = NU_SMOOTH) -> np.ndarray:
    phi = np.full_like(x, _C)
    phi_x = np.zeros_like(x)
    for amp, m, theta in _MODES:
        decay = amp * np.exp(-nu * (2 * np.pi * m) ** 2 * t)
        phi += decay * np.cos(2 * np.pi * m * x + theta)
        phi_x -= decay * 2 * np.pi * m * np.sin(2 * np.pi * m * x + theta)
    return -2.0 * nu * phi_x / phi


def shock_cole_hopf(x: np.ndarray, t: float, nu: float, t0: float = 0.15) -> np.ndarray:
    """Exact solution with viscous shocks: phi = sum_i c_i G(x - x_i, t + t0), G the heat kernel.

    u = -2 nu phi_x / phi = sum_i w_i (x - x_i) / (t + t0) with softmax weights w_i: ramps of
    slope 1/(t + t0) joined by viscous shocks of width ~ 4 nu / [u]. With t0 = 0.15 and
    nu = 1e-3 the initial fronts (max |u_x| ~ 1e3, max |u| ~ 1.3) are about as steep as the
    steepest of the default data (max |u_x| ~ 900 near t = 0.2).
    """
    s = t + t0
    centres, log_c = (0.1, 0.45, 0.7), (0.0, 0.5, -0.3)
    xi = np.array([c + m for c in centres for m in (-1, 0, 1)])  # periodic images
    lc = np.array([a for a in log_c for _ in (-1, 0, 1)])
    d = x[:, None] - xi[None]
    e = lc - d**2 / (4 * nu * s)
    w = np.exp(e - logsumexp(e, axis=1, keepdims=True))
    return (w * d).sum(axis=1) / s


def shock_error(n: int, **params) -> tuple[float, float]:
    p = {**burgers.DEFAULTS, **params}
    x = np.arange(n) / n
    u = burgers.solve(shock_cole_hopf(x, 0.0, p["nu"]), nu=p["nu"], T=p["T"], dt=p["dt"])
    exact = shock_cole_hopf(x, p["T"], p["nu"])
    rel = np.linalg.norm(u - exact) / np.linalg.norm(exact)
    return float(rel), float(np.max(np.abs(u - exact)) / np.max(np.abs(exact)))


def rel_error(n: int, dt: float, T: float) -> float:
    x = np.arange(n) / n
    u = burgers.solve(cole_hopf(x, 0.0), nu=NU_SMOOTH, T=T, dt=dt, cfl=None)
    exact = cole_hopf(x, T)
    return float(np.linalg.norm(u - exact) / np.linalg.norm(exact))


def test_default_settings_match_cole_hopf_with_shocks():
    """The defaults (nu, n_fine, dt, cfl) resolve fronts as steep as the data's."""
    rel, worst = shock_error(burgers.DEFAULTS["n_fine"])
    assert rel < 1e-5 and worst < 1e-4
    # half the grid does not resolve them: the fine grid is needed
    rel_coarse, _ = shock_error(burgers.DEFAULTS["n_fine"] // 2)
    assert rel_coarse > 1e-4


def test_smooth_cole_hopf_at_the_original_viscosity():
    n = 1024
    x = np.arange(n) / n
    u = burgers.solve(cole_hopf(x, 0.0), nu=NU_SMOOTH, T=1.0, dt=0.01, cfl=1e9)  # 100 steps
    exact = cole_hopf(x, 1.0)
    assert np.linalg.norm(u - exact) / np.linalg.norm(exact) < 1e-4
    assert np.max(np.abs(u - exact)) < 1e-4 * np.max(np.abs(exact))


def test_cfl_limits_the_step_per_sample():
    n = 256
    x = np.arange(n) / n
    u0 = np.stack([0.01 * np.sin(2 * np.pi * x), 3.0 * np.sin(2 * np.pi * x)])
    counts = burgers.step_counts(u0, T=1.0, dt=0.01)
    k_max = 2 * np.pi * (n // 3)
    assert counts[0] == 100  # dt binds
    assert counts[1] >= 3.0 * k_max / burgers.CFL  # the advective limit binds
    np.testing.assert_array_equal(burgers.step_counts(u0, T=1.0, dt=0.01, cfl=None), [100, 100])
    # a sample's step (and result) does not depend on the other samples of the batch
    alone = burgers.solve(u0[:1], nu=NU, T=0.1, dt=0.01)
    together = burgers.solve(u0, nu=NU, T=0.1, dt=0.01)
    np.testing.assert_array_equal(alone[0], together[0])
    with pytest.raises(TransferTuneError, match="cfl"):
        burgers.solve(u0, nu=NU, T=0.1, dt=0.01, cfl=0.0)


def test_error_falls_at_fourth_order_in_dt():
    errors = [rel_error(128, dt, 1.0) for dt in (0.05, 0.025, 0.0125)]
    # ETDRK4: each halving of dt divides the error by ~16; demand clearly better than 3rd order
    assert errors[0] / errors[1] > 8.0
    assert errors[1] / errors[2] > 8.0


def test_error_falls_spectrally_in_the_grid():
    errors = [rel_error(n, 1e-3, 0.1) for n in (8, 16, 32, 64)]
    for coarse, fine in zip(errors, errors[1:], strict=False):
        assert fine < coarse / 10.0
    assert errors[-1] < 1e-6


def test_mean_is_conserved_to_round_off():
    n = 256
    x = np.arange(n) / n
    u0 = cole_hopf(x, 0.0)[None] * np.array([[1.0], [3.0]]) + np.array([[0.3], [-0.7]])
    u = burgers.solve(u0, nu=NU_SMOOTH, T=0.5, dt=0.01)
    np.testing.assert_allclose(u.mean(axis=-1), u0.mean(axis=-1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("resolution", [64, 128, 256, 1024])
def test_generate_shapes_and_dtypes(resolution):
    x, y = burgers.generate(3, resolution, seed=0)
    assert x.shape == y.shape == (3, 1, resolution)
    assert x.dtype == y.dtype == np.float32
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))
    assert np.std(x) > 0.1 and np.std(y) > 0


def test_coarse_data_is_a_subsample_of_fine_data():
    x64, y64 = burgers.generate(4, 64, seed=3)
    x128, y128 = burgers.generate(4, 128, seed=3)
    np.testing.assert_allclose(x64, x128[..., ::2], rtol=0, atol=1e-6 * np.abs(x128).max())
    np.testing.assert_allclose(y64, y128[..., ::2], rtol=0, atol=1e-6 * np.abs(y128).max())


def test_seeds():
    a = burgers.generate(3, 64, seed=11)
    b = burgers.generate(3, 64, seed=11)
    c = burgers.generate(3, 64, seed=12)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.max(np.abs(a[0] - c[0])) > 0.1 * np.std(a[0])
    # sample i does not depend on how many samples are drawn
    np.testing.assert_array_equal(burgers.generate(5, 64, seed=11)[0][:3], a[0])


def test_generated_data_solves_the_equation():
    """u(T) from generate equals a fresh solve of its (full-grid) initial data."""
    n = burgers.DEFAULTS["n_fine"]
    x, y = burgers.generate(2, n, seed=5)
    u = burgers.solve(x[:, 0].astype(np.float64), nu=NU, T=1.0, dt=burgers.DEFAULTS["dt"] / 2)
    np.testing.assert_allclose(y[:, 0], u, rtol=0, atol=1e-4 * np.abs(u).max())


def test_params_and_resolution_errors():
    with pytest.raises(TransferTuneError, match="valid keys"):
        burgers.generate(1, 64, seed=0, viscosity=0.1)
    with pytest.raises(TransferTuneError, match="n_fine"):
        burgers.check_resolution(1000)
    with pytest.raises(TransferTuneError):
        burgers.check_resolution(2048)
    burgers.check_resolution(2048, n_fine=8192)
    burgers.check_resolution(64)
    x, y = burgers.generate(2, 96, seed=0, n_fine=192, T=0.2, nu=0.05)
    assert x.shape == (2, 1, 96)
