"""The command line: demo, spec errors (exit 2, one line), tune/transfer from a spec."""

import json
import re
import subprocess
import sys

import pytest

from tests.sizes import CLI_SPEC_TOML
from transfer_tune.cli import main


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "transfer_tune.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.subprocess
def test_demo_quick_prints_results_and_dashboard_command(tmp_path):
    proc = run_cli("demo", "--quick", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "optuna-dashboard sqlite:///" in proc.stdout
    assert "spectral" in proc.stdout and "target K=8" in proc.stdout
    # both test errors, at the same tuned values and budget, and their ratio
    line = next(x for x in proc.stdout.splitlines() if x.startswith("test rel-L2 with"))
    small, big = (float(v) for v in re.findall(r"K=\d+ ([0-9.]+)", line))
    assert 0 < small < 2 and 0 < big < 2 and f"{small / big:.2f}x lower" in line
    assert (tmp_path / "studies" / "transfer_tune.db").exists()
    # the proxy is narrower and coarser, and the demo says what that saved
    for axis in ("modes (K)   4 -> 8", "width       4 -> 8", "grid        32 -> 64"):
        assert axis in proc.stdout
    cost = next(x for x in proc.stdout.splitlines() if x.startswith("cost: the proxy search"))
    ratio = float(re.search(r"one proxy step costs ([0-9.]+) of a target step", cost).group(1))
    assert 0 < ratio < 0.5


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found"),
        ("[problem\nname = 1", "not valid TOML"),
        ("[problem]\nname = 'burgers'\n[model]\nwidht = 3\n", "unknown key(s) ['widht']"),
        ("[model]\nwidth = 3\n", "needs [problem]"),
    ],
)
def test_bad_spec_exits_2_with_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "spec.toml"
    if content is not None:
        path.write_text(content)
    code = main(["tune", str(path), "--storage", str(tmp_path / "s.db")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_tune_then_transfer_from_the_cli(tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text(CLI_SPEC_TOML)
    db = str(tmp_path / "s.db")
    assert main(["tune", str(spec), "--storage", db, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "best values" in out and "transfer-tune transfer cli" in out
    assert main(["transfer", "cli", "--modes", "8", "--storage", db, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "spectral" in out and "checkpoint:" in out
    assert main(["transfer", "missing", "--modes", "8", "--storage", db]) == 2
    assert "no study named 'missing'" in capsys.readouterr().err
    wide = ["transfer", "cli", "--modes", "8", "--width", "16", "--plan-only", "--storage", db]
    assert main(wide) == 0
    out = capsys.readouterr().out
    assert "width       8 -> 16" in out and "pointwise" in out
    assert "projection (output)" in out and "projection (fixed)" in out
    assert main([*wide[:5], "4", *wide[6:]]) == 2
    assert "narrower than the proxy's 8" in capsys.readouterr().err


def test_coord_check_over_width_from_the_cli(tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text(CLI_SPEC_TOML)
    out_dir = tmp_path / "cc"
    args = ["coord-check", str(spec), "--widths", "4,8", "--steps", "1", "--seeds", "1"]
    assert main([*args, "--batch-size", "8", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "coord check over width = 4, 8 (base width 4, K = 4)" in out
    record = json.loads((out_dir / "coord_check.json").read_text())
    assert {r["width"] for r in record["records"]} == {4, 8}
    assert {r["modes"] for r in record["records"]} == {4}


LANDSCAPE_SPEC = """
[problem]
name = "burgers"
resolution = 64
n_fine = 256
dt = 0.002
n_train = 16
n_val = 8
n_test = 8

[model]
width = 8
n_layers = 2

[landscape]
modes = [4, 8]
param = "lr"
values = [1e-3, 1e-2]
parametrizations = ["mup", "sp"]
seeds = [0]
epochs = 1
"""


def test_landscape_from_the_cli_writes_sweep_and_verdicts(tmp_path, capsys):
    spec = tmp_path / "land.toml"
    spec.write_text(LANDSCAPE_SPEC)
    db = str(tmp_path / "s.db")
    assert main(["landscape", str(spec), "--storage", db]) == 0
    out = capsys.readouterr().out
    assert "optuna-dashboard" in out
    import optuna

    names = {s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{db}")}
    assert len(names) == 4  # (µP, SP) x (K = 4, 8)
    assert main(["dashboard", str(tmp_path / "missing.db")]) == 2
