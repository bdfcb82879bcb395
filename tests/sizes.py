"""Named test sizes: the one home of the problem, model and run sizes tests share.

One name per purpose; every name says what it is for. A test that needs a size of its own
keeps it beside itself as a named constant with the reason (e.g. ``tests/test_flops.py``'s
hand-counted models, ``tests/test_coord_check.py``'s low-viscosity Burgers). Changing a number
here changes every test that uses it: these are the sizes the suite's timings were taken at.
"""

from __future__ import annotations

# -- problems ---------------------------------------------------------------------------------
#: A tiny Burgers problem (``problem_overrides``): enough for the workflow to run end to end in
#: seconds. (A coarse fine grid and a large step: the data only need to exist, not be exact.)
TINY_BURGERS = {
    "resolution": 64,
    "n_train": 32,
    "n_val": 8,
    "n_test": 8,
    "n_fine": 256,
    "dt": 0.002,
}

# -- tune_then_transfer -----------------------------------------------------------------------
#: ``tune_then_transfer``'s sizing for tests of the workflow's checks (one epoch, two trials,
#: a proxy at K = 4, width 8, two layers; ``target_modes`` and the problem are the test's).
WORKFLOW = dict(
    proxy_modes=4,
    width=8,
    n_layers=2,
    n_trials=2,
    proxy_epochs=1,
    target_epochs=1,
    device="cpu",
    search_space={"batch_size": [8, 16]},
    progress=False,
    annotate=False,
)
#: ``WORKFLOW`` for the user-data tests: the target at K = 8, one batch size (the small files
#: have few samples).
WORKFLOW_OWN_DATA = {**WORKFLOW, "target_modes": 8, "search_space": {"batch_size": [8]}}

# -- tune -------------------------------------------------------------------------------------
#: ``tune``'s model and device for the proxy searches (width 8, two layers, quiet, on the
#: CPU); trials, epochs, space and problem are the test's.
PROXY_MODEL = dict(width=8, n_layers=2, device="cpu", progress=False)
#: ``PROXY_MODEL`` trained one epoch per trial: tests of what ``tune`` sets up, not of training.
TUNE_ONE_EPOCH = {**PROXY_MODEL, "epochs": 1}
#: ``PROXY_MODEL`` trained two epochs per trial: tests that need a pruner's second report.
TUNE_TWO_EPOCHS = {**PROXY_MODEL, "epochs": 2}
#: A whole one-trial, one-epoch search on ``TINY_BURGERS`` with one batch size: tests that break
#: one argument of it (add ``storage``; ``problem`` and proxy modes positionally).
TUNE_ONE_TRIAL = dict(
    **TUNE_ONE_EPOCH,
    n_trials=1,
    problem_overrides=TINY_BURGERS,
    search_space={"batch_size": [8]},
)
#: A search on ``TINY_BURGERS`` with no pruner (every trial runs every epoch, so interrupting,
#: resuming and snapshots see whole trials); trials and epochs are the test's.
TUNE_UNPRUNED = dict(
    **PROXY_MODEL,
    search_space={"batch_size": [8, 16]},
    problem_overrides=TINY_BURGERS,
    pruner="none",
)
#: The narrowest proxy (width 4, one layer) for the horizon tests, which run many searches.
HORIZON_MODEL = {
    "width": 4,
    "n_layers": 1,
    "search_space": {"batch_size": [8, 16]},
    "progress": False,
}

# -- landscapes -------------------------------------------------------------------------------
#: ``sweep``'s model and run settings for the landscape tests (on ``tests.synthetic`` data).
SWEEP = {
    "width": 8,
    "n_layers": 2,
    "model_options": {"projection_width": 16},
    "hparams": {"batch_size": 8},
    "device": "cpu",
    "progress": False,
}

# -- specs ------------------------------------------------------------------------------------
#: A spec (as data) that runs in a second; the bad-input tests break one or two of its entries.
SPEC = {
    "problem": {"name": "burgers", **TINY_BURGERS},
    "model": {"width": 8, "n_layers": 2, "proxy_modes": 4, "target_modes": 8},
    "tune": {"n_trials": 1, "epochs": 1},
    "target": {"epochs": 1},
    "search_space": {"batch_size": [8]},
}
#: The ``[problem]`` and ``[model]`` tables of the TOML specs below (``TINY_BURGERS``).
SPEC_TOML_HEAD = """
[problem]
name = "burgers"
resolution = 64
n_fine = 256
dt = 0.002
n_train = 32
n_val = 8
n_test = 8

[model]
width = 8
n_layers = 2
proxy_modes = 4
target_modes = 8
"""
#: A spec file (TOML text) for the command-line tests: ``TINY_BURGERS``, two trials of one
#: epoch, study ``cli`` (tests replace ``study_name = "cli"`` to get their own).
CLI_SPEC_TOML = (
    SPEC_TOML_HEAD
    + """
[tune]
n_trials = 2
epochs = 1
study_name = "cli"

[target]
epochs = 1

[search_space]
batch_size = [8, 16]
"""
)
