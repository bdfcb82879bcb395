"""Gaussian random fields sampled spectrally (periodic and zero-Neumann, d = 1, 2).

Covariance convention
---------------------
A field ``u`` on the unit interval or unit square (``d = 1, 2``) is drawn from the centred
Gaussian measure ``N(0, C)`` with covariance operator

    C = sigma^2 (-Laplacian + tau^2 I)^(-alpha),

written in its Karhunen-Loeve expansion over the L2-orthonormal eigenfunctions of the Laplacian:

* ``boundary="periodic"`` (unit torus): ``phi_k(x) = exp(2 pi i k.x)``, Laplacian eigenvalue
  ``-(2 pi |k|)^2``, so the covariance eigenvalue is
  ``lambda_k = sigma^2 ((2 pi |k|)^2 + tau^2)^(-alpha)``.  The grid has ``n`` points per axis at
  ``x_j = j / n`` and carries the modes ``k = -n/2 .. n/2 - 1`` (numpy's ``fftfreq`` order).
  ``u(x) = sum_k sqrt(lambda_k) zeta_k phi_k(x)`` with complex standard normals
  (``E|zeta_k|^2 = 1``, ``zeta_{-k} = conj(zeta_k)``), so that ``E[u(x) u(y)] =
  sum_k lambda_k exp(2 pi i k.(x - y))``.  The discrete Fourier coefficient
  ``fftn(u) / n^d`` of mode ``k`` therefore has ``E|.|^2 = lambda_k``.  On an even grid the
  Nyquist mode is the grid's real cosine ``(-1)^j`` with variance ``lambda_k``.
* ``boundary="neumann"`` (zero normal derivative on the unit square): ``phi_k(x) =
  prod_i c_{k_i} cos(pi k_i x_i)`` with ``c_0 = 1``, ``c_{k>0} = sqrt(2)``, Laplacian
  eigenvalue ``-(pi |k|)^2``, so ``lambda_k = sigma^2 ((pi |k|)^2 + tau^2)^(-alpha)`` and
  ``u = sum_k sqrt(lambda_k) xi_k phi_k`` with real iid ``xi_k ~ N(0, 1)``, ``k_i = 0 .. n-1``.
  The grid is the node grid ``x_j = j / (n - 1)`` including both boundary nodes; the sum is
  evaluated with a type-I discrete cosine transform.  This is the field of the original FNO
  Darcy data (their generator uses the same cosine basis and drops the constant mode).

Zero mode: ``zero_mean=True`` (the default, as in every original FNO generator) drops the
constant mode ``k = 0``, so every realisation has exactly zero spatial mean; ``zero_mean=False``
keeps it with variance ``lambda_0 = sigma^2 tau^(-2 alpha)``.

The per-sample generators the PDE solvers draw from live in :mod:`pdes.generation`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.fft as sfft

from pdes.checks import as_float, as_int
from pdes.errors import TransferTuneError

__all__ = ["GaussianRandomField"]


class GaussianRandomField:
    """Centred Gaussian random field ``N(0, sigma^2 (-Laplacian + tau^2 I)^(-alpha))`` on a grid.

    See the module docstring for the exact convention (eigenfunctions, eigenvalues, grid and
    zero mode).

    Parameters
    ----------
    dim : int
        Spatial dimension, 1 or 2.
    n : int
        Grid points per axis (periodic: ``x_j = j/n``; neumann: nodes ``x_j = j/(n-1)``).
    alpha : float
        Smoothness exponent (> d/2 for a field with finite pointwise variance).
    tau : float
        Inverse length scale.
    sigma : float
        Amplitude; the covariance operator is multiplied by ``sigma**2``.
    boundary : {"periodic", "neumann"}
        Periodic unit torus (Fourier basis) or zero-Neumann unit cube (cosine basis).
    zero_mean : bool
        Drop the constant mode (default, as in the original FNO generators).
    """

    def __init__(
        self,
        dim: int,
        n: int,
        alpha: float = 2.0,
        tau: float = 3.0,
        sigma: float = 1.0,
        boundary: str = "periodic",
        zero_mean: bool = True,
    ) -> None:
        if dim not in (1, 2):
            raise TransferTuneError(f"GaussianRandomField supports dim 1 or 2, got dim={dim}.")
        if boundary not in ("periodic", "neumann"):
            raise TransferTuneError(f"unknown boundary {boundary!r}; use 'periodic' or 'neumann'.")
        min_n = 2 if boundary == "periodic" else 3
        n = as_int(n, f"grid size n ({boundary} boundary)", minimum=min_n)
        self.dim = int(dim)
        self.n = n
        self.alpha = as_float(alpha, "GaussianRandomField alpha", positive=True)
        self.tau = as_float(tau, "GaussianRandomField tau", positive=True)
        self.sigma = as_float(sigma, "GaussianRandomField sigma", minimum=0.0)
        self.boundary = boundary
        self.zero_mean = bool(zero_mean)
        self.shape: tuple[int, ...] = (self.n,) * self.dim
        self._sqrt_eig = self._spectral_sqrt()

    # ------------------------------------------------------------------ spectrum
    def wavenumbers(self) -> np.ndarray:
        """Integer wavenumbers of the grid's modes, shape ``(dim, *shape)``.

        Periodic: numpy ``fftfreq`` order (``fftn`` layout); neumann: ``0 .. n-1`` (DCT layout).
        """
        if self.boundary == "periodic":
            k1 = np.fft.fftfreq(self.n, d=1.0 / self.n)
        else:
            k1 = np.arange(self.n, dtype=float)
        return np.stack(np.meshgrid(*([k1] * self.dim), indexing="ij"))

    def eigenvalues(self) -> np.ndarray:
        """Covariance eigenvalue ``lambda_k`` of every grid mode, laid out like :meth:`wavenumbers`.

        The constant mode is 0 when ``zero_mean`` is set.
        """
        k = self.wavenumbers()
        scale = 2.0 * np.pi if self.boundary == "periodic" else np.pi
        lam = self.sigma**2 * ((scale**2) * np.sum(k**2, axis=0) + self.tau**2) ** (-self.alpha)
        if self.zero_mean:
            lam[(0,) * self.dim] = 0.0
        return lam

    def pointwise_variance(self) -> float:
        """Variance of the field at any grid point (periodic: sum of ``lambda_k``)."""
        if self.boundary != "periodic":
            raise TransferTuneError("pointwise_variance is constant only for periodic fields.")
        return float(self.eigenvalues().sum())

    def _spectral_sqrt(self) -> np.ndarray:
        lam = self.eigenvalues()
        if self.boundary == "periodic":
            # rfftn layout: last axis keeps 0..n//2; lambda depends on |k| only.
            return np.sqrt(lam[..., : self.n // 2 + 1])
        # neumann: sqrt(lambda) times the basis normalisation c_k, times the DCT-I weights
        # (dct type 1 doubles the interior terms, see _cosine_synthesis)
        c = np.full(self.n, np.sqrt(2.0))
        c[0] = 1.0
        w = np.full(self.n, 0.5)
        w[0] = w[-1] = 1.0
        cw = c * w
        weight = cw if self.dim == 1 else np.multiply.outer(cw, cw)
        return np.sqrt(lam) * weight

    # ------------------------------------------------------------------ sampling
    def from_white_noise(self, noise: np.ndarray) -> np.ndarray:
        """Map iid standard normal noise of shape ``(batch, *shape)`` to field samples.

        This is the deterministic part of :meth:`sample`; it is linear in ``noise``.

        Parameters
        ----------
        noise : ndarray, shape (batch, *shape)
            Independent N(0, 1) entries.

        Returns
        -------
        ndarray, shape (batch, *shape), float64
        """
        noise = np.asarray(noise, dtype=np.float64)
        if noise.shape[1:] != self.shape:
            raise TransferTuneError(
                f"noise has shape {noise.shape}, expected (batch, *{self.shape})."
            )
        axes = tuple(range(-self.dim, 0))
        if self.boundary == "periodic":
            # fft of real white noise / sqrt(N) = Hermitian complex normals with E|z|^2 = 1,
            # real (variance 1) on the self-conjugate modes; u = sum_k sqrt(lam) z_k e^{2 pi i kx}.
            n_total = self.n**self.dim
            spec = sfft.rfftn(noise, axes=axes) * self._sqrt_eig
            return sfft.irfftn(spec, s=self.shape, axes=axes) * np.sqrt(n_total)
        return sfft.dctn(noise * self._sqrt_eig, type=1, axes=axes)

    def sample(
        self, n_samples: int, rng: np.random.Generator | Sequence[np.random.Generator]
    ) -> np.ndarray:
        """Draw ``n_samples`` independent realisations.

        Parameters
        ----------
        n_samples : int
            Number of fields.
        rng : numpy Generator or sequence of Generators
            One generator for the whole batch, or one generator per sample (sample ``i`` then
            depends only on ``rng[i]``).

        Returns
        -------
        ndarray, shape (n_samples, *shape), float64
        """
        if isinstance(rng, np.random.Generator):
            noise = rng.standard_normal((n_samples, *self.shape))
        else:
            if len(rng) != n_samples:
                raise TransferTuneError(
                    f"got {len(rng)} generators for {n_samples} samples; pass one per sample."
                )
            noise = (
                np.stack([g.standard_normal(self.shape) for g in rng])
                if n_samples
                else (np.zeros((0, *self.shape)))
            )
        return self.from_white_noise(noise)

    def __repr__(self) -> str:
        return (
            f"GaussianRandomField(dim={self.dim}, n={self.n}, alpha={self.alpha}, tau={self.tau}, "
            f"sigma={self.sigma}, boundary={self.boundary!r}, zero_mean={self.zero_mean})"
        )
