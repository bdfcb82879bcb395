"""The shipped study specs parse, and map onto tune_then_transfer's arguments."""

import inspect
from pathlib import Path

import pytest

from transfer_tune.api import tune_then_transfer
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.search_space import SearchSpace
from transfer_tune.search.spec import load_spec, parse_spec

ALL_SPECS = sorted((Path(__file__).parents[1] / "studies").glob("*.toml"))
#: The specs of the three problems (one each); darcy_pino.toml is checked on its own below.
SPECS = [p for p in ALL_SPECS if p.stem != "darcy_pino"]


def test_four_specs_ship():
    assert {p.stem for p in ALL_SPECS} == {"burgers", "darcy", "navier_stokes", "darcy_pino"}


def test_the_pino_spec_maps_onto_the_api():
    path = next(p for p in ALL_SPECS if p.stem == "darcy_pino")
    kwargs = load_spec(path).workflow_kwargs()
    assert set(kwargs) <= set(inspect.signature(tune_then_transfer).parameters)
    assert kwargs["problem"] == "darcy" and kwargs["train"]["loss"] == "pino"
    assert kwargs["proxy"]["resolution"] < kwargs["train"]["physics_resolution"]
    assert kwargs["problem_overrides"]["n_fine"] == kwargs["problem_overrides"]["resolution"]
    space = SearchSpace.from_dict(kwargs["search_space"])
    assert space.physics_weight.log and space.physics_weight.low == 0.01
    tune_kwargs = load_spec(path).tune_kwargs()
    assert tune_kwargs["resolution"] == 33 and tune_kwargs["train"] == kwargs["train"]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_spec_maps_onto_the_api(path):
    spec = load_spec(path)
    kwargs = spec.workflow_kwargs()
    accepted = set(inspect.signature(tune_then_transfer).parameters)
    assert set(kwargs) <= accepted
    assert kwargs["problem"] == path.stem
    assert kwargs["proxy_modes"] < kwargs["target_modes"]
    space = SearchSpace.from_dict(kwargs["search_space"])
    assert space.lr.low == 1e-4 and space.lr.high == 3e-1 and space.lr.log
    assert spec.landscape["parametrizations"] == ["mup", "sp"]


SWEEP_SPEC = """
[problem]
name = "burgers"
resolution = 64
n_train = 16

[model]
width = 8
n_layers = 2
projection_width = 16
grid_features = false
proxy_modes = 4

[train]
schedule = "none"

[landscape]
modes = [4, 8]
param = "lr"
values = { low = 1e-3, high = 1e-2, num = 3 }
parametrizations = ["mup"]
seeds = [0]
epochs = 1
name = "pw"

[landscape.hparams]
batch_size = 8
"""


class ReachedSweep(Exception):
    """Raised by the stand-in for ``sweep``: the command got past parsing."""


def test_a_sweep_spec_with_projection_width_parses_for_the_api_and_the_cli(tmp_path, monkeypatch):
    import transfer_tune.analysis.landscape as landscape
    from transfer_tune.analysis.landscape import sweep_kwargs_from_spec
    from transfer_tune.cli import main
    from transfer_tune.errors import TransferTuneError

    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP_SPEC)
    spec = load_spec(path)  # the one parser accepts [model] projection_width and [landscape]
    assert spec.model["projection_width"] == 16 and spec.landscape["name"] == "pw"
    expected = {
        "problem": "burgers",
        "problem_overrides": {"resolution": 64, "n_train": 16},
        "modes": [4, 8],
        "param": "lr",
        "parametrizations": ["mup"],
        "seeds": [0],
        "epochs": 1,
        "sweep_name": "pw",
        "width": 8,
        "n_layers": 2,
        "base_modes": 4,
        "model_options": {"projection_width": 16, "grid_features": False},
        "hparams": {"schedule": "none", "batch_size": 8},
        "n_jobs": 1,
    }
    api = sweep_kwargs_from_spec(spec, storage=str(tmp_path / "s.db"))
    assert {k: api[k] for k in expected} == expected
    assert api["values"] == pytest.approx([1e-3, 10**-2.5, 1e-2])
    assert sweep_kwargs_from_spec(spec.raw, storage=str(tmp_path / "s.db")) == api  # a dict too

    seen = {}

    def fake_sweep(**kwargs):
        seen.update(kwargs)
        raise ReachedSweep

    monkeypatch.setattr(landscape, "sweep", fake_sweep)
    with pytest.raises(ReachedSweep):
        main(["landscape", str(path), "--storage", str(tmp_path / "s.db")])
    assert {k: v for k, v in seen.items() if k != "progress"} == api  # the CLI: the same call

    # the tune-then-transfer workflow has no use for it, and says so instead of ignoring it
    with pytest.raises(TransferTuneError, match="projection_width"):
        spec.workflow_kwargs()
    bad = SWEEP_SPEC.replace("epochs = 1", "epochs = 1\nmode = [4]")
    path.write_text(bad)
    with pytest.raises(TransferTuneError, match=r"unknown key\(s\) \['mode'\] in \[landscape\]"):
        load_spec(path)
    assert main(["landscape", str(path)]) == 2


def test_proxy_and_target_tables_become_sides_and_tune_arguments():
    spec = parse_spec(
        {
            "problem": {"name": "darcy", "resolution": 33},
            "model": {"n_layers": 2},
            "proxy": {"modes": 4, "width": 8, "resolution": 17, "epochs": 3},
            "target": {"modes": 12, "width": 32, "epochs": 9, "eval_resolution": 65},
        }
    )
    kw = spec.workflow_kwargs()
    assert kw["proxy"] == {"modes": 4, "width": 8, "resolution": 17, "epochs": 3}
    assert kw["target"] == {"modes": 12, "width": 32, "epochs": 9}
    assert kw["eval_resolution"] == 65
    tune = spec.tune_kwargs()
    assert (tune["proxy_modes"], tune["width"], tune["epochs"], tune["resolution"]) == (4, 8, 3, 17)
    assert "proxy" not in tune and "target" not in tune and "eval_resolution" not in tune
    with pytest.raises(TransferTuneError, match=r"unknown key\(s\) \['depth'\] in \[proxy\]"):
        parse_spec({"problem": {"name": "darcy"}, "proxy": {"depth": 2}})
