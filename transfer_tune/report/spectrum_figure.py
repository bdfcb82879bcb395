"""Figure of a spectrum diagnostic: energy beyond K against K (draws only).

The numbers come from :func:`pdes.spectrum.spectrum_table`; this module only draws them.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from transfer_tune.report import style

__all__ = ["spectrum_figure"]

_LINES = (
    ("input_beyond", "input", "#1f77b4", "circle"),
    ("target_beyond", "target", "#d62728", "square"),
)


def _positive(values: list[float]) -> list[float | None]:
    """Values for a log axis: zero (or negative) becomes a gap."""
    return [v if v is not None and v > 0.0 else None for v in values]


def spectrum_figure(
    report: Any,
    proxy_modes: int | None = None,
    target_modes: int | None = None,
    title: str | None = None,
) -> go.Figure:
    """Fraction of input and target energy beyond K, against K (log-log).

    Parameters
    ----------
    report : pdes.spectrum.SpectrumReport
        From :func:`pdes.spectrum.spectrum_table`.
    proxy_modes, target_modes : int, optional
        K of the proxy and of the target, drawn as vertical lines; default those recorded in
        ``report``.
    title : str, optional
        Default names the data and its grid.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    rows = list(report.rows)
    ks = [r.modes for r in rows]
    fig = go.Figure()
    for attr, label, color, symbol in _LINES:
        fig.add_trace(
            go.Scatter(
                x=ks,
                y=_positive([getattr(r, attr) for r in rows]),
                mode="lines+markers",
                name=label,
                line={"color": color},
                marker={"symbol": symbol},
                hovertemplate="K=%{x}<br>" + label + " energy beyond K: %{y:.3e}<extra></extra>",
            )
        )
    proxy = proxy_modes if proxy_modes is not None else getattr(report, "proxy_modes", None)
    target = target_modes if target_modes is not None else getattr(report, "target_modes", None)
    for k, label, dash in ((proxy, "proxy", "dot"), (target, "target", "dash")):
        if k is not None:
            fig.add_vline(
                x=k,
                line={"dash": dash, "color": "#555555", "width": 1},
                annotation_text=f"{label} K={k}",
                annotation_position="top",
            )
    grid = "x".join(str(n) for n in getattr(report, "grid", ()))
    name = getattr(report, "name", "data")
    fig.update_layout(
        template=style.TEMPLATE,
        title=title or f"Energy beyond K: {name}" + (f" ({grid} grid)" if grid else ""),
        xaxis={"title": "K (Fourier modes kept per dimension)", "type": "log"},
        yaxis={
            "title": "fraction of non-mean energy in modes not kept",
            "type": "log",
            "exponentformat": "power",
        },
        legend={"x": 0.02, "y": 0.02},
    )
    return fig
