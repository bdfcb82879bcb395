"""What every figure shares: labels, template, colours and small trace helpers."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from transfer_tune.analysis.landscape import SWEEPABLE

LOSS_LABELS = {
    "test_loss": "final test loss (rel. L2)",
    "train_loss": "final train loss (rel. L2)",
    "val_loss": "final validation loss (rel. L2)",
}
TEMPLATE = "plotly_white"
#: One colour per parametrization where µP and SP are drawn side by side.
PALETTE = {"mup": "#1f77b4", "sp": "#d62728"}


def colors(modes: Sequence[int]) -> dict[int, str]:
    """One colour per K, dark (small K) to light (large K), shared by all panels."""
    n = len(modes)
    positions = [0.0] if n == 1 else [0.85 * i / (n - 1) for i in range(n)]
    return dict(zip(modes, sample_colorscale("Viridis", positions), strict=True))


def rgba(color: str, alpha: float) -> str:
    """``"rgb(r, g, b)"`` with an opacity."""
    body = color[color.index("(") + 1 : color.index(")")]
    r, g, b = (float(c) for c in body.split(",")[:3])
    return f"rgba({r:.0f},{g:.0f},{b:.0f},{alpha})"


def finite_or_none(values: Iterable[float]) -> list[float | None]:
    """Floats, with NaN and inf as ``None`` (a gap in a plotly line)."""
    return [float(v) if math.isfinite(v) else None for v in values]


def axis_type(param: str) -> str:
    """``"log"`` for the parameters swept on a log scale, else ``"linear"``."""
    return "log" if SWEEPABLE.get(param, True) else "linear"


def star(color: str, size: int) -> dict:
    """The marker of a highlighted point (an optimum, the transferred target)."""
    return {"symbol": "star", "size": size, "color": color, "line": {"width": 1, "color": "black"}}


#: The custom-figure card of optuna-dashboard 0.21 (measured in headless Chromium at a 1400 px
#: window: a half-width card whose plot box is 620 x 450 px). Its box is always 450 px high;
#: its width follows the window, so figures for it autosize.
CARD_WIDTH, CARD_HEIGHT = 620, 450
#: Characters of a card's title line that stay clear of plotly's modebar (the rest wraps).
TITLE_CHARS = 52


def for_card(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` sized for a dashboard card: it fills its box, whatever its width.

    The fixed ``width``/``height`` (set for HTML and PNG files) are dropped so plotly
    autosizes to the card, and the legend moves from the right (where it takes a third of a
    620 px card) to a band under the title, above the panels and their titles.
    """
    card = go.Figure(fig)
    text = card.layout.title.text or ""
    subtitle = card.layout.title.subtitle.text
    if subtitle is None and "<br>" in text:
        text, _, subtitle = text.partition("<br>")
    if subtitle is None and len(text) > TITLE_CHARS:  # the modebar covers the card's top right
        cut = text.rfind(" ", 0, TITLE_CHARS)
        text, subtitle = (text[:cut], text[cut + 1 :]) if cut > 0 else (text, None)
    for tag in ("<sup>", "</sup>"):
        subtitle = subtitle.replace(tag, "") if subtitle else subtitle
    card.update_layout(
        width=None,
        height=None,
        autosize=True,
        margin={"l": 60, "r": 20, "t": 120, "b": 50},
        title={
            "text": text,
            "subtitle": {"text": subtitle, "font": {"size": 11}},
            "font": {"size": 14},
            "x": 0.01,
            "xanchor": "left",
            "xref": "container",
            "y": 0.985,
            "yanchor": "top",
            "yref": "container",
        },
        legend={
            "orientation": "h",
            "x": 0.01,
            "xanchor": "left",
            "xref": "container",
            "y": 0.875,
            "yanchor": "top",
            "yref": "container",
            "font": {"size": 10},
        },
    )
    return card
