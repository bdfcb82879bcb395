"""Read input/output pairs from dataset files people already have.

One entry point, :func:`load_pairs`, returns float32 arrays shaped ``(N, C, *grid)``. The
file formats themselves are read through :mod:`pdes.formats`; this module decides which arrays
are the inputs and outputs and how their axes map to samples, channels, time and grid.

Supported layouts
-----------------
``.mat`` (``format="mat"``)
    The original FNO files. MATLAB v5 files are read with :func:`scipy.io.loadmat`; v7.3
    files (HDF5 inside) with h5py, undoing HDF5's reversed axis order, so both give the
    MATLAB shapes: Burgers ``a``, ``u`` (N, 8192); Darcy ``coeff``, ``sol`` (N, 421, 421);
    Navier--Stokes ``a`` (N, 64, 64) and ``u`` (N, 64, 64, T). An array with one axis more
    than the grid has its **time axis last**; ``x_time``/``y_time`` pick the step.
``.h5``, ``.hdf5``, ``.hdf`` (``format="hdf5"``)
    PDEBench. 1-D files: ``tensor`` (N, T, X) (plus ``x-coordinate``, ``t-coordinate``), read
    as x = ``tensor[:, 0]``, y = ``tensor[:, -1]``. 2-D Darcy: ``nu`` (N, X, Y) -> ``tensor``
    (N, 1, X, Y). Per-sample groups ``0000/data`` (T, X, Y, C): x = ``data[0]``,
    y = ``data[-1]``, channels moved first. An array with one axis more than the grid has its
    **time axis right after the sample axis**.
``.pt``, ``.pth`` (``format="pt"``)
    neuraloperator-style dicts of tensors with keys ``x`` and ``y``, loaded with
    ``torch.load(path, weights_only=True)`` only (nothing else is ever unpickled). An array
    with one axis more than the grid has a **channel axis** at position 1 (kept), unless
    ``x_time``/``y_time`` is given (then it is a time axis and that step is taken).
``.npz`` (``format="npz"``)
    Like ``.pt`` (``np.load(..., allow_pickle=False)``).

Defaults
--------
Keys: the first pair present among ``("a", "u"), ("coeff", "sol"), ("x", "y"),
("input", "output")`` for ``.mat``; ``("nu", "tensor"), ("tensor", "tensor"), ("x", "y"),
("a", "u")`` for HDF5; ``("x", "y"), ("a", "u"), ("coeff", "sol"), ("input", "output")`` for
``.pt`` and ``.npz``. Time steps: ``x_time=0`` and ``y_time=-1`` (first and last) where an
array has a time axis. When ``x_key == y_key`` the array must have a time axis (x and y are
two steps of one trajectory). ``dim`` is inferred as the rank of the lower-rank array minus
one (the sample axis), minus one more if that is the same array as both x and y (time axis),
or, for ``.pt``/``.npz``, if its axis 1 has size 1 (a channel axis). Pass ``dim`` when that
guess is wrong (e.g. ``(N, 2, 64, 64)`` two-channel 2-D data).

Subsampling takes every ``subsample``-th point along each spatial axis starting at the first,
so an n-point axis keeps ``(n - 1) // s + 1`` points (the FNO Darcy 421 grid with ``s = 5``
gives 85, the original FNO convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pdes.checks import as_int
from pdes.errors import TransferTuneError
from pdes.formats import FORMATS, H5Source, Index, Source, detect_format, open_source

__all__ = ["FORMATS", "load_pairs"]

_DEFAULT_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "mat": (("a", "u"), ("coeff", "sol"), ("x", "y"), ("input", "output")),
    "hdf5": (("nu", "tensor"), ("tensor", "tensor"), ("x", "y"), ("a", "u")),
    "pt": (("x", "y"), ("a", "u"), ("coeff", "sol"), ("input", "output")),
    "npz": (("x", "y"), ("a", "u"), ("coeff", "sol"), ("input", "output")),
}


def _choose_keys(src: Source, x_key: str | None, y_key: str | None) -> tuple[str, str]:
    keys = set(src.keys())
    if x_key is not None and y_key is not None:
        missing = [k for k in (x_key, y_key) if k not in keys]
        if missing:
            raise TransferTuneError(
                f"key(s) {missing} not found. {src.describe()}. Pass x_key=/y_key= naming "
                "arrays that exist."
            )
        return x_key, y_key
    for cx, cy in _DEFAULT_KEYS[src.fmt]:
        if x_key is not None and cx != x_key:
            continue
        if y_key is not None and cy != y_key:
            continue
        if cx in keys and cy in keys:
            return cx, cy
    given = f" (given x_key={x_key!r}, y_key={y_key!r})" if x_key or y_key else ""
    defaults = ", ".join(f"{a}/{b}" for a, b in _DEFAULT_KEYS[src.fmt])
    raise TransferTuneError(
        f"no input/output pair found{given}: the default keys for {src.fmt} files are "
        f"{defaults}. {src.describe()}. Pass x_key= and y_key=."
    )


def _infer_dim(src: Source, x_key: str, y_key: str) -> int:
    xs, ys = src.shape(x_key), src.shape(y_key)
    if x_key == y_key:
        return len(xs) - 2
    shape = xs if len(xs) <= len(ys) else ys
    dim = len(shape) - 1
    if src.fmt in ("pt", "npz") and len(shape) >= 3 and shape[1] == 1:
        dim -= 1
    return dim


def _check_dim(dim: int, what: str) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 1 <= dim <= 3:
        raise TransferTuneError(
            f"{what}: the spatial dimension must be 1, 2 or 3, got {dim!r}; pass dim= "
            "explicitly if the guess from the array ranks is wrong."
        )
    return int(dim)


def _strides(subsample: int | Sequence[int], dim: int) -> tuple[int, ...]:
    if not isinstance(subsample, Sequence) or isinstance(subsample, str):
        return (as_int(subsample, "subsample"),) * dim
    strides = tuple(as_int(s, f"each stride of subsample={list(subsample)}") for s in subsample)
    if len(strides) != dim:
        raise TransferTuneError(
            f"subsample={list(subsample)} gives {len(strides)} strides but the data have "
            f"{dim} spatial axes; pass one int or {dim} ints."
        )
    return strides


def _time_index(t: int, n_steps: int, what: str, src: Source) -> int:
    t = as_int(t, f"{what} (a time index)", minimum=None)
    if not -n_steps <= t < n_steps:
        raise TransferTuneError(
            f"{what}={t} is out of range for a time axis of {n_steps} steps (valid "
            f"{-n_steps}..{n_steps - 1}). {src.describe()}."
        )
    return t % n_steps


def _read_field(
    src: Source,
    key: str,
    dim: int,
    strides: tuple[int, ...],
    n: int | None,
    time: int | None,
    default_time: int,
    force_time: bool,
    role: str,
) -> np.ndarray:
    shape = src.shape(key)
    extra = len(shape) - 1 - dim
    spatial = [slice(None, None, s) for s in strides]
    samples = slice(0, n)
    what = f"{role}_time"
    if extra == 0:
        if time is not None:
            raise TransferTuneError(
                f"{what}={time} was given but {role} array {key!r} {shape} has no time axis "
                f"for {dim}-D data. {src.describe()}."
            )
        return src.read(key, (samples, *spatial))[:, None]
    if extra != 1:
        raise TransferTuneError(
            f"{role} array {key!r} has shape {shape}: rank {len(shape)} does not fit {dim}-D "
            f"data (expected (N, *grid) or (N, {'*grid, T' if src.fmt == 'mat' else 'C|T, *grid'}"
            f")). {src.describe()}. Pass dim= or other keys."
        )
    is_time = force_time or src.fmt in ("mat", "hdf5") or time is not None
    if not is_time:  # channel axis at position 1
        return src.read(key, (samples, slice(None), *spatial))
    t_axis = len(shape) - 1 if src.fmt == "mat" else 1
    t = _time_index(default_time if time is None else time, shape[t_axis], what, src)
    index = (samples, *spatial, t) if t_axis == len(shape) - 1 else (samples, t, *spatial)
    return src.read(key, index)[:, None]


def _load_grouped(
    src: H5Source,
    x_key: str | None,
    y_key: str | None,
    dim: int | None,
    subsample: int | Sequence[int],
    x_time: int | None,
    y_time: int | None,
    n: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    x_key = x_key or "data"
    y_key = y_key or "data"
    groups = src.groups if n is None else src.groups[:n]
    first = groups[0]
    for key in (x_key, y_key):
        if src.group_member(first, key) is None:
            raise TransferTuneError(
                f"group {first!r} has no dataset {key!r}. {src.describe()}. Pass x_key=/y_key= "
                "naming a dataset inside each group."
            )
    out = []
    for key, t_req, t_def, role in ((x_key, x_time, 0, "x"), (y_key, y_time, -1, "y")):
        shape = tuple(src.group_member(first, key).shape)
        d = _check_dim(dim if dim is not None else len(shape) - 2, f"{role} {first}/{key}")
        if len(shape) not in (d + 1, d + 2):
            raise TransferTuneError(
                f"{role} dataset {first}/{key} has shape {shape}; expected (T, *grid) or "
                f"(T, *grid, C) for {d}-D data. {src.describe()}. Pass dim=."
            )
        strides = _strides(subsample, d)
        t = _time_index(t_def if t_req is None else t_req, shape[0], f"{role}_time", src)
        index: Index = (t, *(slice(None, None, s) for s in strides))
        fields = []
        for g in groups:
            ds = src.group_member(g, key)
            if ds is None or tuple(ds.shape) != shape:
                raise TransferTuneError(
                    f"group {g!r} lacks {key!r} or holds another shape than {first}/{key} "
                    f"{shape}; every group must hold the same layout."
                )
            a = np.asarray(ds[index])
            fields.append(np.moveaxis(a, -1, 0) if len(shape) == d + 2 else a[None])
        out.append(np.stack(fields))
    return out[0], out[1]


def _to_float32(a: np.ndarray, key: str, path: Path) -> np.ndarray:
    if np.iscomplexobj(a):
        raise TransferTuneError(
            f"array {key!r} in {path} is complex; split it into real channels first."
        )
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise TransferTuneError(f"array {key!r} in {path} has non-numeric dtype {a.dtype}.")
    return np.ascontiguousarray(a, dtype=np.float32)


def load_pairs(
    path: str | Path,
    *,
    x_key: str | None = None,
    y_key: str | None = None,
    dim: int | None = None,
    subsample: int | Sequence[int] = 1,
    format: str | None = None,
    x_time: int | None = None,
    y_time: int | None = None,
    n_samples: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load input/output pairs from a ``.mat``, HDF5, ``.pt`` or ``.npz`` file.

    See the module docstring for the layouts, default keys and the time and channel axis
    conventions of each format.

    Parameters
    ----------
    path : str or pathlib.Path
        The file.
    x_key, y_key : str, optional
        Names of the input and output arrays (or, for PDEBench per-sample groups, of the
        dataset inside each group; default ``"data"``). Default: the first default pair of the
        format present in the file.
    dim : int, optional
        Spatial dimension (1, 2 or 3). Default: inferred from the array ranks.
    subsample : int or sequence of int, default 1
        Stride per spatial axis (one int for all axes, or one per axis).
    format : {"mat", "hdf5", "pt", "npz"}, optional
        Overrides the format chosen from the extension.
    x_time, y_time : int, optional
        Time index taken where the array has a time axis (negative counts from the end).
        Defaults: 0 for x, -1 for y.
    n_samples : int, optional
        Read only the first ``n_samples`` samples (all if the file has fewer).

    Returns
    -------
    x, y : numpy.ndarray
        C-contiguous float32 arrays shaped ``(N, C_in, *grid)`` and ``(N, C_out, *grid)``.

    Raises
    ------
    TransferTuneError
        For a missing file, an unsupported extension or format, missing keys, wrong ranks,
        mismatched sample counts or grids, or an out-of-range time index; the message lists
        the keys and shapes found in the file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise TransferTuneError(f"dataset file {path} does not exist (or is not a file).")
    fmt = detect_format(path, format)
    if dim is not None:
        dim = _check_dim(dim, "dim")
    if n_samples is not None:
        n_samples = as_int(n_samples, "n_samples (None: all)")
    with open_source(path, fmt) as src:
        if isinstance(src, H5Source) and not src.keys() and src.groups and fmt == "hdf5":
            x, y = _load_grouped(src, x_key, y_key, dim, subsample, x_time, y_time, n_samples)
            xk, yk = x_key or "data", y_key or "data"
        else:
            xk, yk = _choose_keys(src, x_key, y_key)
            same = xk == yk
            rank = len(src.shape(xk))
            if same and (rank < 3 or (dim is not None and rank != dim + 2)):
                raise TransferTuneError(
                    f"x_key and y_key are both {xk!r}, so it must have a time axis, but its "
                    f"shape {src.shape(xk)} has rank {rank}"
                    + (f" for {dim}-D data" if dim is not None else "")
                    + f". {src.describe()}."
                )
            d = _check_dim(dim if dim is not None else _infer_dim(src, xk, yk), str(path))
            strides = _strides(subsample, d)
            x = _read_field(src, xk, d, strides, n_samples, x_time, 0, same, "x")
            y = _read_field(src, yk, d, strides, n_samples, y_time, -1, same, "y")
        if x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[2:]:
            raise TransferTuneError(
                f"x {xk!r} and y {yk!r} do not match: read as {x.shape} and {y.shape} "
                f"(samples and grid must agree). {src.describe()}."
            )
    return _to_float32(x, xk, path), _to_float32(y, yk, path)
