"""Coordinate check over K or width: how large is each layer's output, and its change after
Adam steps?

microsoft/mup's ``coord_check`` sweeps width; this one sweeps K (width fixed) or width (K
fixed). For every parametrization and every K (or width) in a list, an FNO is initialised and
its layers' outputs are
recorded on one fixed batch of real data: their size at init (step 0) and the size of their
*change* after ``t = 1..T`` Adam steps on the relative L2 loss (steps 1..T). Sizes are RMS
values over batch, channels and grid points, averaged over seeds (each seed's values are kept).

What µP predicts. The rule scales only the spectral weight R (init std and Adam rate) by
``c(K) / c(K_base) = sqrt(ln K_base / ln K)``. Adam moves every entry by about its rate,
whatever the gradient's scale, and a spectral convolution sums over all kept modes, so under
SP the change of a spectral layer's output after a step grows with K; µP shrinks R's rate as K
grows and should keep that change flatter. :attr:`CoordCheckResult.verdict` reports what the
measurement shows (``"flat"`` within a stated tolerance, ``"grows"`` or ``"shrinks"``), it is
not forced. :func:`transfer_tune.report.coord_check_figure` draws a result
(:mod:`transfer_tune.analysis.coord_result` holds and reads it).

Over width, µP for Adam (Tensor Programs V) scales every hidden tensor's rate by
``base width / width``: under SP, Adam moves each entry of a hidden weight by about the rate
whatever the width, and a hidden layer sums ``width`` such entries, so its update grows about
linearly with width; µP's should stay flat. The verdict then reads the hidden Fourier layers.

Layers recorded (names as in the records): ``lifting`` (P's output), ``spectral.i`` (R's
output in Fourier layer i), ``fourier.i`` (the output of Fourier layer i, ``act(R x + W x)``)
and ``projection`` (the model's output, Q's last layer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from pdes import Problem, load_problem
from transfer_tune.analysis.coord_result import TOLERANCE, CoordCheckResult, layer_kind
from transfer_tune.core.model import FNO, check_modes
from transfer_tune.core.parametrization import KINDS, get_parametrization
from transfer_tune.core.train import clip_gradients, relative_l2
from transfer_tune.errors import TransferTuneError

__all__ = ["coord_check", "coord_check_from_spec"]


def _rms(t: torch.Tensor) -> float:
    return float(t.detach().double().pow(2).mean().sqrt())


def _int_list(values: Any, name: str, minimum: int) -> list[int]:
    if isinstance(values, (int, str)) or values is None:
        raise TransferTuneError(f"{name} must be a list of integers, got {values!r}")
    out = sorted({int(v) for v in values})
    if not out or out[0] < minimum:
        raise TransferTuneError(f"{name} needs integers >= {minimum}, got {list(values)}")
    return out


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
    widths: Sequence[int] | None = None,
    base_width: int | None = None,
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
    """Record layer output sizes at init and their change after Adam steps, for each K or width.

    For every parametrization, every K (or width) and every seed: an FNO (``dim`` and
    channels from the data) is initialised with ``get_parametrization(kind, base_modes,
    base_shapes=<the FNO at base_width>)`` from ``torch.Generator().manual_seed(seed)``; each
    recorded layer's output on a fixed batch (the first ``batch_size`` training samples) is
    measured at init; then ``steps`` Adam steps on the parametrization's parameter groups
    follow, on training batches in an order drawn from the seed (the same for every K, width
    and kind), and after each the RMS of the change of each layer's output on the fixed batch
    is measured.

    Parameters
    ----------
    problem : str, dict, pdes.Problem or (x, y)
        A problem for :func:`pdes.load_problem` (its train split is used), or tensors shaped
        ``(N, C, *grid)``.
    modes : sequence of int
        The K values; ``base_modes`` is added when missing. With ``widths``, one K.
    base_modes : int, optional
        K_base of µP (default: the smallest K); ratios over K are taken against it.
    width : int
        The width while K varies.
    widths : sequence of int, optional
        Sweep width instead of K (``modes`` then holds one K); ``base_width`` is added.
    base_width : int, optional
        The width at which µP and SP coincide (default: the smallest of ``widths``, else
        ``width``); ratios over width are taken against it.
    n_layers, projection_width, grid_features
        The FNO (``projection_width`` stays fixed when width varies: Q's first layer is the
        readout).
    lr, betas, batch_size, clip, clip_value
        Adam's base rate and betas, samples per step, and gradient clipping (as in
        :class:`transfer_tune.core.hparams.HParams`).
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
    modes_list = _int_list(modes, "modes", 2)
    base = min(modes_list) if base_modes is None else int(base_modes)
    if widths is None:
        widths_list = [int(width)] if base_width is None else sorted({int(width), int(base_width)})
        modes_list = sorted(set(modes_list) | {base})
    else:
        widths_list = _int_list(widths, "widths", 1)
        if len(modes_list) != 1:
            raise TransferTuneError(
                f"a coord check over width runs at one K; got modes {modes_list} (sweep K and "
                "width in two runs)"
            )
    base_w = min(widths_list) if base_width is None else int(base_width)
    widths_list = sorted(set(widths_list) | {base_w})
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
    net = {"dim": len(grid), "n_layers": n_layers, "in_channels": x.shape[1]}
    net.update(out_channels=y.shape[1], projection_width=projection_width)
    net["grid_features"] = grid_features
    train = {"lr": lr, "betas": tuple(betas), "steps": steps, "batch_size": batch_size}
    train.update(clip=clip, clip_value=clip_value)
    records: list[dict[str, Any]] = []
    for kind in kinds:
        for k in modes_list:
            with torch.device("meta"):  # the base model only lends its shapes
                shapes = FNO(modes=k, width=base_w, **net)
            par = get_parametrization(kind, base_modes=base, base_shapes=shapes)
            for w in widths_list:
                for seed in seeds:
                    model = FNO(modes=k, width=w, **net)
                    par.initialize(model, generator=torch.Generator().manual_seed(seed))
                    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
                    values = _one_run(model.to(device), par, x, y, fixed, order.to(device), **train)
                    common = {"parametrization": kind, "modes": k, "width": w}
                    records += [
                        {**common, "layer": layer, "layer_kind": layer_kind(layer), "step": step}
                        | {"seed": seed, "rms": rms, "base_modes": base, "base_width": base_w}
                        for (layer, step), rms in values.items()
                    ]
    config = {
        "problem": _problem_label(problem),
        "width": int(width) if widths is None else widths_list,
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
    else the powers of two from ``proxy_modes`` to ``target_modes``; with ``widths`` (a sweep
    over width) it is one K, ``proxy_modes``, unless ``modes`` is given. Keyword ``overrides``
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
    given = {k: v for k, v in overrides.items() if v is not None}
    kwargs.update(given)
    if kwargs.get("widths") is not None and "modes" not in given and "modes" in kwargs:
        # a sweep over width runs at one K: K_base (the proxy's K) unless K was given
        kwargs["modes"] = [kwargs.get("base_modes", min(kwargs["modes"]))]
    if "modes" not in kwargs:
        raise TransferTuneError(
            "the spec gives no K list: set [landscape] modes, [model] proxy_modes and "
            "target_modes, or pass modes"
        )
    return coord_check(**kwargs)
