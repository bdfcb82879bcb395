"""The named sizes agree with each other where they describe the same thing."""

import tomllib

from tests.sizes import CLI_SPEC_TOML, SPEC, TINY_BURGERS, TUNE_ONE_TRIAL, WORKFLOW


def test_every_spec_runs_the_tiny_burgers_problem_at_the_workflow_model():
    cli = tomllib.loads(CLI_SPEC_TOML)
    for spec in (cli, SPEC):
        assert spec["problem"] == {"name": "burgers", **TINY_BURGERS}
        model = spec["model"]
        assert (model["width"], model["n_layers"], model["proxy_modes"]) == (
            WORKFLOW["width"],
            WORKFLOW["n_layers"],
            WORKFLOW["proxy_modes"],
        )
    assert TUNE_ONE_TRIAL["problem_overrides"] is TINY_BURGERS
