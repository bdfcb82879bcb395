"""The ``"file"`` problem: its options, its test sets and its splits, from files the user has.

``get_problem("file", path=..., ...)`` checks the options with :func:`file_params` and reads
the files' headers with :func:`inspect_files` (keys, shapes, sample counts, time axes, scalar
metadata, the grid of each test file), so every mistake surfaces when the problem is built,
before any training. The :class:`~pdes.problem.Problem` then reads its splits with
:func:`load_file_splits` (through :func:`pdes.loaders.load_pairs`).

Splits. The main file's samples are split in order: train first, then val, then test. Sizes
not given default to fractions of what the file holds (:data:`FRACTIONS`):

- no test file on the training grid: train 80 %, val 10 %, test 10 % of the main file;
- with one (``test_path``): train 90 %, val 10 % of the main file, test all of the test file.

Each default fraction is at least one sample. Explicit ``n_train``/``n_val``/``n_test`` win;
sizes that do not fit the file are an error naming the counts.

Super-resolution. A test file on a finer grid than the training data (``test_path`` or
``fine_test_path``; e.g. neuraloperator's ``darcy_test_32.pt`` beside ``darcy_train_16.pt``)
is the fine test set: all its samples, reported beside the test split at the training grid.
``resolution=<its first axis>`` (what ``eval_resolution`` asks for) selects it as the test
split; no other resolution is available for a file problem.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pdes.cache import canonical_json
from pdes.checks import as_int
from pdes.errors import TransferTuneError
from pdes.loaders import PairsInfo, inspect_pairs, load_pairs, time_choice

__all__ = [
    "FILE_PARAMS",
    "FRACTIONS",
    "FileLayout",
    "check_sizes",
    "describe",
    "eval_grid",
    "file_cache_files",
    "file_params",
    "inspect_files",
    "load_file_splits",
]

#: Options of the "file" problem and their defaults (see :func:`pdes.loaders.load_pairs`).
FILE_PARAMS: dict[str, Any] = {
    "path": None,
    "test_path": None,
    "fine_test_path": None,
    "x_key": None,
    "y_key": None,
    "format": None,
    "dim": None,
    "subsample": 1,
    "x_time": None,
    "y_time": None,
    "label": None,
}

#: Default fractions of the main file for the val and test splits (train gets the rest).
FRACTIONS: dict[str, float] = {"val": 0.1, "test": 0.1}

_LOADER_OPTS = ("x_key", "y_key", "format", "dim", "subsample", "x_time", "y_time")
_SIZES = ("n_train", "n_val", "n_test")


def file_params(overrides: Mapping[str, Any], common: tuple[str, ...]) -> dict[str, Any]:
    """The file options with defaults filled in, paths made absolute and checked.

    Parameters
    ----------
    overrides : mapping
        What the user passed besides the common options.
    common : tuple of str
        The common option names, listed in the message for an unknown option.

    Raises
    ------
    TransferTuneError
        For an unknown option, a missing ``path``, a path that is not a file or a bad time
        choice.
    """
    unknown = sorted(set(overrides) - set(FILE_PARAMS))
    if unknown:
        raise TransferTuneError(
            f"unknown option(s) {unknown} for problem 'file'; valid options: "
            f"{', '.join(sorted([*FILE_PARAMS, *common]))}."
        )
    params = dict(FILE_PARAMS)
    params.update(overrides)
    if not params["path"]:
        raise TransferTuneError(
            "problem 'file' needs path=<dataset file> (.mat, .h5/.hdf5, .pt or .npz)."
        )
    for key in ("path", "test_path", "fine_test_path"):
        if params[key] is not None:
            if not isinstance(params[key], (str, os.PathLike)):
                raise TransferTuneError(f"{key} must be a file path, got {params[key]!r}.")
            p = Path(os.fspath(params[key])).expanduser().absolute()
            if not p.is_file():
                raise TransferTuneError(f"{key}={str(p)!r} does not exist (or is not a file).")
            params[key] = str(p)
    for role in ("x", "y"):
        params[f"{role}_time"] = time_choice(params[f"{role}_time"], role)
    if params["label"] is not None and not isinstance(params["label"], str):
        raise TransferTuneError(f"label must be a string, got {params['label']!r}.")
    sub = params["subsample"]
    params["subsample"] = list(sub) if isinstance(sub, (list, tuple)) else sub
    canonical_json(params)  # raises TransferTuneError if not JSON-able
    return params


@dataclass(frozen=True)
class FileLayout:
    """What the files of a file problem hold, and the split sizes resolved against them.

    Attributes
    ----------
    main : PairsInfo
        The training file (train, val, and the test split unless ``test`` is set).
    test : PairsInfo or None
        A separate test file on the training grid.
    fine : PairsInfo or None
        A test file on a finer grid (the super-resolution test set).
    sizes : dict
        ``{"train": n, "val": n, "test": n}`` as used.
    defaulted : tuple of str
        The sizes that came from :data:`FRACTIONS` (or "all of the test file").
    """

    main: PairsInfo
    test: PairsInfo | None
    fine: PairsInfo | None
    sizes: dict[str, int]
    defaulted: tuple[str, ...]

    @property
    def grid(self) -> tuple[int, ...]:
        """The training grid."""
        return self.main.grid

    def resolutions(self) -> dict[int, str]:
        """The test grids available, by first-axis size: what each one is."""
        out = {self.grid[0]: f"the test split on the training grid {self.grid}"}
        if self.fine is not None:
            out[self.fine.grid[0]] = f"the fine test file {self.fine.path} {self.fine.grid}"
        return out


def _finer(grid: tuple[int, ...], base: tuple[int, ...]) -> bool:
    if len(grid) != len(base) or grid == base:
        return False
    return all(a >= b for a, b in zip(grid, base, strict=True))


def _check_like(info: PairsInfo, main: PairsInfo, key: str) -> None:
    if (info.dim, info.x_shape[0], info.y_shape[0]) != (main.dim, main.x_shape[0], main.y_shape[0]):
        raise TransferTuneError(
            f"{key} {info.path} gives x {info.x_shape}, y {info.y_shape} per sample "
            f"({info.dim}-D) but path {main.path} gives x {main.x_shape}, y {main.y_shape} "
            f"({main.dim}-D): the channels and the dimension must agree; use matching files "
            "or the same key/time options."
        )


def _classify(params: Mapping[str, Any], main: PairsInfo, opts: dict) -> tuple[Any, Any]:
    test = fine = None
    for key in ("test_path", "fine_test_path"):
        if params[key] is None:
            continue
        info = inspect_pairs(params[key], **opts)
        _check_like(info, main, key)
        if info.grid == main.grid and key == "test_path":
            test = info
        elif _finer(info.grid, main.grid):
            if fine is not None:
                raise TransferTuneError(
                    f"test_path {fine.path} and fine_test_path {info.path} are both on finer "
                    f"grids than the training grid {main.grid}; give one fine test file (and "
                    "a training-grid test file as test_path, if any)."
                )
            fine = info
        else:
            relation = "the same as" if info.grid == main.grid else "not finer than"
            raise TransferTuneError(
                f"{key} {info.path} is on the grid {info.grid}, {relation} the training grid "
                f"{main.grid} of {main.path}; a training-grid test file goes in test_path, "
                "a finer one (super-resolution) in test_path or fine_test_path. Adjust "
                "subsample or use matching files."
            )
    return test, fine


def _resolve_sizes(
    main: PairsInfo, test: PairsInfo | None, given: Mapping[str, int | None]
) -> tuple[dict[str, int], tuple[str, ...]]:
    n_file = main.n_samples
    defaulted = tuple(k for k in _SIZES if given.get(k) is None)

    def frac(split: str) -> int:
        return max(1, round(FRACTIONS[split] * n_file))

    n_val = given["n_val"] if given.get("n_val") is not None else frac("val")
    if test is not None:
        n_test = given["n_test"] if given.get("n_test") is not None else test.n_samples
        from_main = 0
    else:
        n_test = given["n_test"] if given.get("n_test") is not None else frac("test")
        from_main = n_test
    n_train = given["n_train"]
    if n_train is None:
        n_train = n_file - n_val - from_main
        if n_train < 1:
            raise TransferTuneError(
                f"{main.path} holds {n_file} samples: too few for the default split "
                f"(train, then val {n_val}"
                + ("" if test else f", test {n_test}")
                + "); pass n_train, n_val and n_test that fit, or use a bigger file."
            )
    need = n_train + n_val + from_main
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    if need > n_file:
        parts = "n_train + n_val" + ("" if test else " + n_test")
        shown = ", ".join(
            f"{k} {sizes[k[2:]]}" + (" (default)" if k in defaulted else "")
            for k in _SIZES[: 2 if test else 3]
        )
        raise TransferTuneError(
            f"{main.path} holds {n_file} samples but {parts} = {need} are needed ({shown}); "
            "lower them, or leave them out to use the default fractions of the file"
            + ("" if test else ", or pass test_path= for a separate test file")
            + "."
        )
    if test is not None and n_test > test.n_samples:
        raise TransferTuneError(
            f"test file {test.path} holds {test.n_samples} samples but n_test = {n_test}; "
            "lower n_test or leave it out to use the whole test file."
        )
    return sizes, defaulted


def inspect_files(params: Mapping[str, Any], given: Mapping[str, int | None]) -> FileLayout:
    """Read the headers of every file of a file problem and resolve its split sizes.

    Parameters
    ----------
    params : mapping
        The options from :func:`file_params`.
    given : mapping
        ``n_train``, ``n_val``, ``n_test`` as the user gave them (``None``: default).

    Raises
    ------
    TransferTuneError
        For keys, shapes, time options or test grids that do not fit, and sizes that exceed
        what the files hold.
    """
    opts = {k: params[k] for k in _LOADER_OPTS}
    main = inspect_pairs(params["path"], **opts)
    test, fine = _classify(params, main, opts)
    sizes, defaulted = _resolve_sizes(main, test, given)
    return FileLayout(main=main, test=test, fine=fine, sizes=sizes, defaulted=defaulted)


def eval_grid(layout: FileLayout, resolution: Any, what: str = "eval_resolution") -> int:
    """``resolution`` checked against the grids a file problem can be tested on.

    Raises
    ------
    TransferTuneError
        Listing the available grids (and how to add a finer one) for any other value.
    """
    resolution = as_int(resolution, what, minimum=2)
    available = layout.resolutions()
    if resolution not in available:
        listed = "; ".join(f"{r}: {text}" for r, text in available.items())
        hint = (
            f"pass {what}={layout.fine.grid[0]} or leave it out"
            if layout.fine is not None
            else "pass a test file on a finer grid as test_path= or fine_test_path= (e.g. "
            f"neuraloperator's darcy_test_32.pt), or leave {what} out"
        )
        raise TransferTuneError(
            f"{what}={resolution} is not available for the file problem "
            f"{layout.main.path}: a file problem takes its grids from its files (choose the "
            f"training grid with subsample=<stride>) and is tested only on them ({listed}); "
            f"{hint}."
        )
    return resolution


def check_sizes(given: Mapping[str, Any]) -> dict[str, int | None]:
    """``n_train`` (>= 1), ``n_val``, ``n_test`` (>= 0) checked; ``None`` means default."""
    out: dict[str, int | None] = {}
    for key in _SIZES:
        value = given.get(key)
        out[key] = None if value is None else as_int(value, key, minimum=int(key == "n_train"))
    return out


def file_cache_files(layout: FileLayout) -> dict[str, Path]:
    """The file each non-empty split (and ``"test_fine"``) is read from."""
    test_file = layout.test.path if layout.test is not None else layout.main.path
    files = {"train": layout.main.path, "val": layout.main.path, "test": test_file}
    out = {s: Path(f) for s, f in files.items() if layout.sizes[s] > 0}
    if layout.fine is not None:
        out["test_fine"] = Path(layout.fine.path)
    return out


def load_file_splits(
    params: Mapping[str, Any], layout: FileLayout
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the train, val and test splits (and ``"test_fine"``) as float32 arrays.

    Parameters
    ----------
    params : mapping
        The options from :func:`file_params`.
    layout : FileLayout
        From :func:`inspect_files` (the sizes are checked there).
    """
    opts = {k: params[k] for k in _LOADER_OPTS}
    n_tr, n_va, n_te = (layout.sizes[s] for s in ("train", "val", "test"))
    need = n_tr + n_va + (0 if layout.test is not None else n_te)
    x, y = load_pairs(layout.main.path, n_samples=max(need, 1), **opts)
    splits = {
        "train": (x[:n_tr], y[:n_tr]),
        "val": (x[n_tr : n_tr + n_va], y[n_tr : n_tr + n_va]),
        "test": (x[n_tr + n_va : need], y[n_tr + n_va : need]),
    }
    if layout.test is not None:
        xt, yt = load_pairs(layout.test.path, n_samples=max(n_te, 1), **opts)
        splits["test"] = (xt[:n_te], yt[:n_te])
    if layout.fine is not None:
        splits["test_fine"] = load_pairs(layout.fine.path, **opts)
    return {s: (np.ascontiguousarray(a), np.ascontiguousarray(b)) for s, (a, b) in splits.items()}


def describe(params: Mapping[str, Any], layout: FileLayout, seed: int) -> list[str]:
    """The lines of :meth:`Problem.summary` for a file problem."""
    main = layout.main
    opts = ", ".join(
        f"{k}={v}"
        for k, v in params.items()
        if k not in ("path", "test_path", "fine_test_path", "label")
        and v is not None
        and not (k == "subsample" and v == 1)
    )
    head = f"{params['label']!r}: " if params.get("label") else ""
    lines = [f"{head}file {main.path} ({main.fmt}" + (f"; {opts})" if opts else ")")]
    lines.append(
        f"  x {main.x_key!r} (N, {', '.join(map(str, main.x_shape))}) -> y {main.y_key!r} "
        f"(N, {', '.join(map(str, main.y_shape))}): {main.dim}-D grid {main.grid}, "
        f"{main.n_samples} samples in the file"
    )
    for note in main.notes:
        lines.append(f"  time: {note}")
    if main.scalars:
        lines.append(
            "  metadata: " + ", ".join(f"{k}={v!r}" for k, v in sorted(main.scalars.items()))
        )
    sizes = layout.sizes

    def size(split: str) -> str:
        default = f"n_{split}" in layout.defaulted
        return f"{split} {sizes[split]}" + (" (default)" if default else "")

    where = "from the test file" if layout.test is not None else "in file order"
    lines.append(
        f"  splits (seed {seed}): {size('train')}, {size('val')}, {size('test')} ({where}; "
        "defaults: val 10 %, test 10 % of the file, or the whole test file)"
    )
    test_from = layout.test.path if layout.test is not None else "the end of the main file"
    lines.append(f"  test at the training grid {main.grid}: {sizes['test']} from {test_from}")
    if layout.fine is not None:
        f = layout.fine
        lines.append(
            f"  fine test (super-resolution) at {f.grid}: {f.n_samples} samples from {f.path} "
            f"(eval_resolution={f.grid[0]})"
        )
    else:
        lines.append("  no finer test set (pass a test file on a finer grid as fine_test_path)")
    return lines
