"""Space-time Burgers (PINO): trajectories, the residual and physics loss, the dataset contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import pdes
from pdes import burgers
from pdes import burgers_time as bt
from transfer_tune.errors import TransferTuneError

NU = bt.DEFAULTS["nu"]


def smooth_u0(n: int) -> np.ndarray:
    """Two smooth initial fields on ``x_i = i / n`` (no shock forms by t = 1 at nu = 0.01)."""
    x = np.arange(n) / n
    return np.stack(
        [
            0.5 * np.sin(2 * np.pi * x) + 0.2 * np.cos(4 * np.pi * x + 1.0),
            0.3 * np.sin(2 * np.pi * x + 0.3),
        ]
    )


def space_time(u0: np.ndarray, nt: int, nu: float = NU, T: float = 1.0) -> torch.Tensor:
    """The solver's trajectory as a float64 tensor ``(N, 1, nx, nt)`` (axis 2 x, axis 3 t)."""
    traj = burgers.trajectory(u0, nu=nu, T=T, dt=1e-3, n_times=nt)  # (N, nt, nx)
    return torch.from_numpy(np.ascontiguousarray(np.swapaxes(traj, 1, 2)))[:, None]


def inputs_for(u: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """The physical input ``x`` (N, 2, nx, nt) of a space-time field ``u`` (its own t = 0)."""
    n, _, nx, nt = u.shape
    t = (torch.arange(nt, dtype=u.dtype) * (T / nt)).expand(n, nx, nt)
    return torch.stack([u[:, 0, :, :1].expand(n, nx, nt), t], dim=1)


def rel_rms_residual(u: torch.Tensor, nu: float = NU, T: float = 1.0) -> np.ndarray:
    r = bt.residual(u, nu=nu, T=T)
    scale = u[:, 0, :, 0].square().mean(-1).sqrt()
    return (r.square().mean(dim=(1, 2)).sqrt() * T / scale).numpy()


# ---- the trajectory ---------------------------------------------------------------------------


def test_trajectory_snapshots_equal_solve():
    u0 = smooth_u0(64)
    # steps match (cfl=None, T / dt = 64 a multiple of n_times = 16): the same arithmetic
    traj = burgers.trajectory(u0, nu=NU, T=1.0, dt=1 / 64, n_times=16, cfl=None)
    assert traj.shape == (2, 16, 64)
    np.testing.assert_array_equal(traj[:, 0], u0)
    for j in (1, 5, 15):
        ref = burgers.solve(u0, nu=NU, T=j / 16, dt=1 / 64, cfl=None)
        np.testing.assert_allclose(traj[:, j], ref, rtol=0, atol=1e-12)
    # default cfl, dt = 1e-3: trajectory steps h = 1/1024, solve h = t_j / ceil(t_j / 1e-3);
    # they agree to the solver's accuracy (observed 1.2e-12; with matching steps: 0.0)
    traj = burgers.trajectory(u0, nu=NU, T=1.0, dt=1e-3, n_times=16)
    for j in (1, 7, 15):
        ref = burgers.solve(u0, nu=NU, T=j / 16, dt=1e-3)
        np.testing.assert_allclose(traj[:, j], ref, rtol=0, atol=1e-10)


def test_trajectory_edge_cases():
    u0 = smooth_u0(16)
    np.testing.assert_array_equal(
        burgers.trajectory(u0, nu=NU, T=1.0, dt=0.1, n_times=1), u0[:, None]
    )
    still = burgers.trajectory(u0, nu=NU, T=0.0, dt=0.1, n_times=3)  # all times are t = 0
    np.testing.assert_array_equal(still, np.repeat(u0[:, None], 3, axis=1))
    one = burgers.trajectory(u0[0], nu=NU, T=1.0, dt=0.01, n_times=4)  # no batch axis
    assert one.shape == (4, 16)
    np.testing.assert_array_equal(one, burgers.trajectory(u0, nu=NU, T=1.0, dt=0.01, n_times=4)[0])
    full = burgers.trajectory(u0, nu=NU, T=1.0, dt=0.01, n_times=8)
    np.testing.assert_array_equal(
        burgers.trajectory(u0, nu=NU, T=1.0, dt=0.01, n_times=8, every=4), full[:, ::4]
    )
    with pytest.raises(TransferTuneError, match="divide"):
        burgers.trajectory(u0, nu=NU, T=1.0, dt=0.01, n_times=8, every=3)
    for bad in (0, 2.5, True):
        with pytest.raises(TransferTuneError, match="n_times"):
            burgers.trajectory(u0, nu=NU, T=1.0, dt=0.1, n_times=bad)


# ---- the residual -----------------------------------------------------------------------------


def test_solver_residual_falls_at_second_order_in_t():
    """Spectral in x (exact on 128 points here), so the error is the FD in t: O((T / nt)^2)."""
    u0 = smooth_u0(128)
    errors = np.array([rel_rms_residual(space_time(u0, nt)) for nt in (16, 32, 64)])
    # observed: sample 0 8.1e-2, 1.9e-2, 4.4e-3 (orders 2.06, 2.13); sample 1 7.2e-3, 1.6e-3,
    # 3.7e-4 (orders 2.14, 2.14)
    orders = np.log2(errors[:-1] / errors[1:])
    assert np.all((orders > 1.8) & (orders < 2.4)), orders
    assert np.all(errors[-1] < 6e-3)


def test_analytic_field_residual():
    """u = sin(2 pi x) e^-t: r = -sin e^-t + pi sin(4 pi x) e^-2t + 4 pi^2 nu sin e^-t."""
    nu, T, nx = 0.05, 1.0, 16
    errors = []
    for nt in (16, 32, 64):
        x = torch.arange(nx, dtype=torch.float64)[:, None] / nx
        t = torch.arange(nt, dtype=torch.float64)[None] * (T / nt)
        s, e = torch.sin(2 * math.pi * x), torch.exp(-t)
        u = (s * e)[None, None]
        exact = -s * e + math.pi * torch.sin(4 * math.pi * x) * e**2 + 4 * math.pi**2 * nu * s * e
        r = bt.residual(u, nu=nu, T=T)[0]
        errors.append(float((r - exact).abs().max()))
        # the x-derivatives are exact: the time-only part of the error is the whole error
        assert errors[-1] < 0.5 * (T / nt) ** 2  # observed 0.32-0.33 (T / nt)^2
    # O(dt^2): observed ratios 3.91 and 3.95 per halving
    assert 3.6 < errors[0] / errors[1] < 4.4 and 3.6 < errors[1] / errors[2] < 4.4


def test_dealiased_product_is_exact_for_band_limited_fields():
    """(u^2/2)_x of the interpolant at the nodes, with no aliasing: modes up to nx/2 - 1."""
    nx, nt = 8, 3
    x = torch.arange(nx, dtype=torch.float64)[:, None] / nx
    u = (torch.cos(6 * math.pi * x) * torch.ones(1, nt))[None, None]  # k = 3, square has k = 6
    r = bt.residual(u, nu=0.0, T=1.0)[0]  # u_t = 0; exact (u^2/2)_x = -3 pi sin(12 pi x)
    exact = -3 * math.pi * torch.sin(12 * math.pi * x).expand(nx, nt)
    torch.testing.assert_close(r, exact, rtol=0, atol=1e-12)
    # the aliased product on 8 nodes would fold k = 6 onto k = -2: the sign of the sine flips
    assert float(exact.abs().max()) > 5.0


# ---- the physics loss -------------------------------------------------------------------------


def test_physics_loss_of_solver_data_and_of_a_perturbation():
    u0 = smooth_u0(128)
    u = space_time(u0, 64)
    x = inputs_for(u)
    base = bt.physics_loss(x, u, nu=NU, T=1.0, n_fine=256, dt=1e-3)  # extra params ignored
    assert base.shape == (2,)
    assert float(base.max()) < 0.01  # observed 3.3e-3 and 3.3e-4 (t_j > 0): FD error in t only
    # a smooth perturbation of size 1e-2 that keeps u(., 0): the residual catches it
    xs = torch.arange(128, dtype=torch.float64)[:, None] / 128
    ts = torch.arange(64, dtype=torch.float64)[None] / 64
    bump = 0.01 * torch.sin(2 * math.pi * xs + 0.5) * torch.sin(math.pi * ts)
    worse = bt.physics_loss(x, u + bump, nu=NU, T=1.0)
    assert torch.all(worse > 5.0 * base), (
        worse / base
    )  # observed 0.054 and 0.082 against 3.3e-3 and 3.3e-4: ratios 16 and 271


def test_initial_condition_term():
    """A solution from the wrong initial field: tiny residual, but the IC term is 10 %."""
    u0 = smooth_u0(64)
    wrong = space_time(1.1 * u0, 64)
    x = inputs_for(torch.from_numpy(u0)[:, None, :, None].expand(2, 1, 64, 64))
    loss = bt.physics_loss(x, wrong, nu=NU, T=1.0)
    r = bt.residual(wrong, nu=NU, T=1.0)[..., 1:]  # the residual term: t_j > 0, scaled by u0
    pde = r.square().mean(dim=(1, 2)).sqrt() / torch.from_numpy(u0).square().mean(-1).sqrt()
    torch.testing.assert_close(loss - pde, torch.full((2,), 0.1, dtype=torch.float64))
    assert torch.all(loss > 0.1)


def test_gradients_dtype_and_zero_u0():
    u = space_time(smooth_u0(16), 8).float().requires_grad_(True)
    x = inputs_for(u.detach())
    loss = bt.physics_loss(x, u, nu=NU, T=1.0)
    assert loss.dtype == torch.float32 and loss.shape == (2,)
    loss.sum().backward()
    assert u.grad is not None and torch.isfinite(u.grad).all() and u.grad.abs().sum() > 0
    # float32 agrees with float64
    loss64 = bt.physics_loss(x.double(), u.detach().double(), nu=NU, T=1.0)
    torch.testing.assert_close(loss.detach().double(), loss64, rtol=1e-4, atol=1e-6)
    # a zero field with a zero initial condition: finite, zero
    zero = torch.zeros(1, 1, 8, 4)
    assert float(bt.physics_loss(torch.zeros(1, 2, 8, 4), zero, nu=NU, T=1.0)[0]) == 0.0


def test_bad_shapes_raise():
    good_x, good_y = torch.zeros(2, 2, 8, 4), torch.zeros(2, 1, 8, 4)
    with pytest.raises(TransferTuneError, match=r"\(N, 1, nx, nt\)"):
        bt.residual(torch.zeros(2, 8, 4), nu=NU, T=1.0)
    with pytest.raises(TransferTuneError, match=r"nt >= 3"):
        bt.residual(torch.zeros(2, 1, 8, 2), nu=NU, T=1.0)
    with pytest.raises(TransferTuneError, match=r"x must be shaped \(N, 2, nx, nt\)"):
        bt.physics_loss(good_y, good_y, nu=NU, T=1.0)
    with pytest.raises(TransferTuneError, match="same grid"):
        bt.physics_loss(good_x, torch.zeros(2, 1, 8, 5), nu=NU, T=1.0)
    with pytest.raises(TransferTuneError, match="torch.Tensor"):
        bt.physics_loss(good_x.numpy(), good_y, nu=NU, T=1.0)
    with pytest.raises(TransferTuneError, match="T > 0"):
        bt.residual(good_y, nu=NU, T=0.0)


# ---- the dataset ------------------------------------------------------------------------------


def test_generated_data_layout():
    x, y = bt.generate(3, 16, seed=0)
    assert x.shape == (3, 2, 16, 16) and y.shape == (3, 1, 16, 16)
    assert x.dtype == y.dtype == np.float32
    t = np.arange(16) / 16 * bt.DEFAULTS["T"]
    np.testing.assert_array_equal(x[:, 1], np.broadcast_to(t.astype(np.float32), (3, 16, 16)))
    np.testing.assert_array_equal(x[:, 0], np.repeat(x[:, 0, :, :1], 16, axis=2))
    np.testing.assert_array_equal(x[:, 0, :, 0], y[:, 0, :, 0])  # u(x, 0) = u0
    assert np.std(y) > 0.1 and np.std(y[..., -1]) < np.std(y[..., 0])  # viscosity damps


def test_coarse_data_is_a_subsample_and_seeds():
    x32, y32 = bt.generate(3, 32, seed=4)
    x64, y64 = bt.generate(3, 64, seed=4)
    np.testing.assert_array_equal(x32, x64[:, :, ::2, ::2])
    np.testing.assert_array_equal(y32, y64[:, :, ::2, ::2])
    # sample i depends only on (seed, i): the first of more samples; with burgers' alpha = 2
    # the same u0 as burgers
    np.testing.assert_array_equal(bt.generate(1, 32, seed=4)[1], y32[:1])
    u0 = burgers.generate(3, 32, seed=4, n_fine=256)[0]
    x_alpha2 = bt.generate(3, 32, seed=4, alpha=2.0)[0]
    np.testing.assert_array_equal(u0[:, 0], x_alpha2[:, 0, :, 0])
    assert np.max(np.abs(bt.generate(1, 32, seed=5)[0] - x32[:1])) > 0.1


def test_generated_data_has_small_physics_loss():
    """Solver data at resolution 32: the default field (alpha = 2.5) and a smoother one."""
    x, y = bt.generate(8, 32, seed=1)
    loss = bt.physics_loss(
        torch.from_numpy(x).double(), torch.from_numpy(y).double(), **bt.DEFAULTS
    )
    # the module docstring's floor: a mean of 0.020 over 20 samples (FNO's rough alpha = 2
    # gives 0.29: its initial viscous layer is not resolved by the time step T / r)
    assert 0.005 < float(loss.mean()) < 0.05, loss
    rough = bt.generate(8, 32, seed=1, alpha=2.0)
    loss2 = bt.physics_loss(*(torch.from_numpy(a).double() for a in rough), **bt.DEFAULTS)
    assert float(loss2.mean()) > 5 * float(loss.mean())
    x, y = bt.generate(4, 32, seed=1, alpha=3.0)
    loss = bt.physics_loss(
        torch.from_numpy(x).double(), torch.from_numpy(y).double(), **bt.DEFAULTS
    )
    assert float(loss.max()) < 0.02


def test_resolution_checks():
    bt.check_resolution(64)
    with pytest.raises(TransferTuneError, match="n_fine"):
        bt.check_resolution(48)
    with pytest.raises(TransferTuneError, match="n_times_fine"):
        bt.check_resolution(64, n_times_fine=96)
    assert bt.fine_grid_for(96, dict(bt.DEFAULTS)) == {"n_fine": 288, "n_times_fine": 288}
    assert bt.fine_grid_for(64, {**bt.DEFAULTS, "n_times_fine": 96}) == {"n_times_fine": 256}


def test_registered_problem(tmp_path):
    problem = pdes.get_problem(
        "burgers_time", resolution=8, n_train=4, n_val=1, n_test=1, cache_dir=tmp_path
    )
    assert pdes.get_problem("burgers-time", cache_dir=tmp_path).name == "burgers_time"
    assert problem.grid_shape == (8, 8)
    assert problem.in_channels == 2 and problem.out_channels == 1
    x, y = problem.dataset("train", normalized=False)
    assert tuple(x.shape) == (4, 2, 8, 8) and tuple(y.shape) == (4, 1, 8, 8)
    xn, yn = problem.dataset("train")
    torch.testing.assert_close(problem.normalizers.x.decode(xn), x, rtol=1e-5, atol=1e-5)
    ref = bt.generate(4, 8, seed=problem.split_seed("train"))
    np.testing.assert_array_equal(y.numpy(), ref[1])
    # the default resolution is 64 (no data generated: nothing is read here)
    assert pdes.get_problem("burgers_time", cache_dir=tmp_path).resolution == 64
