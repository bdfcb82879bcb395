"""load_pairs: every supported layout read back exactly, and clear errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from pdes import load_pairs
from transfer_tune.errors import TransferTuneError

RNG = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def f32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32)


def write_v73(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Mimic a MATLAB v7.3 file: HDF5 with every array stored in reversed axis order."""
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=np.ascontiguousarray(v.T))
            f[k].attrs["MATLAB_class"] = np.bytes_("double")
        f.create_group("#refs#")


# ---- MATLAB ----------------------------------------------------------------------------------


def test_mat_v5_burgers_layout_and_subsample(tmp_path: Path) -> None:
    a, u = rand(5, 64), rand(5, 64)
    path = tmp_path / "burgers_data_R10.mat"
    scipy.io.savemat(path, {"a": a, "u": u, "visc": 0.1})
    x, y = load_pairs(path)
    assert x.dtype == np.float32 and x.shape == (5, 1, 64) and x.flags.c_contiguous
    np.testing.assert_array_equal(x[:, 0], f32(a))
    np.testing.assert_array_equal(y[:, 0], f32(u))
    x, y = load_pairs(path, subsample=8, n_samples=3)
    assert x.shape == (3, 1, 8)
    np.testing.assert_array_equal(y[:, 0], f32(u[:3, ::8]))


def test_mat_v5_darcy_421_style_subsampling(tmp_path: Path) -> None:
    coeff, sol = rand(3, 21, 21), rand(3, 21, 21)
    path = tmp_path / "piececonst.mat"
    scipy.io.savemat(path, {"coeff": coeff, "sol": sol, "Kcoeff": rand(3, 21, 21)})
    x, y = load_pairs(path, subsample=5)  # (21 - 1) / 5 + 1 = 5 points, as 421 -> 85
    assert x.shape == (3, 1, 5, 5)
    np.testing.assert_array_equal(x[:, 0], f32(coeff[:, ::5, ::5]))
    np.testing.assert_array_equal(y[:, 0], f32(sol[:, ::5, ::5]))
    x, _ = load_pairs(path, subsample=(4, 10))
    assert x.shape == (3, 1, 6, 3)


def test_mat_v5_navier_stokes_time_last(tmp_path: Path) -> None:
    a, u = rand(4, 8, 8), rand(4, 8, 8, 3)
    path = tmp_path / "ns.mat"
    scipy.io.savemat(path, {"a": a, "u": u, "t": np.arange(1, 4)[None]})
    x, y = load_pairs(path)
    assert x.shape == y.shape == (4, 1, 8, 8)
    np.testing.assert_array_equal(x[:, 0], f32(a))
    np.testing.assert_array_equal(y[:, 0], f32(u[..., -1]))
    _, y0 = load_pairs(path, y_time=0)
    np.testing.assert_array_equal(y0[:, 0], f32(u[..., 0]))
    # x and y from the same trajectory: u(t=1) -> u(t=3).
    x, y = load_pairs(path, x_key="u", y_key="u")
    np.testing.assert_array_equal(x[:, 0], f32(u[..., 0]))
    np.testing.assert_array_equal(y[:, 0], f32(u[..., 2]))


def test_mat_v73_transposed_layout(tmp_path: Path) -> None:
    a, u = rand(4, 8, 8), rand(4, 8, 8, 5)
    path = tmp_path / "ns_v73.mat"
    write_v73(path, {"a": a, "u": u})
    with h5py.File(path) as f:  # the file really holds the reversed order
        assert f["u"].shape == (5, 8, 8, 4)
    x, y = load_pairs(path, subsample=2, y_time=-2)
    assert x.shape == y.shape == (4, 1, 4, 4)
    np.testing.assert_array_equal(x[:, 0], f32(a[:, ::2, ::2]))
    np.testing.assert_array_equal(y[:, 0], f32(u[:, ::2, ::2, 3]))
    burgers = tmp_path / "burgers_v73.mat"
    a1, u1 = rand(6, 32), rand(6, 32)
    write_v73(burgers, {"a": a1, "u": u1})
    x, y = load_pairs(burgers, n_samples=4)
    np.testing.assert_array_equal(x[:, 0], f32(a1[:4]))
    np.testing.assert_array_equal(y[:, 0], f32(u1[:4]))


# ---- PDEBench HDF5 ---------------------------------------------------------------------------


def test_pdebench_1d(tmp_path: Path) -> None:
    tensor = rand(6, 5, 32)
    path = tmp_path / "1D_Burgers_Sols_Nu0.1.hdf5"
    with h5py.File(path, "w") as f:
        f["tensor"] = tensor.astype(np.float32)
        f["x-coordinate"] = np.linspace(0, 1, 32)
        f["t-coordinate"] = np.linspace(0, 2, 6)
    x, y = load_pairs(path)
    assert x.shape == y.shape == (6, 1, 32)
    np.testing.assert_array_equal(x[:, 0], f32(tensor[:, 0]))
    np.testing.assert_array_equal(y[:, 0], f32(tensor[:, -1]))
    x, y = load_pairs(path, x_time=1, y_time=3, subsample=4, n_samples=2)
    np.testing.assert_array_equal(x[:, 0], f32(tensor[:2, 1, ::4]))
    np.testing.assert_array_equal(y[:, 0], f32(tensor[:2, 3, ::4]))


def test_pdebench_2d_darcy(tmp_path: Path) -> None:
    nu, tensor = rand(3, 16, 16), rand(3, 1, 16, 16)
    path = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    with h5py.File(path, "w") as f:
        f["nu"] = nu
        f["tensor"] = tensor
        f["x-coordinate"] = np.linspace(0, 1, 16)
        f["y-coordinate"] = np.linspace(0, 1, 16)
    x, y = load_pairs(path, subsample=2)
    assert x.shape == y.shape == (3, 1, 8, 8)
    np.testing.assert_array_equal(x[:, 0], f32(nu[:, ::2, ::2]))
    np.testing.assert_array_equal(y[:, 0], f32(tensor[:, 0, ::2, ::2]))


def test_pdebench_grouped(tmp_path: Path) -> None:
    data = [rand(4, 8, 8, 2) for _ in range(3)]
    path = tmp_path / "2D_diff-react_NA_NA.h5"
    with h5py.File(path, "w") as f:
        for i, d in enumerate(data):
            g = f.create_group(f"{i:04d}")
            g["data"] = d
            g.create_group("grid")["t"] = np.linspace(0, 5, 4)
    x, y = load_pairs(path)
    assert x.shape == y.shape == (3, 2, 8, 8)
    for i, d in enumerate(data):
        np.testing.assert_array_equal(x[i], f32(np.moveaxis(d[0], -1, 0)))
        np.testing.assert_array_equal(y[i], f32(np.moveaxis(d[-1], -1, 0)))
    x, y = load_pairs(path, y_time=1, subsample=4, n_samples=2)
    assert x.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(y[1], f32(np.moveaxis(data[1][1, ::4, ::4], -1, 0)))
    with pytest.raises(TransferTuneError, match=r"no dataset 'field'.*0000/data"):
        load_pairs(path, x_key="field")


# ---- torch and numpy -------------------------------------------------------------------------


def test_neuraloperator_pt_dict(tmp_path: Path) -> None:
    xs, ys = torch.randn(5, 16, 16), torch.randn(5, 16, 16)
    path = tmp_path / "darcy_train_16.pt"
    torch.save({"x": xs, "y": ys, "meta": "n/a"}, path)
    x, y = load_pairs(path)
    assert x.shape == (5, 1, 16, 16)
    np.testing.assert_array_equal(x[:, 0], xs.numpy())
    np.testing.assert_array_equal(y[:, 0], ys.numpy())
    # With a channel axis already present, and in double precision.
    path2 = tmp_path / "with_channels.pt"
    torch.save({"x": xs[:, None].double(), "y": ys[:, None]}, path2)
    x2, y2 = load_pairs(path2)
    assert x2.dtype == np.float32 and x2.shape == (5, 1, 16, 16)
    np.testing.assert_array_equal(x2, x)


class NotATensor:
    """A custom object: loading it would need full unpickling, which is refused."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def test_pt_refuses_arbitrary_pickles(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"x": torch.zeros(2, 4), "y": NotATensor()}, path)
    with pytest.raises(TransferTuneError, match="not unpickled for safety"):
        load_pairs(path)
    path2 = tmp_path / "tensor.pt"
    torch.save(torch.zeros(2, 4), path2)
    with pytest.raises(TransferTuneError, match="expected a dict of tensors"):
        load_pairs(path2)


def test_npz_channels_and_inference(tmp_path: Path) -> None:
    xs, ys = rand(4, 2, 8, 8), rand(4, 1, 8, 8)
    path = tmp_path / "two_channels.npz"
    np.savez(path, x=xs, y=ys)
    x, y = load_pairs(path, dim=2)  # (N, 2, 8, 8) is ambiguous: say dim=2
    assert x.shape == (4, 2, 8, 8) and y.shape == (4, 1, 8, 8)
    np.testing.assert_array_equal(x, f32(xs))
    np.testing.assert_array_equal(y, f32(ys))
    one_d = tmp_path / "ours.npz"
    a, b = rand(3, 1, 32), rand(3, 1, 32)
    np.savez(one_d, x=a, y=b)
    x, y = load_pairs(one_d)  # a singleton axis 1 is a channel axis: 1-D data
    assert x.shape == (3, 1, 32)
    np.testing.assert_array_equal(y, f32(b))
    # An extra axis on y only (x has none) is a time axis: the last step by default,
    # every step as channels on request, any step by index.
    traj = tmp_path / "traj.npz"
    u = rand(3, 4, 16)
    np.savez(traj, a=u[:, 0], u=u)
    x, y = load_pairs(traj)
    assert y.shape == (3, 1, 16)
    np.testing.assert_array_equal(y[:, 0], f32(u[:, -1]))
    _, y = load_pairs(traj, y_time="channels")
    np.testing.assert_array_equal(y, f32(u))
    _, y = load_pairs(traj, y_time=1)
    np.testing.assert_array_equal(y[:, 0], f32(u[:, 1]))
    # The format can be forced for an unusual extension.
    odd = tmp_path / "data.bin"
    odd.write_bytes(one_d.read_bytes())
    x, _ = load_pairs(odd, format="npz")
    np.testing.assert_array_equal(x, f32(a))


# ---- errors ----------------------------------------------------------------------------------


def test_unknown_extension_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(TransferTuneError) as err:
        load_pairs(path)
    for ext in (".mat", ".h5", ".hdf5", ".pt", ".npz"):
        assert ext in str(err.value)
    with pytest.raises(TransferTuneError, match="unknown format 'csv'"):
        load_pairs(path, format="csv")


def test_missing_file() -> None:
    with pytest.raises(TransferTuneError, match="does not exist"):
        load_pairs("/nonexistent/data.mat")


def test_missing_keys_list_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "odd.mat"
    scipy.io.savemat(path, {"inp": rand(3, 8), "out": rand(3, 8)})
    with pytest.raises(TransferTuneError) as err:
        load_pairs(path)
    msg = str(err.value)
    assert "inp (3, 8)" in msg and "out (3, 8)" in msg and "x_key" in msg
    x, _ = load_pairs(path, x_key="inp", y_key="out")
    assert x.shape == (3, 1, 8)
    with pytest.raises(TransferTuneError, match=r"\['nope'\] not found.*inp \(3, 8\)"):
        load_pairs(path, x_key="inp", y_key="nope")
    h5 = tmp_path / "odd.h5"
    with h5py.File(h5, "w") as f:
        f["foo"] = rand(2, 4)
    with pytest.raises(TransferTuneError, match=r"foo \(2, 4\)"):
        load_pairs(h5)


def test_wrong_rank_and_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "rank.npz"
    np.savez(path, x=rand(3, 8), y=rand(3, 2, 2, 8))
    with pytest.raises(TransferTuneError, match=r"rank 4 does not fit 1-D.*x \(3, 8\)"):
        load_pairs(path)
    path = tmp_path / "count.npz"
    np.savez(path, x=rand(3, 8), y=rand(4, 8))
    with pytest.raises(TransferTuneError, match=r"do not match.*\(3, 1, 8\).*\(4, 1, 8\)"):
        load_pairs(path)
    path = tmp_path / "grid.npz"
    np.savez(path, x=rand(3, 8), y=rand(3, 16))
    with pytest.raises(TransferTuneError, match="do not match"):
        load_pairs(path)
    path = tmp_path / "same.npz"
    np.savez(path, u=rand(3, 8))
    with pytest.raises(TransferTuneError, match="must have a time axis"):
        load_pairs(path, x_key="u", y_key="u")
    with pytest.raises(TransferTuneError, match="spatial dimension must be 1, 2 or 3"):
        load_pairs(path, x_key="u", y_key="u", dim=0)


def test_bad_options(tmp_path: Path) -> None:
    path = tmp_path / "ns.mat"
    scipy.io.savemat(path, {"a": rand(2, 8, 8), "u": rand(2, 8, 8, 3)})
    with pytest.raises(TransferTuneError, match=r"y_time=5 is out of range.*3 steps"):
        load_pairs(path, y_time=5)
    with pytest.raises(TransferTuneError, match="has no time axis"):
        load_pairs(path, x_time=0)
    with pytest.raises(TransferTuneError, match="2 spatial axes"):
        load_pairs(path, subsample=(2, 2, 2))
    with pytest.raises(TransferTuneError, match="subsample must be a positive integer, got 0"):
        load_pairs(path, subsample=0)
    with pytest.raises(TransferTuneError, match="n_samples"):
        load_pairs(path, n_samples=0)


def test_corrupted_files_raise_clear_errors(tmp_path: Path) -> None:
    for name in ("bad.mat", "bad.h5", "bad.pt", "bad.npz"):
        path = tmp_path / name
        path.write_bytes(b"\x00garbage" * 10)
        with pytest.raises(TransferTuneError, match="corrupted"):
            load_pairs(path)
