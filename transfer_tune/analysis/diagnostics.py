"""Spectral-norm diagnostic of the µP rule: how large are R and its updates, per layer?

µTransfer-FNO derives its rule from the spectral norm of the spectral weight R, the largest
singular value over all kept modes of the per-mode matrix ``R[k]`` (m_in x m_out). Under SP it
grows like ``sqrt(ln K)`` (the maximum of ``K^d`` sub-Gaussian variables); under µP it stays
flat. The growth is clean when the maximum over modes dominates (width 1); at realistic widths
the random-matrix bulk dominates and SP's growth is only a few percent.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from transfer_tune.core.hparams import HParams
from transfer_tune.core.model import FNO
from transfer_tune.core.parametrization import Parametrization, get_parametrization
from transfer_tune.core.train import clip_gradients, relative_l2
from transfer_tune.errors import TransferTuneError

__all__ = ["max_mode_norm", "spectral_norm_check", "spectral_norms", "update_spectral_norms"]


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


def spectral_norm_check(
    modes: Sequence[int] = (4, 8, 16, 32, 64, 128, 256),
    widths: Sequence[int] = (1, 32),
    dim: int = 1,
    base_modes: int | None = None,
    seeds: Iterable[int] = range(8),
) -> list[dict[str, Any]]:
    """Spectral norm of R at initialisation for every (width, parametrization, K).

    The norm is the largest singular value over modes of the spectral weight
    (:func:`spectral_norms`) of a one-layer FNO, averaged over ``seeds``; ``ratio`` divides it
    by its value at K_base (default: the smallest K). Under SP the ratio grows like
    ``sqrt(ln K / ln K_base)`` when the maximum over modes dominates (width 1); under µP it
    stays near 1. :func:`transfer_tune.report.spectral_norm_figure` draws the records.

    Returns
    -------
    list of dict
        ``{"width", "parametrization", "modes", "norm", "std", "ratio", "sqrt_log_ratio"}``.
    """
    modes = sorted(int(k) for k in modes)
    base = min(modes) if base_modes is None else int(base_modes)
    seeds = list(seeds)
    if not seeds:
        raise TransferTuneError("spectral_norm_check needs at least one seed")
    records: list[dict[str, Any]] = []
    mup = get_parametrization("mup", base_modes=base)
    for width in widths:
        for kind in ("mup", "sp"):
            par = get_parametrization(kind, base_modes=base)
            norms = {}
            for k in sorted(set(modes) | {base}):
                values = []
                for seed in seeds:
                    model = FNO(dim=dim, modes=k, width=width, n_layers=1, projection_width=1)
                    par.initialize(model, generator=torch.Generator().manual_seed(seed))
                    values.append(spectral_norms(model)[0])
                norms[k] = (float(np.mean(values)), float(np.std(values)))
            for k in modes:
                records.append(
                    {
                        "width": int(width),
                        "parametrization": kind,
                        "modes": k,
                        "norm": norms[k][0],
                        "std": norms[k][1],
                        "ratio": norms[k][0] / norms[base][0],
                        "sqrt_log_ratio": 1.0 / mup.spectral_multiplier(k, dim),
                    }
                )
    return records
