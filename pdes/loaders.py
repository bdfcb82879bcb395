"""Read input/output pairs from dataset files people already have.

One entry point, :func:`load_pairs`, returns float32 arrays shaped ``(N, C, *grid)``.

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

import contextlib
import pickle
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pdes.errors import TransferTuneError

__all__ = ["FORMATS", "load_pairs"]

#: Supported formats and the file extensions that select them.
FORMATS: dict[str, tuple[str, ...]] = {
    "mat": (".mat",),
    "hdf5": (".h5", ".hdf5", ".hdf"),
    "pt": (".pt", ".pth"),
    "npz": (".npz",),
}

_DEFAULT_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "mat": (("a", "u"), ("coeff", "sol"), ("x", "y"), ("input", "output")),
    "hdf5": (("nu", "tensor"), ("tensor", "tensor"), ("x", "y"), ("a", "u")),
    "pt": (("x", "y"), ("a", "u"), ("coeff", "sol"), ("input", "output")),
    "npz": (("x", "y"), ("a", "u"), ("coeff", "sol"), ("input", "output")),
}

Index = tuple[Any, ...]


def _supported() -> str:
    return ", ".join(f"{ext} ({fmt})" for fmt, exts in FORMATS.items() for ext in exts)


# --------------------------------------------------------------------------------------------
# Sources: a uniform view (keys, shapes, indexed reads) over each file format.
# --------------------------------------------------------------------------------------------


class _Source:
    """Named arrays of one file, read lazily where the format allows."""

    def __init__(self, path: Path, fmt: str, label: str) -> None:
        self.path = path
        self.fmt = fmt
        self.label = label
        self.groups: list[str] = []  # PDEBench-style per-sample groups (HDF5 only)

    def keys(self) -> list[str]:
        raise NotImplementedError

    def shape(self, key: str) -> tuple[int, ...]:
        raise NotImplementedError

    def read(self, key: str, index: Index) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        items = [f"{k} {self.shape(k)}" for k in self.keys()]
        if self.groups:
            items.append(self._describe_groups())
        found = ", ".join(items) if items else "no arrays"
        return f"{self.label} file {self.path} holds: {found}"

    def _describe_groups(self) -> str:
        return ""

    def close(self) -> None:
        """Release the file."""


class _DictSource(_Source):
    """Arrays from a mapping of names to loaders (``.pt``, ``.npz``, MATLAB v5)."""

    def __init__(
        self,
        path: Path,
        fmt: str,
        label: str,
        shapes: dict[str, tuple[int, ...]],
        loader: Callable[[str], np.ndarray],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(path, fmt, label)
        self._shapes = shapes
        self._loader = loader
        self._loaded: dict[str, np.ndarray] = {}
        self._on_close = on_close

    def keys(self) -> list[str]:
        return list(self._shapes)

    def shape(self, key: str) -> tuple[int, ...]:
        return self._shapes[key]

    def read(self, key: str, index: Index) -> np.ndarray:
        if key not in self._loaded:
            self._loaded[key] = self._loader(key)
        return np.asarray(self._loaded[key][index])

    def close(self) -> None:
        self._loaded.clear()
        if self._on_close is not None:
            self._on_close()


class _H5Source(_Source):
    """Datasets of an HDF5 file; ``transposed`` undoes MATLAB v7.3's reversed axis order."""

    def __init__(self, path: Path, fmt: str, label: str, transposed: bool) -> None:
        import h5py

        super().__init__(path, fmt, label)
        try:
            self.file = h5py.File(path, "r")
        except OSError as err:
            raise TransferTuneError(
                f"cannot open {path} as HDF5 ({err}); the file is corrupted or not HDF5."
            ) from err
        self.transposed = transposed
        self._datasets = {}
        for name, item in self.file.items():
            if name.startswith("#"):  # MATLAB v7.3 bookkeeping (#refs#, #subsystem#)
                continue
            if isinstance(item, h5py.Dataset):
                self._datasets[name] = item
            elif isinstance(item, h5py.Group):
                self.groups.append(name)
        self.groups.sort(key=lambda g: (not g.isdigit(), int(g) if g.isdigit() else 0, g))

    def keys(self) -> list[str]:
        return list(self._datasets)

    def shape(self, key: str) -> tuple[int, ...]:
        shape = tuple(self._datasets[key].shape)
        return shape[::-1] if self.transposed else shape

    def read(self, key: str, index: Index) -> np.ndarray:
        ds = self._datasets[key]
        if self.transposed:
            return np.asarray(ds[tuple(reversed(index))]).T
        return np.asarray(ds[index])

    def group_member(self, group: str, key: str) -> Any:
        item = self.file[group].get(key)
        import h5py

        return item if isinstance(item, h5py.Dataset) else None

    def _describe_groups(self) -> str:
        first = self.groups[0]
        members = ", ".join(
            f"{first}/{k} {tuple(v.shape)}"
            for k, v in self.file[first].items()
            if hasattr(v, "shape")
        )
        return f"{len(self.groups)} groups like {first!r} ({members or 'no datasets'})"

    def close(self) -> None:
        self.file.close()


def _open_npz(path: Path) -> _Source:
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as err:
        raise TransferTuneError(
            f"cannot read {path} as .npz ({type(err).__name__}: {err}); the file is "
            "corrupted or not an npz archive."
        ) from err
    shapes = {}
    for key in npz.files:
        try:
            with npz.zip.open(f"{key}.npy") as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape = np.lib.format.read_array_header_1_0(fh)[0]
                else:
                    shape = np.lib.format.read_array_header_2_0(fh)[0]
        except Exception:  # unusual member: fall back to loading it
            shape = npz[key].shape
        shapes[key] = tuple(shape)

    def load(key: str) -> np.ndarray:
        try:
            return npz[key]
        except ValueError as err:  # object arrays need pickle: refuse
            raise TransferTuneError(
                f"array {key!r} in {path} needs pickle to load ({err}); it is refused for "
                "safety. Save plain numeric arrays."
            ) from err

    return _DictSource(path, "npz", ".npz", shapes, load, on_close=npz.close)


def _open_pt(path: Path) -> _Source:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise TransferTuneError(
            f"{path} holds objects other than tensors and plain containers; it is not "
            "unpickled for safety (torch.load(weights_only=True)). Re-save it as a dict of "
            "tensors, e.g. torch.save({'x': x, 'y': y}, path), or as .npz."
        ) from err
    except Exception as err:
        raise TransferTuneError(
            f"cannot read {path} with torch.load ({type(err).__name__}: {err}); the file is "
            "corrupted or not a torch file."
        ) from err
    if not isinstance(obj, dict):
        raise TransferTuneError(
            f"{path} holds a {type(obj).__name__}, expected a dict of tensors such as "
            "{'x': tensor, 'y': tensor}."
        )
    arrays: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu()
            if t.is_complex():
                arrays[str(key)] = t.numpy()
            else:
                arrays[str(key)] = (t.float() if t.dtype == torch.bfloat16 else t).numpy()
        elif isinstance(value, np.ndarray):
            arrays[str(key)] = value
    shapes = {k: tuple(v.shape) for k, v in arrays.items()}
    return _DictSource(path, "pt", ".pt", shapes, arrays.__getitem__)


def _open_mat(path: Path) -> _Source:
    import h5py
    import scipy.io

    if h5py.is_hdf5(path):
        return _H5Source(path, "mat", "MATLAB v7.3 (HDF5; shapes in MATLAB order)", True)
    try:
        info = scipy.io.whosmat(path)
    except Exception as err:
        raise TransferTuneError(
            f"cannot read {path} as a MATLAB file ({type(err).__name__}: {err}); the file is "
            "corrupted or not a .mat file."
        ) from err
    shapes = {name: tuple(shape) for name, shape, _cls in info if not name.startswith("__")}

    def load(key: str) -> np.ndarray:
        try:
            return scipy.io.loadmat(path, variable_names=[key])[key]
        except Exception as err:
            raise TransferTuneError(
                f"cannot read variable {key!r} from {path} ({type(err).__name__}: {err})."
            ) from err

    return _DictSource(path, "mat", "MATLAB v5", shapes, load)


def _open_hdf5(path: Path) -> _Source:
    return _H5Source(path, "hdf5", "HDF5", False)


_OPENERS: dict[str, Callable[[Path], _Source]] = {
    "mat": _open_mat,
    "hdf5": _open_hdf5,
    "pt": _open_pt,
    "npz": _open_npz,
}


@contextlib.contextmanager
def _open(path: Path, fmt: str) -> Iterator[_Source]:
    src = _OPENERS[fmt](path)
    try:
        yield src
    finally:
        src.close()


# --------------------------------------------------------------------------------------------
# Layout logic
# --------------------------------------------------------------------------------------------


def _detect_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        key = fmt.lower().lstrip(".")
        aliases = {"h5": "hdf5", "hdf": "hdf5", "pth": "pt", "torch": "pt"}
        key = aliases.get(key, key)
        if key not in FORMATS:
            raise TransferTuneError(
                f"unknown format {fmt!r}; supported formats: {', '.join(FORMATS)}."
            )
        return key
    suffix = path.suffix.lower()
    for name, exts in FORMATS.items():
        if suffix in exts:
            return name
    raise TransferTuneError(
        f"unsupported file extension {suffix or '(none)'!r} for {path}; supported: "
        f"{_supported()}. Convert the file, or pass format='mat'|'hdf5'|'pt'|'npz'."
    )


def _choose_keys(src: _Source, x_key: str | None, y_key: str | None) -> tuple[str, str]:
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


def _infer_dim(src: _Source, x_key: str, y_key: str) -> int:
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
    if isinstance(subsample, (int, np.integer)) and not isinstance(subsample, bool):
        strides = (int(subsample),) * dim
    elif isinstance(subsample, Sequence) and not isinstance(subsample, str):
        strides = tuple(int(s) for s in subsample)
        if len(strides) != dim:
            raise TransferTuneError(
                f"subsample={list(subsample)} gives {len(strides)} strides but the data have "
                f"{dim} spatial axes; pass one int or {dim} ints."
            )
    else:
        raise TransferTuneError(f"subsample must be a positive int, got {subsample!r}.")
    if any(s < 1 for s in strides):
        raise TransferTuneError(f"subsample strides must be >= 1, got {subsample!r}.")
    return strides


def _time_index(t: int, n_steps: int, what: str, src: _Source) -> int:
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
        raise TransferTuneError(f"{what} must be an int time index, got {t!r}.")
    if not -n_steps <= t < n_steps:
        raise TransferTuneError(
            f"{what}={t} is out of range for a time axis of {n_steps} steps (valid "
            f"{-n_steps}..{n_steps - 1}). {src.describe()}."
        )
    return int(t) % n_steps


def _read_field(
    src: _Source,
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
    src: _H5Source,
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
    fmt = _detect_format(path, format)
    if dim is not None:
        dim = _check_dim(dim, "dim")
    if n_samples is not None and (
        isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1
    ):
        raise TransferTuneError(f"n_samples must be a positive int or None, got {n_samples!r}.")
    with _open(path, fmt) as src:
        if isinstance(src, _H5Source) and not src.keys() and src.groups and fmt == "hdf5":
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
