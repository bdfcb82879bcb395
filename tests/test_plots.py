"""Figures: one trace per K and parametrization, valid HTML, honest about missing Chromium."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from transfer_tune.analysis.landscape import LandscapeRow, SweepResult
from transfer_tune.analysis.optimum import analyze_optimum
from transfer_tune.errors import TransferTuneError
from transfer_tune.report import (
    heatmap_figure,
    landscape_figure,
    optimum_figure,
    save_figure,
    spectral_norm_figure,
    tuning_history_figure,
)
from transfer_tune.report.export import FigureExportWarning
from transfer_tune.report.readers import ProxyHistory, TargetRun, TrialRecord

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


def test_spectral_norm_figure_draws_the_records_it_is_given():
    records = [
        {
            "width": w,
            "parametrization": kind,
            "modes": k,
            "norm": 1.0 + 0.1 * i,
            "std": 0.01,
            "ratio": 1.0 + (0.1 * i if kind == "sp" else 0.0),
            "sqrt_log_ratio": math.sqrt(math.log(k) / math.log(4)),
        }
        for w in (1, 8)
        for kind in ("mup", "sp")
        for i, k in enumerate((4, 16, 256))
    ]
    fig = spectral_norm_figure(records)
    curves = by_role(fig, "curve")
    assert sorted((t.meta["width"], t.meta["parametrization"]) for t in curves) == [
        (1, "mup"),
        (1, "sp"),
        (8, "mup"),
        (8, "sp"),
    ]
    sp = next(t for t in curves if t.meta == {"role": "curve", "parametrization": "sp", "width": 1})
    assert sp.x == (4, 16, 256) and sp.y == pytest.approx((1.0, 1.1, 1.2))
    (ref, _) = by_role(fig, "reference")
    assert ref.y == pytest.approx([math.sqrt(math.log(k) / math.log(4)) for k in (4, 16, 256)])
    with pytest.raises(TypeError):  # figures only draw: the check runs in analysis.diagnostics
        spectral_norm_figure(modes=(4, 16), widths=(1,))


def proxy_history() -> ProxyHistory:
    """Four proxy trials (one pruned at 0.9) and a target run at K = 32, as plain data."""
    trials = [
        TrialRecord(i, "COMPLETE", v, {"lr": lr}, v, 1.0)
        for i, (lr, v) in enumerate([(1e-3, 0.3), (3e-3, 0.2), (1e-2, 0.25)])
    ]
    trials.append(TrialRecord(3, "PRUNED", None, {"lr": 0.09}, 0.9, 0.5))
    target = TargetRun(
        name="target",
        modes=32,
        lr=3e-3,
        val_loss=0.12,
        test_loss=0.13,
        value=0.05,
        metrics={"val_loss": 0.12, "test_loss": 0.13, "seconds": 10.0},
        plan={"modes": 32, "base_modes": 4, "lr": 3e-3, "batch_size": 20, "groups": []},
    )
    attrs = {"kind": "proxy", "model": {"modes": 4}, "epochs": 3}
    return ProxyHistory("proxy", attrs, tuple(trials), target)


def test_tuning_history_marks_the_transferred_target():
    history = proxy_history()
    fig = tuning_history_figure(history)
    (star,) = by_role(fig, "target")
    assert star.x == (len(history.trials),) and star.y == (history.target.val_loss,)
    assert f"K={history.target.modes}" in star.name
    (line,) = by_role(fig, "target_lr_line")
    assert line.x == (history.target.lr, history.target.lr)
    values = [t.value for t in history.complete]
    assert by_role(fig, "trial")[0].y == tuple(values)
    assert by_role(fig, "best")[0].y == tuple(np.minimum.accumulate(values))
    assert by_role(fig, "pruned")[0].y == (0.9,)
    assert by_role(fig, "trial_lr")[0].x == tuple(t.params["lr"] for t in history.complete)
    no_target = tuning_history_figure(ProxyHistory("p", {}, history.trials))
    assert by_role(no_target, "target") == [] and by_role(no_target, "target_lr_line") == []
    with pytest.raises(TransferTuneError, match="read_proxy_history"):
        tuning_history_figure("sqlite:///studies.db", "proxy")


def test_save_figure_falls_back_to_html_without_chromium(tmp_path, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    fig = optimum_figure(analyze_optimum(synthetic_sweep(), n_boot=20))
    with pytest.warns(FigureExportWarning, match="no PNG"):
        saved = save_figure(fig, tmp_path / "out" / "optimum.png", formats=("png",))
    assert saved.html == tmp_path / "out" / "optimum.html" and saved.html.exists()
    assert saved.images == [] and "Chromium" in saved.warning
    assert not (tmp_path / "out" / "optimum.png").exists()
    assert len(plotly_data(saved.html)) == len(fig.data)
