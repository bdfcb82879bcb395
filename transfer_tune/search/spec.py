"""Study specs: the TOML files under ``studies/`` that describe a tune-then-transfer run.

A spec has these tables (all optional except ``[problem]``)::

    [problem]        # name + any pdes.get_problem override (resolution, n_train, nu, ...)
    name = "burgers" # or "file" with path = "data/train.pt" (relative to the spec's folder)
    [model]          # width, n_layers, proxy_modes, target_modes (shortcuts of the sides);
                     # projection_width, grid_features (landscape sweeps only)
    [proxy]          # modes, width, resolution, epochs: the cheap model that is tuned
    [tune]           # n_trials, epochs, sampler, pruner, seed, n_jobs, study_name, storage
    [target]         # modes, width, resolution, epochs: the model trained once; eval_resolution
    [train]          # fixed training settings: clip, clip_value, schedule, weight_decay,
                     # loss = "pino", data_weight, physics_weight, physics_resolution, ...
    [search_space]   # see transfer_tune.search.search_space
    [landscape]      # modes, param, values, parametrizations, seeds, epochs, base_modes,
                     # name, hparams, device, storage, n_jobs (transfer_tune.analysis.landscape)

This module is the one parser: :data:`TABLES` lists the keys of every table, and both
``transfer-tune run``/``tune`` (:meth:`StudySpec.workflow_kwargs`) and ``transfer-tune
landscape`` (:meth:`StudySpec.sweep_kwargs`) read a spec through :func:`parse_spec`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transfer_tune.errors import TransferTuneError
from transfer_tune.search.sides import AXES as SIDE_AXES
from transfer_tune.search.sides import resolve_sides

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: The keys of every table (``None``: free-form, checked by its reader).
TABLES: dict[str, frozenset[str] | None] = {
    "problem": None,
    "model": frozenset(
        {"width", "n_layers", "proxy_modes", "target_modes", "projection_width", "grid_features"}
    ),
    "tune": frozenset(
        {"n_trials", "epochs", "sampler", "pruner", "seed", "n_jobs", "study_name", "storage"}
    ),
    "proxy": frozenset(SIDE_AXES),
    "target": frozenset({*SIDE_AXES, "eval_resolution"}),
    "train": frozenset(
        {
            "clip",
            "clip_value",
            "schedule",
            "step_size",
            "gamma",
            "weight_decay",
            "optimizer",
            "loss",
            "data_weight",
            "physics_weight",
            "physics_resolution",
        }
    ),
    "search_space": None,
    "landscape": frozenset(
        {
            "modes",
            "param",
            "values",
            "parametrizations",
            "seeds",
            "epochs",
            "base_modes",
            "name",
            "hparams",
            "device",
            "storage",
            "n_jobs",
        }
    ),
}
#: ``[model]`` keys that shape the sweeps' FNO; the tune-then-transfer workflow has no use for them.
SWEEP_MODEL_KEYS = ("projection_width", "grid_features")


@dataclass
class StudySpec:
    """A parsed study spec; ``raw`` keeps the whole TOML dict."""

    path: Path | None
    problem: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)
    tune: dict[str, Any] = field(default_factory=dict)
    proxy: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    search_space: dict[str, Any] = field(default_factory=dict)
    landscape: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def problem_name(self) -> str:
        """The problem's registry name."""
        return self.problem["name"]

    @property
    def problem_overrides(self) -> dict[str, Any]:
        """Everything in ``[problem]`` except ``name``."""
        return {k: v for k, v in self.problem.items() if k != "name"}

    def workflow_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``tune_then_transfer`` described by this spec."""
        kwargs: dict[str, Any] = {
            "problem": self.problem_name,
            "problem_overrides": self.problem_overrides,
            "search_space": self.search_space or None,
            "train": self.train or None,
        }
        landscape_only = sorted(k for k in SWEEP_MODEL_KEYS if k in self.model)
        if landscape_only:
            raise TransferTuneError(
                f"[model] {', '.join(landscape_only)} shape(s) the FNO of landscape sweeps "
                "only (transfer-tune landscape); tune and transfer use the FNO's defaults: "
                "remove them to run this spec"
            )
        kwargs.update(self.model)
        tune_keys = {"n_trials", "sampler", "pruner", "seed", "n_jobs", "study_name", "storage"}
        kwargs.update({k: v for k, v in self.tune.items() if k in tune_keys})
        if "epochs" in self.tune:
            kwargs["proxy_epochs"] = self.tune["epochs"]
        if "eval_resolution" in self.target:
            kwargs["eval_resolution"] = self.target["eval_resolution"]
        if self.proxy:
            kwargs["proxy"] = dict(self.proxy)
        target = {k: v for k, v in self.target.items() if k in SIDE_AXES}
        if target:
            kwargs["target"] = target
        return kwargs

    def tune_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`transfer_tune.tune` described by this spec:
        the proxy side, filled as :func:`transfer_tune.search.sides.resolve_sides` fills it."""
        kwargs = self.workflow_kwargs()
        shortcuts = {
            k: kwargs.pop(k, None)
            for k in ("proxy_modes", "target_modes", "width", "proxy_epochs", "target_epochs")
        }
        proxy, _ = resolve_sides(kwargs.pop("proxy", None), kwargs.pop("target", None), **shortcuts)
        kwargs.pop("eval_resolution", None)
        kwargs.update(proxy_modes=proxy.modes, width=proxy.width, epochs=proxy.epochs)
        if proxy.resolution is not None:
            kwargs["resolution"] = proxy.resolution
        return kwargs

    def sweep_kwargs(self, storage: Any = None, n_jobs: int = 1) -> dict[str, Any]:
        """Keyword arguments of ``transfer_tune.sweep`` from ``[landscape]``.

        ``values`` stays as written (a list, a ``{low, high, num, log}`` table, or a table of
        those per parameter); :func:`transfer_tune.analysis.landscape.sweep_kwargs_from_spec`
        expands it. ``[train]`` and ``[landscape.hparams]`` (over it) give the fixed
        hyperparameters; ``[model] proxy_modes`` is the default K_base; the storage is
        ``storage``, else ``[landscape] storage``, else ``[tune] storage``; ``n_jobs`` other
        than 1 overrides ``[landscape] n_jobs``.
        """
        land = self.landscape
        if "landscape" not in self.raw:
            raise TransferTuneError(
                f"the spec{self._where} has no [landscape] table; it needs at least "
                "[landscape] modes = [...] and a [problem] name"
            )
        if "modes" not in land:
            raise TransferTuneError(f"[landscape]{self._where} needs modes = [K1, K2, ...]")
        kwargs: dict[str, Any] = {
            "problem": self.problem_name,
            "modes": land["modes"],
            "param": land.get("param", "lr"),
            "values": land.get("values"),
            "problem_overrides": self.problem_overrides,
            "model_options": {k: self.model[k] for k in SWEEP_MODEL_KEYS if k in self.model},
        }
        kwargs.update({k: self.model[k] for k in ("width", "n_layers") if k in self.model})
        if "proxy_modes" in self.model:
            kwargs["base_modes"] = self.model["proxy_modes"]
        for key in ("parametrizations", "seeds", "epochs", "base_modes", "device"):
            if key in land:
                kwargs[key] = land[key]
        if "name" in land:
            kwargs["sweep_name"] = land["name"]
        hparams = land.get("hparams") or {}
        if not isinstance(hparams, dict):
            raise TransferTuneError(f"[landscape.hparams]{self._where} must be a table")
        fixed = {**self.train, **hparams}
        if fixed:
            kwargs["hparams"] = fixed
        if storage is None:
            storage = land.get("storage", self.tune.get("storage"))
        kwargs["storage"] = storage
        kwargs["n_jobs"] = n_jobs if n_jobs != 1 else land.get("n_jobs", 1)
        return kwargs

    @property
    def _where(self) -> str:
        return f" in {self.path}" if self.path else ""


def parse_spec(data: dict[str, Any], path: Path | None = None) -> StudySpec:
    """Validate a spec dict (as read from TOML) and return a :class:`StudySpec`."""
    where = f" in {path}" if path else ""
    if not isinstance(data, dict):
        raise TransferTuneError(
            f"a spec must be a table of tables ([problem], [model], ...){where}, got {data!r}"
        )
    unknown = sorted(map(str, set(data) - set(TABLES)))
    if unknown:
        raise TransferTuneError(
            f"unknown table(s) {unknown}{where}; valid tables: {', '.join(TABLES)}"
        )
    for table, keys in TABLES.items():
        value = data.get(table, {})
        if not isinstance(value, dict):
            raise TransferTuneError(f"[{table}]{where} must be a table, got {value!r}")
        if keys is not None:
            bad = sorted(map(str, set(value) - keys))
            if bad:
                raise TransferTuneError(
                    f"unknown key(s) {bad} in [{table}]{where}; valid: {', '.join(sorted(keys))}"
                )
    problem = data.get("problem")
    if not problem or not isinstance(problem.get("name"), str):
        raise TransferTuneError(f'a spec needs [problem] with name = "burgers" (or ...){where}')
    _check_names(data, where)
    return StudySpec(
        path=path,
        problem=dict(problem),
        **{t: dict(data.get(t, {})) for t in TABLES if t != "problem"},
        raw=data,
    )


def _check_names(data: dict[str, Any], where: str) -> None:
    """``[tune] study_name`` and ``[landscape] name``, checked as every study name is."""
    from transfer_tune.search.storage import check_study_name

    for table, key in (("tune", "study_name"), ("landscape", "name")):
        if key in data.get(table, {}):
            try:
                check_study_name(data[table][key], f"[{table}] {key}")
            except TransferTuneError as exc:
                raise TransferTuneError(f"{exc}{where}") from None


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study spec TOML file.

    Raises
    ------
    TransferTuneError
        When the file is missing, is not valid TOML, or has unknown tables or keys.
    """
    path = Path(path)
    if not path.is_file():
        raise TransferTuneError(f"study spec {path} not found (try studies/burgers.toml)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TransferTuneError(f"{path} is not valid TOML: {exc}") from exc
    return parse_spec(resolve_paths(data, path.parent), path)


#: ``[problem]`` keys that name data files: relative ones are relative to the spec's folder.
PATH_KEYS = ("path", "test_path", "fine_test_path")


def resolve_paths(data: Any, folder: str | Path) -> Any:
    """``data`` with the relative ``[problem]`` file paths (:data:`PATH_KEYS`) made absolute
    against ``folder`` (the spec file's folder), so a spec runs the same from any directory.

    ``~`` is expanded; absolute paths and anything that is not a string are left alone.
    """
    if not isinstance(data, dict) or not isinstance(data.get("problem"), dict):
        return data
    problem = dict(data["problem"])
    for key in PATH_KEYS:
        value = problem.get(key)
        if isinstance(value, str) and value:
            p = Path(value).expanduser()
            full = p if p.is_absolute() else (Path(folder) / p).absolute()
            problem[key] = os.path.normpath(full)
    return {**data, "problem": problem}
