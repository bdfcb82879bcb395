"""Layering: pdes is the lowest layer, and lower layers of transfer_tune never load Optuna.

Each import runs in a fresh interpreter, so the modules other tests loaded do not hide a
dependency.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pdes
import pdes.errors
import transfer_tune.errors

ROOT = Path(__file__).resolve().parents[1]


def loaded_after(code: str) -> set[str]:
    """Top-level package names in ``sys.modules`` after running ``code`` in a fresh Python."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return {name.split(".")[0] for name in json.loads(out.stdout.strip().splitlines()[-1])}


def test_pdes_imports_neither_transfer_tune_nor_optuna() -> None:
    code = (
        "import pdes\n"
        "p = pdes.get_problem('burgers', n_train=4, n_val=2, n_test=2, resolution=64)\n"
        "assert p.resolution == 64 and p.n_train == 4\n"
    )
    loaded = loaded_after(code)
    assert "pdes" in loaded
    assert "transfer_tune" not in loaded
    assert "optuna" not in loaded


@pytest.mark.parametrize("module", ["transfer_tune.core.model", "transfer_tune.errors"])
def test_lower_transfer_tune_layers_do_not_load_optuna(module: str) -> None:
    loaded = loaded_after(f"import {module}")
    assert "transfer_tune" in loaded
    assert "optuna" not in loaded


def test_pdes_source_names_no_transfer_tune_import() -> None:
    for path in sorted((ROOT / "pdes").glob("*.py")):
        for line in path.read_text().splitlines():
            code = line.split("#")[0].strip()
            assert not code.startswith(("import transfer_tune", "from transfer_tune")), (
                f"{path.name} imports transfer_tune: {line!r}"
            )


def test_one_exception_type_for_both_packages() -> None:
    assert transfer_tune.errors.TransferTuneError is pdes.errors.TransferTuneError
    assert pdes.TransferTuneError is pdes.errors.TransferTuneError
    with pytest.raises(transfer_tune.errors.TransferTuneError, match="unknown problem 'nope'"):
        pdes.get_problem("nope")
    try:
        pdes.get_problem("burgers", n_train=0)
    except transfer_tune.errors.TransferTuneError as err:  # what users write
        assert "n_train" in str(err)
    else:
        pytest.fail("get_problem accepted n_train=0")
