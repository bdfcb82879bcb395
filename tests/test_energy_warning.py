"""The target's K must have something to learn: spectrum on the CLI, one-line warnings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.sizes import TINY_BURGERS, WORKFLOW
from transfer_tune.api import tune_then_transfer
from transfer_tune.search.preflight import TargetEnergyWarning, energy_warning


@pytest.mark.subprocess
def test_data_spectrum_prints_the_table_and_writes_the_figure(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "transfer_tune.cli", "data", "burgers", "--n-train", "8",
         "--n-val", "2", "--n-test", "2", "--resolution", "64", "--cache-dir", str(tmp_path),
         "--spectrum", str(tmp_path / "spec.html")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    table = {int(r[0]): (float(r[1]), float(r[2])) for r in rows if len(r) == 3 and r[0].isdigit()}
    assert set(table) >= {2, 4, 8, 16, 32}
    targets = [table[k][1] for k in sorted(table)]
    assert targets == sorted(targets, reverse=True)  # less energy beyond a larger K
    assert table[4][1] > 1e-2  # the default Burgers (nu = 1e-3) has content beyond K = 4
    assert (tmp_path / "spec.html").is_file()


def test_the_warning_line():
    assert energy_warning(None, 32) is None and energy_warning(0.02, 32) is None
    line = energy_warning(4e-9, 32)
    assert line.startswith("warning: K = 32 adds only 4.0e-09") and "\n" not in line


def test_a_smooth_problem_warns_before_the_search_and_plans_record_the_energy(tmp_path):
    smooth = {**TINY_BURGERS, "nu": 0.1}
    with pytest.warns(TargetEnergyWarning, match="adds only"):
        result = tune_then_transfer(
            "burgers", target_modes=16, storage=f"sqlite:///{tmp_path / 'a.db'}",
            problem_overrides=smooth, **WORKFLOW,
        )  # fmt: skip
    assert result.target_plan.added_energy < 1e-3
    assert "not by the proxy's K" in result.target_plan.table()
    rough = tune_then_transfer(
        "burgers", target_modes=16, storage=f"sqlite:///{tmp_path / 'b.db'}",
        problem_overrides=TINY_BURGERS, **WORKFLOW,
    )  # fmt: skip
    assert rough.target_plan.added_energy > 1e-2 and rough.target_plan.energy_warning() is None
