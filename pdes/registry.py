"""Problem registry: named PDE problems with cached, normalised train/val/test splits.

``get_problem(name, **overrides)`` returns a :class:`Problem`. Generated problems
("burgers", "darcy", "navier_stokes") call their solver module once per split and cache the
result on disk (:mod:`pdes.cache`); "file" reads pairs from a file the user already has
(:func:`pdes.loaders.load_pairs`).

Seeds. Each split is generated with its own seed derived from ``(seed, split)`` by hashing,
so the splits are independent and changing ``n_train`` does not change the test set. The
solvers guarantee that a dataset at a finer resolution with the same seed holds the same
functions (it subsamples one fixed fine solve), which is what super-resolution evaluation
needs.

Normalisation. ``dataset(split)`` encodes x and y with per-channel
:class:`~pdes.normalize.GaussianNormalizer` statistics fitted on the train split only.
``with_overrides`` keeps the original problem's statistics by default (a model trained on it
expects them): the new problem records the original's config under ``normalizer_from`` and
fits on *that* problem's train split (e.g. the training resolution), so evaluating at a finer
resolution uses exactly the training encoding.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import torch

from pdes.cache import cache_path, canonical_json, load_or_generate, resolve_cache_dir
from pdes.errors import TransferTuneError
from pdes.loaders import load_pairs
from pdes.normalize import GaussianNormalizer

__all__ = [
    "SPLITS",
    "Normalizers",
    "Problem",
    "ProblemSpec",
    "get_problem",
    "list_problems",
    "register_problem",
]

#: The dataset splits, in the order a file's samples are assigned to them.
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Default split sizes of every problem.
DEFAULT_SIZES: dict[str, int] = {"n_train": 1000, "n_val": 100, "n_test": 200}

_COMMON = ("resolution", "n_train", "n_val", "n_test", "seed", "cache_dir", "n_jobs", "progress")
_RESERVED = frozenset(("name", "normalizer_from", *_COMMON))
_FILE_PARAMS: dict[str, Any] = {
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
#: Config entries that do not change the train split (hence not the normaliser statistics).
_NOT_TRAIN_DATA = frozenset(("n_val", "n_test", "cache_dir", "n_jobs", "progress"))


@dataclass(frozen=True)
class ProblemSpec:
    """How to generate one PDE problem (what a solver module provides).

    Parameters
    ----------
    name : str
        Canonical problem name.
    dim : int
        Spatial dimension.
    defaults : mapping
        JSON-able solver parameters and their defaults; every one may be overridden.
    generate : callable
        ``generate(n_samples, resolution, seed, *, progress, n_jobs, **params) -> (x, y)``,
        float32 arrays shaped ``(n, C, *grid)`` with ``resolution`` points per axis;
        deterministic in ``seed``.
    check_resolution : callable
        ``check_resolution(resolution, **params)``; raises ``TransferTuneError`` if the
        solver cannot produce that grid.
    default_resolution : int
        Preferred resolution; the nearest one ``check_resolution`` accepts is used.
    in_channels, out_channels : int, optional
        Channel counts if known in advance (otherwise read from the train split).
    version : str
        Part of every cache key: bump it when the solver's output changes.
    """

    name: str
    dim: int
    defaults: Mapping[str, Any]
    generate: Callable[..., tuple[np.ndarray, np.ndarray]]
    check_resolution: Callable[..., None]
    default_resolution: int
    in_channels: int | None = None
    out_channels: int | None = None
    version: str = "1"

    @classmethod
    def from_module(
        cls, name: str, module: ModuleType, default_resolution: int | None = None
    ) -> ProblemSpec:
        """Build a spec from a solver module (``DEFAULTS``, ``DIM``, ``generate``,
        ``check_resolution``; optional ``DEFAULT_RESOLUTION``, ``IN_CHANNELS``,
        ``OUT_CHANNELS``, ``VERSION``)."""
        missing = [
            a for a in ("DEFAULTS", "DIM", "generate", "check_resolution") if not hasattr(module, a)
        ]
        if missing:
            raise TransferTuneError(
                f"solver module {module.__name__} for problem {name!r} lacks {missing}; a "
                "solver module must define DEFAULTS, DIM, generate and check_resolution."
            )
        res = default_resolution or getattr(module, "DEFAULT_RESOLUTION", None)
        if res is None:
            raise TransferTuneError(
                f"problem {name!r}: pass default_resolution= to register_problem or define "
                f"DEFAULT_RESOLUTION in {module.__name__}."
            )
        return cls(
            name=name,
            dim=int(module.DIM),
            defaults=dict(module.DEFAULTS),
            generate=module.generate,
            check_resolution=module.check_resolution,
            default_resolution=int(res),
            in_channels=getattr(module, "IN_CHANNELS", None),
            out_channels=getattr(module, "OUT_CHANNELS", None),
            version=str(getattr(module, "VERSION", "1")),
        )


@dataclass
class _Entry:
    target: ProblemSpec | ModuleType | str
    default_resolution: int | None
    spec: ProblemSpec | None = field(default=None)


_REGISTRY: dict[str, _Entry] = {}
_ALIASES: dict[str, str] = {}
_LOCK = threading.Lock()


def _normalize_name(name: str) -> str:
    return name.strip().lower()


def register_problem(
    name: str,
    module_or_spec: ProblemSpec | ModuleType | str,
    *,
    default_resolution: int | None = None,
    aliases: Iterable[str] = (),
    replace: bool = False,
) -> None:
    """Register a generated PDE problem under ``name``.

    Parameters
    ----------
    name : str
        Canonical name (case-insensitive).
    module_or_spec : ProblemSpec, module or str
        A :class:`ProblemSpec`, a solver module (see :meth:`ProblemSpec.from_module`), or the
        dotted import path of one (imported on first use).
    default_resolution : int, optional
        Preferred resolution for modules (overrides their ``DEFAULT_RESOLUTION``).
    aliases : iterable of str
        Other accepted names.
    replace : bool, default False
        Allow replacing an existing registration of ``name``.

    Raises
    ------
    TransferTuneError
        If the name (or an alias) is taken and ``replace`` is false, or is ``"file"``.
    """
    key = _normalize_name(name)
    names = [key, *(_normalize_name(a) for a in aliases)]
    with _LOCK:
        for n in names:
            if n == "file":
                raise TransferTuneError('"file" is reserved for user files; pick another name.')
            taken = n in _REGISTRY or n in _ALIASES
            owner = _ALIASES.get(n, n)
            if taken and not (replace and owner == key):
                raise TransferTuneError(
                    f"problem name {n!r} is already registered; pass replace=True to "
                    "register_problem to replace it, or choose another name."
                )
        if isinstance(module_or_spec, ProblemSpec):
            bad = _RESERVED & set(module_or_spec.defaults)
            if bad:
                raise TransferTuneError(
                    f"problem {name!r}: solver parameter names {sorted(bad)} clash with "
                    f"Problem options {sorted(_RESERVED)}; rename them."
                )
        _REGISTRY[key] = _Entry(module_or_spec, default_resolution)
        for a in names[1:]:
            _ALIASES[a] = key


def list_problems() -> list[str]:
    """Return the canonical names of all problems (generated ones and ``"file"``), sorted."""
    with _LOCK:
        return sorted([*_REGISTRY, "file"])


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise TransferTuneError(f"problem name must be a string, got {name!r}.")
    key = _normalize_name(name)
    key = _ALIASES.get(key, key)
    if key != "file" and key not in _REGISTRY:
        aliases = ", ".join(f"{a} -> {t}" for a, t in sorted(_ALIASES.items()))
        raise TransferTuneError(
            f"unknown problem {name!r}; available problems: {', '.join(list_problems())}"
            + (f" (aliases: {aliases})" if aliases else "")
            + ". Register others with pdes.register_problem."
        )
    return key


def _spec(key: str) -> ProblemSpec:
    entry = _REGISTRY[key]
    if entry.spec is None:
        target = entry.target
        if isinstance(target, str):
            target = importlib.import_module(target)
        if isinstance(target, ProblemSpec):
            spec = target
        else:
            spec = ProblemSpec.from_module(key, target, entry.default_resolution)
        bad = _RESERVED & set(spec.defaults)
        if bad:
            raise TransferTuneError(
                f"problem {key!r}: solver parameter names {sorted(bad)} clash with Problem "
                f"options {sorted(_RESERVED)}; rename them."
            )
        entry.spec = spec
    return entry.spec


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _as_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TransferTuneError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return value


def _coerce_param(name: str, value: Any, default: Any, problem: str) -> Any:
    """Coerce an override to the type of its default (int -> float etc.); JSON-able result."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, tuple):
        value = list(value)
    bad = TransferTuneError(
        f"{problem} parameter {name}={value!r} has type {type(value).__name__}, but its "
        f"default {default!r} is a {type(default).__name__}; pass a value of that type."
    )
    if default is None:
        pass
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad
    elif isinstance(default, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise bad
    elif isinstance(default, (list, tuple)) and not isinstance(value, list):
        raise bad
    canonical_json({name: value})  # raises TransferTuneError if not JSON-able / not finite
    return json.loads(json.dumps(value))


def _split_seed(seed: int, split: str) -> int:
    """Independent 31-bit seed per (seed, split), stable across runs and platforms."""
    digest = hashlib.sha256(f"transfer-tune/{seed}/{split}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _default_resolution(spec: ProblemSpec, params: Mapping[str, Any]) -> int:
    """The resolution ``check_resolution`` accepts that is nearest the preferred one."""
    pref = spec.default_resolution
    for delta in range(0, 4 * pref):
        for res in (pref,) if delta == 0 else (pref - delta, pref + delta):
            if res < 2:
                continue
            try:
                spec.check_resolution(res, **params)
            except (TransferTuneError, ValueError):
                continue
            return res
    raise TransferTuneError(
        f"{spec.name}: no resolution near {pref} is allowed for these parameters; pass "
        "resolution= explicitly."
    )


class Normalizers(NamedTuple):
    """The input and output normalisers of a problem (fitted on its train split)."""

    x: GaussianNormalizer
    y: GaussianNormalizer

    def state_dict(self) -> dict[str, dict[str, list[float]]]:
        """JSON-able statistics: ``{"x": {...}, "y": {...}}``."""
        return {"x": self.x.state_dict(), "y": self.y.state_dict()}


# --------------------------------------------------------------------------------------------
# Problem
# --------------------------------------------------------------------------------------------


class Problem:
    """A PDE learning problem: grid, splits, and cached, normalised datasets.

    Build it with :func:`get_problem`, not directly. Datasets are loaded (or generated and
    cached on disk) on first use and kept in memory for the life of the object; the tensors
    returned by :meth:`dataset` are shared, so do not modify them in place.

    Attributes
    ----------
    name : str
        Canonical problem name (``"file"`` for user files).
    dim : int
        Spatial dimension.
    resolution : int
        Points per spatial axis (for files: along the first axis).
    grid_shape : tuple of int
        Points along each spatial axis.
    in_channels, out_channels : int
        Channels of x and y (may load the train split to find out).
    n_train, n_val, n_test : int
        Split sizes.
    seed : int
        Base seed; split seeds derive from ``(seed, split)``.
    params : dict
        Solver parameters with defaults filled in (for files: the loader options).
    cache_dir : pathlib.Path
        Where generated splits are cached.
    n_jobs : int
        Parallel workers passed to the solver.
    progress : bool
        Whether the solver shows a progress bar.
    """

    def __init__(
        self,
        name: str,
        *,
        spec: ProblemSpec | None,
        params: dict[str, Any],
        resolution: int | None,
        n_train: int,
        n_val: int,
        n_test: int,
        seed: int,
        cache_dir: str | None,
        n_jobs: int,
        progress: bool,
        normalizer_from: dict[str, Any] | None = None,
    ) -> None:
        self._name = name
        self._spec = spec
        self._params = params
        self._resolution = resolution
        self._n = {"train": n_train, "val": n_val, "test": n_test}
        self._seed = seed
        self._cache_dir_arg = cache_dir
        self._cache_dir = resolve_cache_dir(cache_dir)
        self._n_jobs = n_jobs
        self._progress = progress
        self._normalizer_from = normalizer_from
        self._stats_problem: Problem | None = (
            get_problem(**normalizer_from) if normalizer_from is not None else None
        )
        self._raw: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._encoded: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._paths: dict[str, Path] = {}
        self._normalizers: Normalizers | None = None
        self._lock = threading.RLock()

    # ---- attributes -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def is_file(self) -> bool:
        """Whether the data come from a user file (``name == "file"``)."""
        return self._spec is None

    @property
    def dim(self) -> int:
        if self._spec is not None:
            return self._spec.dim
        return len(self.grid_shape)

    @property
    def resolution(self) -> int:
        if self._resolution is not None:
            return self._resolution
        return self.grid_shape[0]

    @property
    def grid_shape(self) -> tuple[int, ...]:
        if self._spec is not None:
            return (self.resolution,) * self._spec.dim
        return tuple(self._load("train")[0].shape[2:])

    @property
    def in_channels(self) -> int:
        if self._spec is not None and self._spec.in_channels is not None:
            return int(self._spec.in_channels)
        return int(self._load("train")[0].shape[1])

    @property
    def out_channels(self) -> int:
        if self._spec is not None and self._spec.out_channels is not None:
            return int(self._spec.out_channels)
        return int(self._load("train")[1].shape[1])

    @property
    def n_train(self) -> int:
        return self._n["train"]

    @property
    def n_val(self) -> int:
        return self._n["val"]

    @property
    def n_test(self) -> int:
        return self._n["test"]

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._params))

    @property
    def cache_dir(self) -> Path:
        return self._cache_dir

    @property
    def n_jobs(self) -> int:
        return self._n_jobs

    @property
    def progress(self) -> bool:
        return self._progress

    # ---- config -----------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Return a JSON-able dict such that ``get_problem(**config)`` rebuilds this problem.

        It holds the name, every option and every solver parameter (defaults filled in), and
        ``normalizer_from`` (the config of the problem whose train split gives the normaliser
        statistics) when that is not this problem's own train split.
        """
        cfg: dict[str, Any] = {"name": self._name}
        if self._spec is not None:
            cfg["resolution"] = self._resolution
        cfg.update(
            n_train=self.n_train,
            n_val=self.n_val,
            n_test=self.n_test,
            seed=self._seed,
            cache_dir=self._cache_dir_arg,
            n_jobs=self._n_jobs,
            progress=self._progress,
        )
        cfg.update(self.params)
        if self._normalizer_from is not None:
            cfg["normalizer_from"] = json.loads(json.dumps(self._normalizer_from))
        return cfg

    def _train_identity(self) -> dict[str, Any]:
        cfg = self.config()
        cfg.pop("normalizer_from", None)
        return {k: v for k, v in cfg.items() if k not in _NOT_TRAIN_DATA}

    def _stats_source(self) -> Problem:
        if self._stats_problem is not None:
            return self._stats_problem._stats_source()
        return self

    def with_overrides(self, *, keep_normalizers: bool = True, **overrides: Any) -> Problem:
        """Return a new problem with some options or parameters changed.

        Parameters
        ----------
        keep_normalizers : bool, default True
            Keep this problem's normaliser statistics (those of its own train split, e.g. at
            the training resolution) even if the overrides change the train data, so a model
            trained here sees the same encoding, e.g. ``with_overrides(resolution=256)`` for
            super-resolution evaluation. The new config then records this problem's config
            under ``normalizer_from``. With False the new problem fits its own. Ignored when
            ``normalizer_from`` is among the overrides.
        **overrides
            Any option accepted by :func:`get_problem` except ``name``.

        Returns
        -------
        Problem
        """
        if "name" in overrides and _canonical(overrides["name"]) != self._name:
            raise TransferTuneError(
                "with_overrides cannot change the problem name; call get_problem instead."
            )
        cfg = self.config()
        cfg.pop("normalizer_from", None)
        cfg.update(overrides)
        new = get_problem(**cfg)
        if keep_normalizers and "normalizer_from" not in overrides:
            source = self._stats_source()
            if new._train_identity() != source._train_identity():
                new._normalizer_from = source.config()
            new._stats_problem = source
        return new

    # ---- data -------------------------------------------------------------------------------

    def _check_split(self, split: str) -> str:
        if split not in SPLITS:
            raise TransferTuneError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}.")
        return split

    def split_seed(self, split: str) -> int:
        """The seed the given split is generated with (derived from ``(seed, split)``)."""
        return _split_seed(self._seed, self._check_split(split))

    def _cache_config(self, split: str) -> dict[str, Any]:
        assert self._spec is not None
        return {
            "problem": self._name,
            "version": self._spec.version,
            "dim": self._spec.dim,
            "params": self._params,
            "resolution": self._resolution,
            "split": split,
            "n": self._n[split],
            "seed": self._seed,
            "split_seed": _split_seed(self._seed, split),
        }

    def cache_files(self) -> dict[str, Path]:
        """Cache file of every non-empty split (generated problems; files: the data file)."""
        if self._spec is None:
            test_file = self._params["test_path"] or self._params["path"]
            return {
                s: Path(test_file if s == "test" else self._params["path"])
                for s in SPLITS
                if self._n[s] > 0
            }
        return {
            s: cache_path(self._cache_config(s), self._cache_dir) for s in SPLITS if self._n[s] > 0
        }

    def _generate(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        assert self._spec is not None
        n = self._n[split]
        if n == 0:
            x_tr, y_tr = self._load("train")
            return (
                np.zeros((0, *x_tr.shape[1:]), np.float32),
                np.zeros((0, *y_tr.shape[1:]), np.float32),
            )
        spec = self._spec
        seed = _split_seed(self._seed, split)

        def generate() -> tuple[np.ndarray, np.ndarray]:
            return spec.generate(
                n,
                self._resolution,
                seed,
                progress=self._progress,
                n_jobs=self._n_jobs,
                **self._params,
            )

        x, y, path, _hit = load_or_generate(self._cache_config(split), generate, self._cache_dir)
        grid = (self._resolution,) * spec.dim
        for label, a, c in (("x", x, spec.in_channels), ("y", y, spec.out_channels)):
            if (
                a.ndim != 2 + spec.dim
                or a.shape[0] != n
                or a.shape[2:] != grid
                or (c is not None and a.shape[1] != c)
            ):
                raise RuntimeError(
                    f"{self._name} solver returned {label} shaped {a.shape} for the {split} "
                    f"split; expected ({n}, {c if c is not None else 'C'}, "
                    f"{', '.join(map(str, grid))}). This is a solver bug (cache file {path})."
                )
        self._paths[split] = path
        return x, y

    def _load_file(self) -> None:
        p = self._params
        n_tr, n_va, n_te = self._n["train"], self._n["val"], self._n["test"]
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
                    f"{p['test_path']} holds {xt.shape[0]} samples but n_test = {n_te}; "
                    "lower n_test."
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
        for s, (a, b) in splits.items():
            self._raw[s] = (
                torch.from_numpy(np.ascontiguousarray(a)),
                torch.from_numpy(np.ascontiguousarray(b)),
            )

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        with self._lock:
            if split not in self._raw:
                if self._spec is None:
                    self._load_file()
                else:
                    x, y = self._generate(split)
                    self._raw[split] = (torch.from_numpy(x), torch.from_numpy(y))
            return self._raw[split]

    @property
    def normalizers(self) -> Normalizers:
        """Per-channel x and y normalisers fitted on the train split (lazily, once).

        For a problem made by :meth:`with_overrides` (or with ``normalizer_from``), they are
        those of the original problem's train split.
        """
        with self._lock:
            if self._normalizers is None:
                if self._stats_problem is not None:
                    self._normalizers = self._stats_problem.normalizers
                else:
                    x, y = self._load("train")
                    self._normalizers = Normalizers(
                        GaussianNormalizer.fit(x), GaussianNormalizer.fit(y)
                    )
            return self._normalizers

    def dataset(self, split: str, normalized: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(x, y)`` of a split as float32 CPU tensors shaped ``(N, C, *grid)``.

        Parameters
        ----------
        split : {"train", "val", "test"}
        normalized : bool, default True
            Encode with :attr:`normalizers` (fitted on the train split); False gives physical
            units.

        Returns
        -------
        x, y : torch.Tensor
            Shared with later calls (kept in memory): do not modify them in place.
        """
        self._check_split(split)
        x, y = self._load(split)
        if not normalized:
            return x, y
        with self._lock:
            if split not in self._encoded:
                nx, ny = self.normalizers
                self._encoded[split] = (nx.encode(x), ny.encode(y))
            return self._encoded[split]

    def encode_x(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise inputs in physical units (``(N, C_in, *grid)``)."""
        return self.normalizers.x.encode(x)

    def decode_y(self, y: torch.Tensor) -> torch.Tensor:
        """Map normalised outputs (e.g. model predictions) back to physical units."""
        return self.normalizers.y.decode(y)

    def prepare(self) -> dict[str, Path]:
        """Load (generating and caching if needed) every split; return the files used."""
        for split in SPLITS:
            self._load(split)
        return self.cache_files()

    # ---- text -------------------------------------------------------------------------------

    def summary(self) -> str:
        """A short human description: name, grid, splits, shapes (if loaded), files."""
        lines = []
        if self._spec is not None:
            params = ", ".join(f"{k}={v}" for k, v in self._params.items())
            lines.append(
                f"{self._name} ({self._spec.dim}-D), resolution {self._resolution}, "
                f"grid {self.grid_shape}"
            )
            lines.append(f"  params: {params or '(none)'}")
        else:
            opts = ", ".join(
                f"{k}={v}" for k, v in self._params.items() if k != "path" and v is not None
            )
            lines.append(f"file {self._params['path']}" + (f" ({opts})" if opts else ""))
        lines.append(
            f"  splits (seed {self._seed}): train {self.n_train}, val {self.n_val}, "
            f"test {self.n_test}"
        )
        if "train" in self._raw:
            x, y = self._raw["train"]
            lines.append(
                f"  x (N, {x.shape[1]}, {', '.join(map(str, x.shape[2:]))}) -> "
                f"y (N, {y.shape[1]}, {', '.join(map(str, y.shape[2:]))})"
            )
        if self._spec is not None:
            lines.append(f"  cache dir: {self._cache_dir}")
            for split, path in self.cache_files().items():
                state = "cached" if path.exists() else "not generated yet"
                lines.append(f"    {split}: {path.name} ({state})")
        if self._normalizer_from is not None:
            src = self._normalizer_from
            lines.append(
                "  normalisers from the train split of "
                f"{src['name']} (resolution {src.get('resolution', '?')}, "
                f"n_train {src['n_train']})"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Problem({canonical_json(self.config())})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Problem):
            return NotImplemented
        return self.config() == other.config()

    def __hash__(self) -> int:
        return hash(canonical_json(self.config()))

    def __reduce__(self) -> tuple[Callable[..., Problem], tuple[dict[str, Any]]]:
        return (_from_config, (self.config(),))


def _from_config(config: dict[str, Any]) -> Problem:
    return get_problem(**config)


# --------------------------------------------------------------------------------------------
# get_problem
# --------------------------------------------------------------------------------------------


def _common_options(overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(DEFAULT_SIZES)
    out.update(seed=0, cache_dir=None, n_jobs=-1, progress=False)
    for key in ("n_train", "n_val", "n_test", "seed", "cache_dir", "n_jobs", "progress"):
        if key in overrides:
            out[key] = overrides.pop(key)
    out["n_train"] = _as_int(out["n_train"], "n_train", 1)
    out["n_val"] = _as_int(out["n_val"], "n_val", 0)
    out["n_test"] = _as_int(out["n_test"], "n_test", 0)
    out["seed"] = _as_int(out["seed"], "seed", 0)
    n_jobs = out["n_jobs"]
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise TransferTuneError(f"n_jobs must be a nonzero int (-1: all cores), got {n_jobs!r}.")
    out["n_jobs"] = int(n_jobs)
    if not isinstance(out["progress"], bool):
        raise TransferTuneError(f"progress must be True or False, got {out['progress']!r}.")
    cd = out["cache_dir"]
    if cd is not None and not isinstance(cd, (str, os.PathLike)):
        raise TransferTuneError(f"cache_dir must be a path or None, got {cd!r}.")
    out["cache_dir"] = None if cd is None else os.fspath(cd)
    return out


def _normalizer_from(overrides: dict[str, Any], key: str) -> dict[str, Any] | None:
    nf = overrides.pop("normalizer_from", None)
    if nf is None:
        return None
    if not isinstance(nf, Mapping) or "name" not in nf:
        raise TransferTuneError(
            "normalizer_from must be a problem config dict (Problem.config()) with a 'name'."
        )
    if _canonical(nf["name"]) != key:
        raise TransferTuneError(
            f"normalizer_from names problem {nf['name']!r} but this problem is {key!r}; the "
            "statistics must come from the same problem."
        )
    return json.loads(canonical_json(nf))


def _file_problem(overrides: dict[str, Any]) -> Problem:
    nf = _normalizer_from(overrides, "file")
    if "resolution" in overrides:
        raise TransferTuneError(
            "a 'file' problem takes its grid from the file; choose it with subsample=<stride> "
            "instead of resolution=."
        )
    common = _common_options(overrides)
    unknown = sorted(set(overrides) - set(_FILE_PARAMS))
    if unknown:
        raise TransferTuneError(
            f"unknown option(s) {unknown} for problem 'file'; valid options: "
            f"{', '.join(sorted([*_FILE_PARAMS, *_COMMON[1:]]))}."
        )
    params = dict(_FILE_PARAMS)
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
    canonical_json(params)
    return Problem("file", spec=None, params=params, resolution=None, normalizer_from=nf, **common)


def get_problem(name: str, **overrides: Any) -> Problem:
    """Return a :class:`Problem` by name, with options and solver parameters overridden.

    Parameters
    ----------
    name : str
        ``"burgers"``, ``"darcy"``, ``"navier_stokes"`` (also ``"navier-stokes"``, ``"ns"``),
        any registered problem, or ``"file"`` for a user file.
    **overrides
        Options: ``n_train`` (default 1000), ``n_val`` (100), ``n_test`` (200), ``seed`` (0),
        ``resolution`` (per problem: burgers 1024, darcy the allowed value nearest 64,
        navier_stokes 64), ``cache_dir`` (see :func:`pdes.cache.resolve_cache_dir`),
        ``n_jobs`` (-1: all cores), ``progress`` (False), ``normalizer_from`` (a problem
        config whose train split gives the normaliser statistics; set by
        :meth:`Problem.with_overrides`).
        Any solver parameter (its module's ``DEFAULTS``). For ``"file"``: ``path``
        (required), ``test_path`` (a separate test file), ``x_key``, ``y_key``, ``format``,
        ``dim``, ``subsample``, ``x_time``, ``y_time`` (see :func:`pdes.loaders.load_pairs`);
        its samples are split in order: train first, then val, then test.

    Returns
    -------
    Problem
        Nothing is generated or loaded until a dataset (or a data-derived attribute) is used.

    Raises
    ------
    TransferTuneError
        For an unknown problem (the message lists them), an unknown option or parameter (the
        message lists the valid ones), a value of the wrong type, or a resolution the solver
        does not allow.
    """
    key = _canonical(name)
    overrides = dict(overrides)
    if key == "file":
        return _file_problem(overrides)
    spec = _spec(key)
    nf = _normalizer_from(overrides, key)
    resolution = overrides.pop("resolution", None)
    common = _common_options(overrides)
    unknown = sorted(set(overrides) - set(spec.defaults))
    if unknown:
        raise TransferTuneError(
            f"unknown option(s) {unknown} for problem {key!r}; valid options: "
            f"{', '.join(_COMMON)}; solver parameters: "
            f"{', '.join(sorted(spec.defaults)) or '(none)'}."
        )
    params = json.loads(json.dumps(dict(spec.defaults)))
    for k, v in overrides.items():
        params[k] = _coerce_param(k, v, spec.defaults[k], key)
    if resolution is None:
        resolution = _default_resolution(spec, params)
    else:
        resolution = _as_int(resolution, "resolution", 2)
        spec.check_resolution(resolution, **params)
    return Problem(
        key, spec=spec, params=params, resolution=resolution, normalizer_from=nf, **common
    )


register_problem("burgers", "pdes.burgers", default_resolution=1024)
register_problem("darcy", "pdes.darcy", default_resolution=64)
register_problem(
    "navier_stokes", "pdes.navier_stokes", default_resolution=64, aliases=("navier-stokes", "ns")
)


def load_problem(problem: Any, overrides: Mapping[str, Any] | None = None) -> Problem:
    """A :class:`Problem` from a name, a ``Problem.config()`` dict or a Problem, plus overrides.

    The one place that turns what a user or a stored study says about a problem into a
    :class:`Problem`; the search, transfer and landscape code all call it.

    Parameters
    ----------
    problem : str, dict or Problem
        A name for :func:`get_problem`, a config dict with a ``"name"`` key (as stored in a
        study's user attributes), or a Problem.
    overrides : mapping, optional
        Options and solver parameters laid over it (see :func:`get_problem`).

    Raises
    ------
    TransferTuneError
        For anything else, a dict without ``"name"`` or overrides that are not a mapping.
    """
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TransferTuneError(
            f"problem overrides must be a mapping of option -> value, got {overrides!r}"
        )
    overrides = dict(overrides or {})
    if isinstance(problem, Problem):
        return problem.with_overrides(**overrides) if overrides else problem
    if isinstance(problem, Mapping):
        if "name" not in problem:
            raise TransferTuneError(
                f"a problem dict needs a 'name' key (e.g. {{'name': 'burgers', ...}}), got "
                f"keys {sorted(map(str, problem))}"
            )
        return get_problem(**{**problem, **overrides})
    if not isinstance(problem, str):
        raise TransferTuneError(
            f"problem must be a name such as 'burgers', a problem config dict or a "
            f"pdes.Problem, got {type(problem).__name__}"
        )
    return get_problem(problem, **overrides)
