"""Coordinate check over K: how large is each layer's output, and its change after Adam steps?

The modes analogue of microsoft/mup's ``coord_check`` (which sweeps width). For every
parametrization and every K in a list, an FNO is initialised and its layers' outputs are
recorded on one fixed batch of real data: their size at init (step 0) and the size of their
*change* after ``t = 1..T`` Adam steps on the relative L2 loss (steps 1..T). Sizes are RMS
values over batch, channels and grid points, averaged over seeds (each seed's values are kept).

What µP predicts. The rule scales only the spectral weight R (init std and Adam rate) by
``c(K) / c(K_base) = sqrt(ln K_base / ln K)``. Adam moves every entry by about its rate,
whatever the gradient's scale, and a spectral convolution sums over all kept modes, so under
SP the change of a spectral layer's output after a step grows with K; µP shrinks R's rate as K
grows and should keep that change flatter. :attr:`CoordCheckResult.verdict` reports what the
measurement shows (``"flat"`` within a stated tolerance, ``"grows"`` or ``"shrinks"``), it is
not forced. :func:`transfer_tune.report.coord_check_figure.coord_check_figure` draws a result.

Layers recorded (names as in the records): ``lifting`` (P's output), ``spectral.i`` (R's
output in Fourier layer i), ``fourier.i`` (the output of Fourier layer i, ``act(R x + W x)``)
and ``projection`` (the model's output, Q's last layer).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from pdes import Problem, load_problem
from transfer_tune.core.model import FNO, check_modes
from transfer_tune.core.parametrization import KINDS, display_name, get_parametrization
from transfer_tune.core.train import clip_gradients, relative_l2
from transfer_tune.errors import TransferTuneError

__all__ = ["LAYER_KINDS", "CoordCheckResult", "coord_check", "coord_check_from_spec"]

#: Kinds of recorded layers, in model order.
LAYER_KINDS = ("lifting", "spectral", "fourier", "projection")
#: Default tolerance of the verdict: "flat" when largest-K / base-K is within [1/1.25, 1.25].
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


def _rms(t: torch.Tensor) -> float:
    return float(t.detach().double().pow(2).mean().sqrt())


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
    """Layer output sizes over K, per parametrization, step and seed.

    Attributes
    ----------
    records : list of dict
        One row per (parametrization, K, layer, step, seed): ``{"parametrization", "modes",
        "layer", "layer_kind", "step", "seed", "rms", "width", "base_modes"}``. ``rms`` is the
        RMS of the layer's output at init for ``step == 0``, else the RMS of its change from
        init after ``step`` Adam steps.
    base_modes : int
        K_base (µP and SP coincide there); ratios divide by the value at K_base.
    tolerance : float
        The verdict is ``"flat"`` when the largest-K / K_base ratio is in ``[1/tol, tol]``.
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
        values: dict[tuple[str, int, str, int], list[float]] = {}
        for r in self.records:
            key = (r["parametrization"], int(r["modes"]), r["layer"], int(r["step"]))
            values.setdefault(key, []).append(float(r["rms"]))
        self._means = {k: float(np.mean(v)) for k, v in values.items()}
        self._stds = {k: float(np.std(v)) for k, v in values.items()}
        if self.base_modes not in self.modes:
            raise TransferTuneError(
                f"the records have no K = K_base = {self.base_modes} (K: {self.modes})"
            )

    # -- axes ------------------------------------------------------------------------------
    @property
    def modes(self) -> list[int]:
        """The K values, ascending."""
        return sorted({int(r["modes"]) for r in self.records})

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
    def mean(self, kind: str, layer: str, modes: int, step: int) -> float:
        """Seed-averaged RMS (of the output at step 0, of its change at step t >= 1)."""
        return self._means[(kind, int(modes), layer, int(step))]

    def std(self, kind: str, layer: str, modes: int, step: int) -> float:
        """Standard deviation over seeds of the values :meth:`mean` averages."""
        return self._stds[(kind, int(modes), layer, int(step))]

    def curve(self, kind: str, layer: str, step: int) -> list[float]:
        """:meth:`mean` against :attr:`modes`."""
        return [self.mean(kind, layer, k, step) for k in self.modes]

    def ratio(self, kind: str, layer: str, step: int | None = None) -> float:
        """Largest-K over K_base value of ``layer`` at ``step`` (default: the last step)."""
        step = self.steps[-1] if step is None else step
        base = self.mean(kind, layer, self.base_modes, step)
        top = self.mean(kind, layer, max(self.modes), step)
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

    @property
    def verdict(self) -> dict[str, str]:
        """Per parametrization: how the spectral layers' update size behaves from K_base to
        the largest K at the last step — ``"flat"`` (ratio within ``[1/tolerance,
        tolerance]``), ``"grows"``, ``"shrinks"`` or ``"unstable"`` (non-finite values)."""
        out = {}
        for kind in self.parametrizations:
            r = self.kind_ratio(kind, "spectral")
            flat = "flat" if r >= 1.0 / self.tolerance else "shrinks"
            out[kind] = (
                "unstable" if not math.isfinite(r) else "grows" if r > self.tolerance else flat
            )
        return out

    def summary(self) -> str:
        """A text table: per layer kind, largest-K / K_base update size under each kind."""
        c = self.config
        kinds = self.parametrizations
        k_max, last = max(self.modes), self.steps[-1]
        head = f"coord check over K = {', '.join(map(str, self.modes))} (K_base {self.base_modes})"
        bits = [
            f"{key} {c[key]}"
            for key in ("problem", "width", "n_layers", "lr", "batch_size", "clip")
            if key in c
        ]
        lines = [head, "  " + ", ".join(bits + [f"{len(self.seeds)} seed(s)"])]
        lines.append(
            f"update size after {last} Adam step(s): K = {k_max} over K = {self.base_modes} "
            "(geometric mean over the layers of a kind)"
        )
        lines.append(f"  {'layer':<12}" + "".join(f"{display_name(k):>10}" for k in kinds))
        present = {layer_kind(layer) for layer in self.layers}
        for lk in (k for k in LAYER_KINDS if k in present):
            cells = "".join(f"{self.kind_ratio(k, lk):>9.3g}x" for k in kinds)
            lines.append(f"  {lk:<12}{cells}")
        steps = [t for t in self.steps if t > 0]
        lines.append(f"spectral layers, ratio at step t = {', '.join(map(str, steps))}:")
        for k in kinds:
            values = ", ".join(f"{r:.3g}" for r in self.spectral_ratios(k))
            lines.append(f"  {display_name(k):<4} {values}")
        verdict = self.verdict
        lines.append(
            "verdict (spectral layers, tolerance "
            f"{self.tolerance:g}x): "
            + "; ".join(
                f"{display_name(k)} {verdict[k]} ({self.kind_ratio(k, 'spectral'):.3g}x)"
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


# ---------------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------------
def _data(problem: Any, overrides: Mapping[str, Any] | None) -> tuple[torch.Tensor, ...]:
    if isinstance(problem, (tuple, list)) and len(problem) == 2:
        x, y = problem
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
            raise TransferTuneError("coord_check's data must be a pair of tensors (x, y)")
        if x.dim() < 3 or x.dim() > 5 or y.dim() != x.dim() or len(x) != len(y):
            raise TransferTuneError(
                f"coord_check needs x and y shaped (N, C, *grid) with 1-3 grid axes and the "
                f"same N, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        return x, y
    return load_problem(problem, overrides).dataset("train")


def _problem_label(problem: Any) -> Any:
    if isinstance(problem, (Problem, Mapping)):
        return problem.name if isinstance(problem, Problem) else problem.get("name")
    return problem if isinstance(problem, str) else "tensors"


def _hooks(model: FNO, out: dict[str, torch.Tensor]) -> list[Any]:
    """Forward hooks that store each recorded layer's output in ``out`` by name."""

    def keep(name: str):
        def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            out[name] = output.detach()

        return hook

    modules: list[tuple[str, nn.Module]] = [("lifting", model.lifting)]
    for i, layer in enumerate(model.layers):
        modules += [(f"spectral.{i}", layer.spectral), (f"fourier.{i}", layer)]
    modules.append(("projection", model.projection2))
    return [module.register_forward_hook(keep(name)) for name, module in modules]


def _one_run(
    model: FNO,
    par: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    fixed: torch.Tensor,
    order: torch.Tensor,
    *,
    lr: float,
    betas: tuple[float, float],
    steps: int,
    batch_size: int,
    clip: str | None,
    clip_value: float,
) -> dict[tuple[str, int], float]:
    """``{(layer, step): rms}`` for one initialised model."""
    outputs: dict[str, torch.Tensor] = {}
    handles = _hooks(model, outputs)
    try:
        with torch.no_grad():
            model(fixed)
        init = dict(outputs)
        values = {(name, 0): _rms(h) for name, h in init.items()}
        optimizer = torch.optim.Adam(par.param_groups(model, lr=lr, betas=betas))
        n = len(x)
        for t in range(1, steps + 1):
            idx = order[torch.arange((t - 1) * batch_size, t * batch_size) % n]
            loss = relative_l2(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradients(model.parameters(), clip, clip_value)
            optimizer.step()
            with torch.no_grad():
                model(fixed)
            for name, h0 in init.items():
                values[(name, t)] = _rms(outputs[name] - h0)
    finally:
        for handle in handles:
            handle.remove()
    return values


def coord_check(
    problem: Any,
    modes: Sequence[int],
    *,
    base_modes: int | None = None,
    width: int = 32,
    n_layers: int = 4,
    lr: float = 1e-2,
    steps: int = 3,
    seeds: Iterable[int] = (0, 1, 2),
    batch_size: int = 16,
    parametrizations: Sequence[str] = ("mup", "sp"),
    betas: tuple[float, float] = (0.9, 0.999),
    clip: str | None = None,
    clip_value: float = 0.01,
    projection_width: int = 128,
    grid_features: bool = True,
    tolerance: float = TOLERANCE,
    problem_overrides: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
) -> CoordCheckResult:
    """Record layer output sizes at init and their change after Adam steps, for each K.

    For every parametrization and K, and every seed: an FNO (``dim`` and channels from the
    data) is initialised with ``get_parametrization(kind, base_modes)`` from
    ``torch.Generator().manual_seed(seed)``; each recorded layer's output on a fixed batch
    (the first ``batch_size`` training samples) is measured at init; then ``steps`` Adam steps
    on the parametrization's parameter groups follow, on training batches in an order drawn
    from the seed (the same for every K and kind), and after each the RMS of the change of
    each layer's output on the fixed batch is measured.

    Parameters
    ----------
    problem : str, dict, pdes.Problem or (x, y)
        A problem for :func:`pdes.load_problem` (its train split is used), or tensors shaped
        ``(N, C, *grid)``.
    modes : sequence of int
        The K values; ``base_modes`` is added when missing.
    base_modes : int, optional
        K_base of µP (default: the smallest K); ratios are taken against it.
    width, n_layers, projection_width, grid_features
        The FNO (width is fixed while K varies).
    lr, betas, batch_size, clip, clip_value
        Adam's base rate and betas, samples per step, and gradient clipping (as in
        :class:`transfer_tune.core.train.HParams`).
    steps : int
        T, the number of Adam steps.
    seeds : iterable of int
        Seeds of the initialisation and the batch order; values are averaged over them.
    parametrizations : sequence of {"mup", "sp"}
    tolerance : float
        Of the verdict (see :attr:`CoordCheckResult.verdict`).
    problem_overrides : mapping, optional
        Options laid over ``problem`` (see :func:`pdes.get_problem`).
    device : str or torch.device
        Where the models run.

    Returns
    -------
    CoordCheckResult
    """
    modes_list = sorted({int(k) for k in modes})
    if not modes_list:
        raise TransferTuneError("coord_check needs at least one K in modes")
    base = min(modes_list) if base_modes is None else int(base_modes)
    modes_list = sorted(set(modes_list) | {base})
    if isinstance(seeds, (int, str)):
        raise TransferTuneError(f"seeds must be a list of integers, e.g. [0, 1, 2], got {seeds!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise TransferTuneError("coord_check needs at least one seed")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise TransferTuneError(f"steps must be an integer >= 1, got {steps!r}")
    if not (isinstance(tolerance, (int, float)) and tolerance > 1):
        raise TransferTuneError(f"tolerance must be a number > 1, got {tolerance!r}")
    kinds = [str(k).lower() for k in parametrizations]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise TransferTuneError(
            f"parametrizations must be some of {', '.join(KINDS)}, got {list(parametrizations)}"
        )
    if clip not in (None, "norm", "value"):
        raise TransferTuneError(f'clip must be None, "norm" or "value", got {clip!r}')
    pars = {kind: get_parametrization(kind, base_modes=base) for kind in kinds}
    x, y = _data(problem, problem_overrides)
    n = len(x)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise TransferTuneError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if batch_size > n:
        raise TransferTuneError(
            f"batch_size {batch_size} exceeds the {n} training samples; lower it or use more "
            "samples (n_train)"
        )
    grid = tuple(x.shape[2:])
    for k in modes_list:
        check_modes(k, grid)
    device = torch.device(device)
    x = x.to(device, torch.float32)
    y = y.to(device, torch.float32)
    fixed = x[:batch_size]
    net = {"dim": len(grid), "width": width, "n_layers": n_layers, "in_channels": x.shape[1]}
    net.update(out_channels=y.shape[1], projection_width=projection_width)
    net["grid_features"] = grid_features
    train = {"lr": lr, "betas": tuple(betas), "steps": steps, "batch_size": batch_size}
    train.update(clip=clip, clip_value=clip_value)
    records: list[dict[str, Any]] = []
    for kind in kinds:
        for k in modes_list:
            for seed in seeds:
                model = FNO(modes=k, **net)
                pars[kind].initialize(model, generator=torch.Generator().manual_seed(seed))
                order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
                values = _one_run(
                    model.to(device), pars[kind], x, y, fixed, order.to(device), **train
                )
                common = {"parametrization": kind, "modes": k, "width": int(width)}
                records += [
                    {**common, "layer": layer, "layer_kind": layer_kind(layer), "step": step}
                    | {"seed": seed, "rms": rms, "base_modes": base}
                    for (layer, step), rms in values.items()
                ]
    config = {
        "problem": _problem_label(problem),
        "width": int(width),
        "n_layers": int(n_layers),
        "lr": float(lr),
        "steps": steps,
        "batch_size": batch_size,
        "betas": [float(b) for b in betas],
        "clip": clip,
        "clip_value": float(clip_value),
        "seeds": seeds,
        "grid": list(grid),
        "n_samples": n,
    }
    return CoordCheckResult(records, base, tolerance=float(tolerance), config=config)


def coord_check_from_spec(spec: Any, **overrides: Any) -> CoordCheckResult:
    """Run :func:`coord_check` for a study spec (a path, a dict or a ``StudySpec``).

    Read from the spec: ``[problem]`` (name and overrides), ``[model]`` ``width``,
    ``n_layers``, ``proxy_modes`` (K_base), ``target_modes``, ``projection_width``,
    ``grid_features``; ``[train]`` ``clip`` and ``clip_value``; ``[landscape]`` ``modes``,
    ``seeds`` and ``base_modes`` when present; and a ``[coord_check]`` table (any keyword of
    :func:`coord_check`) when the spec parser accepts one. K defaults to ``[landscape] modes``,
    else the powers of two from ``proxy_modes`` to ``target_modes``. Keyword ``overrides``
    (e.g. from the command line; ``None`` values are ignored) come last.
    """
    from transfer_tune.search.spec import StudySpec, load_spec, parse_spec

    if isinstance(spec, Mapping):
        spec = parse_spec(dict(spec))
    elif not isinstance(spec, StudySpec):
        spec = load_spec(spec)
    model, land = spec.model, spec.landscape
    kwargs: dict[str, Any] = {
        "problem": spec.problem_name,
        "problem_overrides": spec.problem_overrides,
    }
    for key in ("width", "n_layers", "projection_width", "grid_features"):
        if key in model:
            kwargs[key] = model[key]
    for key in ("clip", "clip_value"):
        if key in spec.train:
            kwargs[key] = spec.train[key]
    if "proxy_modes" in model:
        kwargs["base_modes"] = model["proxy_modes"]
    if "modes" in land:
        kwargs["modes"] = list(land["modes"])
    elif "proxy_modes" in model and "target_modes" in model:
        k, top, ks = int(model["proxy_modes"]), int(model["target_modes"]), []
        while k < top:
            ks.append(k)
            k *= 2
        kwargs["modes"] = ks + [top]
    for key in ("seeds", "base_modes"):
        if key in land:
            kwargs[key] = land[key]
    table = spec.raw.get("coord_check") or {}
    if not isinstance(table, Mapping):
        raise TransferTuneError("[coord_check] must be a table")
    kwargs.update(table)
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    if "modes" not in kwargs:
        raise TransferTuneError(
            "the spec gives no K list: set [landscape] modes, [model] proxy_modes and "
            "target_modes, or pass modes"
        )
    return coord_check(**kwargs)
