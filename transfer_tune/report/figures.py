"""Plotly figures of sweeps, optima, the spectral-norm check and tuning studies.

Every function returns a :class:`plotly.graph_objects.Figure`; :func:`save_figure` writes it
to HTML (always, plotly.js embedded so it opens offline) and to PNG/SVG when kaleido finds a
Chromium, saying so clearly when it cannot.

Every trace carries ``meta = {"role": ..., ...}`` (``"curve"``, ``"band"``, ``"optimum"``,
``"diverged"``, ``"heatmap"``, ``"reference"``, ...) with its parametrization and K, so code
and tests can find the traces they mean.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from transfer_tune.analysis.landscape import SWEEPABLE, SweepResult
from transfer_tune.analysis.optimum import (
    Curves,
    OptimumAnalysis,
    analyze_optimum,
    landscape_curves,
    scale_for,
)
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.errors import TransferTuneError

__all__ = [
    "FigureExportWarning",
    "SavedFigure",
    "heatmap_figure",
    "landscape_figure",
    "optimum_figure",
    "save_figure",
    "save_figures",
    "spectral_norm_check",
    "spectral_norm_figure",
    "tuning_history_figure",
]

NAMES = {"mup": "µP", "sp": "SP"}
LOSS_LABELS = {
    "test_loss": "final test loss (rel. L2)",
    "train_loss": "final train loss (rel. L2)",
    "val_loss": "final validation loss (rel. L2)",
}
_TEMPLATE = "plotly_white"


def _name(kind: str) -> str:
    return NAMES.get(kind, kind)


def _colors(modes: Sequence[int]) -> dict[int, str]:
    """One colour per K, dark (small K) to light (large K), shared by all panels."""
    n = len(modes)
    positions = [0.0] if n == 1 else [0.85 * i / (n - 1) for i in range(n)]
    return dict(zip(modes, sample_colorscale("Viridis", positions), strict=True))


def _rgba(color: str, alpha: float) -> str:
    body = color[color.index("(") + 1 : color.index(")")]
    r, g, b = (float(c) for c in body.split(",")[:3])
    return f"rgba({r:.0f},{g:.0f},{b:.0f},{alpha})"


def _finite_or_none(values: Iterable[float]) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values]


def _axis_type(param: str) -> str:
    return "log" if SWEEPABLE.get(param, True) else "linear"


# ---------------------------------------------------------------------------------------------
# Landscapes
# ---------------------------------------------------------------------------------------------
def landscape_figure(
    result: SweepResult | Curves,
    loss: str = "test_loss",
    param: str | None = None,
    fixed: Mapping[str, float] | None = None,
    analysis: OptimumAnalysis | bool | None = True,
    title: str | None = None,
) -> go.Figure:
    """Loss against the swept value: one panel per parametrization, one line per K.

    Each line is the seed mean; the shaded band spans the seeds (min to max); a star marks
    the refined optimum of every (parametrization, K); runs that diverged are drawn as
    crosses along the top of the panel. The x-axis is logarithmic for learning rate, batch
    size and weight decay.

    Parameters
    ----------
    result : SweepResult or Curves
        The sweep (or its curves).
    loss : {"test_loss", "train_loss", "val_loss"}
        Which final loss to plot.
    param, fixed
        For two-parameter sweeps: the parameter along x and the values of the other (default:
        its best value at every x); see :func:`~transfer_tune.analysis.optimum.landscape_curves`.
    analysis : OptimumAnalysis or bool
        Optimum markers: an analysis to draw, ``True`` to compute one, ``False`` for none.
    title : str, optional
        Figure title.
    """
    curves = result if isinstance(result, Curves) else landscape_curves(result, param, loss, fixed)
    if analysis is True:
        analysis = analyze_optimum(curves, n_boot=200)
    kinds = curves.parametrizations
    modes = curves.modes()
    colors = _colors(modes)
    fig = make_subplots(
        rows=1,
        cols=len(kinds),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[f"{_name(k)} (K_base = {curves.base_modes})" for k in kinds],
    )
    finite = [
        v for arr in curves.losses.values() for v in arr[np.isfinite(arr)].ravel().tolist() if v > 0
    ]
    top = max(finite) * 1.6 if finite else 1.0
    x = curves.values.tolist()
    for col, kind in enumerate(kinds, start=1):
        for k in curves.modes(kind):
            arr = curves.losses[(kind, k)]
            color = colors[k]
            group = f"K{k}"
            mean = curves.mean(kind, k)
            if arr.shape[1] > 1:
                ok = np.isfinite(arr).all(axis=1)
                lo = np.where(ok, np.min(np.where(np.isfinite(arr), arr, np.inf), axis=1), np.nan)
                hi = np.where(ok, np.max(np.where(np.isfinite(arr), arr, -np.inf), axis=1), np.nan)
                meta = {"role": "band", "parametrization": kind, "modes": k}
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=_finite_or_none(hi),
                        mode="lines",
                        line={"width": 0, "color": color},
                        legendgroup=group,
                        showlegend=False,
                        hoverinfo="skip",
                        meta={**meta, "edge": "high"},
                    ),
                    row=1,
                    col=col,
                )
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=_finite_or_none(lo),
                        mode="lines",
                        line={"width": 0, "color": color},
                        fill="tonexty",
                        fillcolor=_rgba(color, 0.18),
                        legendgroup=group,
                        showlegend=False,
                        hoverinfo="skip",
                        meta={**meta, "edge": "low"},
                    ),
                    row=1,
                    col=col,
                )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=_finite_or_none(mean),
                    mode="lines+markers",
                    name=f"K = {k}",
                    line={"color": color, "width": 2},
                    marker={"size": 5},
                    legendgroup=group,
                    showlegend=col == 1,
                    hovertemplate=(
                        f"{_name(kind)} K={k}<br>{curves.param}=%{{x:.3g}}<br>"
                        "seed mean %{y:.4g}<extra></extra>"
                    ),
                    meta={"role": "curve", "parametrization": kind, "modes": k},
                ),
                row=1,
                col=col,
            )
            n_div = np.isinf(arr).sum(axis=1)
            if n_div.any():
                where = np.nonzero(n_div)[0]
                fig.add_trace(
                    go.Scatter(
                        x=[x[i] for i in where],
                        y=[top] * len(where),
                        mode="markers",
                        marker={
                            "symbol": "x-thin",
                            "size": 10,
                            "line": {"width": 2},
                            "color": color,
                        },
                        name=f"diverged (K = {k})",
                        legendgroup=group,
                        showlegend=False,
                        text=[f"{int(n_div[i])}/{arr.shape[1]} seeds diverged" for i in where],
                        hovertemplate=(
                            f"{_name(kind)} K={k}<br>{curves.param}=%{{x:.3g}}<br>"
                            "%{text}<extra>diverged</extra>"
                        ),
                        meta={"role": "diverged", "parametrization": kind, "modes": k},
                    ),
                    row=1,
                    col=col,
                )
            if isinstance(analysis, OptimumAnalysis):
                try:
                    o = analysis.optimum(kind, k)
                except TransferTuneError:
                    continue
                if math.isfinite(o.value):
                    fig.add_trace(
                        go.Scatter(
                            x=[o.value],
                            y=[o.loss],
                            mode="markers",
                            marker={
                                "symbol": "star",
                                "size": 14,
                                "color": color,
                                "line": {"width": 1, "color": "black"},
                            },
                            legendgroup=group,
                            showlegend=False,
                            error_x={
                                "type": "data",
                                "symmetric": False,
                                "array": [max(o.high - o.value, 0.0)],
                                "arrayminus": [max(o.value - o.low, 0.0)],
                                "color": color,
                            },
                            hovertemplate=(
                                f"{_name(kind)} K={k}: optimum {curves.param} {o.value:.3g} "
                                f"[{o.low:.3g}, {o.high:.3g}]<br>shift {o.shift:+.2f} "
                                f"{analysis.scale}<extra>optimum</extra>"
                            ),
                            meta={"role": "optimum", "parametrization": kind, "modes": k},
                        ),
                        row=1,
                        col=col,
                    )
        fig.update_xaxes(type=_axis_type(curves.param), title_text=curves.param, row=1, col=col)
    fig.update_yaxes(type="log")  # every panel: µP and SP share the loss scale
    fig.update_yaxes(title_text=LOSS_LABELS.get(curves.loss, curves.loss), col=1)
    subtitle = f" ({curves.note})" if curves.note else ""
    fig.update_layout(
        template=_TEMPLATE,
        title=title or f"{LOSS_LABELS.get(curves.loss, curves.loss)} vs {curves.param}{subtitle}",
        legend_title_text="modes",
        height=460,
        width=max(560, 480 * len(kinds)),
        margin={"t": 80, "b": 110 if isinstance(analysis, OptimumAnalysis) else 60},
    )
    if isinstance(analysis, OptimumAnalysis):
        fig.add_annotation(
            text="<br>".join(_short(line) for line in analysis.lines()),
            xref="paper",
            yref="paper",
            x=0,
            y=-0.2,
            yanchor="top",
            showarrow=False,
            align="left",
            font={"size": 11},
        )
    return fig


def _short(line: str, limit: int = 150) -> str:
    head = line.split(": K=", 1)[0]
    return head if len(head) <= limit else head[: limit - 1] + "…"


def optimum_figure(analysis: OptimumAnalysis, title: str | None = None) -> go.Figure:
    """The optimum against K per parametrization, with bootstrap intervals.

    A grey band marks one grid step around the K_base optimum (the "transfers" tolerance);
    the dotted line is where SP's optimum would sit if only the spectral weights' rate
    mattered (the µP rescale of R, ``c(K)/c(K_base) = sqrt(ln K_base / ln K)``).
    """
    scale = scale_for(analysis.param)
    kinds = list(dict.fromkeys(o.parametrization for o in analysis.optima))
    modes = sorted({o.modes for o in analysis.optima})
    fig = go.Figure()
    symbols = {"mup": "circle", "sp": "square"}
    palette = {"mup": "#1f77b4", "sp": "#d62728"}
    ref = [
        o for o in analysis.optima if o.modes == analysis.reference_modes and math.isfinite(o.value)
    ]
    if ref and math.isfinite(analysis.grid_step):
        pos = ref[0].position
        lo, hi = sorted(
            float(scale.inverse(np.asarray(p)))
            for p in (pos - analysis.grid_step, pos + analysis.grid_step)
        )
        fig.add_trace(
            go.Scatter(
                x=[min(modes), max(modes), max(modes), min(modes)],
                y=[lo, lo, hi, hi],
                fill="toself",
                fillcolor="rgba(128,128,128,0.15)",
                mode="lines",
                line={"width": 0},
                name=f"±1 grid step around K={analysis.reference_modes}",
                hoverinfo="skip",
                meta={"role": "tolerance"},
            )
        )
        if scale.label == "log2" and analysis.param == "lr":
            mup = get_parametrization("mup", base_modes=analysis.base_modes)
            # the spectral weights' multiplier, c(K)/c(K_base), on the reference optimum (d cancels)
            rule = np.asarray([ref[0].value * mup.spectral_multiplier(k, 1) for k in modes])
            fig.add_trace(
                go.Scatter(
                    x=modes,
                    y=rule.tolist(),
                    mode="lines",
                    line={"dash": "dot", "color": "grey"},
                    name="K_base optimum x sqrt(ln K_base / ln K)",
                    meta={"role": "reference"},
                )
            )
    for kind in kinds:
        rows = [o for o in analysis.optima if o.parametrization == kind]
        verdict = analysis.verdicts.get(kind)
        label = f"{_name(kind)}" + (f": {verdict.verdict}" if verdict else "")
        fig.add_trace(
            go.Scatter(
                x=[o.modes for o in rows],
                y=_finite_or_none(o.value for o in rows),
                mode="lines+markers",
                name=label,
                marker={"symbol": symbols.get(kind, "diamond"), "size": 9},
                line={"color": palette.get(kind)},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        max(o.high - o.value, 0.0) if math.isfinite(o.value) else 0 for o in rows
                    ],
                    "arrayminus": [
                        max(o.value - o.low, 0.0) if math.isfinite(o.value) else 0 for o in rows
                    ],
                },
                text=[f"shift {o.shift:+.2f} {analysis.scale}" for o in rows],
                hovertemplate="K=%{x}: %{y:.3g}<br>%{text}<extra>" + _name(kind) + "</extra>",
                meta={"role": "optimum", "parametrization": kind},
            )
        )
    fig.update_xaxes(
        type="log", tickvals=modes, ticktext=[str(k) for k in modes], title_text="K (Fourier modes)"
    )
    fig.update_yaxes(type=_axis_type(analysis.param), title_text=f"optimal {analysis.param}")
    pct = round(100 * analysis.confidence)
    fig.update_layout(
        template=_TEMPLATE,
        title=title
        or f"Optimal {analysis.param} vs K ({analysis.loss}, {pct}% bootstrap "
        "intervals over seeds)",
        height=440,
        width=720,
    )
    return fig


def heatmap_figure(
    result: SweepResult, loss: str = "test_loss", title: str | None = None
) -> go.Figure:
    """Seed-averaged loss over a two-parameter grid: rows parametrizations, columns K.

    Colour is ``log10`` of the loss (diverged cells are blank); a star marks each minimum.
    """
    if len(result.params) != 2:
        raise TransferTuneError(
            f"heatmap_figure needs a two-parameter sweep; {result.name!r} varies "
            f"{', '.join(result.params)} (use landscape_figure)"
        )
    p1, p2 = result.params
    kinds, modes = result.parametrizations, result.modes
    fig = make_subplots(
        rows=len(kinds),
        cols=len(modes),
        shared_xaxes=True,
        shared_yaxes=True,
        horizontal_spacing=0.02,
        vertical_spacing=0.08,
        subplot_titles=[f"{_name(k)}, K = {m}" for k in kinds for m in modes],
    )
    xs = [f"{v:.3g}" for v in result.values[p1]]
    ys = [f"{v:.3g}" for v in result.values[p2]]
    tables = {}
    for kind in kinds:
        for k in modes:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(result.loss_array(kind, k, loss), axis=-1)  # (n1, n2)
            tables[(kind, k)] = mean
    finite = np.concatenate([m[np.isfinite(m)] for m in tables.values()] or [np.array([])])
    zmin = float(np.log10(finite.min())) if finite.size else 0.0
    zmax = float(np.log10(finite.max())) if finite.size else 1.0
    for r, kind in enumerate(kinds, start=1):
        for c, k in enumerate(modes, start=1):
            mean = tables[(kind, k)]
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(np.isfinite(mean) & (mean > 0), np.log10(mean), np.nan)
            fig.add_trace(
                go.Heatmap(
                    x=xs,
                    y=ys,
                    z=[[None if not math.isfinite(v) else v for v in row] for row in z.T],
                    coloraxis="coloraxis",
                    hovertemplate=f"{p1}=%{{x}}<br>{p2}=%{{y}}<br>log10 loss %{{z:.3f}}"
                    f"<extra>{_name(kind)} K={k}</extra>",
                    meta={"role": "heatmap", "parametrization": kind, "modes": k},
                ),
                row=r,
                col=c,
            )
            if np.isfinite(z).any():
                i, j = np.unravel_index(np.nanargmin(np.where(np.isfinite(z), z, np.nan)), z.shape)
                fig.add_trace(
                    go.Scatter(
                        x=[xs[i]],
                        y=[ys[j]],
                        mode="markers",
                        marker={
                            "symbol": "star",
                            "size": 13,
                            "color": "white",
                            "line": {"width": 1, "color": "black"},
                        },
                        showlegend=False,
                        hovertemplate=f"minimum: {p1}={xs[i]}, {p2}={ys[j]}<extra></extra>",
                        meta={"role": "optimum", "parametrization": kind, "modes": k},
                    ),
                    row=r,
                    col=c,
                )
    fig.update_xaxes(title_text=p1, row=len(kinds))
    fig.update_yaxes(title_text=p2, col=1)
    fig.update_layout(
        template=_TEMPLATE,
        coloraxis={
            "colorscale": "Viridis",
            "cmin": zmin,
            "cmax": zmax,
            "colorbar": {"title": {"text": "log10 loss"}},
        },
        title=title or f"log10 {LOSS_LABELS.get(loss, loss)} over {p1} x {p2}",
        height=300 * len(kinds) + 120,
        width=max(600, 260 * len(modes) + 160),
    )
    return fig


# ---------------------------------------------------------------------------------------------
# The spectral-norm check
# ---------------------------------------------------------------------------------------------
def spectral_norm_check(
    modes: Sequence[int] = (4, 8, 16, 32, 64, 128, 256),
    widths: Sequence[int] = (1, 32),
    dim: int = 1,
    base_modes: int | None = None,
    seeds: Iterable[int] = range(8),
) -> list[dict[str, Any]]:
    """Spectral norm of R at initialisation for every (width, parametrization, K).

    The norm is the largest singular value over modes of the spectral weight
    (:func:`~transfer_tune.analysis.diagnostics.spectral_norms`), averaged over ``seeds``; ``ratio``
    divides it by its value at K_base. Under SP the ratio grows like ``sqrt(ln K / ln K_base)``
    when the maximum over modes dominates (width 1); under µP it stays near 1.

    Returns
    -------
    list of dict
        ``{"width", "parametrization", "modes", "norm", "std", "ratio", "sqrt_log_ratio"}``.
    """
    import torch

    from transfer_tune.analysis.diagnostics import spectral_norms
    from transfer_tune.core.model import FNO

    modes = sorted(int(k) for k in modes)
    base = min(modes) if base_modes is None else int(base_modes)
    seeds = list(seeds)
    if not seeds:
        raise TransferTuneError("spectral_norm_check needs at least one seed")
    records: list[dict[str, Any]] = []
    mup = get_parametrization("mup", base_modes=base)
    for width in widths:
        for kind in ("mup", "sp"):
            par = get_parametrization(kind, base_modes=base)
            norms = {}
            for k in sorted(set(modes) | {base}):
                values = []
                for seed in seeds:
                    model = FNO(dim=dim, modes=k, width=width, n_layers=1, projection_width=1)
                    par.initialize(model, generator=torch.Generator().manual_seed(seed))
                    values.append(spectral_norms(model)[0])
                norms[k] = (float(np.mean(values)), float(np.std(values)))
            for k in modes:
                records.append(
                    {
                        "width": int(width),
                        "parametrization": kind,
                        "modes": k,
                        "norm": norms[k][0],
                        "std": norms[k][1],
                        "ratio": norms[k][0] / norms[base][0],
                        "sqrt_log_ratio": 1.0 / mup.spectral_multiplier(k, dim),
                    }
                )
    return records


def spectral_norm_figure(
    records: Sequence[Mapping[str, Any]] | None = None, title: str | None = None, **kwargs: Any
) -> go.Figure:
    """Spectral norm of R at init relative to K_base, against K: µP vs SP, one panel per width.

    Parameters
    ----------
    records : sequence of dict, optional
        From :func:`spectral_norm_check`; computed with ``**kwargs`` when omitted.
    """
    records = list(records) if records is not None else spectral_norm_check(**kwargs)
    widths = sorted({r["width"] for r in records})
    fig = make_subplots(
        rows=1,
        cols=len(widths),
        shared_yaxes=True,
        subplot_titles=[
            f"width {w}" + (" (max over modes dominates)" if w == 1 else " (bulk dominates)")
            for w in widths
        ],
    )
    palette = {"mup": "#1f77b4", "sp": "#d62728"}
    for col, w in enumerate(widths, start=1):
        rows = [r for r in records if r["width"] == w]
        modes = sorted({r["modes"] for r in rows})
        ref = {r["modes"]: r["sqrt_log_ratio"] for r in rows}
        fig.add_trace(
            go.Scatter(
                x=modes,
                y=[ref[k] for k in modes],
                mode="lines",
                line={"dash": "dot", "color": "grey"},
                name="sqrt(ln K / ln K_base)",
                showlegend=col == 1,
                meta={"role": "reference", "width": w},
            ),
            row=1,
            col=col,
        )
        for kind in ("mup", "sp"):
            sel = sorted(
                (r for r in rows if r["parametrization"] == kind), key=lambda r: r["modes"]
            )
            if not sel:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[r["modes"] for r in sel],
                    y=[r["ratio"] for r in sel],
                    mode="lines+markers",
                    name=_name(kind),
                    line={"color": palette[kind]},
                    showlegend=col == 1,
                    text=[f"norm {r['norm']:.4g} ± {r['std']:.2g}" for r in sel],
                    hovertemplate="K=%{x}: ratio %{y:.3f}<br>%{text}<extra>"
                    + _name(kind)
                    + "</extra>",
                    meta={"role": "curve", "parametrization": kind, "width": w},
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(
            type="log",
            tickvals=modes,
            ticktext=[str(k) for k in modes],
            title_text="K",
            row=1,
            col=col,
        )
    fig.update_yaxes(title_text="max-mode spectral norm of R / value at K_base", col=1)
    fig.update_layout(
        template=_TEMPLATE,
        title=title or "Spectral norm of R at init, relative to K_base (SP grows, µP does not)",
        height=420,
        width=max(560, 460 * len(widths)),
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Tuning studies
# ---------------------------------------------------------------------------------------------
def tuning_history_figure(
    storage: str | os.PathLike | None, proxy_study_name: str, title: str | None = None
) -> go.Figure:
    """The proxy search and the transferred target run, read from the storage.

    Left: the objective of every proxy trial (validation loss; pruned trials in grey at
    their last reported value), the best so far, and the target run's final validation loss
    as a star after the last trial. Right: objective against learning rate, with the
    transferred base rate marked.
    """
    import optuna
    from optuna.trial import TrialState

    from transfer_tune.search.storage import get_storage

    store = get_storage(storage)
    try:
        study = optuna.load_study(study_name=proxy_study_name, storage=store)
    except KeyError:
        raise TransferTuneError(f"no study named {proxy_study_name!r} in the storage") from None
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.58, 0.42],
        subplot_titles=["proxy search history", "objective vs learning rate"],
    )
    modes = study.user_attrs.get("model", {}).get("modes")
    fig.add_trace(
        go.Scatter(
            x=[t.number for t in done],
            y=[t.value for t in done],
            mode="markers",
            name=f"proxy trial (K={modes})" if modes else "proxy trial",
            marker={"color": "#1f77b4", "size": 7},
            meta={"role": "trial"},
        ),
        row=1,
        col=1,
    )
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        fig.add_trace(
            go.Scatter(
                x=[t.number for t in pruned],
                y=_finite_or_none(last),
                mode="markers",
                name="pruned / diverged",
                marker={"color": "lightgrey", "size": 6, "symbol": "x"},
                meta={"role": "pruned"},
            ),
            row=1,
            col=1,
        )
    if done:
        best, running = [], math.inf
        for t in done:
            running = min(running, t.value)
            best.append(running)
        fig.add_trace(
            go.Scatter(
                x=[t.number for t in done],
                y=best,
                mode="lines",
                line={"shape": "hv", "color": "#1f77b4"},
                name="best so far",
                meta={"role": "best"},
            ),
            row=1,
            col=1,
        )
    with_lr = [t for t in done if "lr" in t.params]
    if with_lr:
        fig.add_trace(
            go.Scatter(
                x=[t.params["lr"] for t in with_lr],
                y=[t.value for t in with_lr],
                mode="markers",
                marker={"color": "#1f77b4", "size": 7},
                showlegend=False,
                meta={"role": "trial_lr"},
            ),
            row=1,
            col=2,
        )
    target = _target_info(store, study)
    if target is not None:
        x_last = (trials[-1].number + 1) if trials else 0
        label = f"target K={target['modes']}"
        y = target["val_loss"]
        if y is not None:
            fig.add_trace(
                go.Scatter(
                    x=[x_last],
                    y=[y],
                    mode="markers+text",
                    marker={
                        "symbol": "star",
                        "size": 16,
                        "color": "#d62728",
                        "line": {"width": 1, "color": "black"},
                    },
                    text=[label],
                    textposition="top left",
                    name=f"{label} (transferred, final val loss)",
                    hovertemplate=f"{label}: final val loss %{{y:.4g}}<br>"
                    f"test loss {target['test_loss']}<extra>target</extra>",
                    meta={"role": "target"},
                ),
                row=1,
                col=1,
            )
        if target["lr"] is not None:
            ys = [t.value for t in with_lr] + ([y] if y is not None else [])
            ys = [v for v in ys if v is not None and math.isfinite(v) and v > 0]
            span = [min(ys) / 1.2, max(ys) * 1.2] if ys else [None, None]
            fig.add_trace(
                go.Scatter(
                    x=[target["lr"], target["lr"]],
                    y=span,
                    mode="lines",
                    line={"dash": "dash", "color": "#d62728"},
                    name=f"transferred lr {target['lr']:.3g}",
                    meta={"role": "target_lr_line"},
                ),
                row=1,
                col=2,
            )
            if y is not None:
                fig.add_trace(
                    go.Scatter(
                        x=[target["lr"]],
                        y=[y],
                        mode="markers",
                        marker={
                            "symbol": "star",
                            "size": 16,
                            "color": "#d62728",
                            "line": {"width": 1, "color": "black"},
                        },
                        showlegend=False,
                        meta={"role": "target_lr"},
                    ),
                    row=1,
                    col=2,
                )
    fig.update_xaxes(title_text="trial", row=1, col=1)
    fig.update_xaxes(title_text="learning rate", type="log", row=1, col=2)
    fig.update_yaxes(title_text="validation loss (rel. L2)", type="log", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(
        template=_TEMPLATE,
        title=title or f"Proxy study {proxy_study_name!r} and its transferred target run",
        height=460,
        width=1100,
    )
    return fig


def _target_info(store: Any, study: Any) -> dict[str, Any] | None:
    """The target run linked from a proxy study (``target_study`` user attribute), if any."""
    import optuna

    name = study.user_attrs.get("target_study")
    if not name:
        return None
    try:
        target = optuna.load_study(study_name=name, storage=store)
    except KeyError:
        return None
    attrs = target.user_attrs
    plan = attrs.get("plan", {}) or {}
    metrics = attrs.get("metrics", {}) or {}
    complete = [t for t in target.get_trials(deepcopy=False) if t.value is not None]
    val = metrics.get("val_loss")
    if val is None and complete and complete[-1].intermediate_values:
        iv = complete[-1].intermediate_values
        val = iv[max(iv)]
    return {
        "name": name,
        "modes": plan.get("modes", metrics.get("modes")),
        "lr": plan.get("lr"),
        "val_loss": val,
        "test_loss": metrics.get("test_loss", complete[-1].value if complete else None),
        "metrics": metrics,
        "plan": plan,
        "checkpoint": attrs.get("checkpoint"),
        "study": target,
    }


# ---------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------
class FigureExportWarning(UserWarning):
    """A static image (PNG/SVG) could not be written; the HTML file was."""


@dataclass
class SavedFigure:
    """Files written by :func:`save_figure`.

    Attributes
    ----------
    html : Path
        The interactive figure (always written; plotly.js embedded, opens offline).
    images : list of Path
        PNG/SVG files written (empty when kaleido could not run a Chromium).
    warning : str or None
        Why images are missing, if they are.
    """

    html: Path
    images: list[Path] = field(default_factory=list)
    warning: str | None = None

    @property
    def files(self) -> list[Path]:
        """All files written."""
        return [self.html, *self.images]


def save_figure(
    fig: go.Figure,
    path_stem: str | os.PathLike,
    formats: Sequence[str] = ("png",),
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float = 2.0,
) -> SavedFigure:
    """Write ``fig`` to ``{path_stem}.html`` and, when possible, to PNG/SVG/PDF.

    Static export uses kaleido, which drives an installed Chromium (Debian's
    ``/usr/bin/chromium`` works; set ``BROWSER_PATH`` to pick another). Without one the
    images are skipped: a :class:`FigureExportWarning` says why, and so does the returned
    :attr:`SavedFigure.warning`. Nothing is downloaded.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
        The figure.
    path_stem : str or path
        Output path without extension (its folder is created; an extension is dropped).
    formats : sequence of {"png", "svg", "pdf", "jpeg", "webp"}
        Static formats to try (``()`` for HTML only).
    width, height : int, optional
        Image size in CSS pixels (the figure's own by default).
    scale : float
        Pixel-density factor of raster images.
    """
    (saved,) = save_figures(
        {path_stem: fig}, formats, width=width, height=height, scale=scale, stacklevel=3
    )
    return saved


def save_figures(
    figures: Mapping[str | os.PathLike, go.Figure],
    formats: Sequence[str] = ("png",),
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float = 2.0,
    stacklevel: int = 2,
) -> list[SavedFigure]:
    """:func:`save_figure` for several figures ``{path_stem: figure}``, with one Chromium.

    Starting Chromium takes seconds, so all static images are written in one kaleido call.
    """
    items = []
    for path_stem, fig in figures.items():
        stem = Path(path_stem)
        if stem.suffix.lower() in {".html", ".png", ".svg", ".pdf", ".jpeg", ".webp"}:
            stem = stem.with_suffix("")
        stem.parent.mkdir(parents=True, exist_ok=True)
        html = stem.with_suffix(".html")
        fig.write_html(str(html), include_plotlyjs=True, full_html=True)
        items.append((stem, fig, SavedFigure(html=html)))
    formats = [f.lower().lstrip(".") for f in formats]
    if not formats or not items:
        return [saved for _, _, saved in items]
    jobs = [(fig, stem.with_suffix(f".{f}")) for stem, fig, _ in items for f in formats]
    try:
        import plotly.io as pio

        pio.write_images(
            [fig for fig, _ in jobs],
            [str(path) for _, path in jobs],
            width=[width or fig.layout.width for fig, _ in jobs],
            height=[height or fig.layout.height for fig, _ in jobs],
            scale=scale,
        )
    except Exception as exc:  # kaleido/Chromium missing or failing: the HTML still stands
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        names = ", ".join(saved.html.name for _, _, saved in items)
        message = (
            f"wrote {names} but no {'/'.join(f.upper() for f in formats)}: static export "
            f"needs kaleido and a Chromium it can start ({type(exc).__name__}: {first}). "
            "Install one (Debian: apt-get install chromium) or set BROWSER_PATH."
        )
        warnings.warn(message, FigureExportWarning, stacklevel=stacklevel)
        for _, path in jobs:
            if path.exists() and path.stat().st_size == 0:
                path.unlink()
        for _, _, saved in items:
            saved.warning = message
        return [saved for _, _, saved in items]
    for stem, _, saved in items:
        saved.images = [
            p
            for p in (stem.with_suffix(f".{f}") for f in formats)
            if p.exists() and p.stat().st_size > 0
        ]
    return [saved for _, _, saved in items]
