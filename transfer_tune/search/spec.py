"""Study specs: the TOML files under ``studies/`` that describe a tune-then-transfer run.

A spec has these tables (all optional except ``[problem]``)::

    [problem]        # name + any pdes.get_problem override (resolution, n_train, nu, ...)
    name = "burgers"
    [model]          # width, n_layers, proxy_modes, target_modes
    [tune]           # n_trials, epochs, sampler, pruner, seed, n_jobs, study_name, storage
    [target]         # epochs, eval_resolution
    [train]          # fixed training settings: clip, clip_value, schedule, weight_decay, ...
    [search_space]   # see transfer_tune.search.search_space
    [landscape]      # read by transfer_tune.analysis.landscape
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transfer_tune.errors import TransferTuneError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_TABLES = {
    "problem": None,
    "model": {"width", "n_layers", "proxy_modes", "target_modes"},
    "tune": {"n_trials", "epochs", "sampler", "pruner", "seed", "n_jobs", "study_name", "storage"},
    "target": {"epochs", "eval_resolution"},
    "train": {"clip", "clip_value", "schedule", "step_size", "gamma", "weight_decay"},
    "search_space": None,
    "landscape": None,
}


@dataclass
class StudySpec:
    """A parsed study spec; ``raw`` keeps the whole TOML dict."""

    path: Path | None
    problem: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)
    tune: dict[str, Any] = field(default_factory=dict)
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
        kwargs.update(self.model)
        tune_keys = {"n_trials", "sampler", "pruner", "seed", "n_jobs", "study_name", "storage"}
        kwargs.update({k: v for k, v in self.tune.items() if k in tune_keys})
        if "epochs" in self.tune:
            kwargs["proxy_epochs"] = self.tune["epochs"]
        if "epochs" in self.target:
            kwargs["target_epochs"] = self.target["epochs"]
        if "eval_resolution" in self.target:
            kwargs["eval_resolution"] = self.target["eval_resolution"]
        return kwargs


def parse_spec(data: dict[str, Any], path: Path | None = None) -> StudySpec:
    """Validate a spec dict (as read from TOML) and return a :class:`StudySpec`."""
    where = f" in {path}" if path else ""
    if not isinstance(data, dict):
        raise TransferTuneError(
            f"a spec must be a table of tables ([problem], [model], ...){where}, got {data!r}"
        )
    unknown = sorted(map(str, set(data) - set(_TABLES)))
    if unknown:
        raise TransferTuneError(
            f"unknown table(s) {unknown}{where}; valid tables: {', '.join(_TABLES)}"
        )
    for table, keys in _TABLES.items():
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
    return StudySpec(
        path=path,
        problem=dict(problem),
        **{t: dict(data.get(t, {})) for t in _TABLES if t != "problem"},
        raw=data,
    )


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
    return parse_spec(data, path)
