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

Width (µP for Adam, Yang et al., "Tensor Programs V", arXiv 2203.03466, Table 3; microsoft/mup's
``MuAdam`` and ``MuReadout``). Relative to the proxy's *base shapes* (``base_shapes``: each
parameter's channel shape in the proxy, :mod:`transfer_tune.core.base_shapes`), with
``r = fan_in / base fan_in``:

=====================================================  ====================  =================
tensor (how its channels grow)                         init std              Adam learning rate
=====================================================  ====================  =================
hidden: fan-in and fan-out grow (pointwise W, R)       SP's (1/sqrt(fan_in))  x 1/r
output: fan-in grows, fan-out fixed (readout)          SP's x r^(-1/2)        x 1/r
input: fan-in fixed (lifting), biases, vectors         unchanged              unchanged
=====================================================  ====================  =================

R's K factor multiplies its width factor. The readout is scaled by its init and rate, not by
an output multiplier: mup's ``MuReadout`` computes ``W (x / r)`` with ``W`` drawn at SP's std
x sqrt(r) and trained at the base rate; the tensor ``W / r`` it effectively applies has std
SP x r^(-1/2), and Adam (invariant to the gradient's scale, up to its eps) moves it by
lr / r per step: the same function and the same trajectory (``tests/test_width.py`` checks
both against a hand-built ``MuReadout``). Worked example: a proxy of width 16 and a target of
width 64 (r = 4), projection width 128 fixed: a pointwise W of the target keeps std 1/8 and
trains at lr / 4; the first projection layer (128 x 64) gets std (1/8) / 2 = 1/16 and lr / 4;
the lifting and every bias are unchanged; R at K 4 -> 16 (d = 1) trains at
lr x sqrt(ln 4 / ln 16) / 4 = lr x 0.177. Without ``base_shapes`` (or at the base width) every
width factor is 1. SP has none.

Transfer rules as one exponent. µP's factor on R is ``(ln K_base / ln K)^alpha`` with
``alpha = 1/2`` (d cancels in the ratio); SP's is the same with ``alpha = 0``
(:data:`RULE_EXPONENTS`). A *calibrated* rule (:class:`Calibrated`, kind ``"calibrated"``)
uses an exponent measured on the user's problem (``transfer-tune calibrate``,
:mod:`transfer_tune.analysis.calibrate`) for R's learning rate, and its own (by default µP's
1/2) for R's init std: :func:`rule_multiplier` is that formula, for any exponent. ``"mup"``
and ``"sp"`` keep their own code path (µP bit for bit as before).

Weight decay. Adam's ``weight_decay`` is an L2 penalty added to the gradient: it is part of
the loss, so every group keeps the tuned value. With *decoupled* weight decay (AdamW: each
step multiplies a tensor by ``1 - lr_g * wd_g``) the decay per step is ``lr_g * wd_g``, and µP
scales ``lr_g``; the rule here (as mup's ``MuAdamW``) is ``wd_g = wd / lr_multiplier_g``, so
``lr_g * wd_g = eta * wd`` for every group and every K: the tuned ``wd`` shrinks every tensor
of the target by the same fraction per step as it did on the proxy (and at ``K = K_base`` the
proxy trains with exactly the tuned ``wd``). Only the update, not the decay, follows µP.

The table is plain data (:meth:`Parametrization.table`); the model initialiser, the
optimizer's parameter groups, the transfer plan and the documentation all read it. Which
parameter is a spectral weight is read by name (:func:`transfer_tune.core.adapters.model_roles`):
transfer-tune's FNO and neuraloperator's ``FNO`` are known; for any other module name the
spectral weights (``roles=``) and give ``modes=K`` and ``dim=d``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import nn

from transfer_tune.core.adapters import ROLES, ModelRoles, model_roles
from transfer_tune.core.base_shapes import WidthRatio, width_ratios
from transfer_tune.core.base_shapes import base_shapes as read_base_shapes
from transfer_tune.errors import TransferTuneError

KINDS = ("sp", "mup")
#: Transfer rules a plan can use: the two kinds, and the exponent measured on the problem.
RULES = ("mup", "sp", "calibrated")
#: The exponent alpha of R's multiplier ``(ln K_base / ln K)^alpha`` of each fixed rule.
RULE_EXPONENTS = {"mup": 0.5, "sp": 0.0}
#: How each kind is named in figures, notes and tables.
DISPLAY_NAMES = {"mup": "µP", "sp": "SP", "calibrated": "calibrated"}
#: Roles whose scaling depends on K (the spectral weights R); every other role is unchanged.
SCALED_ROLES = frozenset({"spectral"})


def _mode_scale(modes: int, dim: int) -> float:
    """``c(K) = 1 / sqrt(d ln K)``, the µP multiplier of R before normalisation by K_base."""
    return 1.0 / math.sqrt(dim * math.log(modes))


def _check_modes(modes: int) -> None:
    if isinstance(modes, bool) or not isinstance(modes, int) or modes < 2:
        raise TransferTuneError(f"modes (K) must be an integer >= 2, got {modes!r}")


def rule_multiplier(modes: int, base_modes: int, alpha: float) -> float:
    """``(ln K_base / ln K)^alpha``: R's factor under a rule with exponent ``alpha``.

    µP is ``alpha = 1/2`` (``c(K) / c(K_base)``; d cancels), SP ``alpha = 0``; 1 at K_base.
    """
    _check_modes(modes)
    _check_modes(base_modes)
    if modes == base_modes or alpha == 0:
        return 1.0
    return (math.log(base_modes) / math.log(modes)) ** alpha


def _check_exponent(name: str, value: object) -> None:
    if not (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= 10
    ):
        raise TransferTuneError(f"{name} must be a finite number in [-10, 10], got {value!r}")


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
    init_std: float | None  # None: the model's own initialisation is kept (times init_multiplier)
    lr_multiplier: float
    init_multiplier: float = 1.0
    width: str = "fixed"  # how its channels grow from the base shapes (base_shapes.WIDTH_CLASSES)


def width_scale(kind: str, ratio: WidthRatio) -> RoleScale:
    """µP's width factors (init std, Adam rate) of one tensor; 1 under SP (see the docstring)."""
    if kind == "sp" or ratio.kind in ("input", "fixed"):
        return RoleScale(1.0, 1.0)
    if ratio.kind == "hidden":
        return RoleScale(1.0, 1.0 / ratio.fan_in)
    return RoleScale(ratio.fan_in**-0.5, 1.0 / ratio.fan_in)  # output: µP's readout


def _check_base_shapes(value: object) -> dict[str, list[int]] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str)
        and isinstance(v, (list, tuple))
        and v
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in v)
        for k, v in value.items()
    ):
        raise TransferTuneError(
            "base_shapes must map parameter names to channel shapes (lists of positive "
            "integers); build them from the proxy: get_parametrization(..., base_shapes=proxy)"
        )
    return {k: [int(n) for n in v] for k, v in value.items()}


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
        each get ``sigma / sqrt(2)``). ``None`` means ``sqrt(2 / (m_in + m_out))``, which is
        also neuraloperator's SpectralConv default (its SP: independent of K).
    base_shapes : dict or None
        The proxy's channel shape of every parameter (:func:`transfer_tune.core.base_shapes.
        base_shapes`; ``get_parametrization`` also takes the proxy module itself): the base of
        µP's width rule. ``None``: no width axis (every width factor 1).

    Every method that takes a model also takes ``roles``, ``modes`` and ``dim``: ``None`` for
    transfer-tune's FNO and neuraloperator's ``FNO`` (read by name), otherwise the spectral
    weights of your module named as :func:`transfer_tune.core.adapters.model_roles` says.
    """

    kind: str
    base_modes: int
    spectral_std: float | None = None
    base_shapes: dict[str, list[int]] | None = None
    #: The kinds this class accepts (a subclass with other fields accepts its own).
    _kinds: ClassVar[tuple[str, ...]] = KINDS

    def __post_init__(self) -> None:
        if self.kind not in self._kinds:
            raise TransferTuneError(
                f"unknown parametrization {self.kind!r}; choose one of {', '.join(self._kinds)}"
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
        object.__setattr__(self, "base_shapes", _check_base_shapes(self.base_shapes))

    # -- the rule -------------------------------------------------------------------------
    def spectral_multiplier(self, modes: int, dim: int) -> float:
        """``c(K) / c(K_base)`` under µP, 1 under SP: the factor on R's init std and rate."""
        _check_modes(modes)
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
    def base_std(
        self, role: str, param: torch.Tensor, fans: tuple[int, int] | None = None
    ) -> float:
        """Base (SP) init std of a parameter of ``role``; biases start at zero.

        A spectral weight gets ``spectral_std``, else ``sqrt(2 / (m_in + m_out))`` with
        ``fans = (m_in, m_out)`` of its layer; the other roles are those of transfer-tune's
        FNO, whose pointwise weights are stored ``(out, in)`` (std ``1 / sqrt(in)``).
        """
        if role == "bias":
            return 0.0
        if role == "spectral":
            if self.spectral_std is not None:
                return self.spectral_std
            if fans is None:
                raise TransferTuneError(
                    "cannot tell the channels of a spectral weight (its module has no "
                    "in_channels / out_channels): give get_parametrization(..., spectral_std=...)"
                )
            return math.sqrt(2.0 / (fans[0] + fans[1]))
        return 1.0 / math.sqrt(param.shape[-1])

    def roles(
        self,
        model: nn.Module,
        roles: ModelRoles | dict | Callable[[str], bool] | None = None,
        *,
        modes: int | None = None,
        dim: int | None = None,
    ) -> ModelRoles:
        """The role of every parameter of ``model``, its K and d (see ``model_roles``)."""
        return model_roles(model, roles, modes=modes, dim=dim)

    def width_ratios(self, model: nn.Module, spec: ModelRoles) -> dict[str, WidthRatio] | None:
        """How each parameter of ``model`` grows from :attr:`base_shapes` (``None``: no base)."""
        if self.base_shapes is None:
            return None
        return width_ratios(model, spec, self.base_shapes)

    def parameter_scales(
        self, model: nn.Module, spec: ModelRoles
    ) -> dict[str, tuple[RoleScale, str]]:
        """``name -> (multipliers, width class)``: the K factor of its role times µP's width
        factor (:func:`width_scale`) of its shape against :attr:`base_shapes`."""
        scales = self.role_scales(spec.modes, spec.dim)
        ratios = self.width_ratios(model, spec)
        out = {}
        for name, _ in model.named_parameters():
            k = scales[spec.roles[name]]
            if ratios is None:
                out[name] = (k, "fixed")
                continue
            w = width_scale(self.kind, ratios[name])
            out[name] = (RoleScale(k.init * w.init, k.lr * w.lr), ratios[name].kind)
        return out

    def table(self, model: nn.Module, roles=None, *, modes=None, dim=None) -> list[TableRow]:
        """Per-parameter init std and learning-rate multiplier for ``model``.

        ``init_std`` is ``None`` for a parameter whose own initialisation is kept (every
        unscaled parameter of a model other than transfer-tune's FNO); such a parameter is
        multiplied by ``init_multiplier`` (µP's readout factor, else 1) by :meth:`initialize`.
        """
        spec = self.roles(model, roles, modes=modes, dim=dim)
        scales = self.parameter_scales(model, spec)
        rows = []
        for name, param in model.named_parameters():
            role = spec.roles[name]
            scale, width = scales[name]
            if spec.draw_all or role in SCALED_ROLES:
                std = self.base_std(role, param, spec.fans.get(name)) * scale.init
            else:
                std = None
            rows.append(
                TableRow(
                    name=name,
                    role=role,
                    shape=tuple(param.shape),
                    init_std=std,
                    lr_multiplier=scale.lr,
                    init_multiplier=scale.init,
                    width=width,
                )
            )
        return rows

    @torch.no_grad()
    def initialize(
        self,
        model: nn.Module,
        generator: torch.Generator | None = None,
        *,
        roles=None,
        modes: int | None = None,
        dim: int | None = None,
    ) -> nn.Module:
        """Draw the parameters of ``model`` from N(0, init_std^2) of the table (in place).

        transfer-tune's FNO: every parameter is drawn. Any other model (neuraloperator's FNO,
        your module): the spectral weights are drawn at ``sigma_R * c(K) / c(K_base)`` (times
        µP's width factor) and every other parameter keeps the model's own initialisation,
        multiplied by its init multiplier (1, or µP's readout factor, as mup's ``MuReadout``
        rescales its own).
        Complex parameters get ``init_std / sqrt(2)`` on their real and imaginary parts, so
        ``E|z|^2 = init_std^2``. Parameters are drawn in ``named_parameters`` order from one
        generator, so the same seed gives the same model, and µP at ``K = K_base`` gives
        exactly the SP model.
        """
        params = dict(model.named_parameters())
        for row in self.table(model, roles, modes=modes, dim=dim):
            param = params[row.name]
            if param.is_meta:  # a model built on the meta device to read shapes: nothing to draw
                continue
            if row.init_std is None:
                if row.init_multiplier != 1.0:
                    param.mul_(row.init_multiplier)
                continue
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

    @staticmethod
    def group_weight_decay(weight_decay: float, lr_multiplier: float, decoupled: bool) -> float:
        """A group's weight decay: ``wd`` (L2, Adam) or ``wd / lr_multiplier`` (decoupled).

        With decoupled decay (AdamW) the decay per step is ``lr_g * wd_g = eta * wd``, the same
        for every group and every K (see the module docstring).
        """
        return weight_decay / lr_multiplier if decoupled else weight_decay

    def param_groups(
        self,
        model: nn.Module,
        lr: float,
        betas: tuple[float, float] | None = None,
        weight_decay: float = 0.0,
        *,
        decoupled_weight_decay: bool = False,
        roles=None,
        modes: int | None = None,
        dim: int | None = None,
    ) -> list[dict]:
        """Adam / AdamW parameter groups, one per role, width class and multiplier.

        Every group carries ``lr_multiplier``, ``role`` and ``width`` (how its tensors grow
        from the base shapes; one role can hold several, e.g. the projection's readout);
        schedules must scale each group's own rate (``torch.optim.lr_scheduler.LambdaLR``
        does), never set one absolute rate.
        ``decoupled_weight_decay=True`` (for ``torch.optim.AdamW``) gives each group
        ``weight_decay / lr_multiplier`` (:meth:`group_weight_decay`); otherwise every group
        has ``weight_decay`` (Adam's L2 penalty).
        """
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise TransferTuneError(f"learning rate must be a finite number > 0, got {lr!r}")
        spec = self.roles(model, roles, modes=modes, dim=dim)
        scales = self.parameter_scales(model, spec)
        by_key: dict[tuple[str, str, float], list[nn.Parameter]] = {}
        for name, param in model.named_parameters():
            scale, width = scales[name]
            by_key.setdefault((spec.roles[name], width, scale.lr), []).append(param)
        groups = []
        for (role, width, multiplier), params in by_key.items():
            group = {
                "params": params,
                "lr": lr * multiplier,
                "lr_multiplier": multiplier,
                "role": role,
                "width": width,
                "weight_decay": self.group_weight_decay(
                    weight_decay, multiplier, decoupled_weight_decay
                ),
            }
            if betas is not None:
                group["betas"] = tuple(betas)
            groups.append(group)
        return groups

    def learning_rates(self, modes: int, dim: int, lr: float) -> dict[str, float]:
        """Learning rate of every role for a model with ``modes`` and ``dim`` at base rate lr."""
        return {role: lr * s.lr for role, s in self.role_scales(modes, dim).items()}

    def to_dict(self) -> dict:
        """Plain data (saved with checkpoints and in study user attributes).

        ``base_shapes`` is left out when there is none, so a K-only rule reads as before.
        """
        data = asdict(self)
        if data["base_shapes"] is None:
            del data["base_shapes"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Parametrization:
        """Inverse of :meth:`to_dict` (any kind, :class:`Calibrated` included)."""
        return get_parametrization(**data)


@dataclass(frozen=True)
class Calibrated(Parametrization):
    """A rule with measured exponents: R's multipliers are ``(ln K_base / ln K)^alpha``.

    Parameters
    ----------
    kind : "calibrated"
    base_modes, spectral_std
        As :class:`Parametrization`.
    lr_exponent : float
        alpha of R's Adam rate, fitted by :func:`transfer_tune.calibrate`
        (µP's is 1/2, SP's 0).
    init_exponent : float
        alpha of R's init std; µP's 1/2 unless measured.
    """

    lr_exponent: float = RULE_EXPONENTS["mup"]
    init_exponent: float = RULE_EXPONENTS["mup"]
    _kinds: ClassVar[tuple[str, ...]] = ("calibrated",)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_exponent("lr_exponent", self.lr_exponent)
        _check_exponent("init_exponent", self.init_exponent)

    def spectral_multiplier(self, modes: int, dim: int) -> float:
        """R's learning-rate factor ``(ln K_base / ln K)^lr_exponent`` (d cancels)."""
        return rule_multiplier(modes, self.base_modes, self.lr_exponent)

    def role_scales(self, modes: int, dim: int) -> dict[str, RoleScale]:
        """The table: R's init and lr factors from their exponents, every other role x1."""
        init = rule_multiplier(modes, self.base_modes, self.init_exponent)
        lr = rule_multiplier(modes, self.base_modes, self.lr_exponent)
        return {
            role: RoleScale(init, lr) if role in SCALED_ROLES else RoleScale(1.0, 1.0)
            for role in ROLES
        }


def get_parametrization(
    kind: str,
    base_modes: int,
    spectral_std: float | None = None,
    *,
    base_shapes: nn.Module | dict | None = None,
    lr_exponent: float | None = None,
    init_exponent: float | None = None,
) -> Parametrization:
    """Return the ``"sp"``, ``"mup"`` or ``"calibrated"`` rule relative to ``base_modes``.

    ``base_shapes`` is the base of µP's width rule: the proxy module itself (its shapes are
    read, as mup's ``set_base_shapes`` does), or the plain data
    :func:`transfer_tune.core.base_shapes.base_shapes` returns; ``None`` for no width axis.
    ``"calibrated"`` needs ``lr_exponent`` (the fitted alpha of R's rate);
    ``init_exponent`` defaults to µP's 1/2; its width rule is µP's. The fixed kinds take no
    exponent.

    Examples
    --------
    >>> mup = get_parametrization("mup", base_modes=4)
    >>> round(mup.spectral_multiplier(64, dim=1) ** 2, 12)  # ln 4 / ln 64
    0.333333333333
    >>> from transfer_tune.core.model import FNO
    >>> proxy = FNO(dim=1, modes=4, width=16)
    >>> wide = get_parametrization("mup", base_modes=4, base_shapes=proxy)
    >>> groups = wide.param_groups(FNO(dim=1, modes=16, width=64), lr=1.0)
    >>> rates = {(g["role"], g["width"]): round(g["lr"], 4) for g in groups}
    >>> rates  # doctest: +NORMALIZE_WHITESPACE
    {('lifting', 'input'): 1.0, ('bias', 'input'): 1.0, ('spectral', 'hidden'): 0.1768,
     ('pointwise', 'hidden'): 0.25, ('projection', 'output'): 0.25,
     ('bias', 'fixed'): 1.0, ('projection', 'fixed'): 1.0}
    """
    if isinstance(base_shapes, nn.Module):
        base_shapes = read_base_shapes(base_shapes)
    if not isinstance(kind, str):
        raise TransferTuneError(f"parametrization kind must be a string, got {kind!r}")
    kind = kind.lower()
    if kind == "calibrated":
        if lr_exponent is None:
            raise TransferTuneError(
                "a calibrated rule needs lr_exponent (the fitted alpha); run "
                "`transfer-tune calibrate STUDY` to measure it"
            )
        init = RULE_EXPONENTS["mup"] if init_exponent is None else init_exponent
        return Calibrated(
            kind,
            base_modes,
            spectral_std,
            base_shapes,
            lr_exponent=lr_exponent,
            init_exponent=init,
        )
    if lr_exponent is not None or init_exponent is not None:
        raise TransferTuneError(
            f"the {kind!r} rule has a fixed exponent; exponents are for kind='calibrated'"
        )
    return Parametrization(
        kind=kind, base_modes=base_modes, spectral_std=spectral_std, base_shapes=base_shapes
    )


def display_name(kind: str) -> str:
    """``"µP"`` for ``"mup"``, ``"SP"`` for ``"sp"``; any other string unchanged."""
    return DISPLAY_NAMES.get(kind, kind)
