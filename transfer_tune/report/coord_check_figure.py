"""Plotly figure of a coord check over K or width; it only draws.

:func:`coord_check_figure` takes a :class:`~transfer_tune.CoordCheckResult`
and returns a :class:`plotly.graph_objects.Figure` with one panel per recorded layer and
parametrization (rows: layers in model order; columns: µP beside SP), x = K (or width) and
y = RMS, both
on log axes, one line per step: ``t = 0`` is the layer's output at init, ``t >= 1`` the change
of that output after t Adam steps. Every trace carries ``meta = {"role": "curve",
"parametrization", "layer", "step"}``.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from transfer_tune.analysis.coord_result import CoordCheckResult
from transfer_tune.core.parametrization import display_name
from transfer_tune.report import style

__all__ = ["coord_check_figure"]

#: Pixels per row of panels.
ROW_HEIGHT = 190


def coord_check_figure(result: CoordCheckResult, title: str | None = None) -> go.Figure:
    """Layer output size (t = 0) and update size (t >= 1) against K or width, µP beside SP.

    Parameters
    ----------
    result : CoordCheckResult
        From :func:`transfer_tune.coord_check` (or read back with
        :meth:`CoordCheckResult.from_records`).
    title : str, optional
        Overrides the default title (which states the base and the verdicts).
    """
    kinds, layers, points, steps = (
        result.parametrizations,
        result.layers,
        result.points,
        result.steps,
    )
    name = result.axis_label
    step_colors = style.colors(steps)
    fig = make_subplots(
        rows=len(layers),
        cols=len(kinds),
        shared_xaxes=True,
        shared_yaxes="rows",
        horizontal_spacing=0.06,
        vertical_spacing=min(0.04, 0.3 / max(len(layers), 1)),
        subplot_titles=[f"{display_name(k)} · {layer}" for layer in layers for k in kinds],
    )
    for row, layer in enumerate(layers, start=1):
        for col, kind in enumerate(kinds, start=1):
            for step in steps:
                label = "t = 0 (init: output RMS)" if step == 0 else f"t = {step} (change RMS)"
                fig.add_trace(
                    go.Scatter(
                        x=list(points),
                        y=style.finite_or_none(result.curve(kind, layer, step)),
                        mode="lines+markers",
                        name=label,
                        legendgroup=f"step{step}",
                        showlegend=row == 1 and col == 1,
                        line={"color": step_colors[step], "dash": "dot" if step == 0 else None},
                        text=[
                            f"± {result.std(kind, layer, k, step):.2g} (sd over seeds)"
                            for k in points
                        ],
                        hovertemplate=f"{name}="
                        + "%{x}: %{y:.4g} %{text}<extra>"
                        + f"{display_name(kind)} {layer} t={step}</extra>",
                        meta={
                            "role": "curve",
                            "parametrization": kind,
                            "layer": layer,
                            "step": step,
                        },
                    ),
                    row=row,
                    col=col,
                )
            fig.update_xaxes(type="log", tickvals=list(points), row=row, col=col)
            fig.update_yaxes(type="log", row=row, col=col)
        fig.update_yaxes(title_text="RMS", row=row, col=1)
    for col in range(1, len(kinds) + 1):
        fig.update_xaxes(title_text="K (modes)" if name == "K" else name, row=len(layers), col=col)
    if title is None:
        verdict, layer = result.verdict, result.verdict_layer
        parts = [
            f"{display_name(k)} {verdict[k]} ({result.kind_ratio(k, layer):.2f}x)" for k in kinds
        ]
        base = "K_base" if name == "K" else "base width"
        title = (
            f"Coord check over {name} ({base} {result.base}): {layer} update size, "
            f"{name} = {max(points)} / {name} = {result.base}: {'; '.join(parts)}"
        )
    fig.update_layout(
        title=title,
        template=style.TEMPLATE,
        height=ROW_HEIGHT * len(layers) + 160,
    )
    return fig
