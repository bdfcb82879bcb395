"""Writing figures to files: HTML always (plotly.js embedded), PNG/SVG/PDF when kaleido can.

Static export drives an installed Chromium through kaleido; without one the HTML still
stands and a :class:`FigureExportWarning` (and :attr:`SavedFigure.warning`) says why.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import plotly.graph_objects as go

__all__ = ["FigureExportWarning", "SavedFigure", "save_figure", "save_figures"]


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


def _with_extension(stem: Path, extension: str) -> Path:
    """``stem`` + ``.extension``, keeping any dot of the stem (``run.v2`` -> ``run.v2.html``)."""
    return stem.with_name(f"{stem.name}.{extension}")


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
        html = _with_extension(stem, "html")
        fig.write_html(str(html), include_plotlyjs=True, full_html=True)
        items.append((stem, fig, SavedFigure(html=html)))
    formats = [f.lower().lstrip(".") for f in formats]
    if not formats or not items:
        return [saved for _, _, saved in items]
    jobs = [(fig, _with_extension(stem, f)) for stem, fig, _ in items for f in formats]
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
            for p in (_with_extension(stem, f) for f in formats)
            if p.exists() and p.stat().st_size > 0
        ]
    return [saved for _, _, saved in items]
