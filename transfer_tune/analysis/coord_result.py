"""The result of a coord check: layer output sizes over K or over width, µP beside SP.

:func:`transfer_tune.coord_check` measures; this module holds what it
measured (plain records, read back from JSON) and reads it: curves, ratios largest / base,
and a verdict per parametrization. A run sweeps one *axis*: ``"modes"`` (K, width fixed) or
``"width"`` (m, K fixed). The verdict reads the layers the swept axis is about: the spectral
layers R over K (the only tensors K's rule scales), the hidden Fourier layers over width (every
hidden tensor of which grows with m).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transfer_tune.core.parametrization import display_name
from transfer_tune.errors import TransferTuneError

__all__ = [
    "AXIS_LABELS",
    "LAYER_KINDS",
    "TOLERANCE",
    "VERDICT_LAYER",
    "CoordCheckResult",
    "layer_kind",
]

#: The layer kind whose update size the verdict reads, per axis.
VERDICT_LAYER = {"modes": "spectral", "width": "fourier"}
#: The axes a coord check sweeps (each is also the record field of its value), as named in
#: tables and figures.
AXIS_LABELS = {"modes": "K", "width": "width"}
#: Kinds of recorded layers, in model order.
LAYER_KINDS = ("lifting", "spectral", "fourier", "projection")
#: Default tolerance of the verdict: "flat" when largest / base is within [1/1.25, 1.25].
TOLERANCE = 1.25


def layer_kind(layer: str) -> str:
    """``"spectral"`` for ``"spectral.2"``, ``"lifting"`` for ``"lifting"``."""
    return layer.split(".")[0]


def _layer_key(layer: str) -> tuple[int, int, int]:
    """Model order: lifting, spectral.0, fourier.0, spectral.1, ..., projection."""
    kind = layer_kind(layer)
    if kind == "lifting":
        return (0, 0, 0)
    if kind == "projection":
        return (2, 0, 0)
    return (1, int(layer.split(".")[1]), LAYER_KINDS.index(kind))


def _geomean(values: Iterable[float]) -> float:
    values = list(values)
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        return math.nan
    return float(math.exp(sum(math.log(v) for v in values) / len(values)))


# ---------------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------------
@dataclass
class CoordCheckResult:
    """Layer output sizes over K or over width, per parametrization, step and seed.

    Attributes
    ----------
    records : list of dict
        One row per (parametrization, K, width, layer, step, seed): ``{"parametrization",
        "modes", "width", "layer", "layer_kind", "step", "seed", "rms", "base_modes",
        "base_width"}``. ``rms`` is the RMS of the layer's output at init for ``step == 0``,
        else the RMS of its change from init after ``step`` Adam steps.
    base_modes : int
        K_base (µP and SP coincide there); over K, ratios divide by the value at K_base.
    tolerance : float
        The verdict is ``"flat"`` when the largest / base ratio is in ``[1/tol, tol]``.
    config : dict
        The settings of the run (problem, width, lr, steps, ...), plain data.
    """

    records: list[dict[str, Any]]
    base_modes: int
    tolerance: float = TOLERANCE
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.records:
            raise TransferTuneError("a coord-check result needs at least one record")
        for r in self.records:  # records written before the width axis: base = own width
            r.setdefault("base_width", r["width"])
        widths = {int(r["width"]) for r in self.records}
        modes = {int(r["modes"]) for r in self.records}
        if len(widths) > 1 and len(modes) > 1:
            raise TransferTuneError(
                "a coord check sweeps one axis: K at one width, or width at one K; got "
                f"K {sorted(modes)} and widths {sorted(widths)}"
            )
        self.axis = "width" if len(widths) > 1 else "modes"
        bases = {int(r["base_width"]) for r in self.records}
        if len(bases) != 1:
            raise TransferTuneError(f"records must share one base_width, got {sorted(bases)}")
        self.base_width = bases.pop()
        values: dict[tuple[str, int, str, int], list[float]] = {}
        for r in self.records:
            key = (r["parametrization"], int(r[self.axis]), r["layer"], int(r["step"]))
            values.setdefault(key, []).append(float(r["rms"]))
        self._means = {k: float(np.mean(v)) for k, v in values.items()}
        self._stds = {k: float(np.std(v)) for k, v in values.items()}
        if self.base not in self.points:
            name = "K = K_base" if self.axis == "modes" else "the base width"
            raise TransferTuneError(
                f"the records have no {name} = {self.base} ({AXIS_LABELS[self.axis]}: "
                f"{self.points})"
            )

    # -- axes ------------------------------------------------------------------------------
    @property
    def modes(self) -> list[int]:
        """The K values, ascending."""
        return sorted({int(r["modes"]) for r in self.records})

    @property
    def widths(self) -> list[int]:
        """The widths, ascending."""
        return sorted({int(r["width"]) for r in self.records})

    @property
    def points(self) -> list[int]:
        """The swept values: :attr:`modes` over K, :attr:`widths` over width."""
        return self.widths if self.axis == "width" else self.modes

    @property
    def base(self) -> int:
        """Where µP and SP coincide on the swept axis: K_base or the base width."""
        return self.base_width if self.axis == "width" else self.base_modes

    @property
    def axis_label(self) -> str:
        """``"K"`` or ``"width"``."""
        return AXIS_LABELS[self.axis]

    @property
    def verdict_layer(self) -> str:
        """The layer kind the verdict reads (:data:`VERDICT_LAYER`)."""
        return VERDICT_LAYER[self.axis]

    @property
    def parametrizations(self) -> list[str]:
        """The parametrizations, µP first."""
        kinds = {r["parametrization"] for r in self.records}
        return [k for k in ("mup", "sp") if k in kinds] + sorted(kinds - {"mup", "sp"})

    @property
    def layers(self) -> list[str]:
        """The recorded layers, in model order."""
        return sorted({r["layer"] for r in self.records}, key=_layer_key)

    @property
    def steps(self) -> list[int]:
        """0 (init) .. T."""
        return sorted({int(r["step"]) for r in self.records})

    @property
    def seeds(self) -> list[int]:
        return sorted({int(r["seed"]) for r in self.records})

    # -- values ----------------------------------------------------------------------------
    def mean(self, kind: str, layer: str, at: int, step: int) -> float:
        """Seed-averaged RMS (of the output at step 0, of its change at step t >= 1) at the
        swept value ``at`` (a K, or a width)."""
        return self._means[(kind, int(at), layer, int(step))]

    def std(self, kind: str, layer: str, at: int, step: int) -> float:
        """Standard deviation over seeds of the values :meth:`mean` averages."""
        return self._stds[(kind, int(at), layer, int(step))]

    def curve(self, kind: str, layer: str, step: int) -> list[float]:
        """:meth:`mean` against :attr:`points`."""
        return [self.mean(kind, layer, v, step) for v in self.points]

    def ratio(self, kind: str, layer: str, step: int | None = None) -> float:
        """Largest over base value of ``layer`` at ``step`` (default: the last step)."""
        step = self.steps[-1] if step is None else step
        base = self.mean(kind, layer, self.base, step)
        top = self.mean(kind, layer, max(self.points), step)
        return top / base if base > 0 else math.nan

    def kind_ratio(self, kind: str, layer_kind_: str, step: int | None = None) -> float:
        """Geometric mean of :meth:`ratio` over the layers of one kind (e.g. ``"spectral"``)."""
        return _geomean(
            self.ratio(kind, layer, step)
            for layer in self.layers
            if layer_kind(layer) == layer_kind_
        )

    def spectral_ratios(self, kind: str) -> list[float]:
        """:meth:`kind_ratio` of the spectral layers at steps 1..T."""
        return [self.kind_ratio(kind, "spectral", t) for t in self.steps if t > 0]

    def verdict_ratios(self, kind: str) -> list[float]:
        """:meth:`kind_ratio` of the :attr:`verdict_layer` layers at steps 1..T."""
        return [self.kind_ratio(kind, self.verdict_layer, t) for t in self.steps if t > 0]

    @property
    def verdict(self) -> dict[str, str]:
        """Per parametrization: how the update size of the :attr:`verdict_layer` layers
        behaves from the base to the largest value at the last step — ``"flat"`` (ratio
        within ``[1/tolerance, tolerance]``), ``"grows"``, ``"shrinks"`` or ``"unstable"``
        (non-finite values)."""
        out = {}
        for kind in self.parametrizations:
            r = self.kind_ratio(kind, self.verdict_layer)
            flat = "flat" if r >= 1.0 / self.tolerance else "shrinks"
            out[kind] = (
                "unstable" if not math.isfinite(r) else "grows" if r > self.tolerance else flat
            )
        return out

    def summary(self) -> str:
        """A text table: per layer kind, largest / base update size under each kind."""
        c = self.config
        kinds, name, top = self.parametrizations, self.axis_label, max(self.points)
        last = self.steps[-1]
        if self.axis == "modes":
            head = f"coord check over K = {', '.join(map(str, self.modes))} (K_base {self.base})"
        else:
            head = (
                f"coord check over width = {', '.join(map(str, self.widths))} (base width "
                f"{self.base}, K = {self.modes[0]})"
            )
        bits = [
            f"{key} {c[key]}"
            for key in ("problem", "width", "n_layers", "lr", "batch_size", "clip")
            if key in c and not (key == "width" and self.axis == "width")
        ]
        lines = [head, "  " + ", ".join(bits + [f"{len(self.seeds)} seed(s)"])]
        lines.append(
            f"update size after {last} Adam step(s): {name} = {top} over {name} = {self.base} "
            "(geometric mean over the layers of a kind)"
        )
        lines.append(f"  {'layer':<12}" + "".join(f"{display_name(k):>10}" for k in kinds))
        present = {layer_kind(layer) for layer in self.layers}
        for lk in (k for k in LAYER_KINDS if k in present):
            cells = "".join(f"{self.kind_ratio(k, lk):>9.3g}x" for k in kinds)
            lines.append(f"  {lk:<12}{cells}")
        steps = [t for t in self.steps if t > 0]
        lines.append(
            f"{self.verdict_layer} layers, ratio at step t = {', '.join(map(str, steps))}:"
        )
        for k in kinds:
            values = ", ".join(f"{r:.3g}" for r in self.verdict_ratios(k))
            lines.append(f"  {display_name(k):<4} {values}")
        verdict = self.verdict
        lines.append(
            f"verdict ({self.verdict_layer} layers, tolerance {self.tolerance:g}x): "
            + "; ".join(
                f"{display_name(k)} {verdict[k]} ({self.kind_ratio(k, self.verdict_layer):.3g}x)"
                for k in kinds
            )
        )
        return "\n".join(lines)

    # -- plain data ------------------------------------------------------------------------
    def to_records(self) -> list[dict[str, Any]]:
        """The per-seed rows as JSON-able dicts (a copy)."""
        return [dict(r) for r in self.records]

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        tolerance: float = TOLERANCE,
        config: Mapping[str, Any] | None = None,
    ) -> CoordCheckResult:
        """Rebuild a result from :meth:`to_records` (K_base is read from the rows)."""
        rows = [dict(r) for r in records]
        bases = {int(r["base_modes"]) for r in rows}
        if len(bases) != 1:
            raise TransferTuneError(f"records must share one base_modes, got {sorted(bases)}")
        return cls(rows, bases.pop(), tolerance=tolerance, config=dict(config or {}))

    def to_dict(self) -> dict[str, Any]:
        """``{"records", "base_modes", "tolerance", "config"}``, JSON-able."""
        return {
            "records": self.to_records(),
            "base_modes": self.base_modes,
            "tolerance": self.tolerance,
            "config": dict(self.config),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CoordCheckResult:
        """Inverse of :meth:`to_dict`."""
        tolerance, config = float(data.get("tolerance", TOLERANCE)), data.get("config") or {}
        rows = [dict(r) for r in data["records"]]
        return cls(rows, int(data["base_modes"]), tolerance=tolerance, config=dict(config))
