"""Plotly figures of sweeps, optima and the spectral-norm check; they only draw.

Every function takes results (a :class:`~transfer_tune.analysis.landscape.SweepResult`, an
:class:`~transfer_tune.analysis.optimum.OptimumAnalysis`, the records of
:func:`~transfer_tune.spectral_norm_check`, a
:class:`~transfer_tune.report.readers.ProxyHistory`) and returns a
:class:`plotly.graph_objects.Figure`; none reads a storage or trains a model.
:mod:`transfer_tune.report.export` writes figures to HTML/PNG, and the tuning-history figure
lives in :mod:`transfer_tune.report.history` (importable from here too).

Every trace carries ``meta = {"role": ..., ...}`` (``"curve"``, ``"band"``, ``"optimum"``,
``"diverged"``, ``"heatmap"``, ``"reference"``, ...) with its parametrization and K, so code
and tests can find the traces they mean.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from transfer_tune.analysis.curves import Curves, landscape_curves, scale_for
from transfer_tune.analysis.landscape import SweepResult
from transfer_tune.analysis.optimum import OptimumAnalysis, analyze_optimum
from transfer_tune.core.parametrization import display_name, get_parametrization
from transfer_tune.errors import TransferTuneError
from transfer_tune.report import style

__all__ = [
    "heatmap_figure",
    "landscape_figure",
    "optimum_figure",
    "spectral_norm_figure",
]


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
    colors = style.colors(modes)
    fig = make_subplots(
        rows=1,
        cols=len(kinds),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[f"{display_name(k)} (K_base = {curves.base_modes})" for k in kinds],
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
            where_text = f"{display_name(kind)} K={k}<br>{curves.param}=%{{x:.3g}}<br>"
            if arr.shape[1] > 1:
                ok = np.isfinite(arr).all(axis=1)
                lo = np.where(ok, np.min(np.where(np.isfinite(arr), arr, np.inf), axis=1), np.nan)
                hi = np.where(ok, np.max(np.where(np.isfinite(arr), arr, -np.inf), axis=1), np.nan)
                meta = {"role": "band", "parametrization": kind, "modes": k}
                for edge, values in (("high", hi), ("low", lo)):  # low fills up to high
                    fill = {"fill": "tonexty", "fillcolor": style.rgba(color, 0.18)}
                    fig.add_trace(
                        go.Scatter(
                            x=x,
                            y=style.finite_or_none(values),
                            mode="lines",
                            line={"width": 0, "color": color},
                            legendgroup=group,
                            showlegend=False,
                            hoverinfo="skip",
                            meta={**meta, "edge": edge},
                            **(fill if edge == "low" else {}),
                        ),
                        row=1,
                        col=col,
                    )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=style.finite_or_none(mean),
                    mode="lines+markers",
                    name=f"K = {k}",
                    line={"color": color, "width": 2},
                    marker={"size": 5},
                    legendgroup=group,
                    showlegend=col == 1,
                    hovertemplate=f"{where_text}seed mean %{{y:.4g}}<extra></extra>",
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
                        hovertemplate=f"{where_text}%{{text}}<extra>diverged</extra>",
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
                                f"{display_name(kind)} K={k}: optimum {curves.param} {o.value:.3g} "
                                f"[{o.low:.3g}, {o.high:.3g}]<br>shift {o.shift:+.2f} "
                                f"{analysis.scale}<extra>optimum</extra>"
                            ),
                            meta={"role": "optimum", "parametrization": kind, "modes": k},
                        ),
                        row=1,
                        col=col,
                    )
        fig.update_xaxes(
            type=style.axis_type(curves.param), title_text=curves.param, row=1, col=col
        )
    fig.update_yaxes(type="log")  # every panel: µP and SP share the loss scale
    fig.update_yaxes(title_text=style.LOSS_LABELS.get(curves.loss, curves.loss), col=1)
    subtitle = f" ({curves.note})" if curves.note else ""
    fig.update_layout(
        template=style.TEMPLATE,
        title=title
        or f"{style.LOSS_LABELS.get(curves.loss, curves.loss)} vs {curves.param}{subtitle}",
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
    """The optimum against K per parametrization, with intervals over seeds (method named).

    A grey band marks one grid step around the K_base optimum (the "transfers" tolerance);
    the dotted line is where SP's optimum would sit if only the spectral weights' rate
    mattered (the µP rescale of R, ``c(K)/c(K_base) = sqrt(ln K_base / ln K)``).
    """
    scale = scale_for(analysis.param)
    kinds = list(dict.fromkeys(o.parametrization for o in analysis.optima))
    modes = sorted({o.modes for o in analysis.optima})
    fig = go.Figure()
    symbols = {"mup": "circle", "sp": "square"}
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
        label = f"{display_name(kind)}" + (f": {verdict.verdict}" if verdict else "")
        fig.add_trace(
            go.Scatter(
                x=[o.modes for o in rows],
                y=style.finite_or_none(o.value for o in rows),
                mode="lines+markers",
                name=label,
                marker={"symbol": symbols.get(kind, "diamond"), "size": 9},
                line={"color": style.PALETTE.get(kind)},
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
                hovertemplate="K=%{x}: %{y:.3g}<br>%{text}<extra>"
                + display_name(kind)
                + "</extra>",
                meta={"role": "optimum", "parametrization": kind},
            )
        )
    fig.update_xaxes(
        type="log", tickvals=modes, ticktext=[str(k) for k in modes], title_text="K (Fourier modes)"
    )
    fig.update_yaxes(type=style.axis_type(analysis.param), title_text=f"optimal {analysis.param}")
    fig.update_layout(
        template=style.TEMPLATE,
        title=title
        or f"Optimal {analysis.param} vs K ({analysis.loss}, {analysis.method_label} intervals)",
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
        subplot_titles=[f"{display_name(k)}, K = {m}" for k in kinds for m in modes],
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
                    f"<extra>{display_name(kind)} K={k}</extra>",
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
                        marker=style.star("white", 13),
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
        template=style.TEMPLATE,
        coloraxis={
            "colorscale": "Viridis",
            "cmin": zmin,
            "cmax": zmax,
            "colorbar": {"title": {"text": "log10 loss"}},
        },
        title=title or f"log10 {style.LOSS_LABELS.get(loss, loss)} over {p1} x {p2}",
        height=300 * len(kinds) + 120,
        width=max(600, 260 * len(modes) + 160),
    )
    return fig


# ---------------------------------------------------------------------------------------------
# The spectral-norm check (computed by transfer_tune.spectral_norm_check)
# ---------------------------------------------------------------------------------------------
def spectral_norm_figure(
    records: Sequence[Mapping[str, Any]], title: str | None = None
) -> go.Figure:
    """Spectral norm of R at init relative to K_base, against K: µP vs SP, one panel per width.

    Parameters
    ----------
    records : sequence of dict
        From :func:`transfer_tune.spectral_norm_check`.
    """
    records = list(records)
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
                    name=display_name(kind),
                    line={"color": style.PALETTE[kind]},
                    showlegend=col == 1,
                    text=[f"norm {r['norm']:.4g} ± {r['std']:.2g}" for r in sel],
                    hovertemplate="K=%{x}: ratio %{y:.3f}<br>%{text}<extra>"
                    + display_name(kind)
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
        template=style.TEMPLATE,
        title=title or "Spectral norm of R at init, relative to K_base (SP grows, µP does not)",
        height=420,
        width=max(560, 460 * len(widths)),
    )
    return fig
