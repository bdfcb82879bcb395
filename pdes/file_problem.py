"""The ``"file"`` problem: its options, and its splits read from a file the user already has.

``get_problem("file", path=..., ...)`` checks the options with :func:`file_params`; the
:class:`~pdes.problem.Problem` then reads its splits with :func:`load_file_splits` (through
:func:`pdes.loaders.load_pairs`). The file's samples are split in order: train first, then
val, then test (or the test split from ``test_path``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pdes.cache import canonical_json
from pdes.errors import TransferTuneError
from pdes.loaders import load_pairs

__all__ = ["FILE_PARAMS", "file_cache_files", "file_params", "load_file_splits"]

#: Options of the "file" problem and their defaults (see :func:`pdes.loaders.load_pairs`).
FILE_PARAMS: dict[str, Any] = {
    "path": None,
    "test_path": None,
    "x_key": None,
    "y_key": None,
    "format": None,
    "dim": None,
    "subsample": 1,
    "x_time": None,
    "y_time": None,
}

_SPLITS = ("train", "val", "test")


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
        For an unknown option, a missing ``path`` or a path that is not a file.
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
    for key in ("path", "test_path"):
        if params[key] is not None:
            if not isinstance(params[key], (str, os.PathLike)):
                raise TransferTuneError(f"{key} must be a file path, got {params[key]!r}.")
            p = Path(os.fspath(params[key])).expanduser().absolute()
            if not p.is_file():
                raise TransferTuneError(f"{key}={str(p)!r} does not exist (or is not a file).")
            params[key] = str(p)
    sub = params["subsample"]
    params["subsample"] = list(sub) if isinstance(sub, (list, tuple)) else sub
    canonical_json(params)  # raises TransferTuneError if not JSON-able
    return params


def file_cache_files(params: Mapping[str, Any], sizes: Mapping[str, int]) -> dict[str, Path]:
    """The file each non-empty split is read from."""
    test_file = params["test_path"] or params["path"]
    return {s: Path(test_file if s == "test" else params["path"]) for s in _SPLITS if sizes[s] > 0}


def load_file_splits(
    params: Mapping[str, Any], sizes: Mapping[str, int]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the train, val and test splits, in file order, as C-contiguous float32 arrays.

    Parameters
    ----------
    params : mapping
        The options from :func:`file_params`.
    sizes : mapping
        ``{"train": n_train, "val": n_val, "test": n_test}``.

    Raises
    ------
    TransferTuneError
        If a file holds too few samples or the test file's layout differs from the main one.
    """
    p = params
    n_tr, n_va, n_te = sizes["train"], sizes["val"], sizes["test"]
    opts = {k: p[k] for k in ("x_key", "y_key", "format", "dim", "x_time", "y_time")}
    opts["subsample"] = p["subsample"]
    need = n_tr + n_va + (0 if p["test_path"] else n_te)
    x, y = load_pairs(p["path"], n_samples=need, **opts)
    if x.shape[0] < need:
        parts = "n_train + n_val" + ("" if p["test_path"] else " + n_test")
        raise TransferTuneError(
            f"{p['path']} holds {x.shape[0]} samples but {parts} = {need} are needed; "
            "lower n_train/n_val/n_test"
            + ("" if p["test_path"] else " or pass test_path= for a separate test file")
            + "."
        )
    splits = {
        "train": (x[:n_tr], y[:n_tr]),
        "val": (x[n_tr : n_tr + n_va], y[n_tr : n_tr + n_va]),
    }
    if p["test_path"]:
        xt, yt = load_pairs(p["test_path"], n_samples=max(n_te, 1), **opts)
        if xt.shape[0] < n_te:
            raise TransferTuneError(
                f"{p['test_path']} holds {xt.shape[0]} samples but n_test = {n_te}; lower n_test."
            )
        if xt.shape[1:] != x.shape[1:] or yt.shape[1:] != y.shape[1:]:
            raise TransferTuneError(
                f"test file {p['test_path']} gives x {xt.shape[1:]}, y {yt.shape[1:]} per "
                f"sample but {p['path']} gives x {x.shape[1:]}, y {y.shape[1:]}; use "
                "matching files or adjust subsample."
            )
        splits["test"] = (xt[:n_te], yt[:n_te])
    else:
        splits["test"] = (x[n_tr + n_va : need], y[n_tr + n_va : need])
    return {s: (np.ascontiguousarray(a), np.ascontiguousarray(b)) for s, (a, b) in splits.items()}
