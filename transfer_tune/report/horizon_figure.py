"""Plotly figure of the training horizon; it only draws.

:func:`horizon_figure` takes :class:`~transfer_tune.search.horizon_stats.HorizonResult` objects
(one per study: a sweep's (parametrization, K), or one proxy study) and returns a figure with
two rows (Spearman rank correlation with the final loss; regret of the early leader) against
the epoch, one column per parametrization (µP beside SP), one line per K. Dashed lines mark
the thresholds of the horizon rule, a star each study's horizon. Every trace carries
``meta = {"role", "parametrization", "modes"}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from transfer_tune.core.parametrization import display_name
from transfer_tune.report import style
from transfer_tune.search.horizon_stats import HorizonResult

__all__ = ["horizon_figure"]


def _kind(r: HorizonResult) -> str:
    return r.parametrization or "study"


def horizon_figure(results: Sequence[HorizonResult], title: str | None = None) -> go.Figure:
    """Correlation and regret against the epoch, µP beside SP, one line per K."""
    kinds: list[str] = []
    for r in results:
        if _kind(r) not in kinds:
            kinds.append(_kind(r))
    order = {"mup": 0, "sp": 1}
    kinds.sort(key=lambda k: order.get(k, 2))
    modes = sorted({r.modes for r in results if r.modes is not None})
    palette = style.colors(modes) if modes else {}
    fig = make_subplots(
        rows=2,
        cols=len(kinds),
        shared_xaxes=True,
        shared_yaxes="rows",
        horizontal_spacing=0.06,
        vertical_spacing=0.08,
        subplot_titles=[
            f"{display_name(k)} · {what}"
            for what in ("Spearman ρ (epoch e vs final)", "regret of the leader at e")
            for k in kinds
        ],
    )
    shown: set[int | None] = set()
    for r in results:
        col = kinds.index(_kind(r)) + 1
        color = palette.get(r.modes, style.PALETTE.get(_kind(r), "#1f77b4"))
        label = f"K = {r.modes}" if r.modes is not None else r.name
        meta = {"parametrization": r.parametrization, "modes": r.modes}
        for row, ys in (
            (1, [s.spearman for s in r.stats]),
            (2, [100 * s.regret for s in r.stats]),
        ):
            fig.add_trace(
                go.Scatter(
                    x=r.epochs,
                    y=style.finite_or_none(ys),
                    mode="lines+markers",
                    name=label,
                    legendgroup=label,
                    showlegend=row == 1 and r.modes not in shown,
                    line={"color": color},
                    hovertemplate=f"{r.name}<br>epoch %{{x}}: %{{y:.3g}}<extra></extra>",
                    meta={"role": "curve", **meta},
                ),
                row=row,
                col=col,
            )
            h = r.at(r.horizon)
            fig.add_trace(
                go.Scatter(
                    x=[r.horizon],
                    y=style.finite_or_none([h.spearman if row == 1 else 100 * h.regret]),
                    mode="markers",
                    marker=style.star(color, 13),
                    name=f"horizon {label}",
                    showlegend=False,
                    hovertemplate=f"{r.name}: horizon {r.horizon}/{r.final_epoch}<extra></extra>",
                    meta={"role": "horizon", **meta},
                ),
                row=row,
                col=col,
            )
        shown.add(r.modes)
    rule = results[0] if results else None
    for col in range(1, len(kinds) + 1):
        if rule is not None:
            fig.add_hline(
                y=rule.min_correlation, line_dash="dash", line_color="grey", row=1, col=col
            )
            fig.add_hline(
                y=100 * rule.max_regret, line_dash="dash", line_color="grey", row=2, col=col
            )
        fig.update_xaxes(title_text="epochs trained e", row=2, col=col)
    fig.update_yaxes(title_text="Spearman ρ", row=1, col=1)
    fig.update_yaxes(title_text="regret (%)", rangemode="tozero", row=2, col=1)
    if title is None:
        parts = [
            f"{display_name(_kind(r))} K={r.modes}: {r.horizon}/{r.final_epoch}" for r in results
        ]
        title = "Training horizon (Spearman ≥ {:g}, regret ≤ {:g} %)<br><sup>{}</sup>".format(
            rule.min_correlation if rule else 0.9,
            100 * (rule.max_regret if rule else 0.02),
            "; ".join(parts),
        )
    fig.update_layout(
        title=title, template=style.TEMPLATE, height=620, width=460 * len(kinds) + 200
    )
    return fig
