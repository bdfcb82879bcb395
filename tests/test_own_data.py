"""Your own data: files and arrays as problems, split defaults, super-resolution test files,
time series, spec-relative paths, and every check made before the proxy search.

The files mimic neuraloperator's bundled ones: Darcy x (N, 16, 16) bool / y float32 with test
files at 16x16 and 32x32, Burgers x (N, 16) float64 / y (N, 17, 16) with 17 time steps and a
scalar ``visc``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

import pdes
from pdes import from_arrays, get_problem, load_problem
from tests.sizes import WORKFLOW_OWN_DATA
from transfer_tune import tune_then_transfer
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.spec import load_spec


def _darcy(n: int, res: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, res, res, generator=g) > 0.5
    y = torch.cumsum(torch.cumsum(x.float(), 1), 2) / res**2
    return {"x": x, "y": y.float()}


@pytest.fixture
def darcy(tmp_path: Path) -> dict[str, Path]:
    """neuraloperator-layout Darcy files: train 40 at 16x16, tests 8 at 16x16 and 32x32."""
    files = {}
    for name, n, res, seed in (("train", 40, 16, 0), ("test16", 8, 16, 1), ("test32", 8, 32, 2)):
        files[name] = tmp_path / f"darcy_{name}.pt"
        torch.save(_darcy(n, res, seed), files[name])
    return files


@pytest.fixture
def burgers(tmp_path: Path) -> tuple[Path, torch.Tensor, torch.Tensor]:
    """neuraloperator-layout Burgers: x (30, 16) float64, y (30, 17, 16), visc."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(30, 16, generator=g, dtype=torch.float64)
    y = torch.randn(30, 17, 16, generator=g)
    path = tmp_path / "burgers.pt"
    torch.save({"x": x, "y": y, "visc": 0.01}, path)
    return path, x, y


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


def _no_trials(url: str) -> bool:
    return all(s.n_trials == 0 for s in optuna.get_all_study_summaries(url))


# ---- super-resolution test files ---------------------------------------------------------------


def test_darcy_pt_with_finer_test_file_reports_both_test_errors(tmp_path, darcy) -> None:
    problem = get_problem("file", path=darcy["train"], test_path=darcy["test32"])
    assert problem.grid_shape == (16, 16) and problem.fine_resolution == 32
    assert (problem.n_train, problem.n_val, problem.n_test) == (32, 4, 4)  # 80/10/10
    text = problem.summary()
    assert "fine test (super-resolution) at (32, 32): 8 samples" in text
    assert "eval_resolution=32" in text
    fine = problem.fine_test_problem()
    xf, _ = fine.dataset("test", normalized=False)
    assert xf.shape == (8, 1, 32, 32) and fine.grid_shape == (32, 32)
    assert torch.equal(xf[:, 0], torch.load(darcy["test32"])["x"].float())
    assert fine.normalizers == problem.normalizers  # the training encoding

    url = _url(tmp_path)
    result = tune_then_transfer(
        problem=problem, storage=url, study_name="darcy-pt", **WORKFLOW_OWN_DATA
    )
    m = result.target.metrics
    assert m["resolution"] == 16 and m["fine_resolution"] == 32
    assert math.isfinite(m["test_l2"]) and math.isfinite(m["test_l2_fine"])
    assert result.study.user_attrs["problem"] == problem.config()

    # eval_resolution selects it; a training-grid test file gives the test split.
    result = tune_then_transfer(
        problem="file",
        problem_overrides={
            "path": str(darcy["train"]),
            "test_path": str(darcy["test16"]),
            "fine_test_path": str(darcy["test32"]),
        },
        eval_resolution=32,
        storage=url,
        study_name="darcy-pt-eval",
        **{**WORKFLOW_OWN_DATA, "n_trials": 1},
    )
    m = result.target.metrics
    assert m["fine_resolution"] == 32 and math.isfinite(m["test_l2_fine"])
    assert result.study.user_attrs["problem"]["n_test"] == 8  # the whole 16x16 test file


def test_summary_and_errors_for_eval_resolution(darcy) -> None:

    plain = get_problem("file", path=darcy["train"])
    assert plain.fine_resolution is None and plain.fine_test_problem(None) is None
    assert "no finer test set" in plain.summary()
    with pytest.raises(TransferTuneError, match="has no|fine_test_path"):
        plain.fine_test_problem(32)
    with_fine = get_problem("file", path=darcy["train"], fine_test_path=darcy["test32"])
    with pytest.raises(TransferTuneError, match="eval_resolution=64 is not available.*32"):
        with_fine.fine_test_problem(64)
    assert with_fine.fine_test_problem(32).grid_shape == (32, 32)
    # the fine view rebuilds from its config (as a stored study would)
    view = with_fine.fine_test_problem(32)
    again = load_problem(view.config())
    assert again.grid_shape == (32, 32) and again.normalizers == with_fine.normalizers


# ---- split defaults --------------------------------------------------------------------------


def test_split_defaults_are_fractions_and_explicit_sizes_win(tmp_path, darcy) -> None:
    p = get_problem("file", path=darcy["train"])
    assert (p.n_train, p.n_val, p.n_test) == (32, 4, 4)
    x_all = torch.load(darcy["train"])["x"].float()
    assert torch.equal(p.dataset("test", normalized=False)[0][:, 0], x_all[36:])
    q = get_problem("file", path=darcy["train"], test_path=darcy["test16"])
    assert (q.n_train, q.n_val, q.n_test) == (36, 4, 8)  # 90/10 + the whole test file
    r = get_problem("file", path=darcy["train"], n_train=10)
    assert (r.n_train, r.n_val, r.n_test) == (10, 4, 4)
    s = get_problem("file", path=darcy["train"], n_train=20, n_val=2, n_test=3)
    assert (s.n_train, s.n_val, s.n_test) == (20, 2, 3)
    assert load_problem(p.config()) == p
    with pytest.raises(TransferTuneError, match=r"holds 40 samples but .* = 44 are needed"):
        get_problem("file", path=darcy["train"], n_train=36)
    with pytest.raises(TransferTuneError, match="holds 8 samples but n_test = 9"):
        get_problem("file", path=darcy["train"], test_path=darcy["test16"], n_test=9)
    tiny = tmp_path / "tiny.npz"
    np.savez(tiny, x=np.zeros((2, 8)), y=np.zeros((2, 8)))
    with pytest.raises(TransferTuneError, match="too few for the default split"):
        get_problem("file", path=tiny)


# ---- time series and metadata ----------------------------------------------------------------


def test_burgers_time_series_last_step_or_channels_and_visc(burgers) -> None:
    path, x, y = burgers
    p = get_problem("file", path=path)
    assert (p.dim, p.in_channels, p.out_channels) == (1, 1, 1)
    _, y_tr = p.dataset("train", normalized=False)
    assert torch.equal(y_tr[:, 0], y[: p.n_train, -1])
    assert p.metadata == {"visc": 0.01} and p.config()["metadata"] == {"visc": 0.01}
    text = p.summary()
    assert "visc=0.01" in text and "last of 17 time steps" in text
    c = get_problem("file", path=path, y_time="channels")
    assert c.out_channels == 17
    assert torch.equal(c.dataset("train", normalized=False)[1], y[: c.n_train])
    assert "all 17 time steps as channels" in c.summary()
    first = get_problem("file", path=path, y_time=0)
    assert torch.equal(first.dataset("val", normalized=False)[1][:, 0], y[24:27, 0])
    # the metadata travels with the config, and a changed file is noticed
    assert load_problem(json.loads(json.dumps(p.config()))) == p
    with pytest.raises(TransferTuneError, match="file changed"):
        load_problem({**p.config(), "metadata": {"visc": 0.02}})


def test_time_series_metadata_is_stored_with_the_study(tmp_path, burgers) -> None:
    path, _, _ = burgers
    url = _url(tmp_path)
    result = tune_then_transfer(
        problem="file",
        problem_overrides={"path": str(path)},
        storage=url,
        study_name="burgers-pt",
        **{**WORKFLOW_OWN_DATA, "n_trials": 1},
    )
    stored = optuna.load_study(study_name="burgers-pt", storage=url).user_attrs["problem"]
    assert stored["metadata"] == {"visc": 0.01}
    assert math.isfinite(result.target.metrics["test_l2"])


# ---- arrays in memory ------------------------------------------------------------------------


@pytest.mark.subprocess
def test_from_arrays_rebuilds_in_a_fresh_process(tmp_path) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((20, 16, 16))
    y = torch.from_numpy(rng.standard_normal((20, 16, 16))).float()
    xt, yt = rng.standard_normal((4, 32, 32)), rng.standard_normal((4, 32, 32))
    cache = tmp_path / "cache"
    p = from_arrays(
        x, y, x_test_fine=xt, y_test_fine=yt, name="mine", metadata={"visc": 0.5}, cache_dir=cache
    )
    assert (p.n_train, p.n_val, p.n_test, p.fine_resolution) == (16, 2, 2, 32)
    assert "'mine'" in p.summary() and "visc=0.5" in p.summary()
    again = from_arrays(x, y, x_test_fine=xt, y_test_fine=yt, name="mine",
                        metadata={"visc": 0.5}, cache_dir=cache)  # fmt: skip
    assert again.config() == p.config()  # stored once, by content
    config = json.dumps(p.config())
    out = tmp_path / "out.npz"
    script = (
        "import json, sys, numpy as np, pdes\n"
        "p = pdes.load_problem(json.loads(sys.argv[1]))\n"
        "arrays = {f'{s}_{i}': p.dataset(s, normalized=False)[i].numpy()\n"
        "          for s in ('train', 'val', 'test') for i in (0, 1)}\n"
        "f = p.fine_test_problem().dataset('test', normalized=False)\n"
        "np.savez(sys.argv[2], fine_x=f[0].numpy(), fine_y=f[1].numpy(), **arrays)\n"
    )
    subprocess.run([sys.executable, "-c", script, config, str(out)], check=True)
    with np.load(out) as got:
        for split in ("train", "val", "test"):
            for i in (0, 1):
                np.testing.assert_array_equal(got[f"{split}_{i}"], p.dataset(split, False)[i])
        np.testing.assert_array_equal(got["fine_x"][:, 0], xt.astype(np.float32))
    # explicit val and test arrays: used as given
    q = from_arrays(x[:10], y[:10], x_val=x[10:13], y_val=y[10:13], x_test=x[13:], y_test=y[13:],
                    cache_dir=cache)  # fmt: skip
    assert (q.n_train, q.n_val, q.n_test) == (10, 3, 7)
    np.testing.assert_array_equal(q.dataset("val", False)[0][:, 0], x[10:13].astype(np.float32))
    with pytest.raises(TransferTuneError, match="x_val was given without y_val"):
        from_arrays(x, y, x_val=x, cache_dir=cache)
    with pytest.raises(TransferTuneError, match="val must be on the training grid"):
        from_arrays(x, y, x_val=xt, y_val=yt, cache_dir=cache)
    with pytest.raises(TransferTuneError, match="the channels must agree"):
        from_arrays(x, y, x_test=np.stack([xt, xt], 1), y_test=yt, cache_dir=cache)
    with pytest.raises(TransferTuneError, match="does not fit 2-D"):
        from_arrays(x, y, x_test=xt[:, None, None], y_test=yt, cache_dir=cache)


def test_from_arrays_through_tune_then_transfer(tmp_path) -> None:
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((24, 2, 32)), rng.standard_normal((24, 32))
    xt, yt = rng.standard_normal((4, 2, 64)), rng.standard_normal((4, 64))
    problem = pdes.from_arrays(x, y, x_test=xt, y_test=yt, cache_dir=tmp_path / "cache")
    assert problem.in_channels == 2 and problem.fine_resolution == 64
    result = tune_then_transfer(
        problem=problem, storage=_url(tmp_path), **{**WORKFLOW_OWN_DATA, "n_trials": 1}
    )
    assert result.target.metrics["fine_resolution"] == 64


# ---- specs -----------------------------------------------------------------------------------


def test_spec_paths_resolve_against_the_spec_folder(tmp_path, darcy, monkeypatch) -> None:
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    for name in ("train", "test32"):
        (folder / "data" / darcy[name].name).write_bytes(darcy[name].read_bytes())
    spec = folder / "study.toml"
    spec.write_text(
        '[problem]\nname = "file"\npath = "data/darcy_train.pt"\n'
        'test_path = "data/darcy_test32.pt"\n',
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_spec(Path("..") / "project" / "study.toml")
    problem = loaded.problem
    assert Path(problem["path"]) == (folder / "data" / "darcy_train.pt").absolute()
    assert loaded.raw["problem"]["test_path"] == problem["test_path"]
    kwargs = loaded.workflow_kwargs()
    built = load_problem(kwargs["problem"], kwargs["problem_overrides"])
    assert built.fine_resolution == 32


# ---- CLI -------------------------------------------------------------------------------------


def test_cli_data_file_with_test_path_and_options(darcy, burgers, capsys) -> None:
    from transfer_tune.cli import main

    code = main(
        ["data", "file", "--path", str(darcy["train"]), "--test-path", str(darcy["test32"])]
    )
    out = capsys.readouterr().out
    assert code == 0 and "fine test (super-resolution) at (32, 32)" in out
    path, _, _ = burgers
    code = main(["data", "file", "--path", str(path), "--y-time", "channels", "--subsample", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "(N, 17, 8)" in out and "visc=0.01" in out
    code = main(["data", "file", "--path", str(path), "--y-key", "nope"])
    assert code == 2 and "nope" in capsys.readouterr().err


# ---- every check before the proxy search -----------------------------------------------------


def _bad_inputs(tmp: Path, darcy: dict[str, Path], burgers: Path) -> list[tuple[dict, str]]:
    mismatched = tmp / "three_channels.npz"
    np.savez(mismatched, x=np.zeros((4, 3, 32, 32)), y=np.zeros((4, 32, 32)))
    coarse = tmp / "coarse.pt"
    torch.save(_darcy(4, 8, 5), coarse)
    train = str(darcy["train"])
    return [
        ({"path": str(tmp / "missing.pt")}, "does not exist"),
        ({"path": train, "test_path": str(tmp / "nope.pt")}, "does not exist"),
        ({"path": train, "x_key": "a"}, "no input/output pair"),
        ({"path": train, "y_key": "nope", "x_key": "x"}, r"\['nope'\] not found"),
        ({"path": train, "test_path": str(mismatched), "dim": 2}, "channels and the dimension"),
        ({"path": train, "test_path": str(coarse)}, "not finer than"),
        ({"path": train, "n_train": 50}, "holds 40 samples"),
        ({"path": str(burgers), "y_time": 17}, "out of range"),
        ({"path": str(burgers), "y_time": "middle"}, "must be 'first', 'last', 'channels'"),
        ({"path": train, "x_time": 0}, "has no time axis"),
        ({"path": train, "subsample": 0}, "subsample"),
    ]


def test_every_bad_input_fails_before_any_trial(tmp_path, darcy, burgers) -> None:
    url = _url(tmp_path)
    for overrides, message in _bad_inputs(tmp_path, darcy, burgers[0]):
        with pytest.raises(TransferTuneError, match=message):
            tune_then_transfer(
                problem="file", problem_overrides=overrides, storage=url, **WORKFLOW_OWN_DATA
            )
    train = {"path": str(darcy["train"])}
    fine = {**train, "test_path": str(darcy["test32"])}
    for overrides, eval_resolution, message in (
        (train, 32, "fine_test_path"),  # no finer test set at all
        (fine, 64, "eval_resolution=64 is not available"),
        (fine, 8, "eval_resolution=8 is not available"),
    ):
        with pytest.raises(TransferTuneError, match=message):
            tune_then_transfer(
                problem="file",
                problem_overrides=overrides,
                eval_resolution=eval_resolution,
                storage=url,
                **WORKFLOW_OWN_DATA,
            )
    assert _no_trials(url)
