"""The public surface: every public name imports from its documented path, and nothing else
is listed; ``import transfer_tune`` alone does not load Optuna (or plotly).

One path per name, read from the source with ``ast``: every ``from M import name`` of the
packages, the tests and the examples takes ``name`` from the module that defines it, or from a
module that lists it in ``__all__`` (a documented home: a package such as
``transfer_tune.analysis.landscape`` or ``transfer_tune.report``, the shims
``transfer_tune.model`` and ``transfer_tune.parametrization``); never through a module that
merely imports it (a re-export left by a split), and never from a package's submodule when the
package lists the name (code inside that package excepted). The lazy ``_LAZY`` tables count
as imports. The examples and the README's code import only from the documented paths.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

import transfer_tune
import transfer_tune.report
from tests.test_layers import MODULES, loaded_after

ROOT = Path(__file__).resolve().parents[1]

#: Documented path -> the public names importable from it (README, examples, docstrings).
PUBLIC: dict[str, tuple[str, ...]] = {
    "transfer_tune": (
        "DivergenceError",
        "FNO",
        "TransferResult",
        "TransferTuneError",
        "CoordCheckResult",
        "Side",
        "analyse_horizon",
        "analyze_optimum",
        "calibrate",
        "coord_check",
        "dashboard_command",
        "get_parametrization",
        "get_storage",
        "list_sweeps",
        "load_checkpoint",
        "load_spec",
        "load_sweep",
        "plan_transfer",
        "run_target",
        "spectral_norm_check",
        "sweep",
        "sweep_from_spec",
        "transfer",
        "tune",
        "tune_then_transfer",
    ),
    "transfer_tune.report": (
        "annotate_all",
        "annotate_proxy_study",
        "annotate_sweep",
        "calibration_figure",
        "coord_check_figure",
        "heatmap_figure",
        "horizon_figure",
        "landscape_figure",
        "optimum_figure",
        "plan_figure",
        "read_curves",
        "read_proxy_history",
        "save_figure",
        "save_figures",
        "serve",
        "spectral_norm_figure",
        "spectrum_figure",
        "target_curve_figure",
        "tuning_history_figure",
    ),
    "transfer_tune.model": (
        "FNO",
        "ROLES",
        "SpectralConv",
        "allow_models",
        "build_model",
        "check_modes",
        "mode_shape",
        "modes_of",
    ),
    "transfer_tune.parametrization": ("KINDS", "Parametrization", "get_parametrization"),
    "transfer_tune.errors": ("DivergenceError", "TransferTuneError"),
    "pdes": (
        "GaussianNormalizer",
        "Problem",
        "TransferTuneError",
        "from_arrays",
        "get_problem",
        "inspect_pairs",
        "list_problems",
        "load_pairs",
        "load_problem",
        "register_problem",
    ),
}


@pytest.mark.parametrize(
    ("path", "name"), [(path, name) for path, names in PUBLIC.items() for name in names]
)
def test_public_name_imports_from_its_documented_path(path: str, name: str) -> None:
    module = importlib.import_module(path)
    assert getattr(module, name) is not None
    namespace: dict = {}
    exec(f"from {path} import {name}", namespace)  # the line a user writes
    assert namespace[name] is getattr(module, name)


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_all_lists_exactly_the_documented_names(path: str) -> None:
    assert sorted(importlib.import_module(path).__all__) == sorted(PUBLIC[path])


def test_top_level_and_documented_homes_are_the_same_objects() -> None:
    import transfer_tune.analysis.landscape
    import transfer_tune.model
    import transfer_tune.parametrization
    from transfer_tune.analysis.coord_result import CoordCheckResult
    from transfer_tune.search.sides import Side
    from transfer_tune.search.transfer import plan_transfer, run_target, transfer

    assert transfer_tune.FNO is transfer_tune.model.FNO
    assert transfer_tune.get_parametrization is transfer_tune.parametrization.get_parametrization
    assert transfer_tune.sweep is transfer_tune.analysis.landscape.sweep
    assert (transfer_tune.transfer, transfer_tune.plan_transfer, transfer_tune.run_target) == (
        transfer,
        plan_transfer,
        run_target,
    )
    assert transfer_tune.Side is Side and transfer_tune.CoordCheckResult is CoordCheckResult


@pytest.mark.parametrize("path", ["transfer_tune", "transfer_tune.report"])
def test_unknown_name_is_an_attribute_error(path: str) -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = importlib.import_module(path).no_such_name


def test_dir_lists_the_public_names() -> None:
    assert set(transfer_tune.__all__) <= set(dir(transfer_tune))
    assert set(transfer_tune.report.__all__) <= set(dir(transfer_tune.report))


def test_importing_the_package_loads_neither_optuna_nor_plotly() -> None:
    loaded = loaded_after("import transfer_tune, transfer_tune.report")
    assert "transfer_tune" in loaded
    assert not loaded & {"optuna", "plotly", "torch"}, loaded & {"optuna", "plotly", "torch"}


# ---- one import path per name, read from the source -----------------------------------------


def _literal_names(node: ast.expr, tables: dict[str, set[str]]) -> set[str] | None:
    """The names of an ``__all__`` value: a list/tuple of strings, or ``sorted(_LAZY)``."""
    if isinstance(node, (ast.List, ast.Tuple)):
        return {e.value for e in node.elts if isinstance(e, ast.Constant)}
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Name):
        return tables.get(node.args[0].id)
    return None


@cache
def module_info(module: str) -> tuple[frozenset[str], frozenset[str], frozenset[str] | None, dict]:
    """(names defined at top level, names imported at top level, ``__all__`` or None,
    ``_LAZY`` as {public name: (module, attribute)}) of a project module, from its source."""
    tree = ast.parse(MODULES[module].read_text())
    defined: set[str] = set()
    imported: set[str] = set()
    tables: dict[str, set[str]] = {}
    exports = None
    lazy: dict[str, tuple[str, str]] = {}

    def visit(body: list[ast.stmt]) -> None:
        nonlocal exports
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                imported.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
                defined.update(names)
                if names == ["_LAZY"] and isinstance(node.value, ast.Dict):
                    for key, value in zip(node.value.keys, node.value.values, strict=True):
                        target = ast.literal_eval(value)
                        lazy[key.value] = (
                            target if isinstance(target, tuple) else (target, key.value)
                        )
                    tables["_LAZY"] = set(lazy)
                if names == ["__all__"]:
                    exports = _literal_names(node.value, tables)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(getattr(node, "finalbody", []))

    visit(tree.body)
    frozen = None if exports is None else frozenset(exports)
    return frozenset(defined), frozenset(imported), frozen, lazy


def path_problem(importer: str, module: str, name: str) -> str | None:
    """Why ``from module import name`` in ``importer`` is not the name's one path, or None."""
    if module not in MODULES or f"{module}.{name}" in MODULES:
        return None  # not a project module, or a submodule import
    defined, imported, exports, _ = module_info(module)
    if name in defined:
        parts = module.split(".")
        for k in range(len(parts) - 1, 0, -1):  # the nearest package that lists the name
            package = ".".join(parts[:k])
            if package == "transfer_tune":  # the lazy surface sits above every module
                continue
            listed = module_info(package)[2] if package in MODULES else None
            inside = importer == package or importer.startswith(package + ".")
            if listed and name in listed and not inside:
                return f"import {name} from {package} (its documented home), not from {module}"
        return None
    if name in imported and not (exports and name in exports):
        return f"{module} only imports {name}: import it from the module that defines it"
    return None


def source_imports(source: str) -> Iterator[tuple[str, str, int]]:
    """``(module, name, line)`` of every absolute ``from module import name``, at any depth."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield node.module, alias.name, node.lineno


def path_problems(importer: str, source: str) -> list[str]:
    found = [
        f"{importer}:{line}: {problem}"
        for module, name, line in source_imports(source)
        if (problem := path_problem(importer, module, name))
    ]
    if importer in MODULES:
        for public, (module, name) in module_info(importer)[3].items():
            if problem := path_problem(importer, module, name):
                found.append(f"{importer} _LAZY[{public!r}]: {problem}")
    return found


#: What the check reads besides the packages: the tests, the examples and the benchmarks.
CHECKED_FILES = sorted(
    [*ROOT.glob("tests/**/*.py"), *ROOT.glob("examples/*.py"), *ROOT.glob("benchmarks/*.py")],
    key=lambda p: str(p),
)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_package_import_takes_a_name_from_its_one_path(module: str) -> None:
    assert path_problems(module, MODULES[module].read_text()) == []


@pytest.mark.parametrize("path", CHECKED_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_tests_and_examples_import_each_name_from_its_one_path(path: Path) -> None:
    assert path_problems(str(path.relative_to(ROOT)), path.read_text()) == []


def test_the_path_check_catches_a_reexport_and_a_second_path() -> None:
    # core.train imports HParams for its own use, but core.hparams defines it
    reexport = "from transfer_tune.core.train import HParams\n"
    assert path_problems("examples/x.py", reexport) == [
        "examples/x.py:1: transfer_tune.core.train only imports HParams: import it from the "
        "module that defines it"
    ]
    # the landscape package lists sweep: its runner submodule is private detail outside it
    submodule = "def f():\n    from transfer_tune.analysis.landscape.runner import sweep\n"
    assert path_problems("transfer_tune.cli", submodule) == [
        "transfer_tune.cli:2: import sweep from transfer_tune.analysis.landscape (its "
        "documented home), not from transfer_tune.analysis.landscape.runner"
    ]
    assert path_problems("transfer_tune.analysis.landscape.from_spec", submodule) == []
    good = (
        "from transfer_tune.core.hparams import HParams\n"
        "from transfer_tune.analysis.landscape import sweep\n"
        "from transfer_tune.report import save_figure\n"
        "from transfer_tune.model import FNO\n"
        "from pdes import get_problem\n"
    )
    assert path_problems("examples/x.py", good) == []


def test_the_lazy_tables_point_at_each_names_one_path() -> None:
    assert module_info("transfer_tune")[3]["sweep"] == ("transfer_tune.analysis.landscape", "sweep")
    assert path_problems("transfer_tune", "") == []
    assert path_problems("transfer_tune.report", "") == []


def readme_code() -> str:
    text = (ROOT / "README.md").read_text()
    return "\n".join(re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL))


@pytest.mark.parametrize(
    "path",
    [*sorted(ROOT.glob("examples/*.py")), ROOT / "README.md"],
    ids=lambda p: p.name,
)
def test_examples_and_readme_import_only_documented_paths(path: Path) -> None:
    source = readme_code() if path.name == "README.md" else path.read_text()
    tree = ast.parse(source)
    modules = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names] + [
        n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    ]
    ours = [m for m in modules if m.split(".")[0] in ("transfer_tune", "pdes")]
    assert ours, f"{path.name} imports nothing of ours: the check reads nothing"
    assert [m for m in ours if m not in PUBLIC] == []
