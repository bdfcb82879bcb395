"""Arrays in memory as a problem: :func:`from_arrays`.

The arrays are written once into the dataset cache (``<cache dir>/arrays/``) as ``.npz`` files
named by the SHA-256 of their content, and the problem is a ``"file"`` problem over those
files. Its ``config()`` therefore refers to files, never to pickled arrays: a study that stores
it can rebuild the very same tensors in another process (``pdes.load_problem(config)``), and
writing the same arrays again reuses the same files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pdes.cache import array_checksum, atomic_write, canonical_json, resolve_cache_dir
from pdes.errors import TransferTuneError
from pdes.file_problem import FRACTIONS
from pdes.problem import Problem

__all__ = ["from_arrays"]


def _numpy(a: Any, what: str) -> np.ndarray:
    if hasattr(a, "detach"):  # torch.Tensor, without importing torch here
        a = a.detach().cpu().numpy()
    try:
        arr = np.asarray(a)
    except Exception as err:
        raise TransferTuneError(f"{what} is not an array ({type(a).__name__}).") from err
    if np.iscomplexobj(arr):
        raise TransferTuneError(f"{what} is complex; split it into real channels first.")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TransferTuneError(f"{what} has non-numeric dtype {arr.dtype}.")
    if arr.ndim < 2:
        raise TransferTuneError(
            f"{what} has shape {arr.shape}; expected (N, *grid) or (N, C, *grid)."
        )
    if arr.shape[0] == 0:
        raise TransferTuneError(f"{what} holds no samples (shape {arr.shape}); give at least one.")
    return arr


def _infer_dim(x: np.ndarray, y: np.ndarray) -> int:
    """As the file loader does: rank of the lower-rank array less the sample axis, less a
    size-1 axis 1 (a channel axis)."""
    a = x if x.ndim <= y.ndim else y
    dim = a.ndim - 1
    if a.ndim >= 3 and a.shape[1] == 1:
        dim -= 1
    return dim


def _with_channels(a: np.ndarray, dim: int, what: str) -> np.ndarray:
    if a.ndim == dim + 1:
        a = a[:, None]
    elif a.ndim != dim + 2:
        raise TransferTuneError(
            f"{what} has shape {a.shape}: rank {a.ndim} does not fit {dim}-D data "
            f"(expected (N, *grid) or (N, C, *grid) with {dim} grid axes); pass dim=."
        )
    return np.ascontiguousarray(a, dtype=np.float32)


def _pair(x: Any, y: Any, role: str) -> tuple[np.ndarray, np.ndarray] | None:
    if x is None and y is None:
        return None
    if x is None or y is None:
        given, missing = ("x", "y") if y is None else ("y", "x")
        raise TransferTuneError(f"{given}_{role} was given without {missing}_{role}; pass both.")
    return _numpy(x, f"x_{role}"), _numpy(y, f"y_{role}")


def _check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TransferTuneError(f"metadata must be a dict of scalars, got {metadata!r}.")
    out = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or key in ("x", "y") or not key:
            raise TransferTuneError(f"metadata key {key!r} must be a string other than x, y.")
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, (bool, int, float, str)):
            raise TransferTuneError(
                f"metadata {key}={value!r}: only single numbers and strings are stored."
            )
        out[key] = value
    canonical_json(out)  # finite, JSON-able
    return out


def _store(folder: Path, role: str, x: np.ndarray, y: np.ndarray, meta: dict[str, Any]) -> str:
    """Write ``x``, ``y`` (and metadata) once, named by their content hash; return the path."""
    digest = array_checksum(x, y)
    if meta:
        digest = hashlib.sha256((digest + canonical_json(meta)).encode()).hexdigest()
    path = folder / f"arrays-{role}-{digest[:20]}.npz"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        extra = {k: np.array(v) for k, v in meta.items()}
        atomic_write(path, lambda fh: np.savez(fh, x=x, y=y, **extra), ".tmp")
    return str(path)


def from_arrays(
    x_train: Any,
    y_train: Any,
    *,
    x_val: Any = None,
    y_val: Any = None,
    x_test: Any = None,
    y_test: Any = None,
    x_test_fine: Any = None,
    y_test_fine: Any = None,
    name: str = "arrays",
    dim: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    cache_dir: str | None = None,
) -> Problem:
    """A problem over arrays in memory, usable wherever a problem is accepted.

    Parameters
    ----------
    x_train, y_train : numpy.ndarray or torch.Tensor
        Inputs and outputs shaped ``(N, C, *grid)``, or ``(N, *grid)`` for one channel.
    x_val, y_val, x_test, y_test : array, optional
        Validation and test pairs on the training grid. Not given, they are carved from the
        end of ``x_train`` as from a file: val 10 % and test 10 % (train keeps the rest);
        with ``x_val`` but no ``x_test``, test is the last 10 % of ``x_train``; with ``x_test``
        but no ``x_val``, val is the last 10 % of ``x_train``.
    x_test_fine, y_test_fine : array, optional
        A test set on a finer grid (super-resolution). ``x_test`` on a finer grid than
        ``x_train`` is taken as this too.
    name : str
        A label shown in the summary (the problem's registry name is ``"file"``).
    dim : int, optional
        Spatial dimension; default inferred as for files (pass it for ``(N, C, H, W)``
        arrays with C > 1).
    metadata : dict, optional
        Scalars stored with the data (e.g. ``{"visc": 0.01}``): shown in ``summary()`` and
        recorded in ``config()``.
    n_train, n_val, n_test : int, optional
        Explicit split sizes (they win over the defaults above).
    seed : int
        The problem's seed.
    cache_dir : str, optional
        The dataset cache (see :func:`pdes.cache.resolve_cache_dir`); the arrays go to its
        ``arrays/`` folder.

    Returns
    -------
    Problem
        A ``"file"`` problem whose ``config()`` names the stored files.
    """
    from pdes.registry import get_problem

    train = _pair(x_train, y_train, "train")
    assert train is not None
    if dim is None:
        dim = _infer_dim(*train)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 1 <= dim <= 3:
        raise TransferTuneError(f"dim must be 1, 2 or 3, got {dim!r}; pass dim=.")
    pairs = {}
    for role, pair in {
        "train": train,
        "val": _pair(x_val, y_val, "val"),
        "test": _pair(x_test, y_test, "test"),
        "fine": _pair(x_test_fine, y_test_fine, "test_fine"),
    }.items():
        if pair is None:
            continue
        x, y = pair
        label = "test_fine" if role == "fine" else role
        xs = _with_channels(x, dim, f"x_{label}")
        ys = _with_channels(y, dim, f"y_{label}")
        if xs.shape[0] != ys.shape[0] or xs.shape[2:] != ys.shape[2:]:
            raise TransferTuneError(
                f"x_{label} {x.shape} and y_{label} {y.shape} do not match (samples and grid "
                "must agree)."
            )
        if role != "train":
            x0, y0 = pairs["train"]
            same_grid = role == "val" and xs.shape[2:] != x0.shape[2:]
            if (xs.shape[1], ys.shape[1]) != (x0.shape[1], y0.shape[1]) or same_grid:
                raise TransferTuneError(
                    f"x_{label}/y_{label} give (C, *grid) = {xs.shape[1:]} -> {ys.shape[1:]} "
                    f"but x_train/y_train give {x0.shape[1:]} -> {y0.shape[1:]}: the channels "
                    "must agree (and val must be on the training grid)."
                )
        pairs[role] = (xs, ys)
    meta = _check_metadata(metadata)
    x_tr, y_tr = pairs["train"]
    sizes: dict[str, int | None] = {"n_train": n_train, "n_val": n_val, "n_test": n_test}
    main = [pairs["train"]]
    if "val" in pairs:
        n_carve = 0 if "test" in pairs else max(1, round(FRACTIONS["test"] * x_tr.shape[0]))
        if n_carve >= x_tr.shape[0]:
            raise TransferTuneError(
                f"x_train holds {x_tr.shape[0]} samples: too few to keep a test split; pass "
                "x_test/y_test."
            )
        keep = x_tr.shape[0] - n_carve
        main = [(x_tr[:keep], y_tr[:keep]), pairs["val"], (x_tr[keep:], y_tr[keep:])]
        defaults = {"n_train": keep, "n_val": pairs["val"][0].shape[0]}
        if n_carve:
            defaults["n_test"] = n_carve
        sizes = {k: v if v is not None else defaults.get(k) for k, v in sizes.items()}
    x_main = np.concatenate([p[0] for p in main])
    y_main = np.concatenate([p[1] for p in main])
    folder = resolve_cache_dir(cache_dir) / "arrays"
    files = {"path": _store(folder, "main", x_main, y_main, meta)}
    for role, key in (("test", "test_path"), ("fine", "fine_test_path")):
        if role in pairs:
            files[key] = _store(folder, role, *pairs[role], {})
    return get_problem(
        "file",
        **files,
        format="npz",
        dim=int(dim),
        label=str(name),
        seed=seed,
        cache_dir=cache_dir,
        **{k: v for k, v in sizes.items() if v is not None},
    )
