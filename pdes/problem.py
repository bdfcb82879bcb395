"""The :class:`Problem`: grid, splits, and cached, normalised datasets of one PDE problem.

Build one with :func:`pdes.get_problem` (or :func:`pdes.load_problem`), not directly.

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
import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from pdes.cache import cache_path, canonical_json, load_or_generate, resolve_cache_dir
from pdes.errors import TransferTuneError
from pdes.file_problem import (
    FileLayout,
    describe,
    eval_grid,
    file_cache_files,
    load_file_splits,
)
from pdes.normalize import GaussianNormalizer
from pdes.physics import Physics
from pdes.spec import ProblemSpec

__all__ = ["SPLITS", "Normalizers", "Problem"]

#: The dataset splits, in the order a file's samples are assigned to them.
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Config entries that do not change the train split (hence not the normaliser statistics).
_NOT_TRAIN_DATA = frozenset(("n_val", "n_test", "cache_dir", "n_jobs", "progress"))


def _split_seed(seed: int, split: str) -> int:
    """Independent 31-bit seed per (seed, split), stable across runs and platforms."""
    digest = hashlib.sha256(f"transfer-tune/{seed}/{split}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


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
        layout: FileLayout | None = None,
        rebuild: Callable[[Mapping[str, Any]], Problem],
        canonical_name: Callable[[str], str],
    ) -> None:
        # The registry's load_problem and canonical_name, handed over by the registry (which
        # builds every Problem), so this module does not import it back.
        self._rebuild = rebuild
        self._canonical_name = canonical_name
        self._name = name
        self._layout = layout  # what the files hold (file problems only)
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
            rebuild(normalizer_from) if normalizer_from is not None else None
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
    def _file(self) -> FileLayout:
        assert self._layout is not None, "a file problem is built by get_problem('file', ...)"
        return self._layout

    @property
    def _fine_selected(self) -> bool:
        """A file problem whose test split is its finer test file (``resolution=`` chose it)."""
        fine = None if self._spec is not None else self._file.fine
        return (
            fine is not None
            and self._resolution == fine.grid[0]
            and self._resolution != self._file.grid[0]
        )

    @property
    def fine_resolution(self) -> int | None:
        """File problems: the first-axis size of the finer (super-resolution) test file, or
        ``None`` without one. Generated problems: ``None`` (any finer resolution works)."""
        if self._spec is not None or self._file.fine is None:
            return None
        return self._file.fine.grid[0]

    @property
    def metadata(self) -> dict[str, Any]:
        """Scalar entries of a data file (e.g. ``{"visc": 0.01}``); empty if none."""
        if self._spec is not None:
            return {}
        return dict(self._file.main.scalars)

    def fine_test_problem(self, resolution: int | None = None) -> Problem | None:
        """This problem's super-resolution view: its test split on a finer grid.

        Train and val stay on the training grid and the normalisers are this problem's, so a
        model trained here is scored on the finer grid exactly as on the training one. A
        generated problem is solved again at the finer grid; a file problem uses its finer
        test file.

        Parameters
        ----------
        resolution : int, optional
            The grid asked for (``eval_resolution``). ``None``: twice the training resolution
            when the solver allows it (a generated problem), the finer test file if there is
            one (a file problem), else ``None``. A file problem accepts only its test files'
            grids (the training one gives the usual test split).

        Raises
        ------
        TransferTuneError
            For a resolution the solver, or no test file of this problem, can give.
        """
        if self._spec is not None:
            if resolution is not None:
                return self.with_overrides(resolution=resolution)
            try:
                return self.with_overrides(resolution=2 * self.resolution)
            except TransferTuneError:
                return None
        fine = self._file.fine
        if resolution is None and fine is None:
            return None
        resolution = fine.grid[0] if resolution is None and fine else resolution
        return self.with_overrides(resolution=eval_grid(self._file, resolution))

    @property
    def dim(self) -> int:
        if self._spec is not None:
            return self._spec.dim
        return len(self.grid_shape)

    @property
    def resolution(self) -> int:
        if self._spec is not None and self._resolution is not None:
            return self._resolution
        return self.grid_shape[0]

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Points per axis; for a file problem the training grid, or the finer test file's
        grid when ``resolution=`` selected it (then only the test split is on it)."""
        if self._spec is not None:
            return (self.resolution,) * self._spec.dim
        fine = self._file.fine
        return tuple(fine.grid if self._fine_selected and fine else self._file.grid)

    @property
    def in_channels(self) -> int:
        if self._spec is None:
            return int(self._file.main.x_shape[0])
        if self._spec.in_channels is not None:
            return int(self._spec.in_channels)
        return int(self._load("train")[0].shape[1])

    @property
    def out_channels(self) -> int:
        if self._spec is None:
            return int(self._file.main.y_shape[0])
        if self._spec.out_channels is not None:
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
        if self._spec is None and self._fine_selected and self._file.fine is not None:
            return self._file.fine.n_samples
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
        if self._spec is not None or self._resolution is not None:
            cfg["resolution"] = self._resolution
        cfg.update(
            n_train=self._n["train"],
            n_val=self._n["val"],
            n_test=self._n["test"],
            seed=self._seed,
            cache_dir=self._cache_dir_arg,
            n_jobs=self._n_jobs,
            progress=self._progress,
        )
        cfg.update(self.params)
        if self.metadata:
            cfg["metadata"] = self.metadata
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
        if "name" in overrides and self._canonical_name(overrides["name"]) != self._name:
            raise TransferTuneError(
                "with_overrides cannot change the problem name; call get_problem instead."
            )
        cfg = self.config()
        cfg.pop("normalizer_from", None)
        cfg.update(overrides)
        new = self._rebuild(cfg)
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
            files = file_cache_files(self._file)
            if self._fine_selected:
                files["test"] = files["test_fine"]
            return files
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
        splits = load_file_splits(self._params, self._file)
        if self._fine_selected:
            splits["test"] = splits["test_fine"]
        for split in SPLITS:
            x, y = splits[split]
            self._raw[split] = (torch.from_numpy(x), torch.from_numpy(y))

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

    @property
    def has_physics(self) -> bool:
        """Whether the problem defines a PDE residual (known without loading any data)."""
        return self._spec is not None and self._spec.physics_loss is not None

    @property
    def physics(self) -> Physics | None:
        """The PDE residual loss on normalised tensors (:class:`pdes.physics.Physics`).

        ``None`` when the problem defines no residual (file problems, Navier-Stokes); see
        :func:`pdes.darcy.physics_loss` and :func:`pdes.burgers_time.physics_loss`.
        """
        if not self.has_physics:
            return None
        nx, ny = self.normalizers
        return Physics(self._name, self._spec.physics_loss, dict(self.params), nx, ny)

    def encode_x(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise inputs in physical units (``(N, C_in, *grid)``)."""
        return self.normalizers.x.encode(x)

    def decode_y(self, y: torch.Tensor) -> torch.Tensor:
        """Map normalised outputs (e.g. model predictions) back to physical units."""
        return self.normalizers.y.decode(y)

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
            lines.extend(describe(self._params, self._file, self._seed))
            if self._fine_selected:
                lines.append(f"  this view tests on the fine test file ({self.n_test} samples)")
        if self._spec is not None:
            lines.append(
                f"  splits (seed {self._seed}): train {self.n_train}, val {self.n_val}, "
                f"test {self.n_test}"
            )
        if "train" in self._raw and self._spec is not None:
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
        return (self._rebuild, (self.config(),))
