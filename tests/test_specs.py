"""The shipped study specs parse, and map onto tune_then_transfer's arguments."""

import inspect
from pathlib import Path

import pytest

from transfer_tune.api import tune_then_transfer
from transfer_tune.search.search_space import SearchSpace
from transfer_tune.search.spec import load_spec

SPECS = sorted((Path(__file__).parents[1] / "studies").glob("*.toml"))


def test_three_specs_ship():
    assert {p.stem for p in SPECS} == {"burgers", "darcy", "navier_stokes"}


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
