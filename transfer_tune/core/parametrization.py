"""SP and µP (µTransfer-FNO) parametrizations: the one place where the scaling rule lives.

The rule of Li, Yoo & Yang, "µTransfer-FNO" (ICML 2025, arXiv 2506.19396, Algorithm 1), with
``c(K) = 1 / sqrt(d * ln K)``:

============================================  =============================  =====================
tensor                                        init std                       Adam learning rate
============================================  =============================  =====================
spectral weight R of every Fourier layer      sigma_R * c(K) / c(K_base)     eta * c(K) / c(K_base)
lifting P, pointwise W, biases, projection Q  unchanged                      eta
============================================  =============================  =====================

Under SP every multiplier is 1. At ``K = K_base`` the two are the same model bit for bit, so
the learning rate tuned on a proxy with ``K = K_base`` is the rate the proxy trained with.
Batch size and Adam betas transfer unchanged.

The table is plain data (:meth:`Parametrization.table`); the model initialiser, the
optimizer's parameter groups, the transfer plan and the documentation all read it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from transfer_tune.core.model import ROLES
from transfer_tune.errors import TransferTuneError

KINDS = ("sp", "mup")
#: How each kind is named in figures, notes and tables.
DISPLAY_NAMES = {"mup": "µP", "sp": "SP"}
#: Roles whose scaling depends on K (the spectral weights R); every other role is unchanged.
SCALED_ROLES = frozenset({"spectral"})


def _mode_scale(modes: int, dim: int) -> float:
    """``c(K) = 1 / sqrt(d ln K)``, the µP multiplier of R before normalisation by K_base."""
    return 1.0 / math.sqrt(dim * math.log(modes))


@dataclass(frozen=True)
class RoleScale:
    """Multipliers of one parameter role: of its base init std and of the base learning rate."""

    init: float
    lr: float


@dataclass(frozen=True)
class TableRow:
    """One parameter of a model under a parametrization."""

    name: str
    role: str
    shape: tuple[int, ...]
    init_std: float
    lr_multiplier: float


@dataclass(frozen=True)
class Parametrization:
    """A parametrization (``"sp"`` or ``"mup"``) relative to ``base_modes`` (K_base).

    Parameters
    ----------
    kind : {"sp", "mup"}
        Standard or maximal-update parametrization.
    base_modes : int
        K_base, the number of modes at which µP and SP coincide (the proxy's K).
    spectral_std : float or None
        sigma_R, the base init std of the complex spectral weights (real and imaginary parts
        each get ``sigma / sqrt(2)``). ``None`` means ``sqrt(2 / (m_in + m_out))``.
    """

    kind: str
    base_modes: int
    spectral_std: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TransferTuneError(
                f"unknown parametrization {self.kind!r}; choose one of {', '.join(KINDS)}"
            )
        if (
            isinstance(self.base_modes, bool)
            or not isinstance(self.base_modes, int)
            or self.base_modes < 2
        ):
            raise TransferTuneError(
                f"base_modes (K_base) must be an integer >= 2, got {self.base_modes!r} "
                "(the µP rule divides by ln K)"
            )
        std = self.spectral_std
        if std is not None and not (
            isinstance(std, (int, float))
            and not isinstance(std, bool)
            and math.isfinite(std)
            and std > 0
        ):
            raise TransferTuneError(f"spectral_std must be a finite number > 0, got {std!r}")

    # -- the rule -------------------------------------------------------------------------
    def spectral_multiplier(self, modes: int, dim: int) -> float:
        """``c(K) / c(K_base)`` under µP, 1 under SP: the factor on R's init std and rate."""
        if isinstance(modes, bool) or not isinstance(modes, int) or modes < 2:
            raise TransferTuneError(f"modes (K) must be an integer >= 2, got {modes!r}")
        if self.kind == "sp" or modes == self.base_modes:
            return 1.0
        return _mode_scale(modes, dim) / _mode_scale(self.base_modes, dim)

    def role_scales(self, modes: int, dim: int) -> dict[str, RoleScale]:
        """The table for a model with ``modes`` and ``dim``: role -> (init, lr) multipliers."""
        scaled = self.spectral_multiplier(modes, dim)
        return {
            role: RoleScale(scaled, scaled) if role in SCALED_ROLES else RoleScale(1.0, 1.0)
            for role in ROLES
        }

    # -- applying it to a model -------------------------------------------------------------
    def _roles(self, model: nn.Module) -> dict[str, str]:
        if not hasattr(model, "param_roles"):
            raise TransferTuneError(
                f"{type(model).__name__} does not declare parameter roles (param_roles()); "
                "use transfer_tune.core.model.FNO"
            )
        roles = model.param_roles()
        names = [name for name, _ in model.named_parameters()]
        missing = [n for n in names if n not in roles]
        if missing:
            raise TransferTuneError(f"parameters without a role: {missing}")
        return roles

    def base_std(self, role: str, param: torch.Tensor) -> float:
        """Base (SP) init std of a parameter of ``role``; biases start at zero."""
        if role == "bias":
            return 0.0
        if role == "spectral":
            if self.spectral_std is not None:
                return self.spectral_std
            fan_in, fan_out = param.shape[-2], param.shape[-1]
            return math.sqrt(2.0 / (fan_in + fan_out))
        return 1.0 / math.sqrt(param.shape[-1])  # pointwise weights are (out, in)

    def table(self, model: nn.Module) -> list[TableRow]:
        """Per-parameter init std and learning-rate multiplier for ``model``."""
        roles = self._roles(model)
        scales = self.role_scales(model.modes, model.dim)
        rows = []
        for name, param in model.named_parameters():
            role = roles[name]
            scale = scales[role]
            rows.append(
                TableRow(
                    name=name,
                    role=role,
                    shape=tuple(param.shape),
                    init_std=self.base_std(role, param) * scale.init,
                    lr_multiplier=scale.lr,
                )
            )
        return rows

    @torch.no_grad()
    def initialize(self, model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
        """Draw every parameter of ``model`` from N(0, init_std^2) of the table (in place).

        Complex parameters get ``init_std / sqrt(2)`` on their real and imaginary parts, so
        ``E|z|^2 = init_std^2``. Parameters are drawn in ``named_parameters`` order from one
        generator, so the same seed gives the same model, and µP at ``K = K_base`` gives
        exactly the SP model.
        """
        params = dict(model.named_parameters())
        for row in self.table(model):
            param = params[row.name]
            if row.init_std == 0.0:
                param.zero_()
                continue
            if param.is_complex():
                real = torch.view_as_real(param)
                noise = torch.randn(real.shape, generator=generator, dtype=real.dtype)
                real.copy_(noise * (row.init_std / math.sqrt(2.0)))
            else:
                noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
                param.copy_(noise * row.init_std)
        return model

    def param_groups(
        self,
        model: nn.Module,
        lr: float,
        betas: tuple[float, float] | None = None,
        weight_decay: float = 0.0,
    ) -> list[dict]:
        """Adam parameter groups, one per role, each with its own learning rate.

        Every group carries ``lr_multiplier`` and ``role``; schedules must scale each group's
        own rate (``torch.optim.lr_scheduler.LambdaLR`` does), never set one absolute rate.
        """
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise TransferTuneError(f"learning rate must be a finite number > 0, got {lr!r}")
        roles = self._roles(model)
        scales = self.role_scales(model.modes, model.dim)
        by_role: dict[str, list[nn.Parameter]] = {}
        for name, param in model.named_parameters():
            by_role.setdefault(roles[name], []).append(param)
        groups = []
        for role, params in by_role.items():
            group = {
                "params": params,
                "lr": lr * scales[role].lr,
                "lr_multiplier": scales[role].lr,
                "role": role,
                "weight_decay": weight_decay,
            }
            if betas is not None:
                group["betas"] = tuple(betas)
            groups.append(group)
        return groups

    def learning_rates(self, modes: int, dim: int, lr: float) -> dict[str, float]:
        """Learning rate of every role for a model with ``modes`` and ``dim`` at base rate lr."""
        return {role: lr * s.lr for role, s in self.role_scales(modes, dim).items()}

    def to_dict(self) -> dict:
        """Plain data (saved with checkpoints and in study user attributes)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Parametrization:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def get_parametrization(
    kind: str, base_modes: int, spectral_std: float | None = None
) -> Parametrization:
    """Return the ``"sp"`` or ``"mup"`` parametrization relative to ``base_modes`` (K_base).

    Examples
    --------
    >>> mup = get_parametrization("mup", base_modes=4)
    >>> round(mup.spectral_multiplier(64, dim=1) ** 2, 12)  # ln 4 / ln 64
    0.333333333333
    """
    if not isinstance(kind, str):
        raise TransferTuneError(f"parametrization kind must be a string, got {kind!r}")
    return Parametrization(kind=kind.lower(), base_modes=base_modes, spectral_std=spectral_std)


def display_name(kind: str) -> str:
    """``"µP"`` for ``"mup"``, ``"SP"`` for ``"sp"``; any other string unchanged."""
    return DISPLAY_NAMES.get(kind, kind)
