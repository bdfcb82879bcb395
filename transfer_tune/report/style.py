"""What every figure shares: labels, template, colours and small trace helpers."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

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
