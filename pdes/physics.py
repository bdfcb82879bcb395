"""A problem's PDE residual as a training loss: :class:`Physics`, in the units a model sees.

A solver module that defines the equation also defines its residual loss,
``physics_loss(x, y, **params) -> (N,)``: a dimensionless per-sample loss of a predicted
solution ``y`` for inputs ``x``, both in physical units, that is zero for the exact (discrete)
solution (:func:`pdes.darcy.physics_loss`, :func:`pdes.burgers_time.physics_loss`). A model
trains on normalised tensors, so :class:`Physics` decodes both before it calls the
equation's loss: ``Physics(x_encoded, prediction_encoded)``. Physics-informed training
(PINO, Li et al. 2021) adds it to the data loss (:func:`transfer_tune.core.train.fit`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from pdes.errors import TransferTuneError
from pdes.normalize import GaussianNormalizer

__all__ = ["Physics", "PhysicsLossFn"]

#: ``physics_loss(x, y, **params) -> (N,)`` in physical units (see the module docstring).
PhysicsLossFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Physics:
    """The PDE residual loss of one problem, applied to normalised tensors.

    Parameters
    ----------
    problem : str
        The problem's name (for messages).
    loss : callable
        The equation's ``physics_loss(x, y, **params)`` in physical units.
    params : mapping
        The problem's solver parameters (viscosity, source, final time, ...).
    x_normalizer, y_normalizer : GaussianNormalizer
        The encodings the model's inputs and outputs are in.
    """

    problem: str
    loss: PhysicsLossFn = field(repr=False)
    params: Mapping[str, Any] = field(repr=False)
    x_normalizer: GaussianNormalizer = field(repr=False)
    y_normalizer: GaussianNormalizer = field(repr=False)

    def __call__(self, x: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        """Per-sample residual loss ``(N,)`` of ``prediction`` (normalised) for inputs ``x``.

        ``x`` and ``prediction`` share their grid, which may be finer than the training
        grid (the equation's loss reads the spacing from the shape).
        """
        if x.shape[0] != prediction.shape[0] or x.shape[2:] != prediction.shape[2:]:
            raise TransferTuneError(
                f"{self.problem} residual: inputs {tuple(x.shape)} and prediction "
                f"{tuple(prediction.shape)} must share the batch and the grid"
            )
        x_phys = self.x_normalizer.decode(x)
        y_phys = self.y_normalizer.decode(prediction)
        return self.loss(x_phys, y_phys, **self.params)


def no_physics_message(problem: str) -> str:
    """Why ``loss="pino"`` cannot train on ``problem``, and what can."""
    return (
        f"problem {problem!r} defines no PDE residual, so loss='pino' cannot train on it; "
        "physics-informed training works with 'darcy' and 'burgers_time' (Burgers in "
        "space-time), or a registered problem whose solver module defines physics_loss"
    )
