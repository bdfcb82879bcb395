"""Huge or odd numbers (issue 20, items 5 and 6) and a target K below the proxy's.

Each request that cannot fit is refused in one line (exit 2 from the CLI, TransferTuneError
from the API) before any work: nothing generated, no study created, no memory blow-up, no
hang. The CLI cases run in a subprocess with a 4 GiB address-space limit and a timeout, so a
regression fails the test instead of the machine.
"""

from __future__ import annotations

import errno
import math
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from pdes import from_arrays, get_problem
from pdes.generation import check_subsample_resolution
from tests.sizes import TINY_BURGERS, WORKFLOW
from transfer_tune.errors import TransferTuneError

#: A regression must fail, not swap: every subprocess gets this address space at most.
_ADDRESS_SPACE = 4 * 2**30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_ADDRESS_SPACE, _ADDRESS_SPACE))


def _cli(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRANSFER_TUNE_CACHE": str(cwd / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "transfer_tune.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        preexec_fn=_limit_memory,
    )


def _refused(proc: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 2 with one line naming every word; returns that line."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@contextmanager
def _within(seconds: int):
    """Fail (instead of hanging) when the body runs longer than ``seconds``."""

    def _timeout(*_):
        raise TimeoutError(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _spec(tmp_path: Path, problem: dict | None = None, model: dict | None = None) -> Path:
    problem = {"name": "burgers", **TINY_BURGERS, **(problem or {})}
    model = {"width": 8, "n_layers": 2, "proxy_modes": 4, "target_modes": 8, **(model or {})}
    text = "[problem]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in problem.items())
    text += "[model]\n" + "".join(f"{k} = {v}\n" for k, v in model.items())
    text += textwrap.dedent(
        """\
        [tune]
        n_trials = 2
        epochs = 1
        study_name = "huge"
        [target]
        epochs = 1
        [search_space]
        batch_size = [8, 16]
        """
    )
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


# ---- 5. huge numbers: estimated and refused before any work ------------------------------


@pytest.mark.parametrize(
    ("problem", "model", "words"),
    [
        (None, {"width": 10_000_000}, ("memory", "width")),
        (None, {"n_layers": 100_000_000}, ("memory", "n_layers")),
        ({"n_train": 1_000_000_000}, None, ("memory", "n_train")),
    ],
)
@pytest.mark.subprocess
def test_a_model_or_dataset_that_cannot_fit_is_refused_by_run(tmp_path, problem, model, words):
    spec = _spec(tmp_path, problem, model)
    db = tmp_path / "s.db"
    start = time.monotonic()
    proc = _cli("run", str(spec), "--storage", f"sqlite:///{db}", "--device", "cpu", cwd=tmp_path)
    line = _refused(proc, *words)
    assert "GiB" in line or "TiB" in line or "PiB" in line  # the estimate is named
    assert time.monotonic() - start < 60
    assert not db.exists()  # refused before any study was created
    assert not (tmp_path / "cache").exists()  # and before any data


@pytest.mark.subprocess
def test_an_8_tib_dataset_is_refused_before_generation(tmp_path):
    proc = _cli("data", "burgers", "--resolution", str(2**40), cwd=tmp_path)
    _refused(proc, "memory", "PiB", "n_train", "resolution")  # 1300 samples of 2^40 points
    assert not (tmp_path / "cache").exists()


def test_huge_resolutions_and_grids_answer_at_once(tmp_path):
    with _within(5), pytest.raises(TransferTuneError, match="memory"):
        get_problem("burgers", resolution=2**40, cache_dir=tmp_path)
    with _within(5), pytest.raises(TransferTuneError, match="not a subsample") as info:
        check_subsample_resolution("burgers", 3, 2**40, "choose another")
    assert "allowed: 2, 4, 8" in str(info.value)
    with _within(5), pytest.raises(TransferTuneError, match="not a subsample"):
        check_subsample_resolution("burgers", 3, 2**61 - 1, "choose another")  # a prime


def test_the_api_refuses_a_huge_model_before_the_search(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    from transfer_tune import tune_then_transfer

    with _within(20), pytest.raises(TransferTuneError, match="memory") as info:
        tune_then_transfer(
            "burgers",
            problem_overrides=TINY_BURGERS,
            target_modes=8,
            storage=url,
            **{**WORKFLOW, "n_layers": 100_000_000},
        )
    assert "n_layers" in str(info.value)
    assert not (tmp_path / "w.db").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--span", "inf"], ("span", "finite")),
        (["--span", "nan"], ("span", "finite")),
        (["--step", "0"], ("step",)),
        (["--span", "1e9", "--step", "1e-9"], ("runs",)),
        (["--seeds", "100000", "--span", "20", "--step", "0.01"], ("runs",)),
    ],
)
@pytest.mark.subprocess
def test_calibrate_refuses_an_absurd_grid_at_once(tmp_path, args, words):
    start = time.monotonic()
    proc = _cli("calibrate", "nope", "--storage", str(tmp_path / "none.db"), *args, cwd=tmp_path)
    _refused(proc, *words)
    assert time.monotonic() - start < 60


def test_rate_grid_counts_before_it_builds():
    from transfer_tune.analysis.calibrate import rate_grid

    with _within(5), pytest.raises(TransferTuneError, match="span"):
        rate_grid(1e-3, math.inf, 0.5)
    with _within(5), pytest.raises(TransferTuneError, match="runs"):
        rate_grid(1e-3, 1e9, 1e-9)
    assert len(rate_grid(1e-3, 2.0, 0.5)) == 9


def test_a_sweep_grid_of_a_billion_values_is_refused_at_once():
    from transfer_tune.analysis.landscape import values_from_spec

    with _within(5), pytest.raises(TransferTuneError, match="num must be an integer in 1..100000"):
        values_from_spec("lr", {"low": 1e-4, "high": 1e-1, "num": 1_000_000_000})
    assert len(values_from_spec("lr", {"low": 1e-4, "high": 1e-1, "num": 7})) == 7


def test_the_estimate_is_documented_and_grows_with_the_request():
    from transfer_tune.search.preflight import training_bytes

    shape = dict(dim=1, modes=4, width=8, n_layers=2, in_channels=1, out_channels=1)
    small = training_bytes(shape, (64,), batch=8)
    assert 0 < small < 2**30
    assert training_bytes({**shape, "width": 16}, (64,), 8) > small
    assert training_bytes({**shape, "n_layers": 4}, (64,), 8) > small
    assert training_bytes(shape, (64,), 16) > small
    assert training_bytes({**shape, "width": 10_000_000}, (64,), 8) > 2**40


# ---- 6. odd numbers -----------------------------------------------------------------------


def test_from_arrays_with_zero_samples_is_one_clear_error(tmp_path):
    with pytest.raises(TransferTuneError, match="no samples"):
        from_arrays(np.zeros((0, 16)), np.zeros((0, 16)), cache_dir=tmp_path)


def test_a_file_of_strings_is_called_non_numeric(tmp_path):
    path = tmp_path / "words.npz"
    np.savez(path, x=np.array(["a", "b", "c", "d"]), y=np.array(["e", "f", "g", "h"]))
    with pytest.raises(TransferTuneError) as info:
        get_problem("file", path=str(path), cache_dir=tmp_path)
    assert "non-numeric" in str(info.value) and "spatial dimension" not in str(info.value)


def test_a_one_point_grid_is_too_small_for_any_k():
    from transfer_tune.core.model import check_modes

    with pytest.raises(TransferTuneError) as info:
        check_modes(2, (1,))
    assert "too small for any K" in str(info.value) and "K <= 1" not in str(info.value)


def test_a_full_disk_names_the_checkpoint_file(tmp_path, monkeypatch):
    from transfer_tune.cli import _disk_problem
    from transfer_tune.core import checkpoint

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    target = tmp_path / "target.pt"
    with pytest.raises(OSError) as info:
        checkpoint.save(target, {"a": 1})
    line = _disk_problem(info.value)
    assert line is not None and "the disk is full" in line and str(target) in line
    assert not list(tmp_path.iterdir())  # no temporary file left


@pytest.mark.subprocess
def test_data_refuses_an_empty_test_split_up_front(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 16)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=x)
    proc = _cli("data", "file", "--path", str(tmp_path / "d.npz"), "--n-test", "0", cwd=tmp_path)
    _refused(proc, "test split", "n_test >= 1")
    assert not (tmp_path / "cache").exists()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    """A finished tiny proxy study (one trial of one epoch)."""
    from transfer_tune.search.tune import tune

    folder = tmp_path_factory.mktemp("proxy")
    url = f"sqlite:///{folder / 'p.db'}"
    tune(
        "burgers",
        4,
        8,
        2,
        1,
        1,
        problem_overrides=TINY_BURGERS,
        storage=url,
        study_name="tiny",
        search_space={"batch_size": [8]},
        device="cpu",
        progress=False,
    )
    return url


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--epochs", "-1"], ("epochs",)),
        (["--eval-resolution", "-3", "--plan-only"], ("eval_resolution",)),
        (["--epochs", "0", "--plan-only"], ("epochs",)),
    ],
)
@pytest.mark.subprocess
def test_transfer_validates_before_it_prints_the_plan(proxy, tmp_path, args, words):
    proc = _cli("transfer", "tiny", "--modes", "8", "--storage", proxy, *args, cwd=tmp_path)
    _refused(proc, *words)
    assert proc.stdout == ""  # no plan printed before the error


# ---- a target K below the proxy's -----------------------------------------------------------


def test_a_target_k_below_the_proxys_is_an_error_unless_allowed(proxy):
    import optuna

    from transfer_tune.search.transfer import plan_transfer

    study = optuna.load_study(study_name="tiny", storage=proxy)
    with pytest.raises(TransferTuneError, match="smaller than the proxy") as info:
        plan_transfer(study, 2)
    assert "allow_smaller" in str(info.value)
    plan = plan_transfer(study, 2, allow_smaller=True)
    assert plan.modes == 2
    assert plan_transfer(study, 4).modes == 4  # the proxy's own K stays allowed


@pytest.mark.subprocess
def test_the_cli_refuses_a_smaller_target_k(proxy, tmp_path):
    proc = _cli("transfer", "tiny", "--modes", "2", "--storage", proxy, "--plan-only", cwd=tmp_path)
    _refused(proc, "smaller than the proxy", "--allow-smaller")
    ok = _cli(
        "transfer", "tiny", "--modes", "2", "--storage", proxy, "--plan-only", "--allow-smaller",
        cwd=tmp_path,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr


def test_the_workflow_refuses_a_smaller_target_k_before_the_search(tmp_path):
    from transfer_tune import tune_then_transfer

    url = f"sqlite:///{tmp_path / 'k.db'}"
    with pytest.raises(TransferTuneError, match="smaller than the proxy"):
        tune_then_transfer(
            "burgers", problem_overrides=TINY_BURGERS, target_modes=2, storage=url, **WORKFLOW
        )
    assert not (tmp_path / "k.db").exists()
