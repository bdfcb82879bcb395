"""Training hyperparameters: one table of checks, the HParams record, the optimizer.

``HPARAM_CHECKS`` is the one home of the rules for each hyperparameter (the search space and
the landscape sweeps call :func:`check_hparam`); :func:`make_optimizer` builds Adam or AdamW
over a parametrization's per-role groups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from pdes.checks import as_float, as_int
from transfer_tune.core.adapters import model_roles
from transfer_tune.core.parametrization import Parametrization, get_parametrization
from transfer_tune.errors import TransferTuneError

SCHEDULES = ("cosine", "step", "none")
#: ``HParams.loss``: the relative L2 data loss, or physics-informed (data + PDE residual).
LOSSES = ("data", "pino")
CLIPS = ("norm", "value")
#: ``HParams.optimizer`` -> (torch optimizer, whether its weight decay is decoupled).
OPTIMIZERS = {"adam": (torch.optim.Adam, False), "adamw": (torch.optim.AdamW, True)}


@dataclass
class HParams:
    """Hyperparameters of one training run (the tuned ones first).

    Parameters
    ----------
    lr : float
        Base Adam learning rate eta (each parameter group multiplies it by its µP factor).
    batch_size : int
        Samples per step.
    beta1, beta2 : float
        Adam betas.
    weight_decay : float
        Adam: L2 penalty added to the gradient, the same in every group. AdamW: decoupled decay;
        each µP group gets ``weight_decay / lr_multiplier`` so the decay per step
        ``lr_g * wd_g = lr * weight_decay`` is the same for every group and every K (the rule
        is :meth:`Parametrization.group_weight_decay`).
    clip : {None, "norm", "value"}
        Gradient clipping: by global norm, or element-wise by value (µTransfer-FNO's analysis
        assumes element-wise clipping, reported at 0.01).
    clip_value : float
        Max global norm (``clip="norm"``) or max absolute entry (``clip="value"``).
    schedule : {"cosine", "step", "none"}
        Learning-rate schedule; it multiplies every group's own rate.
    step_size : int
        Epochs between decays of the ``"step"`` schedule.
    gamma : float
        Decay factor of the ``"step"`` schedule.
    optimizer : {"adam", "adamw"}
        ``torch.optim.Adam`` (L2 weight decay) or ``torch.optim.AdamW`` (decoupled).
    loss : {"data", "pino"}
        ``"data"``: the relative L2 error against the labels. ``"pino"`` (physics-informed,
        Li et al. 2021): ``data_weight * data loss + physics_weight * residual loss``, the
        residual being the problem's own (:attr:`pdes.Problem.physics`; Darcy and Burgers in
        space-time define one). ``data_weight=0`` trains on the equation alone: the training
        labels are never read.
    data_weight, physics_weight : float
        The two weights of ``loss="pino"`` (ignored by ``"data"``). Loss weights are not
        rescaled by µP: a tuned ``physics_weight`` transfers unchanged.
    physics_resolution : int, optional
        ``loss="pino"``: evaluate the residual on this finer grid (the same samples' inputs,
        solved at this resolution; the FNO is resolution-invariant), while the data loss stays
        on the training grid: coarse data, fine physics. ``None``: the training grid.
    """

    lr: float = 1e-3
    batch_size: int = 20
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 0.0
    clip: str | None = None
    clip_value: float = 0.01
    schedule: str = "cosine"
    step_size: int = 50
    gamma: float = 0.5
    optimizer: str = "adam"
    loss: str = "data"
    data_weight: float = 1.0
    physics_weight: float = 1.0
    physics_resolution: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`TransferTuneError` on a value no run can use.

        The rules are :data:`HPARAM_CHECKS` (shared with the search space and the landscape
        sweeps); valid values are stored in their canonical type (``8.0`` -> ``8``).
        """
        for name, check in HPARAM_CHECKS.items():
            setattr(self, name, check(getattr(self, name), name))
        if self.loss == "pino" and self.data_weight == 0 and self.physics_weight == 0:
            raise TransferTuneError(
                "loss='pino' with data_weight=0 and physics_weight=0 has nothing to train on; "
                "give one of them a positive weight"
            )

    @property
    def physics(self) -> bool:
        """Whether training uses the PDE residual (``loss="pino"`` with a positive weight)."""
        return self.loss == "pino" and self.physics_weight > 0

    @property
    def uses_labels(self) -> bool:
        """Whether training reads the training labels (not for physics-only training)."""
        return self.loss == "data" or self.data_weight > 0

    @property
    def betas(self) -> tuple[float, float]:
        """``(beta1, beta2)`` as Adam takes them."""
        return (self.beta1, self.beta2)

    def to_dict(self) -> dict:
        """Plain data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> HParams:
        """Build from a dict, rejecting unknown keys with the list of valid ones."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise TransferTuneError(
                f"unknown hyperparameter(s) {unknown}; valid: {', '.join(sorted(names))}"
            )
        return cls(**data)


def _beta(value: Any, name: str) -> float:
    value = as_float(value, name)
    if not 0.0 <= value < 1.0:
        raise TransferTuneError(f"{name} must be in [0, 1), got {value!r}")
    return value


def _gamma(value: Any, name: str) -> float:
    value = as_float(value, name)
    if not 0.0 < value <= 1.0:
        raise TransferTuneError(f"{name} must be in (0, 1], got {value!r}")
    return value


def _clip(value: Any, name: str) -> str | None:
    if value is not None and value not in CLIPS:
        raise TransferTuneError(f"{name} must be None, 'norm' or 'value', got {value!r}")
    return value


def _schedule(value: Any, name: str) -> str:
    if value not in SCHEDULES:
        raise TransferTuneError(f"{name} must be one of {', '.join(SCHEDULES)}, got {value!r}")
    return value


def _loss(value: Any, name: str) -> str:
    if value not in LOSSES:
        raise TransferTuneError(f"{name} must be one of {', '.join(LOSSES)}, got {value!r}")
    return value


def _resolution(value: Any, name: str) -> int | None:
    return None if value is None else as_int(value, name, minimum=2)


def _optimizer(value: Any, name: str) -> str:
    if value not in OPTIMIZERS:
        raise TransferTuneError(f"{name} must be one of {', '.join(OPTIMIZERS)}, got {value!r}")
    return value


#: The one home of the hyperparameter rules: name -> ``check(value, name)``, which returns the
#: value in its canonical type or raises :class:`TransferTuneError`. :class:`HParams`, the
#: search space and the landscape sweeps all call it (see :func:`check_hparam`).
HPARAM_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "lr": lambda v, name: as_float(v, name, positive=True),
    "batch_size": lambda v, name: as_int(v, name),
    "beta1": _beta,
    "beta2": _beta,
    "weight_decay": lambda v, name: as_float(v, name, minimum=0.0),
    "clip": _clip,
    "clip_value": lambda v, name: as_float(v, name, positive=True),
    "schedule": _schedule,
    "step_size": lambda v, name: as_int(v, name),
    "gamma": _gamma,
    "optimizer": _optimizer,
    "loss": _loss,
    "data_weight": lambda v, name: as_float(v, name, minimum=0.0),
    "physics_weight": lambda v, name: as_float(v, name, minimum=0.0),
    "physics_resolution": _resolution,
}


def check_hparam(name: str, value: Any) -> Any:
    """``value`` of hyperparameter ``name`` in its canonical type, or a clear error."""
    if name not in HPARAM_CHECKS:
        raise TransferTuneError(
            f"unknown hyperparameter {name!r}; valid: {', '.join(sorted(HPARAM_CHECKS))}"
        )
    return HPARAM_CHECKS[name](value, name)


def make_optimizer(
    model: nn.Module,
    hparams: HParams,
    parametrization: Parametrization | None = None,
    roles: Any = None,
) -> torch.optim.Optimizer:
    """``torch.optim.Adam`` or ``AdamW`` (``hparams.optimizer``) over the µP groups of ``model``.

    ``parametrization`` defaults to SP at the model's own K; ``roles`` names the spectral
    weights of a model other than the two FNOs (see ``transfer_tune.core.adapters``).
    """
    spec = model_roles(model, roles)
    if parametrization is None:
        parametrization = get_parametrization("sp", base_modes=spec.modes)
    optimizer, decoupled = OPTIMIZERS[hparams.optimizer]
    return optimizer(
        parametrization.param_groups(
            model,
            hparams.lr,
            betas=hparams.betas,
            weight_decay=hparams.weight_decay,
            decoupled_weight_decay=decoupled,
            roles=spec,
        )
    )
