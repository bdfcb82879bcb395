"""What a sweep is: the argument checks, and the frozen :class:`SweepConfig` they produce.

:class:`SweepConfig` is the plain-data identity of a sweep (stored, as :meth:`SweepConfig.to_dict`,
in every study of it); :class:`RunOptions` says how this call runs it (storage, workers,
device). Hyperparameter values are checked by :func:`transfer_tune.core.hparams.check_hparam`,
the one home of those rules.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from pdes.budget import MAX_RUNS
from pdes.checks import as_float, as_int, as_stored
from transfer_tune.analysis.landscape.data import SweepData
from transfer_tune.analysis.landscape.results import grid_key
from transfer_tune.core.hparams import HParams, check_hparam
from transfer_tune.core.model import FNO, check_modes
from transfer_tune.core.parametrization import KINDS, get_parametrization
from transfer_tune.errors import TransferTuneError

#: Hyperparameters a sweep can vary, and whether they are swept on a log scale.
#: ``spectral_lr`` is the base rate of the spectral weights R alone (an "R-only" sweep): R's
#: Adam rate is ``spectral_lr`` times R's multiplier from the parametrization table, while
#: every other group keeps ``lr`` (set it in ``hparams``, e.g. at the K_base optimum).
SWEEPABLE: dict[str, bool] = {
    "lr": True,
    "spectral_lr": True,
    "batch_size": True,
    "beta1": False,
    "beta2": False,
    "weight_decay": True,
    "physics_weight": True,
}

#: Default grids: learning rates 2^-13 .. 2^-5 in steps of 2^(1/2) (DESIGN.md §2 asks for
#: 2^(1/2) spacing or finer to resolve SP's drift).
DEFAULT_VALUES: dict[str, list[float]] = {
    "lr": [2.0 ** (k / 2) for k in range(-26, -9)],
    "spectral_lr": [2.0 ** (k / 2) for k in range(-26, -9)],
    "batch_size": [4, 8, 16, 32, 64],
    "beta1": [0.5, 0.7, 0.8, 0.9, 0.95, 0.99],
    "beta2": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999],
    "weight_decay": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2],
    "physics_weight": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
}

#: Swept names that are not :class:`HParams` fields, and the field whose rules they follow.
HPARAM_OF: dict[str, str] = {"spectral_lr": "lr"}

#: Study user attribute ``kind`` of landscape studies.
KIND = "landscape"
#: Keys of the sweep configuration that must agree when a sweep is resumed or extended.
IDENTITY_KEYS = (
    "params",
    "values",
    "seeds",
    "epochs",
    "base_modes",
    "width",
    "n_layers",
    "model_options",
    "hparams",
    "problem",
)

StudyCallback = Callable[[optuna.Study, FrozenTrial], None]


def study_name(sweep_name: str, parametrization: str, modes: int) -> str:
    """Name of the study of one (parametrization, K) of a sweep."""
    return f"{sweep_name}/{parametrization}/K{modes}"


@dataclass(frozen=True)
class SweepConfig:
    """The validated identity of a sweep (what its studies store, as :meth:`to_dict`)."""

    name: str
    params: tuple[str, ...]
    values: dict[str, list]
    seeds: tuple[int, ...]
    modes: tuple[int, ...]
    parametrizations: tuple[str, ...]
    base_modes: int
    epochs: int
    width: int
    n_layers: int
    model_options: dict[str, Any]
    hparams: dict[str, Any]
    problem: dict[str, Any]
    dim: int
    in_channels: int
    out_channels: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data, exactly as the storage gives it back."""
        return as_stored({k: getattr(self, k) for k in self.__dataclass_fields__})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepConfig:
        """The config stored by :meth:`to_dict` (lists become tuples)."""
        data = as_stored(dict(data))
        tuples = ("params", "seeds", "modes", "parametrizations")
        return cls(
            **{k: tuple(data[k]) if k in tuples else data[k] for k in cls.__dataclass_fields__}
        )

    def identity(self) -> dict[str, Any]:
        """The settings that must agree to resume or extend the sweep."""
        return identity(self.to_dict())

    def grid_space(self) -> dict[str, list]:
        """The ``GridSampler`` search space: every swept value, and the seeds."""
        space = {p: list(self.values[p]) for p in self.params}
        space["seed"] = list(self.seeds)
        return space

    @property
    def n_grid(self) -> int:
        """Runs per study (grid points x seeds)."""
        return math.prod(len(v) for v in self.grid_space().values())

    def model_kwargs(self, modes: int) -> dict[str, Any]:
        """Arguments of the FNO of one K."""
        return {
            "dim": self.dim,
            "modes": modes,
            "width": self.width,
            "n_layers": self.n_layers,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            **self.model_options,
        }


@dataclass(frozen=True)
class RunOptions:
    """How one call runs a sweep (not part of its identity)."""

    url: str
    n_jobs: int = 1
    device: str = "auto"
    progress: bool = True
    callbacks: tuple[StudyCallback, ...] = field(default_factory=tuple)
    reset_running: bool = False


def identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`IDENTITY_KEYS` of a stored config."""
    return {k: config.get(k) for k in IDENTITY_KEYS}


def as_params(param: str | Sequence[str]) -> list[str]:
    """One or two distinct sweepable hyperparameter names."""
    params = [param] if isinstance(param, str) else list(param)
    if not params or len(params) > 2:
        raise TransferTuneError(
            f"sweep one or two hyperparameters, got {params!r}; e.g. param='lr' or "
            "param=('lr', 'batch_size')"
        )
    for p in params:
        if p not in SWEEPABLE:
            raise TransferTuneError(
                f"cannot sweep {p!r}; sweepable hyperparameters: {', '.join(SWEEPABLE)}"
            )
    if len(set(params)) != len(params):
        raise TransferTuneError(f"the swept hyperparameters repeat: {params}")
    return params


def check_values(param: str, values: Any) -> list[float]:
    """Grid values of ``param``: valid hyperparameter values, > 0 on a log scale, sorted."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise TransferTuneError(f"values of {param!r} must be a list of numbers, got {values!r}")
    out: list[Any] = []
    for v in values:
        if isinstance(v, np.generic):
            v = v.item()
        v = check_hparam(HPARAM_OF.get(param, param), v)
        if SWEEPABLE[param] and not v > 0:
            raise TransferTuneError(f"{param} is swept on a log scale: values must be > 0")
        out.append(v)
    if not out:
        raise TransferTuneError(f"no values given for {param!r}")
    if len({grid_key(v) for v in out}) != len(out):
        raise TransferTuneError(f"values of {param!r} repeat: {out}")
    return sorted(out)


def values_from_spec(param: str, spec: Any) -> list[float]:
    """Grid values from a spec: a list, or ``{low, high, num, log = true}``.

    ``log`` defaults to true for ``lr``, ``batch_size`` and ``weight_decay`` (log-spaced, like
    ``numpy.geomspace``) and false for the betas; batch sizes are rounded to integers.
    """
    if not isinstance(spec, Mapping):
        return check_values(param, spec)
    unknown = sorted(set(spec) - {"low", "high", "num", "log"})
    missing = sorted({"low", "high", "num"} - set(spec))
    if unknown or missing:
        raise TransferTuneError(
            f"values of {param!r}: a table needs low, high and num (and optionally log); "
            f"{'unknown ' + str(unknown) if unknown else 'missing ' + str(missing)}"
        )
    num = as_int(spec["num"], f"values of {param!r}: num", maximum=MAX_RUNS)  # runs, counted
    log = bool(spec.get("log", SWEEPABLE.get(param, True)))
    low = as_float(spec["low"], f"values of {param!r}: low")
    high = as_float(spec["high"], f"values of {param!r}: high")
    if not low <= high:
        raise TransferTuneError(f"values of {param!r}: low must be <= high")
    if log and not low > 0:
        raise TransferTuneError(f"values of {param!r}: log spacing needs low > 0")
    grid = np.geomspace(low, high, num) if log else np.linspace(low, high, num)
    if param == "batch_size":
        return check_values(param, sorted({int(round(v)) for v in grid}))
    return check_values(param, [float(v) for v in grid])


def as_values(params: list[str], values: Any) -> dict[str, list[float]]:
    """The grid of every swept parameter (:data:`DEFAULT_VALUES` where none is given)."""
    if values is None:
        return {p: list(DEFAULT_VALUES[p]) for p in params}
    if isinstance(values, Mapping):
        unknown = sorted(set(values) - set(params))
        if unknown:
            raise TransferTuneError(
                f"values given for {unknown}, which are not swept (param={params})"
            )
        return {
            p: check_values(p, values[p]) if p in values else list(DEFAULT_VALUES[p])
            for p in params
        }
    if len(params) != 1:
        raise TransferTuneError(
            "a two-parameter sweep takes values as a mapping, e.g. "
            "values={'lr': [...], 'batch_size': [...]}"
        )
    return {params[0]: check_values(params[0], values)}


def as_int_list(name: str, values: Any, minimum: int) -> list[int]:
    """Distinct integers >= ``minimum`` (a single integer is a list of one)."""
    if isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        values = [values]
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise TransferTuneError(f"{name} must be a list of integers, got {values!r}")
    items = [as_int(v, f"each of {name}", minimum=minimum) for v in values]
    if not items:
        raise TransferTuneError(f"{name} is empty")
    if len(set(items)) != len(items):
        raise TransferTuneError(f"{name} repeat: {items}")
    return items


def as_kinds(parametrizations: Sequence[str]) -> list[str]:
    """Distinct parametrization kinds (``"mup"``, ``"sp"``)."""
    if isinstance(parametrizations, str):
        parametrizations = [parametrizations]
    kinds = [str(k).lower() for k in parametrizations]
    for k in kinds:
        if k not in KINDS:
            raise TransferTuneError(
                f"unknown parametrization {k!r}; choose among {', '.join(KINDS)}"
            )
    if not kinds or len(set(kinds)) != len(kinds):
        raise TransferTuneError(f"parametrizations must be distinct and non-empty: {kinds}")
    return kinds


def check_run(storage: str | os.PathLike | None, n_jobs: Any, **options: Any) -> RunOptions:
    """The run options, checked (``n_jobs``: a positive integer, or -1 for every core)."""
    from transfer_tune.search.storage import normalize_url

    if as_int(n_jobs, "n_jobs", minimum=-1) == 0:
        raise TransferTuneError(f"n_jobs must be a positive integer (or -1), got {n_jobs!r}")
    options["callbacks"] = tuple(options.get("callbacks", ()))
    return RunOptions(url=normalize_url(storage), n_jobs=int(n_jobs), **options)


@dataclass(frozen=True)
class SweepArgs:
    """The sweep's arguments checked before any data is loaded."""

    params: list[str]
    grid: dict[str, list[float]]
    kinds: list[str]
    modes: list[int]
    seeds: list[int]
    epochs: int
    base_modes: int
    hparams: dict[str, Any]
    model_options: dict[str, Any]


def check_args(
    param: str | Sequence[str],
    values: Any,
    parametrizations: Sequence[str],
    seeds: Sequence[int],
    modes: Sequence[int],
    epochs: int,
    base_modes: int | None,
    hparams: HParams | Mapping[str, Any] | None,
    model_options: Mapping[str, Any] | None,
) -> SweepArgs:
    """Check everything that needs no data (so mistakes surface before any is generated)."""
    params = as_params(param)
    modes_list = sorted(as_int_list("modes", modes, 2))
    base = min(modes_list) if base_modes is None else base_modes
    get_parametrization("mup", base_modes=base)  # validates K_base
    if isinstance(hparams, HParams):
        fixed = hparams.to_dict()
    else:
        fixed = HParams.from_dict(dict(hparams or {})).to_dict()
    options = dict(model_options or {})
    forbidden = sorted(set(options) & {"dim", "modes", "width", "n_layers", "in_channels"})
    if forbidden:
        raise TransferTuneError(f"model_options may not set {forbidden}; use the arguments")
    return SweepArgs(
        params=params,
        grid=as_values(params, values),
        kinds=as_kinds(parametrizations),
        modes=modes_list,
        seeds=as_int_list("seeds", seeds, 0),
        epochs=as_int(epochs, "epochs"),
        base_modes=base,
        hparams=fixed,
        model_options=options,
    )


def build_config(
    args: SweepArgs, data: SweepData, width: int, n_layers: int, sweep_name: str | None
) -> SweepConfig:
    """The sweep's config, once the data is there (K and batch sizes checked against it)."""
    check_modes(max(args.modes), data.grid)
    n_train = data.train.n_train
    hparams = dict(args.hparams)
    if "batch_size" in args.grid and max(args.grid["batch_size"]) > n_train:
        raise TransferTuneError(
            f"batch sizes up to {max(args.grid['batch_size'])} exceed the training set "
            f"({n_train} samples); use batch sizes <= {n_train}"
        )
    if "batch_size" not in args.grid and hparams["batch_size"] > n_train:
        hparams["batch_size"] = n_train  # recorded in the config
    name = sweep_name or f"landscape-{data.problem.get('name', 'problem')}-{'-'.join(args.params)}"
    config = SweepConfig.from_dict(
        {
            "name": name,
            "params": args.params,
            "values": args.grid,
            "seeds": args.seeds,
            "modes": args.modes,
            "parametrizations": args.kinds,
            "base_modes": args.base_modes,
            "epochs": args.epochs,
            "width": width,
            "n_layers": n_layers,
            "model_options": args.model_options,
            "hparams": hparams,
            "problem": data.problem,
            "dim": data.dim,
            "in_channels": data.in_channels,
            "out_channels": data.out_channels,
        }
    )
    FNO(**config.model_kwargs(args.modes[0]))  # validates width, depth and options
    return config
