"""Every benchmark's ``--quick`` mode runs and prints tables of numbers (so none can rot).

Each script runs as a subprocess from the repository root; the session fixture's dataset
cache (``TRANSFER_TUNE_CACHE``) is inherited through the environment.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

pytestmark = pytest.mark.slow


def run_quick(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``benchmarks/<script> --quick`` and return its stdout (exit status 0 asserted)."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every Markdown table in ``text`` as a list of rows ``{header: cell}``."""
    found: list[list[dict[str, str]]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and lines[i + 1].startswith("|---"):
            header = [c.strip() for c in line.strip().strip("|").split("|")]
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                cells = [c.strip() for c in row.strip().strip("|").split("|")]
                rows.append(dict(zip(header, cells, strict=True)))
            found.append(rows)
    return found


def number(cell: str) -> float:
    """The first number in a table cell (``"12.3 (4.5)"`` -> 12.3, ``"1e-3 (edge)"`` -> 1e-3)."""
    match = re.search(r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", cell)
    assert match, f"no number in cell {cell!r}"
    return float(match.group())


def test_speed_quick_against_neuraloperator():
    pytest.importorskip("neuralop")
    out = run_quick("speed.py")
    step, parts = tables(out)
    assert [r["case"] for r in step] == ["1-D K=8", "2-D K=6"]
    for r in step:
        assert number(r["params ours"]) == number(r["params neuralop"]) > 0
        for key in ("ours ms (IQR)", "neuralop ms (IQR)", "speed-up", "% of matmul rate"):
            assert math.isfinite(number(r[key])) and number(r[key]) > 0
    assert {r["side"] for r in parts} == {"ours", "neuralop"}
    for r in parts:
        assert number(r["spectral R x4 ms"]) > 0 and number(r["Adam ms"]) > 0


def test_speed_quick_without_neuraloperator(tmp_path):
    fake = tmp_path / "neuralop"  # shadows an installed neuraloperator on the path
    fake.mkdir()
    (fake / "__init__.py").write_text('raise ImportError("hidden for this test")\n')
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    out = run_quick("speed.py", env={"PYTHONPATH": path})
    assert "neuraloperator is not installed" in out
    step, parts = tables(out)
    for r in step:
        assert r["params neuralop"] == "n/a" and r["speed-up"] == "n/a"
        assert number(r["ours ms (IQR)"]) > 0 and number(r["% of matmul rate"]) > 0
    assert {r["side"] for r in parts} == {"ours"}


def test_transfer_repro_quick(tmp_path):
    out = run_quick("transfer_repro.py", "--out", str(tmp_path))
    found = tables(out)
    assert len(found) == 2  # one table per problem
    for rows in found:
        assert {r["param."] for r in rows} == {"µP", "SP"}
        for r in rows:
            assert number(r["optimum lr"]) > 0
            assert math.isfinite(number(r["shift log2 [95%]"]))
            assert number(r["test loss at grid min"]) > 0
    assert out.count("µP: ") == 2 and out.count("SP: ") == 2  # the verdict lines
    for name in ("burgers", "darcy"):
        for kind in ("landscape", "optimum"):
            html = tmp_path / f"transfer_{name}_{kind}.html"
            assert html.exists() and html.stat().st_size < 200_000  # plotly.js not embedded
    assert (tmp_path / "plotly.min.js").exists()
    assert (tmp_path / "transfer_repro.json").exists()


def test_compute_audit_quick():
    out = run_quick("compute_audit.py")
    per_seed, summary = tables(out)
    arms = ["(a) proxy + µTransfer", "(b) tune target directly", "ratio (a)/(b)"]
    assert [r["arm"] for r in per_seed] == arms and [r["arm"] for r in summary] == arms
    for r in per_seed[:2]:
        assert number(r["search s"]) > 0 and number(r["total GFLOP"]) > 0
        assert 0 < number(r["final test rel-L2"]) < 1e4
    assert number(per_seed[2]["total s"]) > 0 and number(per_seed[2]["search GFLOP (epochs)"]) > 0
    for r in summary:
        assert number(r["total s"]) > 0 and number(r["final test rel-L2"]) > 0


def test_pde_speed_quick():
    out = run_quick("pde_speed.py")
    timings = re.findall(r"^(\w+)\s+res\s+(\d+)\s+(\d+) samples\s+([\d.]+) s", out, re.M)
    assert [t[0] for t in timings] == ["burgers", "darcy", "navier_stokes"]
    for _, res, samples, seconds in timings:
        assert int(res) > 0 and int(samples) == 24 and float(seconds) > 0
