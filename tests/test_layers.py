"""Layering, read from the source with ``ast``: every import of every module of ``pdes`` and
``transfer_tune`` (module level, inside functions, under ``TYPE_CHECKING``) goes down the
declared order or stays in its layer; no module imports another module's ``_private`` name;
there is no import cycle between modules; and the lower layers never load Optuna (checked in
a fresh interpreter, so the modules other tests loaded do not hide a dependency).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pdes
import pdes.errors
import transfer_tune.errors

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pdes", "transfer_tune")

#: The layers, lowest first: a module may import its own layer and the layers below it.
#: The longest matching prefix decides a module's layer.
LAYERS: dict[str, int] = {
    "pdes": 0,
    "transfer_tune.errors": 1,
    "transfer_tune.faults": 1,  # Ctrl-C / lost storage, told in one line: needs nothing above
    "transfer_tune.core": 2,
    "transfer_tune.model": 3,  # the documented homes of FNO and get_parametrization
    "transfer_tune.parametrization": 3,
    "transfer_tune.search": 4,
    "transfer_tune.analysis": 5,
    "transfer_tune.report": 6,
    "transfer_tune.api": 7,
    "transfer_tune.cli": 8,
    "transfer_tune": 9,  # the lazy public surface (transfer_tune/__init__.py)
}


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of both packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = module_files()


def layer_of(module: str) -> int:
    prefixes = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    assert prefixes, f"{module} is in no layer; add it to LAYERS"
    return LAYERS[max(prefixes, key=len)]


def imports_of(module: str, source: str | None = None) -> Iterator[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for every import in ``module``,
    relative ones resolved; ``from pkg import sub`` of a submodule yields ``pkg.sub``."""
    path = MODULES.get(module)
    tree = ast.parse(source if source is not None else path.read_text())
    is_package = path is not None and path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:
                    yield sub, None, node.lineno
                else:
                    yield base, alias.name, node.lineno


def project_imports(module: str, source: str | None = None):
    for target, name, line in imports_of(module, source):
        if target.split(".")[0] in PACKAGES:
            yield target, name, line


def layer_violations(module: str, source: str | None = None) -> list[str]:
    own = layer_of(module)
    return [
        f"{module}:{line} imports {target} (layer {layer_of(target)} > {own})"
        for target, _, line in project_imports(module, source)
        if layer_of(target) > own
    ]


def private_imports(module: str, source: str | None = None) -> list[str]:
    """Imports of another module's ``_private`` names, and ``mod._name`` on an imported
    project module."""
    found = [
        f"{module}:{line} imports {target}.{name}"
        for target, name, line in project_imports(module, source)
        if name is not None and name.startswith("_") and not name.startswith("__")
    ]
    tree = ast.parse(source if source is not None else MODULES[module].read_text())
    bound = set()  # local names bound to project modules
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                full = alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
                if full in MODULES or (isinstance(node, ast.Import) and alias.asname):
                    bound.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{module}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def import_graph() -> dict[str, set[str]]:
    return {
        module: {t for t, _, _ in project_imports(module) if t in MODULES and t != module}
        for module in MODULES
    }


# ---- the source ------------------------------------------------------------------------------


def test_every_module_is_in_a_layer_and_the_check_reads_imports() -> None:
    assert len(MODULES) > 60
    for module in MODULES:
        layer_of(module)
    # the reader sees imports at module level, inside functions and under TYPE_CHECKING
    seen = {t for t, _, _ in project_imports("transfer_tune.cli")}
    assert {"transfer_tune.errors", "transfer_tune.api", "transfer_tune.search.proxy"} <= seen


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module: str) -> None:
    assert layer_violations(module) == []


def test_the_layer_check_catches_an_upward_import() -> None:
    bad = "def f():\n    from transfer_tune.report.figures import landscape_figure\n"
    assert layer_violations("transfer_tune.search.tune", bad) == [
        "transfer_tune.search.tune:2 imports transfer_tune.report.figures (layer 6 > 4)"
    ]
    assert layer_violations("pdes.cache", "import transfer_tune.errors\n")
    assert layer_violations("transfer_tune.search.tune", "from ..analysis import stats\n")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_uses_another_modules_private_names(module: str) -> None:
    assert private_imports(module) == []


def test_the_private_check_catches_both_forms() -> None:
    assert private_imports("pdes.arrays", "from pdes.cache import _file_mode\n")
    assert private_imports("pdes.arrays", "from pdes import cache\ncache._file_mode()\n")
    assert private_imports("pdes.arrays", "from __future__ import annotations\n") == []


def test_no_import_cycle_between_modules() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


# ---- what a fresh interpreter loads ----------------------------------------------------------


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


def test_pdes_loads_neither_transfer_tune_nor_optuna() -> None:
    code = (
        "import pdes\n"
        "p = pdes.get_problem('burgers', n_train=4, n_val=2, n_test=2, resolution=64)\n"
        "assert p.resolution == 64 and p.n_train == 4\n"
    )
    loaded = loaded_after(code)
    assert "transfer_tune" not in loaded
    assert "optuna" not in loaded


@pytest.mark.parametrize(
    "module",
    [
        "transfer_tune.errors",
        "transfer_tune.model",
        "transfer_tune.parametrization",
        "transfer_tune.core.train",
        "transfer_tune.core.factory",
        "transfer_tune.search.horizon_stats",
    ],
)
def test_lower_transfer_tune_layers_do_not_load_optuna(module: str) -> None:
    assert "optuna" not in loaded_after(f"import {module}")


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
