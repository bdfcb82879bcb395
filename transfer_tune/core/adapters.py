"""Which role each parameter of a model plays, read by name: the contract between models and µP.

The µP rule (:mod:`transfer_tune.core.parametrization`) needs three things from a model: the
role of every parameter (``spectral`` for the spectral weights R, whose init std and learning
rate scale with K; ``lifting``, ``pointwise``, ``projection``, ``bias`` or ``scale`` (a
per-channel multiplier) for everything else, which K leaves unchanged; how width scales each
tensor is read from its shape, :mod:`transfer_tune.core.base_shapes`), the number of modes K
in transfer-tune's convention, and the spatial dimension d. :func:`model_roles` reads them,
by parameter *name*, never from shapes:

* transfer-tune's :class:`~transfer_tune.FNO` names its roles when it is built
  (``param_roles()``), and :meth:`Parametrization.initialize` draws every one of its
  parameters (its constructor draws them as SP at its own K, :meth:`FNO.reset_parameters`);
* neuraloperator 2.0's ``neuralop.models.FNO`` with dense spectral weights is read through a
  fixed map of its parameter names (:data:`NEURALOP_ROLES`); K comes from its ``n_modes``
  (:func:`neuralop_modes`); a factorized (Tucker, CP, TT) model is refused;
* any other ``nn.Module``: you name the spectral weights, with a mapping ``name -> role`` or
  a predicate on parameter names (see :func:`model_roles` for the contract).

For the last two, :meth:`Parametrization.initialize` redraws only the spectral weights (at the
µP std) and keeps the model's own initialisation of every other parameter: "unchanged" in the
µP table means unchanged.

Modes conventions
-----------------
transfer-tune's K keeps frequencies ``0 .. K-1`` along the last axis and ``|k| < K`` (2K - 1
rows) along every other axis. neuraloperator's ``n_modes = M`` keeps ``M // 2 + 1``
frequencies (``0 .. M//2``) along the last axis and ``M`` rows along every other axis,
``-(M//2) .. (M - 1)//2``. The K the rule uses for a neuraloperator model is therefore

    ``K = M // 2 + 1`` (the same on every axis; axes that disagree are refused),

the number of frequencies kept along the last axis, which is also the largest ``|k|`` kept
plus one along the others. For odd M the kept set is exactly transfer-tune's K; for even M
(neuraloperator's usual choice) the other axes lack only the ``+M/2`` row. So
``n_modes=(16, 16)`` is K = 9, and :func:`neuralop_n_modes` builds ``n_modes = 2K - 2`` on
every axis for a given K (even, as neuraloperator recommends, and K <= n // 2 + 1 on an
n-point grid, as for transfer-tune's FNO).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pdes.checks import as_int
from transfer_tune.errors import TransferTuneError

__all__ = [
    "NEURALOP_ROLES",
    "ROLES",
    "ModelRoles",
    "is_neuralop_fno",
    "model_roles",
    "modes_of",
    "neuralop_modes",
    "neuralop_n_modes",
    "tensor_state",
]

#: The roles a parameter can have (what the SP/µP table scales by). ``scale`` is a per-channel
#: multiplier (a norm's weight, neuraloperator's soft gating): a vector, whatever its shape.
ROLES = ("lifting", "spectral", "pointwise", "projection", "bias", "scale")

#: neuraloperator 2.0's ``FNO`` parameter names (full match) -> role, first match wins.
NEURALOP_ROLES: tuple[tuple[str, str], ...] = (
    (r"fno_blocks\.convs\.\d+\.weight\.tensor", "spectral"),
    (r"lifting\.fcs\.\d+\.weight", "lifting"),
    (r"projection\.fcs\.\d+\.weight", "projection"),
    (r"fno_blocks\.channel_mlp\.\d+\.fcs\.\d+\.weight", "pointwise"),
    (r"fno_blocks\.(fno_skips|channel_mlp_skips)\.\d+\.conv\.weight", "pointwise"),
    (r"fno_blocks\.(fno_skips|channel_mlp_skips)\.\d+\.weight", "scale"),  # soft gating
    (r"fno_blocks\.norm\.\d+\.weight", "scale"),
    (
        r"(fno_blocks\.convs\.\d+|lifting\.fcs\.\d+|projection\.fcs\.\d+"
        r"|fno_blocks\.channel_mlp\.\d+\.fcs\.\d+"
        r"|fno_blocks\.(fno_skips|channel_mlp_skips)\.\d+(\.conv)?|fno_blocks\.norm\.\d+)\.bias",
        "bias",
    ),
)

NEURALOP_EXTRA = 'pip install "transfer-tune[neuralop]"'


@dataclass(frozen=True)
class ModelRoles:
    """What the µP rule reads from a model: roles by name, K, d and the spectral fans.

    Attributes
    ----------
    roles : dict
        Every parameter name (as ``named_parameters`` gives it) -> its role.
    modes : int
        K in transfer-tune's convention (see the module docstring).
    dim : int
        Spatial dimension d.
    fans : dict
        Spectral parameter name -> ``(m_in, m_out)`` of the layer that owns it (read from that
        module's ``in_channels`` / ``out_channels``), for the default init std
        ``sqrt(2 / (m_in + m_out))``; absent when the owner does not say.
    draw_all : bool
        ``True``: :meth:`Parametrization.initialize` draws every parameter (transfer-tune's
        FNO); ``False``: it redraws the spectral weights and keeps the model's own init of
        the others.
    source : str
        ``"transfer_tune"``, ``"neuralop"`` or ``"user"``: where the roles came from.
    """

    roles: dict[str, str]
    modes: int
    dim: int
    fans: dict[str, tuple[int, int]]
    draw_all: bool
    source: str

    def check(self, model: nn.Module) -> None:
        """Raise unless these roles name exactly the parameters of ``model``."""
        names = [name for name, _ in model.named_parameters()]
        missing = [n for n in names if n not in self.roles]
        if missing:
            raise TransferTuneError(f"parameters without a role: {missing}")
        extra = sorted(set(self.roles) - set(names))
        if extra:
            raise TransferTuneError(f"roles name parameters the model does not have: {extra}")


def is_neuralop_fno(model: Any) -> bool:
    """Whether ``model`` is neuraloperator's ``FNO`` (without importing neuraloperator)."""
    if not type(model).__module__.startswith("neuralop."):
        return False
    from neuralop.models import FNO as NeuralopFNO

    return isinstance(model, NeuralopFNO)


def neuralop_modes(n_modes: Any) -> int:
    """K (transfer-tune's convention) of neuraloperator's ``n_modes``: ``M // 2 + 1`` per axis.

    Raises
    ------
    TransferTuneError
        When the axes give different K, or K < 2.
    """
    values = [n_modes] if isinstance(n_modes, int) else list(n_modes)
    ks = sorted({int(m) // 2 + 1 for m in values})
    if len(ks) != 1:
        raise TransferTuneError(
            f"neuraloperator n_modes={tuple(values)} keeps K = {ks} (K = M // 2 + 1 per axis): "
            "the µP rule needs one K for every axis; use the same n_modes on every axis"
        )
    if ks[0] < 2:
        raise TransferTuneError(
            f"neuraloperator n_modes={tuple(values)} keeps K = 1 mode; the µP rule divides by "
            "ln K: use n_modes >= 2"
        )
    return ks[0]


def neuralop_n_modes(modes: int, dim: int) -> tuple[int, ...]:
    """neuraloperator's ``n_modes`` for transfer-tune's K: ``(2K - 2,) * d`` (K = M // 2 + 1)."""
    modes = as_int(modes, "modes (K)", minimum=2)
    return (2 * modes - 2,) * as_int(dim, "dim", minimum=1)


def _neuralop_conv_class():
    from neuralop.layers.spectral_convolution import SpectralConv

    return SpectralConv


def _neuralop_roles(model: nn.Module) -> ModelRoles:
    convs = list(model.fno_blocks.convs)
    conv_class = _neuralop_conv_class()
    for i, conv in enumerate(convs):
        if not isinstance(conv, conv_class):
            raise TransferTuneError(
                f"neuraloperator FNO layer {i} uses {type(conv).__name__}, not SpectralConv; "
                "transfer-tune maps the names of neuralop.models.FNO with its default "
                "conv_module only (name the spectral weights yourself: roles=...)"
            )
        factorization = conv.factorization
        if factorization is not None and str(factorization).lower() != "dense":
            raise TransferTuneError(
                f"neuraloperator FNO with factorization={factorization!r}: its spectral weights "
                "are stored as factors, which have no single init std or learning rate for the "
                "µP rule to scale. Build it with factorization=None (dense spectral weights; "
                "TFNO is FNO with factorization='Tucker')"
            )
        if conv.complex_data:
            raise TransferTuneError(
                "neuraloperator FNO with complex_data=True is not supported; use real data"
            )
        if list(conv.max_n_modes) != list(conv.n_modes):
            raise TransferTuneError(
                f"neuraloperator FNO layer {i} keeps n_modes {list(conv.n_modes)} of "
                f"max_n_modes {list(conv.max_n_modes)}: K would change during training, which "
                "the µP rule cannot follow; build it without max_n_modes"
            )
    modes = neuralop_modes(model.n_modes)
    roles: dict[str, str] = {}
    patterns = [(re.compile(p), role) for p, role in NEURALOP_ROLES]
    for name, _ in model.named_parameters():
        role = next((r for p, r in patterns if p.fullmatch(name)), None)
        if role is None:
            raise TransferTuneError(
                f"neuraloperator FNO parameter {name!r} has no role in transfer-tune's map of "
                "neuralop.models.FNO (an option it does not cover, e.g. norm='ada_in'); name "
                "the spectral weights yourself: roles=lambda name: ..."
            )
        roles[name] = role
    fans = {
        f"fno_blocks.convs.{i}.weight.tensor": (conv.in_channels, conv.out_channels)
        for i, conv in enumerate(convs)
    }
    if not any(r == "spectral" for r in roles.values()):
        raise TransferTuneError("this neuraloperator FNO has no spectral weight to scale")
    return ModelRoles(roles, modes, int(model.n_dim), fans, draw_all=False, source="neuralop")


def _owner_fans(model: nn.Module, name: str) -> tuple[int, int] | None:
    """``(in_channels, out_channels)`` of the nearest module owning parameter ``name``."""
    parts = name.split(".")[:-1]
    while True:
        module = model.get_submodule(".".join(parts)) if parts else model
        fan_in = getattr(module, "in_channels", None)
        fan_out = getattr(module, "out_channels", None)
        if isinstance(fan_in, int) and isinstance(fan_out, int):
            return fan_in, fan_out
        if not parts:
            return None
        parts.pop()


def _default_role(name: str) -> str:
    return "bias" if name.rsplit(".", 1)[-1].startswith("bias") else "pointwise"


def _user_roles(
    model: nn.Module, roles: Mapping[str, str] | Callable[[str], bool], modes: Any, dim: Any
) -> ModelRoles:
    names = [name for name, _ in model.named_parameters()]
    if callable(roles) and not isinstance(roles, Mapping):
        named = {n: "spectral" for n in names if roles(n)}
    elif isinstance(roles, Mapping):
        named = dict(roles)
        unknown = sorted(set(named) - set(names))
        if unknown:
            raise TransferTuneError(
                f"roles name parameters the model does not have: {unknown}; its parameters "
                f"are {names}"
            )
        bad = {n: r for n, r in named.items() if r not in ROLES}
        if bad:
            raise TransferTuneError(f"unknown role(s) {bad}; roles are {', '.join(ROLES)}")
    else:
        raise TransferTuneError(
            "roles must be a mapping parameter name -> role or a predicate on parameter "
            f"names (True for the spectral weights), got {roles!r}"
        )
    if "spectral" not in named.values():
        raise TransferTuneError(
            f"no parameter of {type(model).__name__} is named spectral; the µP rule scales the "
            f"spectral weights only (parameters: {names})"
        )
    if modes is None:
        modes = getattr(model, "modes", None)
    if dim is None:
        dim = getattr(model, "dim", None)
    if modes is None or dim is None:
        raise TransferTuneError(
            f"{type(model).__name__} does not say its K and d: pass modes=K (frequencies "
            "0..K-1 kept on the last axis) and dim=d, or give the module `modes` and `dim` "
            "attributes"
        )
    modes = as_int(modes, "modes (K)", minimum=2)
    dim = as_int(dim, "dim", minimum=1)
    full = {n: named.get(n, _default_role(n)) for n in names}
    fans = {n: f for n in names if full[n] == "spectral" and (f := _owner_fans(model, n))}
    return ModelRoles(full, modes, dim, fans, draw_all=False, source="user")


def model_roles(
    model: nn.Module,
    roles: ModelRoles | Mapping[str, str] | Callable[[str], bool] | None = None,
    *,
    modes: int | None = None,
    dim: int | None = None,
) -> ModelRoles:
    """The role of every parameter of ``model``, its K and its d.

    Parameters
    ----------
    model : nn.Module
        transfer-tune's FNO, neuraloperator's ``FNO`` (dense), or any module.
    roles : ModelRoles, mapping, callable or None
        ``None`` for the two FNOs (their roles are known by name) and for a module with a
        ``param_roles()`` method. For any other module, name the spectral weights:

        * a mapping ``parameter name -> role`` (roles: ``spectral``, ``lifting``,
          ``pointwise``, ``projection``, ``bias``), naming at least the spectral weights;
        * or a predicate ``name -> bool``, true for exactly the spectral weights.

        Every parameter left unnamed gets an unscaled role by its name: ``bias`` when its last
        name component starts with ``bias``, else ``pointwise``. The unscaled roles have
        multiplier 1 in every parametrization, so they only label the optimizer groups.
        Spectral weights should be complex tensors (real and imaginary parts are drawn with
        std / sqrt(2)); a real spectral tensor is drawn with the std itself per entry. The
        default init std of a spectral weight is ``sqrt(2 / (m_in + m_out))`` with m_in, m_out
        read from the ``in_channels`` / ``out_channels`` attributes of the nearest module
        that owns it; without them give ``spectral_std`` to the parametrization.
    modes, dim : int, optional
        K (transfer-tune's convention: frequencies ``0..K-1`` on the last axis, ``|k| < K`` on
        the others) and d of a user module; default its ``modes`` and ``dim`` attributes.
        Ignored for the two FNOs, which know theirs.

    Returns
    -------
    ModelRoles

    Raises
    ------
    TransferTuneError
        On a parameter without a role, a name the model lacks, no spectral weight, a
        factorized neuraloperator model, or a missing K or d.

    Examples
    --------
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.kernel = nn.Parameter(torch.zeros(5, 3, 3, dtype=torch.cfloat))
    ...         self.mix = nn.Linear(3, 3)
    >>> spec = model_roles(Net(), lambda name: name == "kernel", modes=5, dim=1)
    >>> spec.roles
    {'kernel': 'spectral', 'mix.weight': 'pointwise', 'mix.bias': 'bias'}
    """
    if isinstance(roles, ModelRoles):
        roles.check(model)
        return roles
    if roles is None and callable(getattr(model, "role_spec", None)):
        spec = model.role_spec()  # a model that describes itself: transfer-tune's FNO
        if not isinstance(spec, ModelRoles):
            raise TransferTuneError(
                f"{type(model).__name__}.role_spec() returned {type(spec).__name__}, not ModelRoles"
            )
    elif roles is None and is_neuralop_fno(model):
        spec = _neuralop_roles(model)
    elif roles is None and callable(getattr(model, "param_roles", None)):
        spec = _user_roles(model, model.param_roles(), modes, dim)
    elif roles is None:
        raise TransferTuneError(
            f"{type(model).__name__} does not declare parameter roles (param_roles()); name its "
            "spectral weights: roles={name: 'spectral', ...} or roles=lambda name: ..., with "
            "modes=K and dim=d (see transfer_tune.core.adapters.model_roles)"
        )
    else:
        spec = _user_roles(model, roles, modes, dim)
    spec.check(model)
    return spec


def modes_of(model: nn.Module) -> int:
    """K of a model in transfer-tune's convention (``M // 2 + 1`` for neuraloperator's FNO).

    Use it for ``base_modes``: ``get_parametrization("mup", base_modes=modes_of(proxy))``.
    """
    return model_roles(model).modes


def tensor_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` without its non-tensor entries (neuraloperator's ``_metadata``
    holds its constructor arguments, functions included, which ``weights_only`` refuses)."""
    return {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
