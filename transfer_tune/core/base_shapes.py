"""Which dimensions of each parameter grow from the proxy to the target: mup's "base shapes".

µP's width rule (:mod:`transfer_tune.core.parametrization` holds the formulas) scales a tensor
by how its fan-in and fan-out grow relative to the proxy (the *base* model), so it needs, for
every parameter, its channel dimensions in the proxy and in the target. They are read by
comparing shapes, as microsoft/mup's ``set_base_shapes`` does, never from names alone:

* a spectral weight R (its role, read by name, says which tensor it is) takes its channels
  from its layer's ``in_channels`` / ``out_channels`` (:attr:`ModelRoles.fans`), because the
  mode dimensions of its shape change with K, not with width;
* any other tensor of two or more dimensions is stored as torch's ``Linear`` / ``Conv`` are:
  ``(fan_out, fan_in, *kernel)``; its kernel dimensions must not change;
* a vector (a bias, a norm's scale) has no fan-in: a parameter of role ``bias`` or ``scale``
  is a vector whatever its shape (neuraloperator's soft gating is ``(1, C, 1)``, its spectral
  bias ``(C, 1)``), and so is any 1-D tensor.

The *channel shape* of a parameter is ``(fan_out, fan_in, *kernel)`` (``(fan_out,)`` for a
vector). :func:`base_shapes` records the proxy's as plain data (saved with the study and the
plan); :func:`width_ratios` compares a target against it and says, per parameter, which of
the four cases of µP's width table it is in (:data:`WIDTH_CLASSES`):

``hidden``
    fan-in and fan-out both grow (pointwise W, R's channels);
``output``
    fan-in grows, fan-out is fixed (the first projection layer when ``projection_width`` is
    fixed: a readout);
``input``
    fan-in fixed, fan-out grows (the lifting; a bias of a growing layer);
``fixed``
    nothing grows (the last projection layer, and every tensor at the base width).

A dimension that shrinks, a parameter the other model lacks, or a kernel that changes is an
error that names the parameter: the rule transfers upward, between models of one structure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from transfer_tune.core.adapters import ModelRoles, model_roles
from transfer_tune.errors import TransferTuneError

__all__ = ["WIDTH_CLASSES", "WidthRatio", "base_shapes", "channel_shapes", "width_ratios"]

#: The cases of µP's width table (see the module docstring).
WIDTH_CLASSES = ("hidden", "output", "input", "fixed")


@dataclass(frozen=True)
class WidthRatio:
    """How one parameter grows from the proxy: its class and fan-in / fan-out multipliers."""

    kind: str
    fan_in: float
    fan_out: float


def channel_shapes(model: nn.Module, spec: ModelRoles) -> dict[str, list[int]]:
    """``name -> [fan_out, fan_in, *kernel]`` (``[fan_out]`` for a vector) of every parameter.

    Spectral weights take ``[m_out, m_in]`` from ``spec.fans``; a spectral weight whose module
    does not say its channels is an error (its mode dimensions cannot be told from its
    channels by shape alone).
    """
    shapes: dict[str, list[int]] = {}
    for name, param in model.named_parameters():
        if spec.roles[name] == "spectral":
            fans = spec.fans.get(name)
            if fans is None:
                raise TransferTuneError(
                    f"cannot tell the channels of spectral weight {name!r} (its module has no "
                    "in_channels / out_channels), so µP's width rule cannot scale it; give the "
                    "module in_channels and out_channels attributes"
                )
            shapes[name] = [int(fans[1]), int(fans[0])]
        elif spec.roles[name] in ("bias", "scale"):
            shapes[name] = [int(param.numel())]
        else:
            shapes[name] = [int(n) for n in param.shape]
    return shapes


def base_shapes(model: nn.Module, roles=None, *, modes=None, dim=None) -> dict[str, list[int]]:
    """The proxy's channel shapes, as plain data for ``get_parametrization(base_shapes=...)``.

    Parameters
    ----------
    model : nn.Module
        The proxy (the base model): transfer-tune's FNO, neuraloperator's FNO, or a module
        whose roles you name (``roles``, ``modes``, ``dim`` as
        :func:`transfer_tune.core.adapters.model_roles`).

    Examples
    --------
    >>> from transfer_tune.core.model import FNO
    >>> shapes = base_shapes(FNO(dim=1, modes=4, width=8, projection_width=16))
    >>> shapes["layers.0.spectral.weight"], shapes["projection1.weight"]
    ([8, 8], [16, 8])
    """
    return channel_shapes(model, model_roles(model, roles, modes=modes, dim=dim))


def _classify(name: str, base: list[int], now: list[int]) -> WidthRatio:
    if len(base) != len(now) or base[2:] != now[2:]:
        raise TransferTuneError(
            f"parameter {name!r} has channel shape {now} in the target and {base} in the "
            "proxy: only channel dimensions (fan-out, fan-in) may differ; build the proxy "
            "with the target's structure (layers, kernels), narrower"
        )
    ratios = [n / b for n, b in zip(now[:2], base[:2], strict=False)]
    if any(r < 1 for r in ratios):
        raise TransferTuneError(
            f"parameter {name!r} shrinks from the proxy {base} to the target {now}: µP's width "
            "rule transfers to wider models; make the proxy the narrower one"
        )
    fan_out = ratios[0] if ratios else 1.0
    fan_in = ratios[1] if len(ratios) > 1 else 1.0
    if fan_in > 1 and fan_out > 1:
        kind = "hidden"
    elif fan_in > 1:
        kind = "output"
    elif fan_out > 1:
        kind = "input"
    else:
        kind = "fixed"
    return WidthRatio(kind, fan_in, fan_out)


def width_ratios(
    model: nn.Module, spec: ModelRoles, base: Mapping[str, list[int]]
) -> dict[str, WidthRatio]:
    """``name -> WidthRatio`` of every parameter of ``model`` against the proxy's ``base``.

    Raises
    ------
    TransferTuneError
        When the two models do not have the same parameters, a kernel dimension differs, or
        a dimension shrinks.
    """
    now = channel_shapes(model, spec)
    missing = sorted(set(now) - set(base))
    extra = sorted(set(base) - set(now))
    if missing or extra:
        raise TransferTuneError(
            "the proxy and the target must have the same parameters (only wider): "
            + "; ".join(
                part
                for part in (
                    f"target only: {missing}" if missing else "",
                    f"proxy only: {extra}" if extra else "",
                )
                if part
            )
        )
    return {name: _classify(name, list(base[name]), shape) for name, shape in now.items()}
