"""The Darcy PDE residual for physics-informed (PINO) training: :func:`pdes.darcy.residual`
agrees with the solver's matrix row by row, vanishes (to round-off) on the solver's own
solution, converges for a smooth coefficient, matches the continuous operator to O(h^2) on an
analytic field, and :func:`pdes.darcy.physics_loss` sees perturbations, has gradients, works in
float32 and rejects bad shapes.

The numbers quoted in the comments were measured on CPU in float64 unless said otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdes import darcy
from transfer_tune.errors import TransferTuneError

PI = np.pi


def t(z: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(n, n)`` or ``(N, n, n)`` numpy array -> ``(N, 1, n, n)`` tensor."""
    z = np.asarray(z)
    return torch.as_tensor(z, dtype=dtype).reshape(-1, 1, *z.shape[-2:])


def grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(0.0, 1.0, n)
    return np.meshgrid(x, x, indexing="ij")


def boundary_mask(n: int) -> np.ndarray:
    mask = np.ones((n, n), dtype=bool)
    mask[1:-1, 1:-1] = False
    return mask


@pytest.fixture(scope="module")
def own_solution() -> tuple[np.ndarray, np.ndarray]:
    """Two thresholded coefficients (a in {3, 12}) from ``generate`` at ``n_fine = 33`` and
    their float64 solutions from ``darcy.solve`` on the same 33 x 33 grid."""
    x, _ = darcy.generate(2, 33, 0, n_fine=33)
    a = x[:, 0].astype(np.float64)  # 3.0 and 12.0 are exact in float32
    assert set(np.unique(a)) == {3.0, 12.0}
    u = np.stack([darcy.solve(ai) for ai in a])
    return a, u


def reference_residual(a: np.ndarray, u: np.ndarray, f: float) -> np.ndarray:
    """The documented formula, node by node with loops (an independent implementation)."""
    n = a.shape[0]
    h2 = 1.0 / (n - 1) ** 2
    r = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            if i in (0, n - 1) or j in (0, n - 1):
                r[i, j] = 4.0 * a[i, j] * u[i, j] / h2
                continue
            ae, aw = (a[i, j] + a[i + 1, j]) / 2, (a[i, j] + a[i - 1, j]) / 2
            an, as_ = (a[i, j] + a[i, j + 1]) / 2, (a[i, j] + a[i, j - 1]) / 2
            flux = (
                ae * (u[i + 1, j] - u[i, j])
                - aw * (u[i, j] - u[i - 1, j])
                + an * (u[i, j + 1] - u[i, j])
                - as_ * (u[i, j] - u[i, j - 1])
            )
            r[i, j] = -flux / h2 - f
    return r


# ---- consistency with the solver ------------------------------------------------------------


def test_residual_is_the_documented_stencil_with_the_models_boundary_values() -> None:
    # a non-symmetric coefficient and a u that is nonzero on the boundary: an x/y swap, a
    # wrong face average or a dropped boundary neighbour all change the result
    rng = np.random.default_rng(1)
    n = 7
    a = np.exp(rng.standard_normal((3, n, n)))
    u = rng.standard_normal((3, n, n))
    got = darcy.residual(t(a), t(u), 2.5).numpy()
    assert got.shape == (3, n, n)
    for k in range(3):
        np.testing.assert_allclose(got[k], reference_residual(a[k], u[k], 2.5), rtol=1e-12)


def test_interior_rows_equal_the_assembled_matrix_times_u_minus_f() -> None:
    # for u = 0 on the boundary the interior residual is exactly A u_int - f of ``assemble``
    rng = np.random.default_rng(2)
    n = 9
    a = np.exp(rng.standard_normal((n, n)))
    u = np.zeros((n, n))
    u[1:-1, 1:-1] = rng.standard_normal((n - 2, n - 2))
    r = darcy.residual(t(a), t(u), 1.0).numpy()[0]
    rows = darcy.assemble(a) @ u[1:-1, 1:-1].ravel() - 1.0
    scale = np.abs(rows).max()
    np.testing.assert_allclose(r[1:-1, 1:-1].ravel(), rows, rtol=0, atol=1e-13 * scale)
    assert np.all(r[boundary_mask(n)] == 0.0)


def test_solvers_own_solution_has_round_off_residual(own_solution) -> None:
    # measured: max|r| = 1.8e-13 (f = 1; the stencil terms are ~a u / h^2 ~ 1e2), physics_loss
    # 2.4e-14 and 2.5e-14; the tolerance 1e-10 is > 500x the observed round-off
    a, u = own_solution
    r = darcy.residual(t(a), t(u), 1.0)
    assert r.dtype == torch.float64
    assert r.abs().max().item() < 1e-10
    assert torch.all(r[:, torch.as_tensor(boundary_mask(33))] == 0)  # u = 0 exactly there
    loss = darcy.physics_loss(t(a), t(u), **darcy.DEFAULTS)  # f = 1; the rest is ignored
    assert loss.shape == (2,)
    assert loss.max().item() < 1e-12
    # with a different source the solver's solution for that source has zero residual too
    u3 = np.stack([darcy.solve(ai, 3.0) for ai in a])
    assert darcy.physics_loss(t(a), t(u3), f=3.0).max().item() < 1e-12
    assert darcy.physics_loss(t(a), t(u3), f=1.0).min().item() > 1.0  # and not for f = 1


# ---- convergence for a smooth coefficient ---------------------------------------------------


@pytest.fixture(scope="module")
def smooth_fine() -> tuple[np.ndarray, np.ndarray]:
    """a = 1 + 0.5 sin(2 pi x) cos(pi y) and its solution on the 257-node grid (~0.5 s)."""
    X, Y = grid(257)
    a = 1.0 + 0.5 * np.sin(2 * PI * X) * np.cos(PI * Y)
    return a, darcy.solve(a, 1.0)


def test_subsampled_smooth_solution_residual_converges(smooth_fine) -> None:
    """Fine (257-node) solution subsampled to n = 17, 33, 65, residual on the coarse grid.

    In the central window [1/4, 3/4]^2 the truncation error is O(h^2): measured RMS residual
    3.24e-3, 7.95e-4, 1.89e-4, orders 2.03 and 2.07. The interior relative residual
    (physics_loss; the boundary part is 0 here) is only first order, measured 9.66e-3,
    4.21e-3, 1.89e-3, orders 1.20 and 1.16: f = 1 with u = 0 on both edges through a corner
    is incompatible there (u ~ r^2 log r), so at the few nodes next to each corner the
    residual stays ~0.05 on every grid (max|r| 0.061, 0.055, 0.050), which gives an RMS over
    the (n - 2)^2 interior nodes of O(h).
    """
    a, u = smooth_fine
    window, loss, corner = [], [], []
    for n in (17, 33, 65):
        s = 256 // (n - 1)
        r = darcy.residual(t(a[::s, ::s]), t(u[::s, ::s]), 1.0).numpy()[0]
        k = (n - 1) // 4
        window.append(np.sqrt(np.mean(r[k : n - k, k : n - k] ** 2)))
        loss.append(darcy.physics_loss(t(a[::s, ::s]), t(u[::s, ::s])).item())
        corner.append(np.abs(r).max())
    window_orders = np.log2(np.array(window[:-1]) / np.array(window[1:]))
    loss_orders = np.log2(np.array(loss[:-1]) / np.array(loss[1:]))
    assert np.all((window_orders > 1.8) & (window_orders < 2.3)), (window, window_orders)
    assert np.all((loss_orders > 0.9) & (loss_orders < 1.35)), (loss, loss_orders)
    assert 1e-3 < loss[-1] < 3e-3, loss
    assert all(0.03 < c < 0.08 for c in corner), corner  # the corner residual does not shrink


# ---- analytic field --------------------------------------------------------------------------


def test_stencil_matches_the_continuous_operator_to_second_order() -> None:
    """u = sin(pi x) sin(pi y), a = 1 + x y: -div(a grad u) = 2 pi^2 a u - (y u_x + x u_y).

    Measured max interior error of residual + f against it: 8.45e-2, 2.13e-2, 5.32e-3,
    1.33e-3 for n = 17, 33, 65, 129 (ratios 3.97, 4.00, 4.00); boundary rows exactly 0.
    """
    errors = []
    for n in (17, 33, 65, 129):
        X, Y = grid(n)
        a = 1.0 + X * Y
        u = np.sin(PI * X) * np.sin(PI * Y)
        u[boundary_mask(n)] = 0.0  # sin(pi) = 1.2e-16 in floating point; the field is 0 there
        u_x = PI * np.cos(PI * X) * np.sin(PI * Y)
        u_y = PI * np.sin(PI * X) * np.cos(PI * Y)
        exact = 2 * PI**2 * a * u - (Y * u_x + X * u_y)
        r = darcy.residual(t(a), t(u), 1.0).numpy()[0]
        assert np.all(r[boundary_mask(n)] == 0.0)
        errors.append(np.abs(r + 1.0 - exact)[1:-1, 1:-1].max())
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 3.7) & (ratios < 4.3)), (errors, ratios)
    assert errors[-1] < 2e-3, errors


# ---- the loss sees errors --------------------------------------------------------------------


def test_perturbation_raises_the_loss(own_solution) -> None:
    """Solver solution + 1 % of its max times sin(pi x) sin(pi y) (zero on the boundary).

    Measured physics_loss 0.0169 and 0.0126 against 2.4e-14 and 2.5e-14 unperturbed (a factor
    ~5e11: the unperturbed loss is round-off); the loss is linear in the perturbation, so 2 %
    doubles it.
    """
    a, u = own_solution
    X, Y = grid(33)
    bump = 0.01 * u.max(axis=(1, 2))[:, None, None] * np.sin(PI * X) * np.sin(PI * Y)
    base = darcy.physics_loss(t(a), t(u)).numpy()
    one = darcy.physics_loss(t(a), t(u + bump)).numpy()
    two = darcy.physics_loss(t(a), t(u + 2 * bump)).numpy()
    assert np.all(one > 1e8 * base), (base, one)
    assert np.all((one > 0.008) & (one < 0.03)), one
    np.testing.assert_allclose(two, 2 * one, rtol=1e-6)


def test_boundary_perturbation_raises_the_boundary_rows(own_solution) -> None:
    """Solver solution + 1 % of its max times (1 + x + y) / 3, nonzero on the boundary.

    Measured RMS over the boundary nodes 4.21 and 3.05 (0 before; the rows are 4 a u / h^2),
    against an interior RMS of 3.6e-3 and 2.0e-3; physics_loss 1.44 and 1.05.
    """
    a, u = own_solution
    X, Y = grid(33)
    shift = 0.01 * u.max(axis=(1, 2))[:, None, None] * (1.0 + X + Y) / 3.0
    on_edge = boundary_mask(33)
    r0 = darcy.residual(t(a), t(u), 1.0).numpy()
    r1 = darcy.residual(t(a), t(u + shift), 1.0).numpy()
    edge_rms = np.sqrt(np.mean(r1[:, on_edge] ** 2, axis=1))
    inner_rms = np.sqrt(np.mean(r1[:, ~on_edge] ** 2, axis=1))
    assert np.all(r0[:, on_edge] == 0.0)
    np.testing.assert_allclose(r1[:, on_edge], 4 * 32**2 * (a * shift)[:, on_edge], rtol=1e-12)
    assert np.all(edge_rms > 1.0) and np.all(edge_rms > 300 * inner_rms), (edge_rms, inner_rms)
    # physics_loss imposes u = 0 in the stencil and scores the boundary values relative to
    # ||u|| (the edge part is checked exactly below); the shift also moves the interior
    # equation where a jumps. Measured 0.396 and 0.288, against 2.4e-14 unshifted.
    loss = darcy.physics_loss(t(a), t(u + shift)).numpy()
    assert np.all((loss > 0.15) & (loss < 0.8)), loss


def test_physics_loss_imposes_zero_boundary_values(own_solution) -> None:
    """Boundary values never enter the stencil: the equation part is that of u with u = 0 on
    the edge, and the boundary part is ||u_edge|| / ||u|| (checked against its closed form)."""
    a, u = own_solution
    X, Y = grid(33)
    shift = 0.01 * u.max(axis=(1, 2))[:, None, None] * (1.0 + X + Y) / 3.0
    on_edge = boundary_mask(33)
    moved = np.where(on_edge, u + shift, u)  # only the boundary values change
    loss = darcy.physics_loss(t(a), t(moved)).numpy()
    expected = np.linalg.norm(shift[:, on_edge], axis=1) / np.linalg.norm(
        moved.reshape(2, -1), axis=1
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-9, atol=1e-12)


# ---- torch behaviour -------------------------------------------------------------------------


def test_gradients_flow_to_u_and_a(own_solution) -> None:
    a, u = own_solution
    X, Y = grid(33)
    a_t = t(a).requires_grad_(True)
    u_t = t(u + 0.01 * u.max() * np.sin(PI * X) * np.sin(PI * Y)).requires_grad_(True)
    darcy.physics_loss(a_t, u_t).sum().backward()
    for g in (u_t.grad, a_t.grad):
        assert g is not None and g.shape == (2, 1, 33, 33)
        assert torch.isfinite(g).all() and g.abs().max().item() > 0


def test_gradcheck_on_a_small_grid() -> None:
    """The equation part (u zero on the edge, so the boundary part is 0 and the detached
    denominator plays no role) against finite differences."""
    rng = np.random.default_rng(3)
    a = t(np.exp(rng.standard_normal((2, 5, 5)))).requires_grad_(True)
    inner = t(rng.standard_normal((2, 3, 3))).requires_grad_(True)

    def loss(a, inner):
        return darcy.physics_loss(a, torch.nn.functional.pad(inner, (1, 1, 1, 1)), f=1.5)

    assert torch.autograd.gradcheck(loss, (a, inner))


def test_float32(own_solution) -> None:
    # measured: the float64 solution cast to float32 has max|r| 3.8e-5 and loss 5e-6 .. 6.4e-6
    a, u = own_solution
    loss = darcy.physics_loss(t(a, torch.float32), t(u, torch.float32))
    assert loss.dtype == torch.float32 and loss.shape == (2,)
    assert loss.max().item() < 1e-4
    X, Y = grid(33)
    bump = 0.01 * u.max() * np.sin(PI * X) * np.sin(PI * Y)
    perturbed = darcy.physics_loss(t(a, torch.float32), t(u + bump, torch.float32))
    assert perturbed.min().item() > 100 * loss.max().item()


def test_batch_samples_are_independent(own_solution) -> None:
    a, u = own_solution
    X, Y = grid(33)
    u = u + 0.01 * np.sin(PI * X) * np.sin(PI * Y)
    both = darcy.physics_loss(t(a), t(u))
    one_by_one = torch.cat([darcy.physics_loss(t(a[k]), t(u[k])) for k in range(2)])
    torch.testing.assert_close(both, one_by_one, rtol=1e-14, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(own_solution) -> None:
    a, u = own_solution
    u = u + 1e-3
    cpu = darcy.physics_loss(t(a), t(u))
    gpu = darcy.physics_loss(t(a).cuda(), t(u).cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-10, atol=0)


# ---- bad input -------------------------------------------------------------------------------

GOOD = torch.ones(2, 1, 9, 9)


@pytest.mark.parametrize(
    ("a", "u", "match"),
    [
        (torch.ones(2, 9, 9), GOOD, r"a must be shaped \(N, 1, n, n\).*got \(2, 9, 9\)"),
        (GOOD, torch.ones(2, 2, 9, 9), r"u must be shaped \(N, 1, n, n\).*got \(2, 2, 9, 9\)"),
        (GOOD, torch.ones(2, 1, 9, 8), r"square node grid.*got \(2, 1, 9, 8\)"),
        (torch.ones(2, 1, 2, 2), torch.ones(2, 1, 2, 2), r"n >= 3"),
        (GOOD, torch.ones(2, 1, 17, 17), r"a \(2, 1, 9, 9\) and u \(2, 1, 17, 17\) must have"),
        (GOOD, torch.ones(3, 1, 9, 9), r"same shape \(N, 1, n, n\)"),
        (np.ones((2, 1, 9, 9)), GOOD, r"a must be a torch.Tensor"),
        (GOOD, torch.ones(2, 1, 9, 9, dtype=torch.int64), r"floating-point"),
    ],
)
def test_bad_shapes_raise_a_helpful_error(a, u, match: str) -> None:
    with pytest.raises(TransferTuneError, match=match):
        darcy.physics_loss(a, u)
    with pytest.raises(TransferTuneError, match=match):
        darcy.residual(a, u)


def test_zero_source_is_rejected_by_the_relative_loss() -> None:
    with pytest.raises(TransferTuneError, match="nonzero f"):
        darcy.physics_loss(GOOD, GOOD, f=0.0)
    assert darcy.residual(GOOD, torch.zeros_like(GOOD), 0.0).abs().max().item() == 0.0


def test_public_names() -> None:
    assert {"residual", "physics_loss"} <= set(darcy.__all__)
