"""Darcy flow on the unit square: data ``a -> u`` for ``-div(a grad u) = f``, ``u = 0`` on the edge.

Problem
-------
``-div(a(x) grad u(x)) = f`` on ``(0, 1)^2``, ``u = 0`` on the boundary, ``f = 1``.  The
coefficient is a thresholded Gaussian random field, as in the original FNO Darcy data:
``a = 12`` where ``g >= 0`` and ``a = 3`` where ``g < 0``, with
``g ~ N(0, (-Laplacian + 9 I)^(-2))`` under zero-Neumann boundary conditions (cosine basis, zero
mean; see :mod:`pdes.grf`).  The scale ``sigma`` of ``g`` does not change ``a``.

Method
------
Second-order finite differences on the node grid ``x_i = i h``, ``h = 1 / (n - 1)``, including
the boundary nodes (where ``u = 0``): at every interior node

    -[a_{i+1/2,j} (u_{i+1,j} - u_{i,j}) - a_{i-1/2,j} (u_{i,j} - u_{i-1,j})
      + a_{i,j+1/2} (u_{i,j+1} - u_{i,j}) - a_{i,j-1/2} (u_{i,j} - u_{i,j-1})] / h^2 = f_{i,j}

with face coefficients averaged from the two neighbouring nodes, ``a_{i+1/2,j} = (a_{i,j} +
a_{i+1,j}) / 2`` (the FNO scheme).  The matrix is a symmetric M-matrix; every sample is one
sparse direct solve (SuperLU without pivoting, in a minimum-degree ordering of ``A + A^T`` that
is computed once per grid size since all samples share the sparsity pattern); samples run in
parallel with joblib.  Second order for a smooth coefficient; for the piecewise-constant
coefficient the data is the solution of this discrete problem on the fine grid.

Defaults and why
----------------
``n_fine = 127`` (``h = 1/126``): one solve takes ~20 ms, so 1200 samples at 64 x 64 take well
under a minute on two cores (``n_fine = 253`` takes ~0.3 s per solve, ~3 minutes; the original
FNO grid 421 ~1 s per solve).  The default resolution 64 is every second fine node.

Resolutions: the data is ``a[::s, ::s]`` and ``u[::s, ::s]`` with ``s = (n_fine - 1) /
(resolution - 1)``, so ``resolution - 1`` must divide ``n_fine - 1``.  For ``n_fine = 127``:
127, 64, 43, 22, 19, 15, 10, 8, 7, 4, 3, 2.  To get resolution ``r`` with ``k``-fold refinement,
set ``n_fine = (r - 1) k + 1`` (e.g. 85 -> ``n_fine = 253`` or 421; 128 -> 255).  Data at
resolution 64 is exactly every other node of the data at resolution 127 for the same seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla
import torch

from pdes import generation as gen
from pdes.checks import as_int
from pdes.errors import TransferTuneError
from pdes.grf import GaussianRandomField

__all__ = [
    "DEFAULTS",
    "DIM",
    "allowed_resolutions",
    "assemble",
    "check_resolution",
    "generate",
    "physics_loss",
    "residual",
    "solve",
]

DIM = 2

DEFAULTS: dict[str, Any] = {
    "n_fine": 127,  # solver nodes per axis (boundary included); data is subsampled from it
    "alpha": 2.0,  # GRF covariance sigma^2 (-Laplacian + tau^2)^(-alpha), zero-Neumann
    "tau": 3.0,
    "sigma": 1.0,
    "a_pos": 12.0,  # a where the field is >= 0
    "a_neg": 3.0,  # a where the field is < 0
    "f": 1.0,  # constant source term
}

_CHUNK = 25  # samples per joblib task (does not change the data)


def _stencil_entries(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column (interior unknown) of every 5-point stencil value, in assembly order."""
    m = n - 2
    idx = np.arange(m * m).reshape(m, m)
    rows = [idx.ravel(), idx[:-1].ravel(), idx[1:].ravel(), idx[:, :-1].ravel(), idx[:, 1:].ravel()]
    cols = [idx.ravel(), idx[1:].ravel(), idx[:-1].ravel(), idx[:, 1:].ravel(), idx[:, :-1].ravel()]
    return np.concatenate(rows), np.concatenate(cols)


def _stencil_values(a: np.ndarray) -> np.ndarray:
    """Matrix entries (times h^2) in the order of :func:`_stencil_entries`."""
    ax = 0.5 * (a[1:, :] + a[:-1, :])  # face (i+1/2, j), shape (n-1, n)
    ay = 0.5 * (a[:, 1:] + a[:, :-1])  # face (i, j+1/2), shape (n, n-1)
    a_e = ax[1:, 1:-1]  # east face of interior node (i, j): (i+1/2, j)
    a_w = ax[:-1, 1:-1]
    a_n = ay[1:-1, 1:]
    a_s = ay[1:-1, :-1]
    return np.concatenate(
        [
            (a_e + a_w + a_n + a_s).ravel(),
            -a_e[:-1].ravel(),  # (i, j) -> (i+1, j)
            -a_w[1:].ravel(),  # (i, j) -> (i-1, j)
            -a_n[:, :-1].ravel(),  # (i, j) -> (i, j+1)
            -a_s[:, 1:].ravel(),  # (i, j) -> (i, j-1)
        ]
    )


def _csc_pattern(n: int, position: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """CSC ``indices``, ``indptr`` and the stencil-value order for unknowns renumbered by
    ``position`` (``None``: natural row-major order)."""
    r, c = _stencil_entries(n)
    if position is not None:
        r, c = position[r], position[c]
    m2 = (n - 2) ** 2
    tag = sps.csc_matrix((np.arange(1, r.size + 1, dtype=np.float64), (r, c)), shape=(m2, m2))
    order = tag.data.astype(np.int64) - 1  # stencil entry stored at each CSC slot
    return tag.indices.copy(), tag.indptr.copy(), order


@lru_cache(maxsize=8)
def _natural_pattern(n: int) -> tuple[np.ndarray, ...]:
    return _csc_pattern(n, None)


@lru_cache(maxsize=8)
def _ordered_pattern(n: int) -> tuple[np.ndarray, ...]:
    """Fill-reducing renumbering, computed once per grid size and reused for every sample.

    The ordering depends only on the sparsity pattern, which all samples share, so SuperLU's
    minimum-degree ordering of ``A + A^T`` is computed once (on the Laplacian) and the
    per-sample factorisations run in that order with ``permc_spec="NATURAL"`` (2x faster).
    Returns ``(indices, indptr, order, perm)`` with ``perm[j]`` the unknown placed at ``j``.
    """
    indices, indptr, order = _natural_pattern(n)
    m2 = (n - 2) ** 2
    vals = _stencil_values(np.ones((n, n)))
    lap = sps.csc_matrix((vals[order], indices, indptr), shape=(m2, m2))
    lu = spla.splu(
        lap, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
    )
    position = np.asarray(lu.perm_c, dtype=np.int64)
    perm = np.argsort(position)
    return (*_csc_pattern(n, position), perm)


def _check_coefficient(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 3:
        raise TransferTuneError(f"a must be a square (n, n) node array with n >= 3, got {a.shape}.")
    if not np.all(a > 0):
        raise TransferTuneError("the Darcy coefficient a must be positive everywhere.")
    return a


def assemble(a: np.ndarray) -> sps.csc_matrix:
    """Finite-difference matrix of ``-div(a grad .)`` on the interior nodes (zero Dirichlet).

    Parameters
    ----------
    a : ndarray, shape (n, n)
        Positive coefficient at the nodes ``(i h, j h)``, ``h = 1/(n-1)`` (axis 0 is x).

    Returns
    -------
    scipy.sparse.csc_matrix, shape ((n-2)^2, (n-2)^2)
        Unknowns ordered row-major over the interior nodes ``u[1:-1, 1:-1]``.
    """
    a = _check_coefficient(a)
    n = a.shape[0]
    indices, indptr, order = _natural_pattern(n)
    m2 = (n - 2) ** 2
    vals = _stencil_values(a) * float((n - 1) ** 2)
    return sps.csc_matrix((vals[order], indices, indptr), shape=(m2, m2))


def solve(a: np.ndarray, f: float | np.ndarray = 1.0) -> np.ndarray:
    """Solve ``-div(a grad u) = f`` on the unit square with ``u = 0`` on the boundary.

    One sparse direct (SuperLU) solve of the scheme in the module docstring, with a
    fill-reducing ordering computed once per grid size.

    Parameters
    ----------
    a : ndarray, shape (n, n)
        Positive coefficient at the nodes ``(i h, j h)``, ``h = 1/(n-1)``.
    f : float or ndarray, shape (n, n)
        Source; only interior node values are used.

    Returns
    -------
    ndarray, shape (n, n), float64
        ``u`` at the nodes, zero on the boundary.
    """
    a = _check_coefficient(a)
    n = a.shape[0]
    m = n - 2
    if np.ndim(f) == 0:
        rhs = np.full(m * m, float(f))
    else:
        f = np.asarray(f, dtype=np.float64)
        if f.shape != a.shape:
            raise TransferTuneError(f"f must be a scalar or have shape {a.shape}, got {f.shape}.")
        rhs = np.ascontiguousarray(f[1:-1, 1:-1]).ravel()
    indices, indptr, order, perm = _ordered_pattern(n)
    vals = _stencil_values(a) * float((n - 1) ** 2)
    mat = sps.csc_matrix((vals[order], indices, indptr), shape=(m * m, m * m))
    lu = spla.splu(
        mat, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
    )
    x = np.empty(m * m)
    x[perm] = lu.solve(rhs[perm])
    u = np.zeros((n, n))
    u[1:-1, 1:-1] = x.reshape(m, m)
    return u


def _check_pair(a: torch.Tensor, u: torch.Tensor, what: str) -> None:
    """Raise :class:`TransferTuneError` unless ``a`` and ``u`` are ``(N, 1, n, n)`` tensors
    on one grid with ``n >= 3``."""
    for name, t in (("a", a), ("u", u)):
        if not isinstance(t, torch.Tensor):
            raise TransferTuneError(
                f"darcy {what}: {name} must be a torch.Tensor shaped (N, 1, n, n), got "
                f"{type(t).__name__}; convert it with torch.as_tensor."
            )
        shape = tuple(t.shape)
        if t.ndim != 4 or shape[1] != 1 or shape[2] != shape[3] or shape[2] < 3:
            raise TransferTuneError(
                f"darcy {what}: {name} must be shaped (N, 1, n, n) on a square node grid with "
                f"n >= 3 (boundary nodes included), got {shape}."
            )
        if not t.is_floating_point():
            raise TransferTuneError(
                f"darcy {what}: {name} must be a floating-point tensor, got {t.dtype}."
            )
    if a.shape != u.shape:
        raise TransferTuneError(
            f"darcy {what}: a {tuple(a.shape)} and u {tuple(u.shape)} must have the same shape "
            "(N, 1, n, n): the same samples on the same node grid."
        )
    if a.device != u.device:
        raise TransferTuneError(
            f"darcy {what}: a is on {a.device} but u on {u.device}; put both on one device."
        )


def residual(a: torch.Tensor, u: torch.Tensor, f: float = 1.0) -> torch.Tensor:
    """Pointwise residual of the discrete equation (the rows of :func:`assemble`), in torch.

    At an interior node ``(i, j)`` it is the 5-point stencil of :func:`assemble`,

        -[a_{i+1/2,j} (u_{i+1,j} - u_{i,j}) - a_{i-1/2,j} (u_{i,j} - u_{i-1,j})
          + a_{i,j+1/2} (u_{i,j+1} - u_{i,j}) - a_{i,j-1/2} (u_{i,j} - u_{i,j-1})] / h^2 - f,

    with ``a_{i+1/2,j} = (a_{i,j} + a_{i+1,j}) / 2`` and ``u``'s own boundary values; at a
    boundary node it is the Dirichlet row scaled like an interior diagonal,
    ``4 a_{i,j} u_{i,j} / h^2`` (zero iff ``u = 0`` there, in the units of ``f``). The discrete
    solution of :func:`solve` has residual zero up to round-off. Differentiable in ``a`` and
    ``u``; any floating dtype and device.

    Parameters
    ----------
    a : torch.Tensor, shape (N, 1, n, n)
        Coefficient at the nodes ``(i h, j h)``, ``h = 1/(n-1)``, physical units (axis 2 is x).
    u : torch.Tensor, shape (N, 1, n, n)
        Solution on the same nodes, physical units (boundary nodes included).
    f : float
        The constant source term.

    Returns
    -------
    torch.Tensor, shape (N, n, n)
        The residual at every node, in the units of ``f``.

    Raises
    ------
    TransferTuneError
        If ``a`` or ``u`` is not shaped ``(N, 1, n, n)`` with ``n >= 3``, or they differ.
    """
    _check_pair(a, u, "residual")
    a, u = a[:, 0], u[:, 0]
    n = a.shape[-1]
    inv_h2 = float((n - 1) ** 2)
    flux_x = 0.5 * (a[:, 1:, :] + a[:, :-1, :]) * (u[:, 1:, :] - u[:, :-1, :])  # (i+1/2, j)
    flux_y = 0.5 * (a[:, :, 1:] + a[:, :, :-1]) * (u[:, :, 1:] - u[:, :, :-1])  # (i, j+1/2)
    div = (flux_x[:, 1:, 1:-1] - flux_x[:, :-1, 1:-1]) + (
        flux_y[:, 1:-1, 1:] - flux_y[:, 1:-1, :-1]
    )
    interior = torch.nn.functional.pad(-div * inv_h2 - float(f), (1, 1, 1, 1))
    inside = torch.zeros(n, n, dtype=torch.bool, device=a.device)
    inside[1:-1, 1:-1] = True
    return torch.where(inside, interior, (4.0 * inv_h2) * a * u)


def physics_loss(
    x: torch.Tensor, y: torch.Tensor, *, f: float = 1.0, **params: Any
) -> torch.Tensor:
    """Per-sample residual loss of a predicted ``u`` (PINO's Darcy loss): equation + boundary.

    ``equation = ||r||_2 / ||f||_2`` over the interior nodes, where ``r`` is :func:`residual`
    of ``u`` with the problem's zero boundary values imposed (the prediction's boundary
    values replaced by 0, so they never enter the stencil); ``||f||_2 = |f| (n - 2)``, so
    this is the root-mean-square interior residual in units of ``f``.
    ``boundary = ||u on the boundary||_2 / ||u||_2`` (the denominator is not differentiated):
    the prediction's own boundary values, relative to its size, which physics-only training
    needs to learn ``u = 0`` there. Both vanish for the discrete solution of :func:`solve` on
    the same grid.

    Imposing the boundary values (rather than penalising them through the Dirichlet rows of
    :func:`residual`, ``4 a u / h^2``) keeps the loss of a fresh model near 1: the scaled rows
    of a boundary off by the solution's mean are ~1e2 ``f`` and swamp the equation.

    Parameters
    ----------
    x : torch.Tensor, shape (N, 1, n, n)
        Coefficient ``a`` in physical units.
    y : torch.Tensor, shape (N, 1, n, n)
        Predicted solution ``u`` in physical units on the same grid.
    f : float
        The constant source term (:data:`DEFAULTS` ``"f"``); must be nonzero.
    **params
        Other solver parameters (``n_fine``, ``alpha``, ...): accepted and ignored, so the
        problem's whole parameter dict can be passed.

    Returns
    -------
    torch.Tensor, shape (N,)
        The loss of each sample, differentiable in ``x`` and ``y``.

    Raises
    ------
    TransferTuneError
        On bad shapes (see :func:`residual`) or ``f == 0``.
    """
    f = float(f)
    if f == 0.0:
        raise TransferTuneError(
            "darcy physics_loss is relative to the source f, which is 0: the solution is u = 0; "
            "use a nonzero f."
        )
    _check_pair(x, y, "physics_loss")
    inner = y[:, :, 1:-1, 1:-1]
    r = residual(x, torch.nn.functional.pad(inner, (1, 1, 1, 1)), f)[:, 1:-1, 1:-1]
    n = r.shape[-1]
    equation = torch.linalg.vector_norm(r.flatten(1), dim=1) / (abs(f) * n)
    edge = y[:, 0] - torch.nn.functional.pad(inner[:, 0], (1, 1, 1, 1))  # zero inside
    size = torch.linalg.vector_norm(y.detach().flatten(1), dim=1)
    tiny = torch.finfo(y.dtype).tiny
    boundary = torch.linalg.vector_norm(edge.flatten(1), dim=1) / size.clamp_min(tiny)
    return equation + boundary


def allowed_resolutions(n_fine: int) -> list[int]:
    """Resolutions ``r`` that are exact subsamples of an ``n_fine`` node grid, largest first."""
    return [(n_fine - 1) // s + 1 for s in range(1, n_fine) if (n_fine - 1) % s == 0]


def _params(params: dict[str, Any]) -> dict[str, Any]:
    p = gen.resolve_params(DEFAULTS, params, "darcy")
    p["n_fine"] = as_int(p["n_fine"], "darcy n_fine", minimum=3)
    if not (p["a_pos"] > 0 and p["a_neg"] > 0):
        raise TransferTuneError(
            f"darcy a_pos and a_neg must be positive, got {p['a_pos']} and {p['a_neg']}."
        )
    return p


def fine_grid_for(resolution: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """The node grid for a ``resolution`` the default ``n_fine`` cannot give.

    ``n_fine = (resolution - 1) k + 1`` with ``k`` the integer nearest ``126 / (resolution - 1)``
    (at least 1): as close as a subsampled grid gets to the default 127 nodes, e.g. 125 for
    resolution 32, 169 for 85 (the cost per sample grows like n_fine^3).
    """
    r = int(resolution)
    if r < 2:
        return {}
    k = max(1, round(126 / (r - 1)))
    return {"n_fine": (r - 1) * k + 1}


def check_resolution(resolution: int, **params: Any) -> None:
    """Raise :class:`TransferTuneError` unless ``resolution - 1`` divides ``n_fine - 1``.

    Parameters
    ----------
    resolution : int
        Requested nodes per axis (boundary nodes included).
    **params
        Overrides of :data:`DEFAULTS` (``n_fine`` matters here).
    """
    p = _params(params)
    n_fine = int(p["n_fine"])
    ok = int(resolution) == resolution and 2 <= resolution <= n_fine
    if not ok or (n_fine - 1) % (int(resolution) - 1):
        try:
            r = max(2, int(resolution))
        except (TypeError, ValueError):
            r = 64
        raise TransferTuneError(
            f"darcy resolution {resolution!r} is not a subsample of the node grid "
            f"n_fine={n_fine}: resolution - 1 must divide n_fine - 1 = {n_fine - 1} (allowed: "
            f"{allowed_resolutions(n_fine)}). Pick one of those, or set n_fine = "
            f"(resolution - 1) * k + 1, e.g. n_fine={2 * (r - 1) + 1} (k = 2); the cost per "
            "sample grows roughly like n_fine^3."
        )


def _chunk(start: int, stop: int, seed: int, resolution: int, p: dict[str, Any]):
    n = int(p["n_fine"])
    grf = GaussianRandomField(
        2, n, alpha=p["alpha"], tau=p["tau"], sigma=p["sigma"], boundary="neumann"
    )
    g = grf.sample(stop - start, gen.sample_generators(seed, start, stop))
    a = np.where(g >= 0, float(p["a_pos"]), float(p["a_neg"]))
    s = (n - 1) // (resolution - 1)
    u = np.stack([solve(ai, p["f"])[::s, ::s] for ai in a]) if len(a) else a[:, ::s, ::s]
    return a[:, None, ::s, ::s].astype(np.float32), u[:, None].astype(np.float32)


#: This module as :func:`pdes.generation.generate_pairs` uses it.
SOLVER = gen.Solver("darcy", _chunk, _CHUNK, _params, check_resolution)
generate = gen.generate_function(
    SOLVER,
    """Generate Darcy pairs (coefficient ``a``, solution ``u``); one sparse solve per sample.

    ``resolution`` counts nodes per axis, boundary included; ``resolution - 1`` must divide
    ``n_fine - 1`` (see :func:`check_resolution`). ``**params`` overrides :data:`DEFAULTS`;
    the other arguments are those of :func:`pdes.generation.generate_pairs` (sample ``i``
    depends only on ``(seed, i, params)``).

    Returns
    -------
    x : ndarray, shape (n_samples, 1, resolution, resolution), float32
        Coefficient ``a`` at the nodes ``(i h, j h)``, ``h = 1/(resolution - 1)``.
    y : ndarray, shape (n_samples, 1, resolution, resolution), float32
        Solution ``u`` at the same nodes (zero on the boundary).
    """,
)
