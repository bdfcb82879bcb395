"""File format readers: a uniform view (keys, shapes, indexed reads) over each format.

:func:`open_source` opens a ``.mat`` (MATLAB v5 or v7.3), HDF5, ``.pt`` or ``.npz`` file as a
:class:`Source`: named arrays, read lazily where the format allows. Nothing here knows about
inputs, outputs, time or channel axes; :mod:`pdes.loaders` reads the pairs through it.
Untrusted files are never unpickled (``torch.load(weights_only=True)``,
``np.load(allow_pickle=False)``).
"""

from __future__ import annotations

import contextlib
import math
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pdes.errors import TransferTuneError

__all__ = ["FORMATS", "H5Source", "Index", "Source", "detect_format", "open_source"]

#: Supported formats and the file extensions that select them.
FORMATS: dict[str, tuple[str, ...]] = {
    "mat": (".mat",),
    "hdf5": (".h5", ".hdf5", ".hdf"),
    "pt": (".pt", ".pth"),
    "npz": (".npz",),
}


Index = tuple[Any, ...]

#: Longest string kept as metadata.
_MAX_TEXT = 200


def _plain(value: Any) -> Any:
    """One number or short string as a JSON-able Python value (``None``: not metadata)."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            return None
        value = value.reshape(-1)[0]
    if isinstance(value, (np.float16, np.float32)):
        value = float(str(value))  # the shortest decimal that round-trips: 0.01, not 0.0099...
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str) and len(value) <= _MAX_TEXT:
        return value
    return None


def _supported() -> str:
    return ", ".join(f"{ext} ({fmt})" for fmt, exts in FORMATS.items() for ext in exts)


class Source:
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

    def kind(self, key: str) -> str | None:
        """NumPy's dtype kind of ``key`` (``"f"``, ``"U"``, ``"O"``...) from the header;
        ``None`` when the format does not say without reading the array."""
        return None

    def read(self, key: str, index: Index) -> np.ndarray:
        raise NotImplementedError

    def scalars(self, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
        """Entries holding one number or a short string (metadata such as ``visc``), as
        JSON-able Python values; ``exclude`` names entries to leave out."""
        out: dict[str, Any] = {}
        for key in self.keys():
            if key in exclude or math.prod(self.shape(key)) != 1 or len(self.shape(key)) > 2:
                continue
            try:
                value = _plain(self.read(key, ()))
            except Exception:  # an unreadable entry is not metadata worth failing for
                continue
            if value is not None:
                out[key] = value
        return out

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


class DictSource(Source):
    """Arrays from a mapping of names to loaders (``.pt``, ``.npz``, MATLAB v5)."""

    def __init__(
        self,
        path: Path,
        fmt: str,
        label: str,
        shapes: dict[str, tuple[int, ...]],
        loader: Callable[[str], np.ndarray],
        on_close: Callable[[], None] | None = None,
        extra: dict[str, Any] | None = None,
        kinds: dict[str, str] | None = None,
    ) -> None:
        super().__init__(path, fmt, label)
        self._extra = extra or {}  # plain Python scalars stored beside the arrays (.pt)
        self._kinds = kinds or {}
        self._shapes = shapes
        self._loader = loader
        self._loaded: dict[str, np.ndarray] = {}
        self._on_close = on_close

    def keys(self) -> list[str]:
        return list(self._shapes)

    def shape(self, key: str) -> tuple[int, ...]:
        return self._shapes[key]

    def kind(self, key: str) -> str | None:
        return self._kinds.get(key)

    def read(self, key: str, index: Index) -> np.ndarray:
        if key not in self._loaded:
            self._loaded[key] = self._loader(key)
        return np.asarray(self._loaded[key][index])

    def scalars(self, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
        out = super().scalars(exclude)
        for key, value in self._extra.items():
            if key not in exclude and _plain(value) is not None:
                out[key] = _plain(value)
        return dict(sorted(out.items()))

    def close(self) -> None:
        self._loaded.clear()
        if self._on_close is not None:
            self._on_close()


class H5Source(Source):
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

    def kind(self, key: str) -> str | None:
        return self._datasets[key].dtype.kind

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


def _open_npz(path: Path) -> Source:
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as err:
        raise TransferTuneError(
            f"cannot read {path} as .npz ({type(err).__name__}: {err}); the file is "
            "corrupted or not an npz archive."
        ) from err
    shapes, kinds = {}, {}
    for key in npz.files:
        try:
            with npz.zip.open(f"{key}.npy") as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            kinds[key] = dtype.kind
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

    return DictSource(path, "npz", ".npz", shapes, load, on_close=npz.close, kinds=kinds)


def _open_pt(path: Path) -> Source:
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
    extra: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu()
            if t.is_complex():
                arrays[str(key)] = t.numpy()
            else:
                arrays[str(key)] = (t.float() if t.dtype == torch.bfloat16 else t).numpy()
        elif isinstance(value, np.ndarray):
            arrays[str(key)] = value
        elif isinstance(value, (bool, int, float, str)):
            extra[str(key)] = value
    shapes = {k: tuple(v.shape) for k, v in arrays.items()}
    kinds = {k: v.dtype.kind for k, v in arrays.items()}
    return DictSource(path, "pt", ".pt", shapes, arrays.__getitem__, extra=extra, kinds=kinds)


#: MATLAB classes that hold no numbers, as NumPy dtype kinds (``whosmat`` names the class).
_MAT_KINDS = {"char": "U", "cell": "O", "struct": "O", "object": "O", "function_handle": "O"}


def _open_mat(path: Path) -> Source:
    import h5py
    import scipy.io

    if h5py.is_hdf5(path):
        return H5Source(path, "mat", "MATLAB v7.3 (HDF5; shapes in MATLAB order)", True)
    try:
        info = scipy.io.whosmat(path)
    except Exception as err:
        raise TransferTuneError(
            f"cannot read {path} as a MATLAB file ({type(err).__name__}: {err}); the file is "
            "corrupted or not a .mat file."
        ) from err
    shapes = {name: tuple(shape) for name, shape, _cls in info if not name.startswith("__")}
    kinds = {name: _MAT_KINDS[cls] for name, _, cls in info if cls in _MAT_KINDS}

    def load(key: str) -> np.ndarray:
        try:
            return scipy.io.loadmat(path, variable_names=[key])[key]
        except Exception as err:
            raise TransferTuneError(
                f"cannot read variable {key!r} from {path} ({type(err).__name__}: {err})."
            ) from err

    return DictSource(path, "mat", "MATLAB v5", shapes, load, kinds=kinds)


def _open_hdf5(path: Path) -> Source:
    return H5Source(path, "hdf5", "HDF5", False)


_OPENERS: dict[str, Callable[[Path], Source]] = {
    "mat": _open_mat,
    "hdf5": _open_hdf5,
    "pt": _open_pt,
    "npz": _open_npz,
}


@contextlib.contextmanager
def open_source(path: Path, fmt: str) -> Iterator[Source]:
    src = _OPENERS[fmt](path)
    try:
        yield src
    finally:
        src.close()


def detect_format(path: Path, fmt: str | None) -> str:
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
