"""One way to say "proxy" and "target": modes, width, training grid and epochs of each side.

``tune_then_transfer(problem, proxy=dict(modes=4, width=16, resolution=32, epochs=10),
target=dict(modes=16, width=64, resolution=64, epochs=40))``, the ``[proxy]`` / ``[target]``
tables of a study spec and the CLI's ``--modes --width --resolution`` all become two
:class:`Side` values through :func:`resolve_sides`:

1. the dicts (or :class:`Side` values) as given;
2. the K-only shortcuts (``proxy_modes``, ``target_modes``, ``width`` for both sides,
   ``proxy_epochs``, ``target_epochs``), which must agree with a dict that names the same field;
3. a field one side leaves out takes the other side's value, except the grid: the target
   trains and is tested on the problem's own grid (its ``resolution``, when given, must be
   that grid), and a proxy that names no grid takes the target's;
4. a field neither side names takes its default (:data:`DEFAULTS`).

The proxy may not be larger than the target on any axis except by ``allow_smaller`` for K
(µP transfers upward; a narrower target would need shrinking shapes, which is refused).
:func:`describe` prints, per axis, proxy -> target and the per-step FLOP ratio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from pdes.checks import as_int
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.preflight import check_target_k

__all__ = ["AXES", "DEFAULTS", "Side", "describe", "resolve_sides"]

#: The fields of a side, in the order they are printed.
AXES = ("modes", "width", "resolution", "epochs")
#: What a field neither side names defaults to: (proxy, target). ``resolution`` None: the
#: problem's own grid.
DEFAULTS: dict[str, tuple[int | None, int | None]] = {
    "modes": (4, 32),
    "width": (32, 32),
    "resolution": (None, None),
    "epochs": (10, 40),
}
_MINIMUM = {"modes": 2, "width": 1, "resolution": 2, "epochs": 1}


@dataclass(frozen=True)
class Side:
    """The proxy's or the target's size: K, hidden width, training grid, epochs.

    ``None`` means "not said" (it is filled by :func:`resolve_sides`).
    """

    modes: int | None = None
    width: int | None = None
    resolution: int | None = None
    epochs: int | None = None

    @classmethod
    def of(cls, value: Side | Mapping[str, Any] | None, what: str) -> Side:
        """A :class:`Side` from a dict (keys :data:`AXES`), a Side or None, checked."""
        if value is None:
            return cls()
        if isinstance(value, Side):
            data = asdict(value)
        elif isinstance(value, Mapping):
            unknown = sorted(set(value) - set(AXES))
            if unknown:
                raise TransferTuneError(
                    f"{what} has unknown field(s) {unknown}; a side has {', '.join(AXES)}"
                )
            data = dict(value)
        else:
            raise TransferTuneError(
                f"{what} must be a dict with fields {', '.join(AXES)} (or a Side), got {value!r}"
            )
        return cls(
            **{
                k: None if v is None else as_int(v, f"{what} {k}", minimum=_MINIMUM[k])
                for k, v in data.items()
            }
        )

    def to_dict(self) -> dict[str, int | None]:
        """Plain data (stored in the plan)."""
        return asdict(self)


#: How a shortcut is named in its error (the names ``check_target_args`` uses too).
_LABELS = {"target_modes": "target_modes (K of the target)", "target_epochs": "target epochs"}


def _shortcut(side: Side, field: str, value: Any, what: str, name: str) -> Side:
    if value is None:
        return side
    value = as_int(value, _LABELS.get(name, name), minimum=_MINIMUM[field])
    given = getattr(side, field)
    if given is not None and given != value:
        raise TransferTuneError(
            f"{name}={value} disagrees with {what}['{field}']={given}; give one of the two"
        )
    return replace(side, **{field: value})


def resolve_sides(
    proxy: Side | Mapping[str, Any] | None = None,
    target: Side | Mapping[str, Any] | None = None,
    *,
    proxy_modes: int | None = None,
    target_modes: int | None = None,
    width: int | None = None,
    proxy_epochs: int | None = None,
    target_epochs: int | None = None,
    resolution: int | None = None,
    allow_smaller: bool = False,
) -> tuple[Side, Side]:
    """The proxy and the target, every field filled (see the module docstring).

    ``resolution`` is the problem's own grid: the default of a side that names none.

    Raises
    ------
    TransferTuneError
        On an unknown field, a shortcut that disagrees with a dict, or a proxy larger than
        the target (K only with ``allow_smaller``).

    Examples
    --------
    >>> p, t = resolve_sides({"width": 16, "resolution": 32}, {"modes": 16, "width": 64},
    ...                      proxy_modes=4, resolution=64)
    >>> p
    Side(modes=4, width=16, resolution=32, epochs=10)
    >>> t
    Side(modes=16, width=64, resolution=64, epochs=40)
    """
    p, t = Side.of(proxy, "proxy"), Side.of(target, "target")
    p = _shortcut(p, "modes", proxy_modes, "proxy", "proxy_modes")
    t = _shortcut(t, "modes", target_modes, "target", "target_modes")
    p = _shortcut(p, "width", width, "proxy", "width")
    t = _shortcut(t, "width", width, "target", "width")
    p = _shortcut(p, "epochs", proxy_epochs, "proxy", "proxy_epochs")
    t = _shortcut(t, "epochs", target_epochs, "target", "target_epochs")
    if t.resolution is None:
        t = replace(t, resolution=resolution)
    filled_p, filled_t = {}, {}
    for f in fields(Side):
        a, b = getattr(p, f.name), getattr(t, f.name)
        default_p, default_t = DEFAULTS[f.name]
        if a is None and b is None:
            a, b = default_p, default_t
        filled_p[f.name] = b if a is None else a
        filled_t[f.name] = a if b is None else b
    p, t = Side(**filled_p), Side(**filled_t)
    if not allow_smaller:  # the one message of a smaller target K (search.preflight)
        check_target_k(p.modes, t.modes, allow_smaller)
    for axis in ("width", "resolution"):
        small, big = getattr(p, axis), getattr(t, axis)
        if small is not None and big is not None and small > big:
            raise TransferTuneError(
                f"the proxy's {axis} {small} is larger than the target's {big}: the proxy is "
                "the smaller model, and the tuned values transfer upward"
            )
    if resolution is not None and t.resolution != resolution:
        raise TransferTuneError(
            f"target resolution {t.resolution} is not the problem's grid {resolution}: the "
            "target trains on the problem's own grid; build the problem at the target's grid "
            "(problem resolution=...) and give the proxy a coarser one"
        )
    return p, t


def describe(proxy: Mapping[str, Any], target: Mapping[str, Any], step_ratio: float | None) -> str:
    """One line per axis, ``proxy -> target``, and the per-step FLOP ratio.

    Examples
    --------
    >>> print(describe({"modes": 4, "width": 16, "resolution": 32, "epochs": 10},
    ...                {"modes": 16, "width": 64, "resolution": 64, "epochs": 40}, 0.0123))
    modes (K)   4 -> 16
    width       16 -> 64
    grid        32 -> 64
    epochs      10 -> 40
    one training step of the proxy costs 0.0123 of the target's (FLOP estimate)
    """
    names = {"modes": "modes (K)", "width": "width", "resolution": "grid", "epochs": "epochs"}
    lines = [
        f"{names[a]:<11} {proxy.get(a)} -> {target.get(a)}"
        for a in AXES
        if proxy.get(a) is not None or target.get(a) is not None
    ]
    if step_ratio is not None:
        lines.append(
            f"one training step of the proxy costs {step_ratio:.3g} of the target's (FLOP estimate)"
        )
    return "\n".join(lines)
