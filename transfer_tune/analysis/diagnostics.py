"""Spectral-norm diagnostic of the µP rule: how large are R and its updates, per layer?

µTransfer-FNO derives its rule from the spectral norm of the spectral weight R, the largest
singular value over all kept modes of the per-mode matrix ``R[k]`` (m_in x m_out). Under SP it
grows like ``sqrt(ln K)`` (the maximum of ``K^d`` sub-Gaussian variables); under µP it stays
flat. The growth is clean when the maximum over modes dominates (width 1); at realistic widths
the random-matrix bulk dominates and SP's growth is only a few percent.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from transfer_tune.core.parametrization import Parametrization
from transfer_tune.core.train import HParams, clip_gradients, relative_l2


def max_mode_norm(weight: torch.Tensor) -> float:
    """Largest singular value over modes of a ``(n_modes, m_in, m_out)`` spectral weight."""
    return float(torch.linalg.matrix_norm(weight.detach(), ord=2).max())


def spectral_norms(model: nn.Module) -> list[float]:
    """Per Fourier layer, the largest singular value over modes of its spectral weight R."""
    return [max_mode_norm(layer.weight) for layer in model.spectral_layers()]


def update_spectral_norms(
    model: nn.Module,
    parametrization: Parametrization,
    x: torch.Tensor,
    y: torch.Tensor,
    hparams: HParams,
    steps: int = 3,
) -> list[float]:
    """Per layer, the largest singular value over modes of ΔR after ``steps`` Adam steps.

    The steps run on a copy of ``model`` with one fixed batch ``(x, y)``, the learning rates of
    ``parametrization`` and the clipping of ``hparams``; ``model`` itself is not changed.
    """
    work = copy.deepcopy(model)
    before = [layer.weight.detach().clone() for layer in work.spectral_layers()]
    optimizer = torch.optim.Adam(
        parametrization.param_groups(work, hparams.lr, betas=hparams.betas)
    )
    for _ in range(steps):
        loss = relative_l2(work(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(work.parameters(), hparams.clip, hparams.clip_value)
        optimizer.step()
    return [
        max_mode_norm(layer.weight - w0)
        for layer, w0 in zip(work.spectral_layers(), before, strict=True)
    ]
