"""The figures of a proxy search and its transferred target run.

:func:`tuning_history_figure` (the search and the target's place in it),
:func:`target_curve_figure` (the target's validation loss per epoch beside the best proxy
trial's) and :func:`plan_figure` (the µP plan as a table).

It draws a :class:`~transfer_tune.report.readers.ProxyHistory` (read from the storage by
:func:`~transfer_tune.report.read_proxy_history`); it never reads a storage itself.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from transfer_tune.errors import TransferTuneError
from transfer_tune.report import style
from transfer_tune.report.readers import ProxyHistory

__all__ = ["plan_figure", "target_curve_figure", "tuning_history_figure"]


def tuning_history_figure(history: ProxyHistory, title: str | None = None) -> go.Figure:
    """The proxy search and the transferred target run.

    Left: the objective of every proxy trial (validation loss; pruned trials in grey at
    their last reported value), the best so far, and the target run's final validation loss
    as a star after the last trial. Right: objective against learning rate, with the
    transferred base rate marked.

    Parameters
    ----------
    history : ProxyHistory
        From :func:`transfer_tune.report.read_proxy_history`.
    title : str, optional
        Figure title.
    """
    if not isinstance(history, ProxyHistory):
        raise TransferTuneError(
            "tuning_history_figure draws a ProxyHistory; read one with "
            "transfer_tune.report.read_proxy_history(storage, study_name)"
        )
    trials = history.trials
    done = history.complete
    pruned = history.pruned
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.58, 0.42],
        subplot_titles=["proxy search history", "objective vs learning rate"],
    )
    modes = history.modes
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
        last = [t.last_intermediate for t in pruned]
        fig.add_trace(
            go.Scatter(
                x=[t.number for t in pruned],
                y=style.finite_or_none(last),
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
    target = history.target
    if target is not None:
        x_last = (trials[-1].number + 1) if trials else 0
        label = f"target K={target.modes}"
        y = target.val_loss
        if y is not None:
            fig.add_trace(
                go.Scatter(
                    x=[x_last],
                    y=[y],
                    mode="markers+text",
                    marker=style.star("#d62728", 16),
                    text=[label],
                    textposition="top left",
                    name=f"{label} (transferred, final val loss)",
                    hovertemplate=f"{label}: final val loss %{{y:.4g}}<br>"
                    f"test loss {target.test_loss}<extra>target</extra>",
                    meta={"role": "target"},
                ),
                row=1,
                col=1,
            )
        if target.lr is not None:
            ys = [t.value for t in with_lr] + ([y] if y is not None else [])
            ys = [v for v in ys if v is not None and math.isfinite(v) and v > 0]
            span = [min(ys) / 1.2, max(ys) * 1.2] if ys else [None, None]
            fig.add_trace(
                go.Scatter(
                    x=[target.lr, target.lr],
                    y=span,
                    mode="lines",
                    line={"dash": "dash", "color": "#d62728"},
                    name=f"transferred lr {target.lr:.3g}",
                    meta={"role": "target_lr_line"},
                ),
                row=1,
                col=2,
            )
            if y is not None:
                fig.add_trace(
                    go.Scatter(
                        x=[target.lr],
                        y=[y],
                        mode="markers",
                        marker=style.star("#d62728", 16),
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
    title = title or f"Proxy study {history.study_name!r} and its transferred target run"
    fig.update_layout(template=style.TEMPLATE, title=title, height=460, width=1100)
    return fig


def _check(history: object, name: str) -> ProxyHistory:
    if not isinstance(history, ProxyHistory):
        raise TransferTuneError(
            f"{name} draws a ProxyHistory; read one with "
            "transfer_tune.report.read_proxy_history(storage, study_name)"
        )
    return history


def target_curve_figure(history: ProxyHistory, title: str | None = None) -> go.Figure:
    """Validation loss per epoch of the target run beside the best proxy trial's.

    Both are the trials' intermediate values (relative L2 on the validation split, normalised
    units); the target's final physical test error is in the legend.
    """
    history = _check(history, "target_curve_figure")
    fig = go.Figure()
    best = history.best
    if best is not None and best.intermediate:
        fig.add_trace(
            go.Scatter(
                x=list(best.intermediate),
                y=style.finite_or_none(best.intermediate.values()),
                mode="lines+markers",
                line={"color": "#1f77b4"},
                name=f"best proxy trial {best.number} (K={history.modes})",
                meta={"role": "proxy_curve"},
            )
        )
    target = history.target
    if target is not None and target.curve:
        test = target.metrics.get("test_l2")
        extra = f"; test rel-L2 {test:.4g} (physical)" if isinstance(test, float) else ""
        fig.add_trace(
            go.Scatter(
                x=list(target.curve),
                y=style.finite_or_none(target.curve.values()),
                mode="lines+markers",
                line={"color": "#d62728", "width": 3},
                name=f"target K={target.modes}{extra}",
                meta={"role": "target_curve"},
            )
        )
    name = target.name if target is not None else history.study_name
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="validation loss (rel. L2, normalised)", type="log")
    title = title or f"Target run {name!r}: validation loss per epoch"
    fig.update_layout(template=style.TEMPLATE, title=title, height=420, width=760)
    return fig


def plan_figure(history: ProxyHistory, title: str | None = None) -> go.Figure:
    """The µP plan of the target as a table: per role, init and lr multipliers and the rate."""
    history = _check(history, "plan_figure")
    if history.target is None:
        raise TransferTuneError(f"proxy study {history.study_name!r} has no target run yet")
    plan = history.target.plan
    groups = plan.get("groups", [])
    cells = [
        [g.get("name") or g.get("role") for g in groups],
        [f"{g.get('init_multiplier', math.nan):.4f}" for g in groups],
        [f"{g.get('lr_multiplier', math.nan):.4f}" for g in groups],
        [f"{g.get('lr', math.nan):.4e}" for g in groups],
    ]
    fig = go.Figure(
        go.Table(
            header={
                "values": ["role", "init x", "lr x", "learning rate"],
                "fill_color": "#dfe7f2",
                "align": "left",
                "font": {"size": 13},
                "height": 30,
            },
            cells={"values": cells, "align": "left", "height": 28, "font": {"size": 13}},
            meta={"role": "plan"},
        )
    )
    b1, b2 = plan.get("beta1"), plan.get("beta2")
    betas = f"({b1:.4g}, {b2:.6g})" if isinstance(b1, float) and isinstance(b2, float) else "?"
    fig.update_layout(
        template=style.TEMPLATE,
        title={
            "text": title
            or f"µP plan: K {plan.get('base_modes', '?')} (proxy) -> {plan.get('modes', '?')} "
            "(target)",
            "subtitle": {
                "text": f"base lr {plan.get('lr', math.nan):.4g}, batch size "
                f"{plan.get('batch_size')}, betas {betas}: batch size and betas unchanged"
            },
        },
        height=360,
        width=620,
    )
    return fig
