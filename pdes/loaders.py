"""Read input/output pairs from dataset files people already have.

:func:`load_pairs` returns float32 arrays shaped ``(N, C, *grid)``; :func:`inspect_pairs` says
what it would return (keys, per-sample shapes, sample count, time handling, scalar metadata
such as ``visc``) reading headers only where the format allows. The file formats themselves
are read through :mod:`pdes.formats`; this module decides which arrays are the inputs and
outputs and how their axes map to samples, channels, time and grid.

Supported layouts
-----------------
``.mat`` (``format="mat"``)
    The original FNO files. MATLAB v5 files are read with :func:`scipy.io.loadmat`; v7.3
    files (HDF5 inside) with h5py, undoing HDF5's reversed axis order, so both give the
    MATLAB shapes: Burgers ``a``, ``u`` (N, 8192); Darcy ``coeff``, ``sol`` (N, 421, 421);
    Navier--Stokes ``a`` (N, 64, 64) and ``u`` (N, 64, 64, T). An array with one axis more
    than the grid has its **time axis last**.
``.h5``, ``.hdf5``, ``.hdf`` (``format="hdf5"``)
    PDEBench. 1-D files: ``tensor`` (N, T, X) (plus ``x-coordinate``, ``t-coordinate``), read
    as x = ``tensor[:, 0]``, y = ``tensor[:, -1]``. 2-D Darcy: ``nu`` (N, X, Y) -> ``tensor``
    (N, 1, X, Y). Per-sample groups ``0000/data`` (T, X, Y, C): x = ``data[0]``,
    y = ``data[-1]``, channels moved first. An array with one axis more than the grid has its
    **time axis right after the sample axis**.
``.pt``, ``.pth`` (``format="pt"``)
    neuraloperator-style dicts of tensors with keys ``x`` and ``y``, loaded with
    ``torch.load(path, weights_only=True)`` only (nothing else is ever unpickled). An array
    with one axis more than the grid has that extra axis at position 1. It is a **channel
    axis** (kept) when both x and y have one; when only y has it (neuraloperator's Burgers:
    x (N, 16), y (N, 17, 16)) it is a **time axis** and the last step is taken. ``x_time`` /
    ``y_time`` override both rules.
``.npz`` (``format="npz"``)
    Like ``.pt`` (``np.load(..., allow_pickle=False)``).

Time series
-----------
Where an array has a time axis, ``x_time`` / ``y_time`` choose what to keep: an integer step
(negative counts from the end), ``"first"``, ``"last"``, or ``"channels"`` (every step becomes
a channel, in time order). Defaults: the first step for x, the last for y.

Defaults
--------
Keys: the first pair present among ``("a", "u"), ("coeff", "sol"), ("x", "y"),
("input", "output")`` for ``.mat``; ``("nu", "tensor"), ("tensor", "tensor"), ("x", "y"),
("a", "u")`` for HDF5; ``("x", "y"), ("a", "u"), ("coeff", "sol"), ("input", "output")`` for
``.pt`` and ``.npz``. When ``x_key == y_key`` the array must have a time axis (x and y are
two steps of one trajectory). ``dim`` is inferred as the rank of the lower-rank array minus
one (the sample axis), minus one more if that is the same array as both x and y (time axis),
or, for ``.pt``/``.npz``, if its axis 1 has size 1 (a channel axis). Pass ``dim`` when that
guess is wrong (e.g. ``(N, 2, 64, 64)`` two-channel 2-D data).

Metadata: every other entry of the file holding a single number or a short string (e.g.
neuraloperator's and FNO's ``visc``) is reported by :func:`inspect_pairs` as ``scalars``.

Subsampling takes every ``subsample``-th point along each spatial axis starting at the first,
so an n-point axis keeps ``(n - 1) // s + 1`` points (the FNO Darcy 421 grid with ``s = 5``
gives 85, the original FNO convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pdes.checks import as_int
from pdes.errors import TransferTuneError
from pdes.formats import FORMATS, H5Source, Index, Source, detect_format, open_source

__all__ = ["FORMATS", "PairsInfo", "inspect_pairs", "load_pairs", "time_choice"]

_DEFAULT_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "mat": (("a", "u"), ("coeff", "sol"), ("x", "y"), ("input", "output")),
    "hdf5": (("nu", "tensor"), ("tensor", "tensor"), ("x", "y"), ("a", "u")),
    "pt": (("x", "y"), ("a", "u"), ("coeff", "sol"), ("input", "output")),
    "npz": (("x", "y"), ("a", "u"), ("coeff", "sol"), ("input", "output")),
}
_TIME_WORDS = ("first", "last", "channels")


def time_choice(value: Any, role: str) -> int | str | None:
    """``x_time`` / ``y_time`` checked: ``None``, an int step, ``"first"``, ``"last"`` or
    ``"channels"`` (an integral string such as ``"-1"`` becomes the int)."""
    what = f"{role}_time"
    if value is None:
        return None
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TIME_WORDS:
            return word
        try:
            return int(word)
        except ValueError:
            raise TransferTuneError(
                f"{what} must be 'first', 'last', 'channels' or an integer step, got {value!r}"
            ) from None
    try:
        return as_int(value, f"{what} (a time index)", minimum=None)
    except TransferTuneError:
        raise TransferTuneError(
            f"{what} must be 'first', 'last', 'channels' or an integer step, got {value!r}"
        ) from None


def _describe_time(role: str, steps: int, step: int | str, given: Any) -> str:
    if step == "channels":
        return f"{role}: all {steps} time steps as channels ({role}_time='channels')"
    which = "first" if step == 0 else "last" if step == steps - 1 else f"step {step}"
    how = f"{role}_time={given!r}" if given is not None else "default"
    return f"{role}: {which} of {steps} time steps ({how}; {role}_time='channels' keeps all)"


@dataclass(frozen=True)
class _Plan:
    """How one array becomes ``(N, C, *grid)``: the index after the sample axis, then a layout
    fix: ``"add"`` (insert a channel axis), ``"keep"`` (axis 1 already is one) or ``"last"``
    (move the last axis to position 1)."""

    key: str
    index: Index
    layout: str
    shape: tuple[int, ...]  # per sample, after reading: (C, *grid)
    note: str | None = None  # what was done with a time axis


@dataclass(frozen=True)
class PairsInfo:
    """What :func:`load_pairs` gives for a file, found from headers where possible.

    Attributes
    ----------
    path, fmt : str
        The file and its format.
    x_key, y_key : str
        The arrays read as inputs and outputs.
    dim : int
        Spatial dimension.
    n_samples : int
        Samples the file holds.
    x_shape, y_shape : tuple of int
        Per-sample shapes ``(C, *grid)`` after subsampling and time selection.
    notes : tuple of str
        What was done with time axes (empty without one).
    scalars : dict
        Other entries holding one number or a short string (e.g. ``{"visc": 0.01}``).
    """

    path: str
    fmt: str
    x_key: str
    y_key: str
    dim: int
    n_samples: int
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    notes: tuple[str, ...] = ()
    scalars: dict[str, Any] = field(default_factory=dict)

    @property
    def grid(self) -> tuple[int, ...]:
        """Points along each spatial axis."""
        return self.x_shape[1:]


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


#: NumPy dtype kinds of numbers (bool, ints, floats, complex: refused later with its fix).
_NUMERIC_KINDS = "biufc"


def _check_numeric(src: Source, *keys: str) -> None:
    """Refuse string, object or record arrays by their header, before any rank is read."""
    for key in keys:
        kind = src.kind(key)
        if kind is not None and kind not in _NUMERIC_KINDS:
            raise TransferTuneError(
                f"array {key!r} in {src.path} is non-numeric (dtype kind {kind!r}: text, "
                f"objects or records); store the inputs and outputs as numbers. {src.describe()}."
            )


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


def _sub(grid: Sequence[int], strides: tuple[int, ...]) -> tuple[int, ...]:
    return tuple((n - 1) // s + 1 for n, s in zip(grid, strides, strict=True))


def _step(choice: int | str | None, default: int, n_steps: int, what: str, src: Source) -> Any:
    """The step index in ``0..n_steps-1``, or ``"channels"``."""
    if choice == "channels":
        return "channels"
    t = {None: default, "first": 0, "last": -1}.get(choice, choice)  # type: ignore[arg-type]
    if not -n_steps <= int(t) < n_steps:
        raise TransferTuneError(
            f"{what}={t} is out of range for a time axis of {n_steps} steps (valid "
            f"{-n_steps}..{n_steps - 1}). {src.describe()}."
        )
    return int(t) % n_steps


def _plan_field(
    src: Source,
    key: str,
    dim: int,
    strides: tuple[int, ...],
    time: int | str | None,
    default_time: int,
    force_time: bool,
    other_has_axis: bool,
    role: str,
) -> _Plan:
    shape = src.shape(key)
    extra = len(shape) - 1 - dim
    spatial = tuple(slice(None, None, s) for s in strides)
    what = f"{role}_time"
    if extra == 0:
        if time is not None:
            raise TransferTuneError(
                f"{what}={time!r} was given but {role} array {key!r} {shape} has no time axis "
                f"for {dim}-D data. {src.describe()}."
            )
        return _Plan(key, spatial, "add", (1, *_sub(shape[1:], strides)))
    if extra != 1:
        raise TransferTuneError(
            f"{role} array {key!r} has shape {shape}: rank {len(shape)} does not fit {dim}-D "
            f"data (expected (N, *grid) or (N, {'*grid, T' if src.fmt == 'mat' else 'C|T, *grid'}"
            f")). {src.describe()}. Pass dim= or other keys."
        )
    auto_time = role == "y" and not other_has_axis  # .pt/.npz: only y has the extra axis
    is_time = force_time or src.fmt in ("mat", "hdf5") or time is not None or auto_time
    if not is_time:  # channel axis at position 1
        return _Plan(key, (slice(None), *spatial), "keep", (shape[1], *_sub(shape[2:], strides)))
    last = src.fmt == "mat"
    n_steps = shape[-1] if last else shape[1]
    grid = _sub(shape[1:-1] if last else shape[2:], strides)
    t = _step(time, default_time, n_steps, what, src)
    note = _describe_time(role, n_steps, t, time)
    if t == "channels":
        if last:
            return _Plan(key, (*spatial, slice(None)), "last", (n_steps, *grid), note)
        return _Plan(key, (slice(None), *spatial), "keep", (n_steps, *grid), note)
    index = (*spatial, t) if last else (t, *spatial)
    return _Plan(key, index, "add", (1, *grid), note)


def _read(src: Source, plan: _Plan, n: int | None) -> np.ndarray:
    a = src.read(plan.key, (slice(0, n), *plan.index))
    if plan.layout == "add":
        return a[:, None]
    if plan.layout == "last":
        return np.moveaxis(a, -1, 1)
    return a


def _plan_grouped(
    src: H5Source,
    key: str,
    dim: int | None,
    subsample: int | Sequence[int],
    time: int | str | None,
    default_time: int,
    role: str,
) -> tuple[_Plan, tuple[int, ...]]:
    first = src.groups[0]
    member = src.group_member(first, key)
    if member is None:
        raise TransferTuneError(
            f"group {first!r} has no dataset {key!r}. {src.describe()}. Pass x_key=/y_key= "
            "naming a dataset inside each group."
        )
    shape = tuple(member.shape)
    d = _check_dim(dim if dim is not None else len(shape) - 2, f"{role} {first}/{key}")
    if len(shape) not in (d + 1, d + 2):
        raise TransferTuneError(
            f"{role} dataset {first}/{key} has shape {shape}; expected (T, *grid) or "
            f"(T, *grid, C) for {d}-D data. {src.describe()}. Pass dim=."
        )
    strides = _strides(subsample, d)
    grid = _sub(shape[1 : 1 + d], strides)
    channels = shape[-1] if len(shape) == d + 2 else 1
    t = _step(time, default_time, shape[0], f"{role}_time", src)
    note = _describe_time(role, shape[0], t, time)
    spatial = tuple(slice(None, None, s) for s in strides)
    if t == "channels":
        steps = (shape[0] * channels, *grid)
        return _Plan(key, (slice(None), *spatial), "steps", steps, note), shape
    return _Plan(key, (t, *spatial), "step", (channels, *grid), note), shape


def _read_grouped(src: H5Source, plan: _Plan, shape: tuple[int, ...], n: int | None) -> np.ndarray:
    d = len(plan.shape) - 1
    fields = []
    for g in src.groups if n is None else src.groups[:n]:
        ds = src.group_member(g, plan.key)
        if ds is None or tuple(ds.shape) != shape:
            raise TransferTuneError(
                f"group {g!r} lacks {plan.key!r} or holds another shape than "
                f"{src.groups[0]}/{plan.key} {shape}; every group must hold the same layout."
            )
        a = np.asarray(ds[plan.index])
        if plan.layout == "steps":  # (T, *grid[, C]) -> (T * C, *grid), time-major
            a = a[..., None] if len(shape) == d + 1 else a
            a = np.moveaxis(a, -1, 1).reshape(-1, *plan.shape[1:])
        else:
            a = np.moveaxis(a, -1, 0) if len(shape) == d + 2 else a[None]
        fields.append(a)
    return np.stack(fields)


def _to_float32(a: np.ndarray, key: str, path: Path) -> np.ndarray:
    if np.iscomplexobj(a):
        raise TransferTuneError(
            f"array {key!r} in {path} is complex; split it into real channels first."
        )
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise TransferTuneError(f"array {key!r} in {path} has non-numeric dtype {a.dtype}.")
    return np.ascontiguousarray(a, dtype=np.float32)


class _Reader:
    """The plans for one open file: :meth:`info` describes, :meth:`read` loads."""

    def __init__(
        self,
        src: Source,
        x_key: str | None,
        y_key: str | None,
        dim: int | None,
        subsample: int | Sequence[int],
        x_time: Any,
        y_time: Any,
    ) -> None:
        self.src = src
        x_time, y_time = time_choice(x_time, "x"), time_choice(y_time, "y")
        self.grouped = (
            isinstance(src, H5Source) and not src.keys() and bool(src.groups) and src.fmt == "hdf5"
        )
        if self.grouped:
            assert isinstance(src, H5Source)
            self.xk, self.yk = x_key or "data", y_key or "data"
            self.x, self.x_raw = _plan_grouped(src, self.xk, dim, subsample, x_time, 0, "x")
            self.y, self.y_raw = _plan_grouped(src, self.yk, dim, subsample, y_time, -1, "y")
            self.dim = len(self.x.shape) - 1
            self.n = len(src.groups)
            n_y = self.n
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
            _check_numeric(src, xk, yk)  # before the ranks mean anything
            d = _check_dim(dim if dim is not None else _infer_dim(src, xk, yk), str(src.path))
            strides = _strides(subsample, d)
            x_extra = len(src.shape(xk)) - 1 - d > 0
            self.xk, self.yk, self.dim = xk, yk, d
            self.x = _plan_field(src, xk, d, strides, x_time, 0, same, True, "x")
            self.y = _plan_field(src, yk, d, strides, y_time, -1, same, x_extra, "y")
            self.n, n_y = src.shape(xk)[0], src.shape(yk)[0]
        if self.n != n_y or self.x.shape[1:] != self.y.shape[1:]:
            raise TransferTuneError(
                f"x {self.xk!r} and y {self.yk!r} do not match: read as "
                f"{(self.n, *self.x.shape)} and {(n_y, *self.y.shape)} (samples and grid must "
                f"agree). {src.describe()}."
            )

    def info(self) -> PairsInfo:
        notes = tuple(p.note for p in (self.x, self.y) if p.note is not None)
        used = () if self.grouped else (self.xk, self.yk)
        return PairsInfo(
            path=str(self.src.path),
            fmt=self.src.fmt,
            x_key=self.xk,
            y_key=self.yk,
            dim=self.dim,
            n_samples=int(self.n),
            x_shape=self.x.shape,
            y_shape=self.y.shape,
            notes=notes,
            scalars=self.src.scalars(exclude=used),
        )

    def read(self, n: int | None) -> tuple[np.ndarray, np.ndarray]:
        if self.grouped:
            assert isinstance(self.src, H5Source)
            x = _read_grouped(self.src, self.x, self.x_raw, n)
            y = _read_grouped(self.src, self.y, self.y_raw, n)
        else:
            x, y = _read(self.src, self.x, n), _read(self.src, self.y, n)
        path = Path(self.src.path)
        return _to_float32(x, self.xk, path), _to_float32(y, self.yk, path)


def _open(path: str | Path, format: str | None, dim: int | None) -> tuple[Path, str, int | None]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise TransferTuneError(f"dataset file {path} does not exist (or is not a file).")
    fmt = detect_format(path, format)
    if dim is not None:
        dim = _check_dim(dim, "dim")
    return path, fmt, dim


def inspect_pairs(
    path: str | Path,
    *,
    x_key: str | None = None,
    y_key: str | None = None,
    dim: int | None = None,
    subsample: int | Sequence[int] = 1,
    format: str | None = None,
    x_time: int | str | None = None,
    y_time: int | str | None = None,
) -> PairsInfo:
    """What :func:`load_pairs` would give for this file, without reading the arrays.

    HDF5, ``.mat`` and ``.npz`` files are read from their headers; a ``.pt`` file is loaded
    (``torch.load`` has no header-only mode). Takes the options of :func:`load_pairs`.

    Returns
    -------
    PairsInfo
        Keys, dimension, sample count, per-sample shapes, time notes and scalar metadata.

    Raises
    ------
    TransferTuneError
        For every problem :func:`load_pairs` would report about keys, ranks and options.
    """
    path, fmt, dim = _open(path, format, dim)
    with open_source(path, fmt) as src:
        return _Reader(src, x_key, y_key, dim, subsample, x_time, y_time).info()


def load_pairs(
    path: str | Path,
    *,
    x_key: str | None = None,
    y_key: str | None = None,
    dim: int | None = None,
    subsample: int | Sequence[int] = 1,
    format: str | None = None,
    x_time: int | str | None = None,
    y_time: int | str | None = None,
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
    x_time, y_time : int or {"first", "last", "channels"}, optional
        What to keep of a time axis: one step (negative counts from the end) or every step as
        a channel. Defaults: the first step for x, the last for y.
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
    path, fmt, dim = _open(path, format, dim)
    if n_samples is not None:
        n_samples = as_int(n_samples, "n_samples (None: all)")
    with open_source(path, fmt) as src:
        return _Reader(src, x_key, y_key, dim, subsample, x_time, y_time).read(n_samples)
