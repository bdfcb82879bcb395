"""Every benchmark's ``--quick`` mode runs and prints tables of numbers (so none can rot).

Each script runs as a subprocess from the repository root; the session fixture's dataset
cache (``TRANSFER_TUNE_CACHE``) is inherited through the environment.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    # the setup, the summary, per arm the optimum table; the no-clip arm adds the R-only one
    assert len(found) == 5
    setup, summary, main, ronly, clip_main = found
    assert [r["arm"] for r in setup] == ["`burgers-w8-none`", "`burgers-w8-clip`"]
    assert all("K=2: " in r["target energy beyond K"] for r in setup)
    for rows in (main, clip_main):
        assert [(r["param."], r["K"]) for r in rows] == [("µP", "2"), ("µP", "4")] + [
            ("SP", "2"),
            ("SP", "4"),
        ]
        for r in rows:
            assert math.isfinite(number(r["val optimum log2 lr"]))
            assert math.isfinite(number(r["val shift [interval]"]))
            assert number(r["test loss at val optimum"]) > 0
            verdict = r["val verdict"].split(" (")[0]
            assert verdict in ({"—"} if r["K"] == "2" else {"transfers", "drifts", "inconclusive"})
            assert r["stability edge (fail/seeds)"].startswith(("2^", "> 2^", "n/a"))
    assert [(r["arm"], r["K"]) for r in summary] == [
        ("burgers-w8-none", "4"),
        ("burgers-w8-clip", "4"),
    ]
    assert all("(-0.50)" in r["SP − µP val gap (rule)"] for r in summary)
    assert {r["param."] for r in ronly} == {"µP", "SP"}
    # both families are corrected over the 2 arms x (2 shifts + 1 gap) = 6 intervals
    assert "99.17% Student-t over 2 seeds" in out and "m = 6" in out
    assert "Element-wise clipping at 0.01 changed" in out
    record = json.loads((tmp_path / "transfer_repro.json").read_text())
    assert set(record["arms"]) == {"burgers-w8-none", "burgers-w8-clip"}
    assert record["families"]["val_loss"] == {"m": 6, "level": pytest.approx(1 - 0.05 / 6)}
    assert re.fullmatch(r"[0-9a-f]{12}", record["run_id"])
    arm = record["arms"]["burgers-w8-none"]
    assert arm["setup"]["seeds"] == [0, 1] and len(arm["setup"]["lr_grid"]) == 5
    assert {"val_loss", "train_loss", "stability", "r_only", "curves", "content"} <= set(arm)
    assert set(arm["curves"]) == {"val_loss", "train_loss", "test_loss"}
    assert "mup/K4" in arm["r_only"]["exponent"]["val_loss"]
    shifts = [o for o in arm["val_loss"]["optima"] if o["verdict"] != "reference"]
    assert all("p_holm" in o and "shift_p" in o for o in shifts)
    for name in ("burgers-w8-none", "burgers-w8-clip", "burgers-w8-none-ronly"):
        for kind in ("landscape", "optimum"):
            html = tmp_path / f"transfer_{name}_{kind}.html"
            assert html.exists() and html.stat().st_size < 200_000  # plotly.js not embedded
    assert (tmp_path / "plotly.min.js").exists()
    # the README block is rendered from the JSON alone (numbers are never retyped)
    transfer_repro = bench_module("transfer_repro")
    begin, end = bench_module("readme_block").markers("transfer_repro")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{begin}\nold\n{end}\noutro\n")
    transfer_repro.write_readme(record, readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert tables(text)[2] == main and tables(text)[4] == clip_main


def bench_module(name: str):
    """Import ``benchmarks/<name>.py`` as a module."""
    sys.path.insert(0, str(BENCH))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(BENCH))


def _arm_with_known_optima(shifts: list[float]) -> dict:
    """A recorded arm whose per-seed optima are known exactly: log loss = (x - x0)^2, so the
    parabola through the grid minimum and its neighbours finds x0; K_base's x0 is -4 for
    every seed, K = 16's is -4 + shift."""
    xs = np.arange(-6.0, -1.9, 0.25)

    def curve(x0: list[float]) -> list[list[float]]:
        return np.exp((xs[:, None] - np.asarray(x0)[None, :]) ** 2).tolist()

    base, moved = curve([-4.0] * len(shifts)), curve([-4.0 + s for s in shifts])
    return {
        "setup": {"lr_grid": (2.0**xs).tolist(), "base_modes": 4, "seeds": list(range(5))},
        "curves": {"train_loss": {"mup/K4": base, "mup/K16": moved}},
    }


def test_a_recorded_example_gives_the_interval_and_verdict_known_by_hand():
    report = bench_module("transfer_repro_report")
    arm = _arm_with_known_optima([0.4, 0.5, 0.6, 0.55, 0.45])
    # by hand: mean 0.5, sd sqrt(0.025 / 4) = 0.0790569, se 0.0353553; t(0.975, 4) = 2.776445
    # -> half width 0.098163: [0.401837, 0.598163], wholly beyond h = 0.25: a drift
    o = report.reanalyse(arm, "train_loss", 0.95)[("mup", 16)]
    assert o["shift"] == pytest.approx(0.5, abs=1e-9)
    assert o["shift_low"] == pytest.approx(0.401837, abs=1e-5)
    assert o["shift_high"] == pytest.approx(0.598163, abs=1e-5)
    assert o["verdict"] == "drifts"
    # by hand, p of t = 0.5 / 0.0353553 = 14.142 on 4 df: 1.44e-4
    assert o["shift_p"] == pytest.approx(1.44e-4, rel=0.02)
    # read in a family of 30 (Bonferroni level 1 - 0.05 / 30): t(1 - 0.05 / 60, 4) = 7.52867,
    # half width 0.266178: [0.233822, 0.766178] straddles +h = 0.25, so inconclusive
    o = report.reanalyse(arm, "train_loss", 1 - 0.05 / 30)[("mup", 16)]
    assert o["shift_low"] == pytest.approx(0.233822, abs=1e-5)
    assert o["verdict"] == "inconclusive"


def test_holm_by_hand():
    from transfer_tune.analysis.stats import family_tests, holm

    # sorted 0.01 x4 = 0.04, 0.03 x3 = 0.09, 0.04 x2 = 0.08 -> 0.09 (monotone), 0.5 x1
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.2, math.nan]) == pytest.approx([0.2, math.nan], nan_ok=True)
    out = family_tests({"a": [0.4, 0.5, 0.6, 0.55, 0.45], "b": [1.0, -1.0, 0.5, -0.5, 0.1]})
    assert out["a"]["level"] == pytest.approx(0.975)
    assert out["a"]["p_holm"] == pytest.approx(2 * out["a"]["p"])  # the smaller p, times 2
    assert out["a"]["decision"] == "> 0" and out["b"]["decision"] == "not resolved"


#: The blocks of benchmarks/README.md, each written by the script of its name (its ``BLOCK``).
BLOCKS = re.findall(r"<!-- (\w+):begin -->", (BENCH / "README.md").read_text())


@pytest.mark.parametrize("name", BLOCKS)
def test_readme_blocks_match_their_json(name):
    """Every generated README block equals what its script renders from the recorded JSON."""
    block = bench_module(name).BLOCK
    assert block.name == name and block.readme == BENCH / "README.md"
    current = block.current()
    sources = block.sources()
    if not all(p.exists() for p in sources):  # never recorded: the block is still empty
        assert current == "", f"the {name} block has no record {sources} to be rendered from"
        return
    assert current == block.text(sources), f"rerun {name}.py --readme-from {sources}"


def test_does_it_work_block_matches_the_json():
    does_it_work = bench_module("does_it_work")
    begin, end = bench_module("readme_block").markers("does_it_work")
    text = does_it_work.README.read_text()
    assert f"{begin}\n{does_it_work.render()}\n{end}" in text, "rerun benchmarks/does_it_work.py"


SCRIPTS = ("calibrate", "compute_audit", "horizon", "mup_parts", "own_model", "pde_speed")
SCRIPTS += ("prove", "speed", "transfer_repro", "width_transfer", "pino_transfer", "pino_audit")
SCRIPTS += ("pino_superres",)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_takes_the_common_flags(name, capsys):
    module = bench_module(name)
    with pytest.raises(SystemExit) as stop:
        module.main(["--help"])
    assert stop.value.code == 0
    flags = set(re.findall(r"--[a-z][a-z-]*", capsys.readouterr().out))
    assert {"--quick", "--json"} <= flags
    assert ({"--readme-from", "--no-readme"} <= flags) == hasattr(module, "BLOCK")


def _demo_block(tmp_path):
    harness = bench_module("harness")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- demo:begin -->\nold\n<!-- demo:end -->\noutro\n")
    results = tmp_path / "results"
    render = lambda record: f"| x |\n|---|\n| {record['x']} |"  # noqa: E731
    return harness, harness.Block("demo", render, readme=readme, results=results)


def _args(**kw):
    import argparse

    return argparse.Namespace(**{"quick": False, "json": None, "no_readme": False, **kw})


def test_a_full_run_renders_its_block_from_the_record_it_wrote(tmp_path):
    harness, block = _demo_block(tmp_path)
    path = harness.publish(_args(), {"x": np.float64(0.5), "t": (1, 2)}, block)
    assert path == block.record and json.loads(path.read_text()) == {"x": 0.5, "t": [1, 2]}
    assert block.current() == "| x |\n|---|\n| 0.5 |"
    assert block.readme.read_text().startswith("intro\n") and block.readme.read_text().endswith(
        "outro\n"
    )
    assert block.sources() == [block.record] and block.text(block.sources()) == block.current()
    assert [p.name for p in path.parent.iterdir()] == ["demo.json"]  # no temporary file left


def test_a_record_elsewhere_quick_or_no_readme_leaves_the_readme(tmp_path):
    harness, block = _demo_block(tmp_path)
    before = block.readme.read_text()
    other = tmp_path / "other.json"
    assert harness.publish(_args(json=other), {"x": 1}, block) == other
    assert harness.publish(_args(quick=True), {"x": 2}, block) is None
    assert harness.publish(_args(no_readme=True), {"x": 3}, block) == block.record
    assert block.readme.read_text() == before
    assert json.loads(block.record.read_text()) == {"x": 3}
    assert harness.rerender(block, [other]) == 0 and block.current().endswith("| 1 |")


def test_a_headed_block_names_its_records(tmp_path):
    harness, plain = _demo_block(tmp_path)
    block = harness.Block("demo", plain.render, readme=plain.readme, headed=True)
    records = [harness.write_json(tmp_path / f"demo_{i}.json", {"x": i}) for i in (1, 2)]
    block.write(records)
    assert block.sources() == records
    assert block.current().startswith(f"### Record `{records[0]}`\n\n| x |\n")
    assert block.text(block.sources()) == block.current()


def test_compute_audit_quick():
    out = run_quick("compute_audit.py")
    check, summary, tests, chosen = tables(out)
    assert {number(r["seed"]) for r in check} == {0}
    for r in check:
        assert 0 < number(r["K proxy"]) < 1e4 and 0 < number(r["K target"]) < 1e4
    arms = [
        "(a) proxy search + µTransfer",
        "(b) direct search, SP",
        "(c) direct search, µP",
        "(d) naive transfer, SP",
    ]
    assert [r["arm"] for r in summary] == arms
    rows = dict(zip("abcd", summary, strict=True))
    assert [rows[a]["searched at"] for a in "abcd"] == [
        "K=2 (SP)",
        "K=4 (SP)",
        "K=4 (µP K_base=2)",
        "K=2 (SP)",
    ]
    assert [rows[a]["final run"] for a in "abcd"] == ["µP K_base=2", "SP", "µP K_base=2", "SP"]
    for r in summary:
        per_seed = [float(x) for x in r["per seed"].split(",")]
        assert len(per_seed) == 2 and all(0 < x < 1e4 for x in per_seed)
        assert math.isclose(number(r["test rel-L2 mean ± sd"]), sum(per_seed) / 2, abs_tol=0.01)
        for key in ("search s (CPU s)", "final s (CPU s)", "search GFLOP", "total GFLOP"):
            assert number(r[key]) >= 0
        assert number(r["total CPU s"]) > 0 and number(r["search s (CPU s)"]) > 0
        assert re.fullmatch(r"[0-2]/2", r["values = (a)'s"])
    assert rows["a"]["values = (a)'s"] == rows["d"]["values = (a)'s"] == "2/2"
    # ratios to (b): (b) is 1; (d) reuses (a)'s search, so the same search cost
    for key in ("search FLOP / (b)", "search CPU / (b)", "total FLOP / (b)", "test error / (b)"):
        assert number(rows["b"][key]) == 1
    assert rows["a"]["search FLOP / (b)"] == rows["d"]["search FLOP / (b)"]
    assert rows["a"]["search CPU / (b)"] == rows["d"]["search CPU / (b)"]
    assert number(rows["a"]["search FLOP / (b)"]) < 1  # the proxy is cheaper per epoch
    assert [r["pair"] for r in tests] == ["(b) - (a)", "(c) - (a)", "(d) - (a)", "(c) - (b)"]
    for r in tests:
        assert 0 <= number(r["sign p"]) <= 1 and 0 <= number(r["Wilcoxon p"]) <= 1
        assert r["seeds first lower"].endswith("/2")
    assert [number(r["seed"]) for r in chosen] == [0, 1000]


def test_pde_speed_quick():
    out = run_quick("pde_speed.py")
    pattern = r"^(\w+)\s+res\s+(\d+)\s+(\d+) samples\s+n_jobs\s+(-?\d+)\s+([\d.]+) s"
    timings = re.findall(pattern, out, re.M)
    # one invocation times both settings, back to back per problem
    assert [(t[0], int(t[3])) for t in timings] == [
        (name, n_jobs) for name in ("burgers", "darcy", "navier_stokes") for n_jobs in (-1, 1)
    ]
    for _, res, samples, _, seconds in timings:
        assert int(res) > 0 and int(samples) == 24 and float(seconds) > 0
    solvers, results = tables(out)
    assert [r["problem"] for r in solvers] == ["Burgers", "Darcy", "Navier–Stokes"]
    assert len(results) == 3
    for r in results:
        assert number(r["n_jobs = 1"]) > 0 and r["met"] == "n/a (quick run)"
        assert number(r[next(k for k in r if k.startswith("n_jobs = -1"))]) > 0


def test_horizon_quick():
    out = run_quick("horizon.py")
    sweep, arms, pilot = tables(out)
    assert [(r["parametrization"], number(r["K"])) for r in sweep] == [
        ("µP", 2),
        ("µP", 4),
        ("SP", 2),
        ("SP", 4),
    ]
    for r in sweep:
        assert 1 <= number(r["horizon"]) <= 3 and r["horizon"].endswith("/3")
        assert len(r["ρ by epoch"].split(",")) == 3
    assert [r["arm"] for r in arms][:2] == [
        "(b) direct search at K_target, SP",
        "(e) µP proxy, auto horizon",
    ]
    assert len(arms) == 8 and number(arms[0]["search FLOP / (b)"]) == 1
    for r in arms:
        per_seed = [float(x) for x in r["per seed"].split(",")]
        assert len(per_seed) == 2 and all(0 < x < 1e4 for x in per_seed)
        assert all(1 <= int(h) <= 3 for h in r["horizon per seed"].split(","))
        assert number(r["search GFLOP"]) >= 0 and number(r["search CPU s"]) > 0
    assert [number(r["seed"]) for r in pilot] == [0, 1000]
    assert "Goal, cost:" in out and "Among the proxy searches" in out


def test_calibrate_quick():
    out = run_quick("calibrate.py")
    per_k, arms = tables(out)
    assert [number(r["K"]) for r in per_k] == [2, 4]
    assert [r["arm"] for r in arms] == [
        "µP (proxy values)",
        "calibrated α (proxy values)",
        "naive transfer, SP (proxy values)",
        "direct search at K_target, SP",
        "µP rates, SP init of R",
    ]
    for r in arms:
        assert len(r["per seed"].split(",")) == 2 and number(r["search CPU s"]) >= 0
    assert number(arms[2]["R's lr x"]) == 1 and number(arms[4]["R's init x"]) == 1
    assert "Verdict of the calibration:" in out and "alpha =" in out


def test_own_model_quick(tmp_path):
    pytest.importorskip("neuralop")
    out = run_quick("own_model.py", "--json", str(tmp_path / "own_model.json"))
    summary, per_run = tables(out)
    assert [r["model"] for r in summary] == ["transfer-tune FNO", "neuraloperator FNO"]
    for r in summary:
        assert number(r["params"].replace(",", "")) > 0
        assert number(r["s / epoch (median)"]) > 0
        for key in ("test rel-L2 @8", "test rel-L2 @15"):
            assert 0 < number(r[key]) / 100 < 2
        for key in ("per seed @train grid", "per seed @fine grid"):
            per_seed = [float(x) / 100 for x in r[key].split(",")]
            assert len(per_seed) == 2 and all(0 < x < 2 for x in per_seed)
    assert [(r["seed"], r["model"]) for r in per_run] == [
        ("0", "transfer-tune FNO"),
        ("0", "neuraloperator FNO"),
        ("1", "transfer-tune FNO"),
        ("1", "neuraloperator FNO"),
    ]
    for r in per_run:
        for key in ("test rel-L2 (%) train grid", "fine grid"):
            assert math.isfinite(number(r[key])) and 0 < number(r[key]) / 100 < 2
        assert number(r["s / epoch"]) > 0
    record = json.loads((tmp_path / "own_model.json").read_text())
    assert {(r["model"], r["resolution"], r["fine_resolution"]) for r in record["rows"]} == {
        ("fno", 8, 15),
        ("neuralop", 8, 15),
    }
    assert all(r["parametrization"]["kind"] == "mup" for r in record["rows"])


def _prove():
    return bench_module("prove")


def test_prove_runs_both_at_once_and_reports_each_exit(tmp_path):
    prove = _prove()
    sleep = [sys.executable, "-S", "-c", "import time; time.sleep(3.0)"]
    fail = [sys.executable, "-S", "-c", "import sys, time; time.sleep(3.0); sys.exit(3)"]
    runs = prove.run_together({"ok": sleep, "bad": fail}, tmp_path)
    assert runs["ok"]["returncode"] == 0 and runs["bad"]["returncode"] == 3
    # side by side: each finished about 3 s after the common start; one after the other would
    # take 6 s (the margin is for interpreter start-up on a loaded machine)
    assert max(r["seconds"] for r in runs.values()) < 5.0
    assert (tmp_path / "ok.log").exists() and (tmp_path / "bad.log").exists()


def test_prove_block_says_whether_the_pair_fits_the_budget():
    prove = _prove()
    env = {"mode": "full", "nproc": 2, "cpu": "x", "load_before": "1", "load_after": "2"}
    cmds = prove.commands(False)
    record = {
        "env": env,
        "commands": cmds,
        "runs": {n: {"seconds": 600.0, "returncode": 0} for n in cmds},
        "total_seconds": 61 * 60.0,
        "budget_minutes": 60.0,
    }
    assert "**61.0 min** of wall time, **over** the 60-minute budget" in prove.render(record)
    record["total_seconds"] = 59 * 60.0
    block = prove.render(record)
    assert "**59.0 min** of wall time, within the 60-minute budget" in block
    rows = tables(block)[0]
    assert {r["benchmark"] for r in rows} == {"compute_audit", "transfer_repro"}
    assert all(number(r["wall (min)"]) == 10.0 for r in rows)
    # every issue's set names scripts that exist, the latest first by default
    for name in prove.SETS:
        for cmd in prove.commands(True, name).values():
            assert (ROOT / cmd[1]).is_file() and cmd[-1] == "--quick", cmd
    assert set(prove.commands(False, prove.LATEST)) == {
        "pino_transfer",
        "pino_audit",
        "pino_superres",
    }
    assert set(prove.commands(False, "cheap-proxy")) == {"width_transfer", "cheap_proxy"}
    assert set(prove.commands(False, "verdicts")) == {"transfer_repro", "mup_parts"}


def test_mup_parts_quick(tmp_path):
    out = run_quick("mup_parts.py", "--json", str(tmp_path / "mup_parts.json"))
    means, contrasts = tables(out)
    assert [r["cell"] for r in means] == ["naive", "lr only", "init only", "µP"]
    for r in means:
        for key in ("lr × 2^-0.5", "lr × 2^+0.0", "lr × 2^+0.5"):
            assert 0 < number(r[key]) < 1e4
    record = json.loads((tmp_path / "mup_parts.json").read_text())
    assert len(record["seeds"]) == 3 and all(len(s["runs"]) == 12 for s in record["seeds"])
    # the primary test alone at 95 %, the five secondary contrasts at Bonferroni 1 - 0.05 / 5
    assert contrasts[0]["level"] == "95.00 %" and len(contrasts) == 6
    assert all(r["level"] == "99.00 %" for r in contrasts[1:])
    sec = record["summary"]["secondary"]
    holm = sorted(t["p_holm"] for t in sec.values())
    assert holm[0] == pytest.approx(min(1.0, 5 * min(t["p"] for t in sec.values())))
    assert re.fullmatch(r"[0-9a-f]{12}", record["run_id"])


def test_cheap_proxy_quick(tmp_path):
    out = run_quick("cheap_proxy.py", "--json", str(tmp_path / "cheap_proxy.json"))
    arms, diffs = tables(out)
    assert [r["arm"][:3] for r in arms] == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    record = json.loads((tmp_path / "cheap_proxy.json").read_text())
    seeds = record["seeds"]
    assert len(seeds) == 3 and all(set(s["runs"]) == set("abcde") for s in seeds)
    for s in seeds:  # (d) reuses (a)'s search; the searched models' costs follow their sizes
        assert s["search"]["d"] == s["search"]["a"]
        assert s["search"]["a"]["flops"] < s["search"]["e"]["flops"] < s["search"]["b"]["flops"]
        assert s["runs"]["b"]["step_flop_ratio"] == 1.0 > s["runs"]["a"]["step_flop_ratio"]
    cost = record["summary"]["cost"]["flops"]
    total = {arm: sum(s["search"][arm]["flops"] for s in seeds) for arm in "ab"}
    assert cost["a_over_b"] == pytest.approx(total["a"] / total["b"], rel=1e-12)
    # the two goal tests at 95 % each, the secondary family of 3 at Bonferroni 1 - 0.05 / 3
    assert [r["level"] for r in diffs] == ["95.00 %"] * 2 + ["98.33 %"] * 3
    sec = record["summary"]["secondary"]
    holm = sorted(t["p_holm"] for t in sec.values())
    assert holm[0] == pytest.approx(min(1.0, 3 * min(t["p"] for t in sec.values())))


def test_width_transfer_quick(tmp_path):
    from scipy import stats

    from transfer_tune.analysis.stats import holm

    path = tmp_path / "width_transfer.json"
    out = run_quick("width_transfer.py", "--json", str(path))
    setup, burgers, darcy, slopes, grids = tables(out)
    assert [r["landscape"] for r in setup] == ["burgers", "darcy", "burgers-grid"]
    for rows in (burgers, darcy):
        assert [(r["param."], r["width"]) for r in rows] == [
            ("SP", "8"),
            ("SP", "16"),
            ("µP", "8"),
            ("µP", "16"),
        ]
        # µP at the base width is SP's runs: the same optimum and losses
        assert {k: v for k, v in rows[0].items() if k != "param."} == {
            k: v for k, v in rows[2].items() if k != "param."
        }
        for r in rows:
            verdicts = {"—"} if r["width"] == "8" else {"transfers", "drifts", "inconclusive"}
            assert r["verdict"].split(" (")[0] in verdicts
            assert math.isfinite(number(r["optimum log2 lr [interval]"]))
            for key in ("val loss", "train loss", "test rel-L2"):
                assert 0 < number(r[key]) < 1e4
    assert [r["problem"] for r in slopes] == ["burgers", "darcy"]
    assert [(r["training grid"], r["located on validation at"]) for r in grids] == [
        (g, where) for where in ("training grid", "full grid") for g in ("8", "16", "32")
    ]
    record = json.loads(path.read_text())
    assert re.fullmatch(r"[0-9a-f]{12}", record["run_id"])
    # 2 problems x (SP at 8, 16 + µP at 16) x 5 rates x 3 seeds, 2 base checks, 3 grids x 5 x 3
    assert len(record["runs"]) == 2 * 3 * 5 * 3 + 2 + 3 * 5 * 3
    assert all(r["cpu_seconds"] > 0 and r["seconds"] > 0 for r in record["runs"])
    a = record["analysis"]
    # µP at the base width trained beside SP: bit for bit the same losses
    assert len(a["base_check"]) == 2
    for check in a["base_check"]:
        assert check["identical"] and check["sp"] == check["mup"] and check["width"] == 8
    assert a["families"] == {
        "width shifts": {"m": 4, "level": pytest.approx(1 - 0.05 / 4)},
        "per doubling": {"m": 6, "level": pytest.approx(1 - 0.05 / 6)},
        "grid shifts": {"m": 4, "level": pytest.approx(1 - 0.05 / 4)},
    }
    shifts = [o for arm in a["width"].values() for o in arm if o["verdict"] != "reference"]
    assert len(shifts) == 4
    assert [o["p_holm"] for o in shifts] == pytest.approx(
        holm([o["shift_p"] for o in shifts]), nan_ok=True
    )
    ps = [o["shift_p"] for o in shifts]
    smallest = min(range(4), key=lambda i: ps[i])
    assert shifts[smallest]["p_holm"] == pytest.approx(min(1.0, 4 * ps[smallest]))
    for name, arm in a["width"].items():
        for kind in ("sp", "mup"):
            # with two widths the per-seed slope per doubling is the per-seed shift ...
            o = next(o for o in arm if o["parametrization"] == kind and o["width"] == 16)
            t = a["per_doubling"][name][kind]
            assert t["seeds"] == pytest.approx(o["seed_shifts"], nan_ok=True)
            # ... and its interval is Student-t at the family level 1 - 0.05 / 6, by hand
            v = np.asarray(t["seeds"], float)
            half = stats.t.ppf(1 - 0.05 / 12, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
            assert (t["low"], t["high"]) == pytest.approx((v.mean() - half, v.mean() + half))
    grid_family = [o for v in a["resolution"].values() for o in v if o["verdict"] != "reference"]
    assert [o["grid"] for o in grid_family] == [8, 16, 8, 16]
    assert [o["p_holm"] for o in grid_family] == pytest.approx(
        holm([o["shift_p"] for o in grid_family]), nan_ok=True
    )
    # the README block is rendered from the JSON alone
    import dataclasses

    module = bench_module("width_transfer")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n")
    block = dataclasses.replace(module.BLOCK, readme=readme)
    block.write([path])
    text = readme.read_text()
    assert text.startswith("intro\n") and "<!-- width_transfer:begin -->" in text
    assert block.current() == block.text([path])
    assert tables(text)[1] == burgers and tables(text)[4] == grids


def test_width_transfer_block_matches_its_json():
    block = bench_module("width_transfer").BLOCK
    if not block.record.exists():
        pytest.skip(f"{block.record} not recorded yet")
    assert block.current() == block.text([block.record]), "rerun width_transfer.py --readme-from"


def test_pino_transfer_quick(tmp_path):
    """transfer_repro's machinery with the PINO loss: both arms, µP beside SP, one family."""
    path = tmp_path / "pino_transfer.json"
    out = run_quick("pino_transfer.py", "--json", str(path), "--out", str(tmp_path))
    assert "Loss: relative L2 data loss + physics weight × PDE residual" in out
    record = json.loads(path.read_text())
    assert set(record["arms"]) == {"darcy-pino", "burgers_time-pino"}
    for rec in record["arms"].values():
        assert rec["setup"]["physics_weight"] == 0.1 and rec["stats"]["runs"] == 3 * 3 * 2
        curves = rec["curves"]["val_loss"]
        assert set(curves) == {"mup/K2", "mup/K4", "sp/K2", "sp/K4"}
        assert curves["mup/K2"] == curves["sp/K2"]  # the same model at K_base
    assert record["families"]["val_loss"]["m"] == 6
    assert re.fullmatch(r"[0-9a-f]{12}", record["run_id"])


def test_pino_audit_quick(tmp_path):
    path = tmp_path / "pino_audit.json"
    out = run_quick("pino_audit.py", "--json", str(path), "--n-jobs", "1")
    arms, diffs = tables(out)
    assert [r["arm"] for r in arms] == ["data", "pino", "w=0.1", "w=1"]
    record = json.loads(path.read_text())
    seeds = record["seeds"]
    assert len(seeds) == 3
    for s in seeds:
        runs = s["runs"]
        assert runs["data"]["physics_weight"] == 0.0
        assert 0.01 <= runs["pino"]["physics_weight"] <= 1.0  # searched in physics_range
        assert [runs[a]["physics_weight"] for a in ("w=0.1", "w=1")] == [0.1, 1.0]
        # the grid keeps the pino search's transferred lr and batch size
        assert {runs[a]["lr"] for a in ("pino", "w=0.1", "w=1")} == {runs["pino"]["lr"]}
    # the primary at 95 %, the secondary family of 3 (two weights, val-selected) at 1 - 0.05/3
    assert [r["level"] for r in diffs] == ["95.00 %"] + ["98.33 %"] * 3
    sec = record["summary"]["secondary"]
    assert min(t["p_holm"] for t in sec.values()) == pytest.approx(
        min(1.0, 3 * min(t["p"] for t in sec.values()))
    )


def test_pino_superres_quick(tmp_path):
    path = tmp_path / "pino_superres.json"
    out = run_quick("pino_superres.py", "--json", str(path), "--n-jobs", "1")
    arms, diffs = tables(out)
    names = ["data", "pino-coarse 0.01", "pino-fine 0.01", "pino-coarse 0.1", "pino-fine 0.1"]
    assert [r["arm"] for r in arms] == names
    record = json.loads(path.read_text())
    assert len(record["seeds"]) == 3
    for s in record["seeds"]:
        for run in s["runs"].values():
            assert 0 < run["test_l2"] < 10 and 0 < run["test_l2_fine"] < 10
    # the primary at 95 %, the family of 4 at 1 - 0.05 / 4
    assert [r["level"] for r in diffs] == ["95.00 %"] + ["98.75 %"] * 4
    assert diffs[0]["difference"] == "**primary: pino-fine 0.1 − data**"
