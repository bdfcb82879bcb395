"""Gaussian random fields: covariance convention, statistics, seeding and the shared helpers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sfft

from pdes.generation import map_chunks, resolve_params, sample_generators
from pdes.grf import GaussianRandomField
from transfer_tune.errors import TransferTuneError


def _periodic_eigenvalues(n: int, dim: int, alpha: float, tau: float, sigma: float) -> np.ndarray:
    """The documented formula, written out independently of the module."""
    k = np.fft.fftfreq(n, d=1.0 / n)
    grids = np.meshgrid(*([k] * dim), indexing="ij")
    k2 = sum(g**2 for g in grids)
    lam = sigma**2 * ((2 * np.pi) ** 2 * k2 + tau**2) ** (-alpha)
    lam[(0,) * dim] = 0.0
    return lam


@pytest.mark.parametrize(
    ("dim", "n", "alpha", "tau", "sigma"),
    [(1, 64, 2.0, 5.0, 25.0), (2, 16, 2.5, 7.0, 7.0**1.5)],
)
def test_periodic_spectral_variance_matches_formula(dim, n, alpha, tau, sigma):
    n_samples = 4000
    grf = GaussianRandomField(dim, n, alpha=alpha, tau=tau, sigma=sigma)
    u = grf.sample(n_samples, np.random.default_rng(0))
    assert u.shape == (n_samples, *(n,) * dim)
    axes = tuple(range(1, dim + 1))
    coef = sfft.fftn(u, axes=axes) / n**dim
    lam = _periodic_eigenvalues(n, dim, alpha, tau, sigma)
    np.testing.assert_allclose(grf.eigenvalues(), lam, rtol=1e-12)

    nz = lam > 0
    ratio = np.mean(np.abs(coef) ** 2, axis=0)[nz] / lam[nz]
    # |c_k|^2 / lambda_k is Exp(1) (chi^2_1 on self-conjugate modes): std <= sqrt(2 / S)
    assert np.max(np.abs(ratio - 1.0)) < 5.0 * np.sqrt(2.0 / n_samples)
    # the pooled mean over all modes is much tighter
    assert abs(ratio.mean() - 1.0) < 5.0 * np.sqrt(2.0 / (n_samples * nz.sum()))
    # zero mode removed: every sample has zero spatial mean
    assert np.max(np.abs(coef[(slice(None),) + (0,) * dim])) < 1e-12 * np.sqrt(lam.sum())

    # mean ~ 0 and pointwise variance = sum of eigenvalues, within sampling error
    var = lam.sum()
    assert np.isclose(grf.pointwise_variance(), var, rtol=1e-12)
    assert np.max(np.abs(u.mean(axis=0))) < 5.0 * np.sqrt(var / n_samples)
    assert abs(u.var(axis=0).mean() / var - 1.0) < 5.0 * np.sqrt(2.0 / n_samples)


def test_keep_zero_mode_gives_it_its_variance():
    n_samples, n, tau, alpha = 4000, 16, 3.0, 2.0
    grf = GaussianRandomField(1, n, alpha=alpha, tau=tau, zero_mean=False)
    u = grf.sample(n_samples, np.random.default_rng(1))
    lam0 = tau ** (-2 * alpha)
    assert grf.eigenvalues()[0] == pytest.approx(lam0)
    assert abs(np.var(u.mean(axis=1)) / lam0 - 1.0) < 5.0 * np.sqrt(2.0 / n_samples)


def _neumann_basis(n: int) -> tuple[np.ndarray, np.ndarray]:
    """c_k cos(pi k x_j) on the node grid x_j = j/(n-1): matrix [j, k], and the c_k."""
    x = np.arange(n) / (n - 1)
    k = np.arange(n)
    c = np.where(k == 0, 1.0, np.sqrt(2.0))
    return c[None, :] * np.cos(np.pi * np.outer(x, k)), c


def test_neumann_field_is_the_documented_cosine_expansion():
    n, alpha, tau, sigma = 9, 2.0, 3.0, 1.7
    grf = GaussianRandomField(2, n, alpha=alpha, tau=tau, sigma=sigma, boundary="neumann")
    k = np.arange(n)
    lam = sigma**2 * (np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2) ** (-alpha)
    lam[0, 0] = 0.0
    np.testing.assert_allclose(grf.eigenvalues(), lam, rtol=1e-12)
    xi = np.random.default_rng(2).standard_normal((3, n, n))
    basis, _ = _neumann_basis(n)
    direct = np.einsum("ik,jl,bkl->bij", basis, basis, np.sqrt(lam) * xi)
    np.testing.assert_allclose(grf.from_white_noise(xi), direct, atol=1e-12)


def test_neumann_spectral_variance_and_boundary_derivative():
    n_samples, n, alpha, tau = 3000, 17, 2.0, 3.0
    grf = GaussianRandomField(2, n, alpha=alpha, tau=tau, boundary="neumann")
    u = grf.sample(n_samples, np.random.default_rng(3))
    # recover the coefficients a_k of phi_k with the (self-inverse up to 2(n-1)) DCT-I
    _, c = _neumann_basis(n)
    w = np.full(n, 0.5)
    w[0] = w[-1] = 1.0
    cw = np.outer(c * w, c * w)
    a = sfft.dctn(u, type=1, axes=(1, 2)) / (2.0 * (n - 1)) ** 2 / cw
    lam = grf.eigenvalues()
    nz = lam > 0
    ratio = np.mean(a**2, axis=0)[nz] / lam[nz]
    assert np.max(np.abs(ratio - 1.0)) < 5.0 * np.sqrt(2.0 / n_samples)
    assert np.max(np.abs(a[:, 0, 0])) < 1e-12
    assert np.max(np.abs(u.mean(axis=0))) < 5.0 * np.sqrt(np.sum(lam * 4.0) / n_samples)


def test_same_seed_same_field_different_seed_different_field():
    grf = GaussianRandomField(2, 8, alpha=2.5, tau=7.0)
    a = grf.sample(3, np.random.default_rng(7))
    b = grf.sample(3, np.random.default_rng(7))
    c = grf.sample(3, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(a - c)) > 0.1 * np.std(a)


def test_per_sample_generators_make_samples_independent_of_batch():
    grf = GaussianRandomField(1, 32, tau=5.0, sigma=25.0)
    full = grf.sample(10, sample_generators(4, 0, 10))
    part = grf.sample(4, sample_generators(4, 3, 7))
    np.testing.assert_array_equal(full[3:7], part)
    # sample i's generator is the i-th child of default_rng(seed)
    child = np.random.default_rng(4).spawn(10)[5]
    np.testing.assert_array_equal(
        child.standard_normal(5), sample_generators(4, 5, 6)[0].standard_normal(5)
    )


def test_bad_arguments_raise_transfer_tune_error():
    with pytest.raises(TransferTuneError, match="periodic"):
        GaussianRandomField(1, 8, boundary="dirichlet")
    with pytest.raises(TransferTuneError, match="dim"):
        GaussianRandomField(3, 8)
    with pytest.raises(TransferTuneError, match="one per sample"):
        GaussianRandomField(1, 8).sample(3, sample_generators(0, 0, 2))
    with pytest.raises(TransferTuneError, match="seed must be an integer >= 0, got -1"):
        sample_generators(-1, 0, 1)


def test_resolve_params_lists_valid_keys():
    assert resolve_params({"a": 1, "b": 2}, {"b": 3}, "toy") == {"a": 1, "b": 3}
    with pytest.raises(TransferTuneError, match=r"valid keys: \['a', 'b'\]"):
        resolve_params({"a": 1, "b": 2}, {"c": 3}, "toy")


def _rows(start: int, stop: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(start, stop, dtype=float)
    return idx * scale, -idx


def test_map_chunks_concatenates_in_order():
    x, y = map_chunks(_rows, 10, 3, 2.0)
    np.testing.assert_array_equal(x, 2.0 * np.arange(10))
    np.testing.assert_array_equal(y, -np.arange(10))
    x0, _ = map_chunks(_rows, 0, 3, 2.0)
    assert x0.shape == (0,)
