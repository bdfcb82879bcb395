"""Figures: one trace per K and parametrization, valid HTML, honest about missing Chromium."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from transfer_tune.analysis.landscape import LandscapeRow, SweepResult
from transfer_tune.analysis.optimum import analyze_optimum
from transfer_tune.report.figures import (
    FigureExportWarning,
    heatmap_figure,
    landscape_figure,
    optimum_figure,
    save_figure,
    spectral_norm_check,
    spectral_norm_figure,
    tuning_history_figure,
)
from transfer_tune.search.storage import get_storage

LRS = (2.0 ** np.arange(-12, -5.5, 0.5)).tolist()
MODES = [4, 8, 16]
KINDS = ["mup", "sp"]


def synthetic_sweep(params=("lr",), seeds=(0, 1)) -> SweepResult:
    """µP optimum fixed at 2^-9; SP's drifts down one octave per doubling of K."""
    values = {"lr": LRS, "batch_size": [8, 16]}
    values = {p: values[p] for p in params}
    rows = []
    number = 0
    for kind in KINDS:
        for k in MODES:
            x_star = -9.0 - (math.log2(k / 4) if kind == "sp" else 0.0)
            points = [
                dict(zip(params, c, strict=True))
                for c in np.array(np.meshgrid(*values.values(), indexing="ij"))
                .reshape(len(params), -1)
                .T.tolist()
            ]
            for point in points:
                if "batch_size" in point:
                    point["batch_size"] = int(point["batch_size"])
                for seed in seeds:
                    x = math.log2(point["lr"])
                    loss = 0.05 * math.exp(0.3 * (x - x_star) ** 2) * (1 + 0.02 * seed)
                    diverged = x > -6.6 + 0.1 * math.log2(k)
                    loss = math.inf if diverged else loss
                    rows.append(
                        LandscapeRow(kind, k, point, seed, loss, loss, loss, diverged, number, 0.1)
                    )
                    number += 1
    config = {
        "params": list(params),
        "values": values,
        "seeds": list(seeds),
        "modes": MODES,
        "parametrizations": KINDS,
        "base_modes": 4,
        "epochs": 1,
    }
    return SweepResult(name="synthetic", config=config, rows=rows)


def by_role(fig, role: str) -> list:
    return [t for t in fig.data if (t.meta or {}).get("role") == role]


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.div_ids: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        if tag == "div":
            self.div_ids += [v for k, v in attrs if k == "id"]

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def plotly_data(path: Path) -> list[dict]:
    """Parse an HTML file written by plotly: the traces passed to Plotly.newPlot."""
    text = path.read_text(encoding="utf-8")
    parser = _Scripts()
    parser.feed(text)
    assert text.lstrip().lower().startswith(("<html", "<!doctype html>"))
    assert text.rstrip().lower().endswith("</html>")
    assert any("plotly.js" in s.lower() or "plotly=" in s.lower() for s in parser.scripts)
    call = next(s for s in parser.scripts if "Plotly.newPlot(" in s)
    rest = call[call.index("Plotly.newPlot(") + len("Plotly.newPlot(") :].lstrip()
    decoder = json.JSONDecoder()
    div_id, n = decoder.raw_decode(rest)
    assert div_id in parser.div_ids
    rest = rest[n:].lstrip()
    assert rest.startswith(",")
    data, _ = decoder.raw_decode(rest[1:].lstrip())
    return data


def test_landscape_figure_has_one_curve_per_k_and_parametrization(tmp_path):
    result = synthetic_sweep()
    analysis = analyze_optimum(result, n_boot=50)
    fig = landscape_figure(result, analysis=analysis)
    curves = by_role(fig, "curve")
    assert sorted((t.meta["parametrization"], t.meta["modes"]) for t in curves) == sorted(
        (p, k) for p in KINDS for k in MODES
    )
    assert len(by_role(fig, "band")) == 2 * len(curves)  # upper and lower edge per curve
    assert len(by_role(fig, "optimum")) == len(curves)
    diverged = by_role(fig, "diverged")
    assert len(diverged) == len(curves)  # every curve diverges at its largest rates
    assert all(t.marker.symbol == "x-thin" for t in diverged)
    curve = next(
        t for t in curves if t.meta == {"role": "curve", "parametrization": "sp", "modes": 16}
    )
    assert curve.y[-1] is None and curve.x == tuple(LRS)  # diverged points leave a gap
    star = next(
        t
        for t in by_role(fig, "optimum")
        if t.meta["modes"] == 16 and t.meta["parametrization"] == "sp"
    )
    assert math.log2(star.x[0]) == pytest.approx(-11.0, abs=0.1)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert [a.text for a in fig.layout.annotations][:2] == ["µP (K_base = 4)", "SP (K_base = 4)"]

    saved = save_figure(fig, tmp_path / "landscape", formats=())
    assert saved.images == [] and saved.warning is None
    data = plotly_data(saved.html)
    assert len(data) == len(fig.data)
    names = [d["meta"]["role"] for d in data]
    assert names.count("curve") == len(KINDS) * len(MODES)


def test_optimum_and_heatmap_figures():
    analysis = analyze_optimum(synthetic_sweep(), n_boot=50)
    fig = optimum_figure(analysis)
    optima = by_role(fig, "optimum")
    assert [t.meta["parametrization"] for t in optima] == KINDS
    assert [t.name for t in optima] == ["µP: transfers", "SP: drifts"]
    assert list(optima[0].x) == MODES
    assert len(by_role(fig, "tolerance")) == 1 and len(by_role(fig, "reference")) == 1

    two = synthetic_sweep(params=("lr", "batch_size"), seeds=(0,))
    heat = heatmap_figure(two)
    cells = by_role(heat, "heatmap")
    assert sorted((t.meta["parametrization"], t.meta["modes"]) for t in cells) == sorted(
        (p, k) for p in KINDS for k in MODES
    )
    assert np.array(cells[0].z, dtype=float).shape == (2, len(LRS))  # (batch sizes, rates)
    with pytest.raises(ValueError, match="two-parameter"):
        heatmap_figure(synthetic_sweep())
    fig2 = landscape_figure(two)  # the profile over batch sizes
    assert len(by_role(fig2, "curve")) == len(KINDS) * len(MODES)


def test_spectral_norm_check_figure():
    records = spectral_norm_check(modes=(4, 16, 256), widths=(1, 8), seeds=range(12))
    assert len(records) == 2 * 2 * 3
    ratio = {(r["width"], r["parametrization"], r["modes"]): r["ratio"] for r in records}
    assert ratio[(1, "sp", 256)] > 1.5  # grows like sqrt(ln K) where the max over modes rules
    assert abs(ratio[(1, "mup", 256)] - 1) < 0.2  # µP stays flat
    fig = spectral_norm_figure(records)
    curves = by_role(fig, "curve")
    assert sorted((t.meta["width"], t.meta["parametrization"]) for t in curves) == [
        (1, "mup"),
        (1, "sp"),
        (8, "mup"),
        (8, "sp"),
    ]


def test_tuning_history_marks_the_transferred_target(tmp_path):
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    store = get_storage(url)
    proxy = optuna.create_study(storage=store, study_name="proxy", direction="minimize")
    for key, value in {"kind": "proxy", "model": {"modes": 4}, "epochs": 3}.items():
        proxy.set_user_attr(key, value)
    dist = {"lr": FloatDistribution(1e-4, 1e-1, log=True)}
    for lr, value in [(1e-3, 0.3), (3e-3, 0.2), (1e-2, 0.25)]:
        proxy.add_trial(create_trial(params={"lr": lr}, distributions=dist, value=value))
    proxy.add_trial(
        create_trial(
            params={"lr": 0.09},
            distributions=dist,
            state=TrialState.PRUNED,
            intermediate_values={0: 0.9},
        )
    )
    target = optuna.create_study(storage=store, study_name="target", direction="minimize")
    plan = {"modes": 32, "base_modes": 4, "lr": 3e-3, "batch_size": 20, "groups": []}
    for key, value in {
        "kind": "target",
        "proxy_study": "proxy",
        "plan": plan,
        "metrics": {"val_loss": 0.12, "test_loss": 0.13, "seconds": 10.0},
    }.items():
        target.set_user_attr(key, value)
    target.add_trial(create_trial(value=0.13, intermediate_values={0: 0.5, 1: 0.12}))
    proxy.set_user_attr("target_study", "target")

    fig = tuning_history_figure(url, "proxy")
    (star,) = by_role(fig, "target")
    assert star.x == (4,) and star.y == (0.12,)  # after the 4 proxy trials, its val loss
    assert "K=32" in star.name
    (line,) = by_role(fig, "target_lr_line")
    assert line.x == (3e-3, 3e-3)
    assert by_role(fig, "trial")[0].y == (0.3, 0.2, 0.25)
    assert by_role(fig, "best")[0].y == (0.3, 0.2, 0.2)
    assert by_role(fig, "pruned")[0].y == (0.9,)


def test_save_figure_falls_back_to_html_without_chromium(tmp_path, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    fig = optimum_figure(analyze_optimum(synthetic_sweep(), n_boot=20))
    with pytest.warns(FigureExportWarning, match="no PNG"):
        saved = save_figure(fig, tmp_path / "out" / "optimum.png", formats=("png",))
    assert saved.html == tmp_path / "out" / "optimum.html" and saved.html.exists()
    assert saved.images == [] and "Chromium" in saved.warning
    assert not (tmp_path / "out" / "optimum.png").exists()
    assert len(plotly_data(saved.html)) == len(fig.data)
