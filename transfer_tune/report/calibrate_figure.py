"""Plotly figure of a calibration: R's optimal rate against ln K; it only draws.

:func:`calibration_figure` takes a :class:`~transfer_tune.analysis.calibrate.Calibration` and
draws, against ln K (log axis), each seed's refined optimum of R's rate (small dots), the seed
mean with its interval per K, the fitted line ``lr_R* ∝ (ln K)^-alpha`` and, through the fitted
value at K_base, the lines of µP (alpha = 1/2) and SP (alpha = 0). Every trace carries
``meta = {"role": ...}``.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from transfer_tune.analysis.calibrate import MUP_ALPHA, SP_ALPHA, Calibration
from transfer_tune.report import style

__all__ = ["calibration_figure"]


def _short(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def calibration_figure(cal: Calibration, title: str | None = None) -> go.Figure:
    """Optimum of R's rate per K (seeds, mean ± interval), the fitted, µP and SP lines."""
    lnk = np.log(np.asarray(cal.modes, dtype=float))
    fig = go.Figure()
    positions = np.asarray(cal.positions, dtype=float)
    for j in range(positions.shape[1] if positions.ndim == 2 else 0):
        ys = positions[:, j]
        fig.add_trace(
            go.Scatter(
                x=lnk,
                y=style.finite_or_none(2.0**ys),
                mode="markers",
                marker={"size": 6, "color": "rgba(120,120,120,0.55)"},
                name="per seed",
                legendgroup="seeds",
                showlegend=j == 0,
                meta={"role": "seed", "seed": j},
            )
        )
    mean = np.asarray(cal.k_mean, dtype=float)
    low, high = np.asarray(cal.k_low, dtype=float), np.asarray(cal.k_high, dtype=float)
    err = np.where(np.isfinite(high), 2.0**high - 2.0**mean, 0.0)
    err_minus = np.where(np.isfinite(low), 2.0**mean - 2.0**low, 0.0)
    labels = [
        f"K = {k}" + (" (grid edge)" if e else "")
        for k, e in zip(cal.modes, cal.at_edge, strict=True)
    ]
    fig.add_trace(
        go.Scatter(
            x=lnk,
            y=style.finite_or_none(2.0**mean),
            error_y={"type": "data", "array": err.tolist(), "arrayminus": err_minus.tolist()},
            mode="markers",
            marker={"size": 12, "color": "#222222", "symbol": "diamond"},
            text=labels,
            name=f"seed mean, {round(100 * cal.confidence)}% interval",
            meta={"role": "mean"},
        )
    )
    xs = np.geomspace(lnk.min(), lnk.max(), 50)
    base_y = cal.fitted(cal.base_modes)  # the lines meet at K_base
    x_base = math.log2(math.log(cal.base_modes))
    lines = (
        ("fit", cal.alpha, f"fit: α = {cal.alpha:.2f} [{cal.low:.2f}, {cal.high:.2f}]", "solid"),
        ("mup", MUP_ALPHA, f"µP: α = {MUP_ALPHA:g}", "dash"),
        ("sp", SP_ALPHA, f"SP: α = {SP_ALPHA:g}", "dot"),
    )
    colors = {"fit": "#d62728", "mup": style.PALETTE.get("mup", "#1f77b4"), "sp": "#7f7f7f"}
    for role, alpha, name, dash in lines:
        if not math.isfinite(alpha):
            continue
        ys = base_y - alpha * (np.log2(xs) - x_base)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=style.finite_or_none(2.0**ys),
                mode="lines",
                line={"dash": dash, "color": colors[role], "width": 2},
                name=name,
                meta={"role": role, "alpha": alpha},
            )
        )
    fig.update_layout(
        title=title or _short(f"R's optimal rate vs ln K: {cal.line}"),
        xaxis={
            "title": "ln K (log scale)",
            "type": "log",
            "tickvals": lnk.tolist(),
            "ticktext": [f"K={k}" for k in cal.modes],
        },
        yaxis={"title": f"R's optimal Adam rate ({cal.loss})", "type": "log"},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
        margin={"t": 60},
    )
    return fig
