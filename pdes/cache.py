"""On-disk cache of generated datasets, keyed by the hash of their generation config.

Layout: one ``.npz`` file per generated split, named
``<problem>-<split>-r<resolution>-n<n>-<key[:16]>.npz`` where ``key`` is the SHA-256 of the
canonical JSON of the full config (plus :data:`FORMAT_VERSION`). Each file holds

- ``x``, ``y``: the float32 arrays;
- ``checksum``: SHA-256 over the arrays' names, dtypes, shapes and bytes;
- ``config_json``: the canonical config JSON (checked against the request on every read);
- ``format_version``.

A human-readable copy of the config, shapes and checksum sits next to it as ``<name>.json``
(informational only; reads never depend on it).

Files are written atomically (temporary file in the same directory, ``fsync``, then
``os.replace``), so a crash leaves either the old state or the complete new file. A file that
cannot be read, is truncated, fails its checksum or holds another config is never used
silently: :class:`CacheCorruptionWarning` is issued and the data are regenerated and
rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pdes.errors import TransferTuneError

__all__ = [
    "ENV_VAR",
    "FORMAT_VERSION",
    "CacheCorruptionWarning",
    "CacheResult",
    "CacheWriteWarning",
    "array_checksum",
    "atomic_write",
    "cache_path",
    "canonical_json",
    "config_key",
    "load_or_generate",
    "resolve_cache_dir",
]

#: Version of the on-disk format; part of every key, so bumping it invalidates old files.
FORMAT_VERSION = 1
#: Environment variable that overrides the default cache directory.
ENV_VAR = "TRANSFER_TUNE_CACHE"


class CacheCorruptionWarning(UserWarning):
    """A cached dataset was unreadable, truncated or failed its checksum; it is regenerated."""


class CacheWriteWarning(UserWarning):
    """A freshly generated dataset could not be written to the cache (it is still returned)."""


class CacheResult(NamedTuple):
    """What :func:`load_or_generate` returns (unpacks as ``x, y, path, hit``)."""

    x: np.ndarray
    y: np.ndarray
    path: Path
    hit: bool


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the dataset cache directory (not created).

    Precedence: the explicit argument, then the ``TRANSFER_TUNE_CACHE`` environment
    variable, then ``$XDG_CACHE_HOME/transfer-tune``, then ``~/.cache/transfer-tune``.
    Empty environment variables count as unset; ``~`` is expanded.

    Parameters
    ----------
    cache_dir : path-like, optional
        Explicit directory.

    Returns
    -------
    pathlib.Path
        An absolute path.
    """
    if cache_dir is not None and str(cache_dir) != "":
        path = Path(cache_dir)
    elif os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR])
    elif os.environ.get("XDG_CACHE_HOME"):
        path = Path(os.environ["XDG_CACHE_HOME"]) / "transfer-tune"
    else:
        path = Path("~/.cache/transfer-tune")
    return path.expanduser().absolute()


def _jsonable(value: Any, where: str) -> Any:
    """Convert numpy scalars and tuples to JSON types; reject everything else."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TransferTuneError(f"config value {where} = {value!r} is not finite.")
        return float(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TransferTuneError(f"config key {k!r} in {where} must be a string.")
            out[k] = _jsonable(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TransferTuneError(
        f"config value {where} = {value!r} (type {type(value).__name__}) is not JSON-able; "
        "use numbers, strings, booleans, None, lists or dicts."
    )


def canonical_json(config: Mapping[str, Any]) -> str:
    """Serialise a config to canonical JSON (sorted keys, no spaces, tuples as lists).

    Raises
    ------
    TransferTuneError
        If a value is not JSON-able or not finite.
    """
    return json.dumps(
        _jsonable(config, "config"), sort_keys=True, separators=(",", ":"), allow_nan=False
    )


def config_key(config: Mapping[str, Any]) -> str:
    """Return the cache key: SHA-256 (hex) of the canonical JSON of config + format version."""
    payload = canonical_json({"cache_format_version": FORMAT_VERSION, "config": config})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _slug(config: Mapping[str, Any]) -> str:
    parts = []
    for field, prefix in (("problem", ""), ("split", ""), ("resolution", "r"), ("n", "n")):
        if field in config and isinstance(config[field], (str, int)):
            parts.append(re.sub(r"[^A-Za-z0-9_.]+", "_", f"{prefix}{config[field]}"))
    return "-".join(parts) or "data"


def cache_path(config: Mapping[str, Any], cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the file a config is (or would be) cached in; nothing is created or read."""
    return resolve_cache_dir(cache_dir) / f"{_slug(config)}-{config_key(config)[:16]}.npz"


def array_checksum(x: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 (hex) over the names, dtypes, shapes and C-order bytes of ``x`` and ``y``."""
    h = hashlib.sha256()
    for name, a in (("x", x), ("y", y)):
        a = np.ascontiguousarray(a)
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _read(path: Path, config_json: str) -> tuple[np.ndarray, np.ndarray]:
    """Read and verify a cache file; raise ``ValueError`` describing any problem."""
    with np.load(path, allow_pickle=False) as f:
        names = set(f.files)
        needed = {"x", "y", "checksum", "config_json", "format_version"}
        if not needed <= names:
            raise ValueError(f"missing entries {sorted(needed - names)}")
        version = int(f["format_version"])
        if version != FORMAT_VERSION:
            raise ValueError(f"format version {version}, expected {FORMAT_VERSION}")
        stored_config = str(f["config_json"])
        if stored_config != config_json:
            raise ValueError("it holds a different config (hash prefix collision?)")
        x, y = f["x"], f["y"]
        checksum = str(f["checksum"])
    if checksum != array_checksum(x, y):
        raise ValueError("the SHA-256 checksum of the arrays does not match")
    return x, y


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (best effort; not all platforms can open directories)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _file_mode() -> int:
    """``0o666`` less this process's umask: what ``open()`` would give a new file.

    ``mkstemp`` creates files readable by their owner only (0600), which locks out a team that
    shares one cache folder; cache files get the ordinary mode instead (0644 under the usual
    umask 022, 0664 under 002 for a group-writable shared folder).
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, write: Callable[[Any], None], suffix: str) -> None:
    """Write ``path`` whole or not at all: ``write(fh)`` into a temporary file beside it
    (``suffix``), fsync, then rename over ``path`` (the cache files and ``from_arrays``)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _write(path: Path, x: np.ndarray, y: np.ndarray, config_json: str, checksum: str) -> None:
    def write_npz(fh: Any) -> None:
        np.savez(
            fh,
            x=x,
            y=y,
            checksum=np.array(checksum),
            config_json=np.array(config_json),
            format_version=np.array(FORMAT_VERSION),
        )

    atomic_write(path, write_npz, ".tmp")
    sidecar = {
        "config": json.loads(config_json),
        "format_version": FORMAT_VERSION,
        "key": config_key(json.loads(config_json)),
        "file": path.name,
        "x_shape": list(x.shape),
        "y_shape": list(y.shape),
        "dtype": str(x.dtype),
        "sha256_arrays": checksum,
    }
    text = json.dumps(sidecar, indent=2, sort_keys=True) + "\n"
    atomic_write(path.with_suffix(".json"), lambda fh: fh.write(text.encode()), ".tmp")


def _validate_generated(out: Any, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"generate_fn must return a tuple (x, y); got {type(out).__name__}")
    x, y = (np.ascontiguousarray(a, dtype=np.float32) for a in out)
    if x.ndim < 2 or y.ndim < 2 or x.shape[0] != y.shape[0]:
        raise TypeError(
            f"generate_fn must return arrays shaped (N, C, *grid) with the same N; got "
            f"x {x.shape} and y {y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise TransferTuneError(
            f"the generated data contain NaN or inf for config {canonical_json(config)}; "
            "the solve diverged: use a smaller time step or gentler parameters."
        )
    return x, y


def load_or_generate(
    config: Mapping[str, Any],
    generate_fn: Callable[[], tuple[np.ndarray, np.ndarray]],
    cache_dir: str | os.PathLike[str] | None = None,
) -> CacheResult:
    """Return the cached arrays for ``config``, generating and caching them on a miss.

    Parameters
    ----------
    config : mapping
        The full, JSON-able generation config (problem name, every parameter with defaults
        filled in, resolution, split, number of samples, seed ...). Everything that changes
        the data must be in it: the file is found by the hash of its canonical JSON.
    generate_fn : callable
        Called with no arguments on a miss; returns ``(x, y)`` arrays with the same first
        (sample) dimension. They are stored as C-contiguous float32.
    cache_dir : path-like, optional
        See :func:`resolve_cache_dir`.

    Returns
    -------
    CacheResult
        ``(x, y, path, hit)``: float32 arrays, the cache file, and whether it was a hit.

    Raises
    ------
    TransferTuneError
        If the config is not JSON-able, the cache directory cannot be created, or the
        generated data contain NaN or inf.

    Warns
    -----
    CacheCorruptionWarning
        When an existing file is unreadable or fails verification (it is then regenerated).
    CacheWriteWarning
        When the generated data cannot be written (they are returned anyway).
    """
    config_json = canonical_json(config)
    path = cache_path(config, cache_dir)
    if path.exists():
        try:
            x, y = _read(path, config_json)
            return CacheResult(x, y, path, True)
        except Exception as err:  # any failure to read or verify means corruption
            warnings.warn(
                f"cached dataset {path} is corrupted ({type(err).__name__}: {err}); "
                "regenerating it.",
                CacheCorruptionWarning,
                stacklevel=2,
            )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TransferTuneError(
            f"cannot create the dataset cache directory {path.parent} ({err}); pass "
            f"cache_dir=... or set {ENV_VAR} to a writable directory."
        ) from err
    x, y = _validate_generated(generate_fn(), config)
    try:
        _write(path, x, y, config_json, array_checksum(x, y))
    except OSError as err:
        warnings.warn(
            f"could not write the dataset cache file {path} ({err}); the data are used "
            f"without caching. Pass cache_dir=... or set {ENV_VAR} to a writable directory.",
            CacheWriteWarning,
            stacklevel=2,
        )
    return CacheResult(x, y, path, False)
