"""The public surface: every public name imports from its documented path, and nothing else
is listed; ``import transfer_tune`` alone does not load Optuna (or plotly)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import transfer_tune
import transfer_tune.report
from tests.test_layers import loaded_after

ROOT = Path(__file__).resolve().parents[1]

#: Documented path -> the public names importable from it (README, examples, docstrings).
PUBLIC: dict[str, tuple[str, ...]] = {
    "transfer_tune": (
        "DivergenceError",
        "FNO",
        "TransferResult",
        "TransferTuneError",
        "analyse_horizon",
        "calibrate",
        "coord_check",
        "get_parametrization",
        "load_checkpoint",
        "load_sweep",
        "plan_transfer",
        "run_target",
        "sweep",
        "tune",
        "tune_then_transfer",
    ),
    "transfer_tune.report": (
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
        "spectral_norm_figure",
        "spectrum_figure",
        "target_curve_figure",
        "tuning_history_figure",
    ),
    "transfer_tune.model": ("FNO", "ROLES", "SpectralConv", "check_modes", "mode_shape"),
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
    import transfer_tune.model
    import transfer_tune.parametrization

    assert transfer_tune.FNO is transfer_tune.model.FNO
    assert transfer_tune.get_parametrization is transfer_tune.parametrization.get_parametrization


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
