"""Darcy finite differences: second order on a manufactured solution, and the dataset contract."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from pdes import darcy
from transfer_tune.errors import TransferTuneError

PI = np.pi


def manufactured(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth a, exact u = sin(pi x) sin(pi y), and f = -div(a grad u) on the n-node grid."""
    x = np.linspace(0.0, 1.0, n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    a = 1.0 + 0.5 * np.sin(2 * PI * X) * np.cos(2 * PI * Y)
    a_x = PI * np.cos(2 * PI * X) * np.cos(2 * PI * Y)
    a_y = -PI * np.sin(2 * PI * X) * np.sin(2 * PI * Y)
    u = np.sin(PI * X) * np.sin(PI * Y)
    u_x = PI * np.cos(PI * X) * np.sin(PI * Y)
    u_y = PI * np.sin(PI * X) * np.cos(PI * Y)
    f = -(a * (-2 * PI**2 * u) + a_x * u_x + a_y * u_y)
    return a, u, f


def test_second_order_convergence_on_manufactured_solution():
    errors = []
    for n in (17, 33, 65, 129):  # h = 1/16 ... 1/128
        a, u, f = manufactured(n)
        errors.append(np.max(np.abs(darcy.solve(a, f) - u)))
    ratios = [coarse / fine for coarse, fine in zip(errors, errors[1:], strict=False)]
    for r in ratios:
        assert 3.5 < r < 4.5, ratios


def test_matrix_is_symmetric_and_solver_matches_spsolve():
    rng = np.random.default_rng(0)
    a = np.exp(rng.standard_normal((12, 12)))
    mat = darcy.assemble(a)
    assert abs(mat - mat.T).max() < 1e-12 * abs(mat).max()
    f = rng.standard_normal((12, 12))
    ref = spla.spsolve(mat, f[1:-1, 1:-1].ravel())
    u = darcy.solve(a, f)
    np.testing.assert_allclose(u[1:-1, 1:-1].ravel(), ref, rtol=1e-10, atol=1e-12)
    assert np.all(u[0] == 0) and np.all(u[-1] == 0) and np.all(u[:, 0] == 0)


def test_constant_coefficient_matches_five_point_laplacian():
    n = 9
    a = np.full((n, n), 2.5)
    mat = darcy.assemble(a).toarray()
    h2 = 1.0 / (n - 1) ** 2
    assert np.allclose(np.diag(mat), 4 * 2.5 / h2)
    assert mat[0].min() == pytest.approx(-2.5 / h2)
    # rows of nodes away from the boundary sum to zero (constants are in the kernel of -div grad)
    m = n - 2
    row_sums = np.asarray(mat.sum(axis=1)).reshape(m, m)
    assert np.allclose(row_sums[1:-1, 1:-1], 0.0, atol=1e-9 / h2)


def test_random_problem_solutions_positive_and_coefficient_two_valued():
    x, y = darcy.generate(6, 64, seed=1)
    assert x.shape == y.shape == (6, 1, 64, 64)
    assert x.dtype == y.dtype == np.float32
    assert set(np.unique(x)) <= {3.0, 12.0}
    assert 0.2 < np.mean(x == 12.0) < 0.8
    interior = y[:, 0, 1:-1, 1:-1]
    assert np.all(interior > 0)
    edges = np.concatenate([y[:, 0, 0], y[:, 0, -1], y[:, 0, :, 0], y[:, 0, :, -1]])
    assert np.all(edges == 0)
    # Dirichlet principle: the compliance mean(u) = b^T A^-1 b decreases as a grows, so it lies
    # between the values for the constant coefficients 12 and 3 (on the same fine grid)
    n = darcy.DEFAULTS["n_fine"]
    lo = darcy.solve(np.full((n, n), 12.0)).mean()
    hi = darcy.solve(np.full((n, n), 3.0)).mean()
    x127, y127 = darcy.generate(6, n, seed=1)
    assert np.all((lo < y127.mean(axis=(1, 2, 3))) & (y127.mean(axis=(1, 2, 3)) < hi))


def test_coarse_data_is_a_subsample_of_fine_data():
    x64, y64 = darcy.generate(3, 64, seed=2)
    x127, y127 = darcy.generate(3, 127, seed=2)
    np.testing.assert_array_equal(x64, x127[..., ::2, ::2])
    np.testing.assert_allclose(y64, y127[..., ::2, ::2], rtol=0, atol=1e-6 * y127.max())


def test_seeds_and_parallel_workers_give_the_same_data():
    # 30 samples = two joblib tasks; a coarse fine grid keeps it quick
    a = darcy.generate(30, 22, seed=9, n_fine=43)
    b = darcy.generate(30, 22, seed=9, n_fine=43, n_jobs=2)
    c = darcy.generate(30, 22, seed=10, n_fine=43)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.mean(a[0] != c[0]) > 0.1


def test_resolution_and_param_errors():
    assert darcy.allowed_resolutions(127)[:4] == [127, 64, 43, 22]
    darcy.check_resolution(64)
    with pytest.raises(TransferTuneError, match="allowed"):
        darcy.check_resolution(128)
    darcy.check_resolution(128, n_fine=255)
    with pytest.raises(TransferTuneError, match="valid keys"):
        darcy.generate(1, 64, seed=0, coefficient=3)
    with pytest.raises(TransferTuneError, match="positive"):
        darcy.solve(np.zeros((5, 5)))
