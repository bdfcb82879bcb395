"""A proxy's coarser training grid: exact subsamples of the target's functions, or an error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdes import get_problem
from pdes.coarse import coarse_problem, coarse_resolutions
from transfer_tune.errors import TransferTuneError

SIZES = {"n_train": 3, "n_val": 1, "n_test": 1, "n_jobs": 1}


def test_generated_burgers_coarse_grid_is_every_fourth_point():
    fine = get_problem("burgers", resolution=64, n_fine=256, **SIZES)
    coarse = coarse_problem(fine, 16)
    assert coarse.resolution == 16 and coarse.config()["n_fine"] == 256
    for split in ("train", "val", "test"):
        x, y = fine.dataset(split, normalized=False)
        xc, yc = coarse.dataset(split, normalized=False)
        assert torch.equal(x[..., ::4], xc) and torch.equal(y[..., ::4], yc), split
    # its own normalisers (fitted on its own coarse train split), not the target's
    assert "normalizer_from" not in coarse.config()
    assert coarse_problem(fine, 64) is fine


def test_generated_darcy_coarse_grid_keeps_the_solver_grid():
    fine = get_problem("darcy", resolution=17, n_fine=33, **SIZES)
    coarse = coarse_problem(fine, 9)
    x, y = fine.dataset("train", normalized=False)
    xc, yc = coarse.dataset("train", normalized=False)
    assert torch.equal(x[..., ::2, ::2], xc) and torch.equal(y[..., ::2, ::2], yc)


def test_file_problem_coarsens_by_stride(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "pairs.npz"
    np.savez(path, x=rng.standard_normal((6, 33, 33)), y=rng.standard_normal((6, 33, 33)))
    fine = get_problem("file", path=path, n_train=4, n_val=1, n_test=1)
    assert coarse_resolutions(fine)[:3] == [17, 11, 9]
    coarse = coarse_problem(fine, 9)  # every 4th point of 33: 0, 4, ..., 32
    assert coarse.grid_shape == (9, 9) and coarse.config()["subsample"] == 4
    x, y = fine.dataset("train", normalized=False)
    xc, yc = coarse.dataset("train", normalized=False)
    assert torch.equal(x[..., ::4, ::4], xc) and torch.equal(y[..., ::4, ::4], yc)
    with pytest.raises(TransferTuneError, match=r"exact subsample .* one of \[17, 11, 9"):
        coarse_problem(fine, 10)


def test_coarse_grid_errors():
    fine = get_problem("burgers", resolution=64, n_fine=256, **SIZES)
    with pytest.raises(TransferTuneError, match="finer than the problem's 64"):
        coarse_problem(fine, 128)
    with pytest.raises(TransferTuneError, match="not a subsample of the fine grid"):
        coarse_problem(fine, 48)
    with pytest.raises(TransferTuneError, match="proxy resolution"):
        coarse_problem(fine, 1)
