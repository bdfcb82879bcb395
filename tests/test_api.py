"""tune_then_transfer(): both studies in one SQLite file, linked, with the exact µP plan."""

import json
import math
import shutil
import subprocess
import sys

import pytest
import torch

from tests.sizes import TINY_BURGERS
from transfer_tune.api import tune_then_transfer
from transfer_tune.core.flops import TrialEpochs, run_flops, search_flops
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.compute import trial_epochs
from transfer_tune.search.transfer import load_checkpoint, transfer

REOPEN = """
import json, sys, optuna
url = sys.argv[1]
out = {}
for s in optuna.get_all_study_summaries(url, include_best_trial=False):
    study = optuna.load_study(study_name=s.study_name, storage=url)
    out[s.study_name] = {
        "attrs": study.user_attrs,
        "trials": [[t.state.name, len(t.intermediate_values)] for t in study.get_trials()],
    }
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'studies.db'}"
    return tune_then_transfer(
        "burgers",
        proxy_modes=4,
        target_modes=16,
        width=8,
        n_layers=2,
        n_trials=3,
        proxy_epochs=2,
        target_epochs=2,
        storage=url,
        study_name="tiny",
        device="cpu",
        problem_overrides=TINY_BURGERS,
        search_space={"batch_size": [8, 16]},
        progress=False,
    )


@pytest.mark.subprocess
def test_both_studies_persist_linked_in_one_file(result):
    proc = subprocess.run(
        [sys.executable, "-c", REOPEN, result.storage], capture_output=True, text=True, check=True
    )
    studies = json.loads(proc.stdout)
    assert set(studies) == {"tiny", "tiny-target-K16"}
    proxy, target = studies["tiny"], studies["tiny-target-K16"]
    assert proxy["attrs"]["kind"] == "proxy" and proxy["attrs"]["target_study"] == "tiny-target-K16"
    assert target["attrs"]["kind"] == "target" and target["attrs"]["proxy_study"] == "tiny"
    assert len(proxy["trials"]) == 3
    assert target["trials"] == [["COMPLETE", 2]]  # its curve: one value per epoch
    metrics = target["attrs"]["metrics"]
    assert metrics["fine_resolution"] == 128
    assert 0 < metrics["test_l2"] < 2 and 0 < metrics["test_l2_fine"] < 2


def test_plan_rates_equal_the_mup_formula(result):
    plan = result.target_plan
    lr = result.proxy_params["lr"]
    assert plan.lr == lr == result.study.best_trial.params["lr"]
    factor = math.sqrt(math.log(4) / math.log(16))
    groups = {g.role: g for g in plan.groups}
    assert abs(groups["spectral"].lr - lr * factor) <= 1e-12 * lr
    assert abs(groups["spectral"].init_multiplier - factor) <= 1e-12
    for role in ("lifting", "pointwise", "projection", "bias"):
        assert groups[role].lr == lr and groups[role].init_multiplier == 1.0
    assert plan.batch_size == result.proxy_params["batch_size"]
    assert (plan.beta1, plan.beta2) == (result.proxy_params["beta1"], result.proxy_params["beta2"])


def test_checkpoint_and_compute(result):
    ckpt = load_checkpoint(result.target.checkpoint)
    assert ckpt["model_config"]["modes"] == 16
    assert ckpt["plan"]["modes"] == 16
    w = ckpt["model_state"]["layers.0.spectral.weight"]
    assert w.is_complex() and w.shape == (16, 8, 8)
    assert torch.isfinite(torch.view_as_real(w)).all()
    c = result.compute
    assert c["proxy_seconds"] > 0 and c["target_seconds"] > 0
    assert 0 < c["proxy_step_flops"] < c["target_step_flops"]
    # search FLOPs: every epoch every trial ran (from its curve), at the proxy's shapes
    ran = [len(t.intermediate_values) for t in result.study.trials]
    assert c["proxy_search_epochs"] == sum(ran) and 3 <= sum(ran) <= 6
    setup_model = result.study.user_attrs["model"]
    grid = (TINY_BURGERS["resolution"],)
    n_train, n_val = TINY_BURGERS["n_train"], TINY_BURGERS["n_val"]
    runs = trial_epochs(result.study)
    assert [r.train_epochs for r in runs] == ran
    assert c["proxy_search_flops"] == search_flops(runs, setup_model, grid, n_train, n_val) > 0
    plan = result.target_plan
    target_run = TrialEpochs(plan.batch_size, 2)
    assert c["target_run_flops"] == run_flops(plan.model, grid, n_train, n_val, target_run)
    assert c["search_to_target_flop_ratio"] == c["proxy_search_flops"] / c["target_run_flops"]
    assert result.study.user_attrs["compute"] == c
    text = str(result)
    assert "optuna-dashboard" in text and "spectral" in text


def test_transfer_from_an_earlier_process_by_name(result, tmp_path):
    # a copy of the storage, so this test adds no study to the one the other tests read
    src = result.storage.removeprefix("sqlite:///")
    shutil.copy(src, tmp_path / "studies.db")
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    plan, target = transfer("tiny", 8, url, epochs=1, device="cpu", progress=False)
    assert plan.modes == 8 and target.study_name == "tiny-target-K8"
    with pytest.raises(TransferTuneError, match="already holds a finished run"):
        transfer("tiny", 8, url, epochs=1, device="cpu", progress=False)
    with pytest.raises(TransferTuneError, match="no study named 'nope'"):
        transfer("nope", 8, url)
    assert str(tmp_path) in str(target.checkpoint)  # next to the copied storage
