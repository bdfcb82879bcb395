"""Loss landscapes: sweeps over one or two hyperparameters for several K, under µP and SP.

A sweep trains the same FNO (width and depth fixed) for every combination of

* parametrization (``"mup"``, ``"sp"``, both relative to the same ``K_base``),
* K (``modes``),
* value(s) of the swept hyperparameter(s) (``lr``, ``batch_size``, ``beta1``, ``beta2``,
  ``weight_decay``), and
* seed (model initialisation and batch order),

and records the final training, validation and test losses. Every (parametrization, K) is
one Optuna study named ``"{sweep_name}/{parametrization}/K{modes}"`` driven by a
:class:`optuna.samplers.GridSampler` over ``{values x seeds}``, all in the same storage, so a
sweep is

* **visible** in optuna-dashboard (one study per curve; per-epoch validation losses are the
  trials' intermediate values, the final test loss their value);
* **resumable**: re-running the same call skips the grid points already finished. Trials left
  RUNNING by a killed run (their ``worker`` user attribute names the host and process id) are
  failed when the process is gone, and every failed grid point is queued again;
* **parallel**: ``n_jobs`` worker processes (joblib) share the storage; use a journal file
  (``journal:PATH``) or PostgreSQL for many workers, SQLite for a few.

A diverged run (NaN/inf or exploding loss, :class:`~transfer_tune.errors.DivergenceError`) is
a result, not an error: its trial is PRUNED with ``diverged=True`` and the reason in its user
attributes, and its losses are ``inf`` in the tidy result.

The tidy result (:class:`SweepResult`, one :class:`LandscapeRow` per parametrization, K,
value(s) and seed) is rebuilt from the storage alone by :func:`load_sweep`.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.samplers import GridSampler
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from transfer_tune.core.model import FNO, check_modes
from transfer_tune.core.parametrization import KINDS, get_parametrization
from transfer_tune.core.train import HParams, TrainData, evaluate, fit, resolve_device
from transfer_tune.errors import DivergenceError, TransferTuneError
from transfer_tune.search.storage import get_storage, normalize_url

__all__ = [
    "DEFAULT_VALUES",
    "SWEEPABLE",
    "LandscapeRow",
    "SweepResult",
    "list_sweeps",
    "load_sweep",
    "study_name",
    "sweep",
    "sweep_from_spec",
    "sweep_kwargs_from_spec",
    "values_from_spec",
]

#: Hyperparameters a sweep can vary, and whether they are swept on a log scale.
SWEEPABLE: dict[str, bool] = {
    "lr": True,
    "batch_size": True,
    "beta1": False,
    "beta2": False,
    "weight_decay": True,
}

#: Default grids: learning rates 2^-13 .. 2^-5 in steps of 2^(1/2) (DESIGN.md §2 asks for
#: 2^(1/2) spacing or finer to resolve SP's drift).
DEFAULT_VALUES: dict[str, list[float]] = {
    "lr": [2.0 ** (k / 2) for k in range(-26, -9)],
    "batch_size": [4, 8, 16, 32, 64],
    "beta1": [0.5, 0.7, 0.8, 0.9, 0.95, 0.99],
    "beta2": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999],
    "weight_decay": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2],
}

#: Study user attribute ``kind`` of landscape studies.
KIND = "landscape"
#: Keys of the sweep configuration that must agree when a sweep is resumed or extended.
_IDENTITY_KEYS = (
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
_GRID_SEED = 0  # every worker builds the same GridSampler, so grid ids mean the same points

StudyCallback = Callable[[optuna.Study, FrozenTrial], None]


# ---------------------------------------------------------------------------------------------
# The tidy result
# ---------------------------------------------------------------------------------------------
@dataclass
class LandscapeRow:
    """One finished training run of a sweep.

    Attributes
    ----------
    parametrization : str
        ``"mup"`` or ``"sp"``.
    modes : int
        K of the model.
    point : dict
        Value of every swept hyperparameter, e.g. ``{"lr": 0.001}``.
    seed : int
        Seed of the initialisation and of the batch order.
    train_loss, test_loss : float
        Final epoch's mean training loss and the final test loss (relative L2); ``inf`` when
        the run diverged.
    val_loss : float or None
        Final validation loss (``None`` without a validation split; ``inf`` when diverged).
    diverged : bool
        The run produced a NaN/inf or exploding loss.
    trial_number : int
        Number of the Optuna trial that holds the run.
    seconds : float
        Wall-clock seconds of the run.
    """

    parametrization: str
    modes: int
    point: dict[str, float]
    seed: int
    train_loss: float
    val_loss: float | None
    test_loss: float
    diverged: bool
    trial_number: int
    seconds: float

    def to_record(self) -> dict[str, Any]:
        """A flat dict: the swept hyperparameters become columns of their own."""
        record: dict[str, Any] = {"parametrization": self.parametrization, "modes": self.modes}
        record.update(self.point)
        record.update(
            seed=self.seed,
            train_loss=self.train_loss,
            val_loss=self.val_loss,
            test_loss=self.test_loss,
            diverged=self.diverged,
            trial_number=self.trial_number,
            seconds=self.seconds,
        )
        return record


@dataclass
class SweepResult:
    """The tidy result of a sweep: its configuration and one row per finished run.

    Attributes
    ----------
    name : str
        Sweep name (prefix of its studies).
    config : dict
        Plain-data configuration (params, values, seeds, modes, parametrizations, base_modes,
        epochs, width, n_layers, hparams, problem, ...), as stored in the studies.
    rows : list of LandscapeRow
        Sorted by parametrization (in ``config["parametrizations"]`` order), K, grid point
        (in the order of ``config["values"]``) and seed.
    storage : str or None
        Canonical URL of the storage that holds the studies.
    """

    name: str
    config: dict[str, Any]
    rows: list[LandscapeRow] = field(default_factory=list)
    storage: str | None = None

    # -- the configuration -------------------------------------------------------------------
    @property
    def params(self) -> list[str]:
        """Swept hyperparameters, e.g. ``["lr"]`` or ``["lr", "batch_size"]``."""
        return list(self.config["params"])

    @property
    def values(self) -> dict[str, list[float]]:
        """Grid values of every swept hyperparameter."""
        return {p: list(v) for p, v in self.config["values"].items()}

    @property
    def seeds(self) -> list[int]:
        """Seeds of the sweep."""
        return list(self.config["seeds"])

    @property
    def modes(self) -> list[int]:
        """The K values, ascending."""
        return sorted(self.config["modes"])

    @property
    def parametrizations(self) -> list[str]:
        """Parametrization kinds, in sweep order."""
        return list(self.config["parametrizations"])

    @property
    def base_modes(self) -> int:
        """K_base of the parametrizations."""
        return int(self.config["base_modes"])

    @property
    def points(self) -> list[dict[str, float]]:
        """Every grid point (without the seed), in grid order (the last parameter fastest)."""
        names = self.params
        return [
            dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(self.config["values"][p] for p in names))
        ]

    @property
    def n_expected(self) -> int:
        """Number of runs of a complete sweep."""
        return len(self.parametrizations) * len(self.modes) * len(self.points) * len(self.seeds)

    @property
    def complete(self) -> bool:
        """Every (parametrization, K, point, seed) has a finished run."""
        return len(self.rows) == self.n_expected

    # -- the rows ----------------------------------------------------------------------------
    def select(
        self, parametrization: str | None = None, modes: int | None = None
    ) -> list[LandscapeRow]:
        """Rows of one parametrization and/or one K."""
        return [
            r
            for r in self.rows
            if (parametrization is None or r.parametrization == parametrization)
            and (modes is None or r.modes == modes)
        ]

    def loss_array(self, parametrization: str, modes: int, loss: str = "test_loss") -> np.ndarray:
        """Losses of one (parametrization, K) as an array ``(*n_values per param, n_seeds)``.

        Missing runs are NaN; diverged runs are ``inf``.
        """
        if loss not in ("train_loss", "val_loss", "test_loss"):
            raise TransferTuneError(
                f"unknown loss {loss!r}; use 'train_loss', 'val_loss' or 'test_loss'"
            )
        names = self.params
        index = [{_key(v): i for i, v in enumerate(self.config["values"][p])} for p in names]
        seeds = {s: i for i, s in enumerate(self.seeds)}
        shape = [len(self.config["values"][p]) for p in names] + [len(seeds)]
        out = np.full(shape, np.nan)
        for row in self.select(parametrization, modes):
            value = getattr(row, loss)
            pos = tuple(idx[_key(row.point[p])] for idx, p in zip(index, names, strict=True))
            out[pos + (seeds[row.seed],)] = np.nan if value is None else value
        return out

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per run (what ``pandas.DataFrame`` takes, if you have pandas)."""
        return [row.to_record() for row in self.rows]

    def summary(self) -> str:
        """One line: sweep name, grid, and how much of it is finished."""
        grid = " x ".join(f"{len(v)} {p}" for p, v in self.values.items())
        return (
            f"sweep {self.name!r}: {', '.join(self.parametrizations)} x K {self.modes} x {grid} "
            f"x {len(self.seeds)} seed(s), {self.config['epochs']} epoch(s): "
            f"{len(self.rows)}/{self.n_expected} runs finished, "
            f"{sum(r.diverged for r in self.rows)} diverged"
        )


def _key(value: float) -> float:
    """Dictionary key for a grid value (ints and floats of equal value collide on purpose)."""
    return float(value)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
@dataclass
class _Data:
    train: TrainData
    x_test: torch.Tensor
    y_test: torch.Tensor
    dim: int
    in_channels: int
    out_channels: int
    problem: dict[str, Any]


def _load_data(
    problem: Any,
    test_data: tuple[torch.Tensor, torch.Tensor] | None,
    problem_overrides: Mapping[str, Any] | None,
) -> _Data:
    if isinstance(problem, TrainData):
        if problem_overrides:
            raise TransferTuneError("problem_overrides apply to a problem name, not to tensors")
        if test_data is None:
            if problem.x_val is None:
                raise TransferTuneError(
                    "give test_data=(x_test, y_test) or validation tensors in the TrainData: "
                    "a sweep reports a final test loss"
                )
            x_test, y_test = problem.x_val, problem.y_val
        else:
            x_test, y_test = test_data
        x = problem.x_train
        config = {
            "name": "tensors",
            "n_train": int(x.shape[0]),
            "n_val": int(problem.x_val.shape[0]) if problem.x_val is not None else 0,
            "n_test": int(x_test.shape[0]),
            "grid": list(x.shape[2:]),
        }
        TrainData(x, problem.y_train, x_test, y_test)  # validates the test tensors
        return _Data(
            train=problem,
            x_test=x_test,
            y_test=y_test,
            dim=x.dim() - 2,
            in_channels=int(x.shape[1]),
            out_channels=int(problem.y_train.shape[1]),
            problem=config,
        )
    if isinstance(problem, str):
        from pdes import get_problem

        problem = get_problem(problem, **dict(problem_overrides or {}))
    elif problem_overrides:
        raise TransferTuneError("problem_overrides apply to a problem name, not to a Problem")
    if not (hasattr(problem, "dataset") and hasattr(problem, "config")):
        raise TransferTuneError(
            f"problem must be a problem name, a pdes.Problem or a TrainData, got "
            f"{type(problem).__name__}"
        )
    if test_data is not None:
        raise TransferTuneError("test_data goes with TrainData; a Problem has its own test split")
    x, y = problem.dataset("train")
    xv, yv = problem.dataset("val")
    xt, yt = problem.dataset("test")
    return _Data(
        train=TrainData(x, y, xv, yv),
        x_test=xt,
        y_test=yt,
        dim=int(problem.dim),
        in_channels=int(problem.in_channels),
        out_channels=int(problem.out_channels),
        problem=dict(problem.config()),
    )


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
def study_name(sweep_name: str, parametrization: str, modes: int) -> str:
    """Name of the study of one (parametrization, K) of a sweep."""
    return f"{sweep_name}/{parametrization}/K{modes}"


def _as_params(param: str | Sequence[str]) -> list[str]:
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


def _check_values(param: str, values: Any) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TransferTuneError(f"values of {param!r} must be a list of numbers, got {values!r}")
    out: list[Any] = []
    for v in values:
        if isinstance(v, np.generic):
            v = v.item()
        if param == "batch_size":
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TransferTuneError(f"batch sizes must be integers, got {v!r}")
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TransferTuneError(f"values of {param!r} must be numbers, got {v!r}")
        else:
            v = float(v)
        HParams(**{param: v})  # range checks with the usual messages
        if SWEEPABLE[param] and not v > 0:
            raise TransferTuneError(f"{param} is swept on a log scale: values must be > 0")
        out.append(v)
    if not out:
        raise TransferTuneError(f"no values given for {param!r}")
    if len({_key(v) for v in out}) != len(out):
        raise TransferTuneError(f"values of {param!r} repeat: {out}")
    return sorted(out)


def _as_values(params: list[str], values: Any) -> dict[str, list[float]]:
    if values is None:
        return {p: list(DEFAULT_VALUES[p]) for p in params}
    if isinstance(values, Mapping):
        unknown = sorted(set(values) - set(params))
        if unknown:
            raise TransferTuneError(
                f"values given for {unknown}, which are not swept (param={params})"
            )
        return {
            p: _check_values(p, values[p]) if p in values else list(DEFAULT_VALUES[p])
            for p in params
        }
    if len(params) != 1:
        raise TransferTuneError(
            "a two-parameter sweep takes values as a mapping, e.g. "
            "values={'lr': [...], 'batch_size': [...]}"
        )
    return {params[0]: _check_values(params[0], values)}


def _as_int_list(name: str, values: Any, minimum: int) -> list[int]:
    if isinstance(values, int) and not isinstance(values, bool):
        values = [values]
    try:
        items = list(values)
    except TypeError:
        raise TransferTuneError(f"{name} must be a list of integers, got {values!r}") from None
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise TransferTuneError(f"{name} must be integers >= {minimum}, got {v!r}")
    if not items:
        raise TransferTuneError(f"{name} is empty")
    items = [int(v) for v in items]
    if len(set(items)) != len(items):
        raise TransferTuneError(f"{name} repeat: {items}")
    return items


def _search_space(config: Mapping[str, Any]) -> dict[str, list]:
    space = {p: list(config["values"][p]) for p in config["params"]}
    space["seed"] = list(config["seeds"])
    return space


def _suggest(trial: optuna.Trial, config: Mapping[str, Any]) -> tuple[dict[str, float], int]:
    point: dict[str, float] = {}
    for p in config["params"]:
        values = config["values"][p]
        low, high = min(values), max(values)
        if p == "batch_size":
            point[p] = trial.suggest_int(p, int(low), int(high), log=True)
        else:
            point[p] = trial.suggest_float(p, float(low), float(high), log=SWEEPABLE[p])
    seeds = config["seeds"]
    seed = trial.suggest_int("seed", min(seeds), max(seeds))
    return point, seed


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------
def _worker_tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_gone(tag: Any) -> bool:
    """Whether the worker ``host:pid`` that left a RUNNING trial is known to be dead."""
    if not isinstance(tag, str) or ":" not in tag:
        return False
    host, _, pid_text = tag.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine: only reset_running=True can tell
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:  # a killed child nobody has waited for yet is a zombie: dead for our purpose
        return stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def _finished_ok(trial: FrozenTrial) -> bool:
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) and (
        trial.state == TrialState.COMPLETE or "diverged" in trial.user_attrs
    )


def _prepare_study(study: optuna.Study, reset_running: bool) -> int:
    """Fail stale RUNNING trials and queue again every failed grid point; return #queued."""
    storage = study._storage
    trials = storage.get_all_trials(study._study_id, deepcopy=False)
    for t in trials:
        if t.state == TrialState.RUNNING and (
            reset_running or _process_gone(t.user_attrs.get("worker"))
        ):
            storage.set_trial_user_attr(
                t._trial_id, "fail_reason", "its worker stopped (found RUNNING on resume)"
            )
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    trials = storage.get_all_trials(study._study_id, deepcopy=False)
    done = {t.system_attrs.get("grid_id") for t in trials if _finished_ok(t)}
    busy = {
        t.system_attrs.get("grid_id")
        for t in trials
        if t.state in (TrialState.WAITING, TrialState.RUNNING)
    }
    queued = 0
    for t in trials:
        grid_id = t.system_attrs.get("grid_id")
        if grid_id is None or grid_id in done or grid_id in busy:
            continue
        if not t.state.is_finished():
            continue
        # a FAIL trial (or a PRUNED one without a divergence record): run its point again
        system_attrs = {k: v for k, v in t.system_attrs.items() if k in ("grid_id", "search_space")}
        system_attrs["retry_of"] = t.number
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params=t.params,
                distributions=t.distributions,
                system_attrs=system_attrs,
            )
        )
        busy.add(grid_id)
        queued += 1
    return queued


def _has_work(study: optuna.Study, n_grid: int) -> bool:
    trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials):
        return True
    started = {
        t.system_attrs.get("grid_id")
        for t in trials
        if t.state.is_finished() or t.state == TrialState.RUNNING
    }
    return any(g not in started for g in range(n_grid))


def _row_from_trial(trial: FrozenTrial, parametrization: str, modes: int, params: list[str]):
    attrs = trial.user_attrs
    diverged = bool(attrs.get("diverged", False))
    return LandscapeRow(
        parametrization=parametrization,
        modes=int(modes),
        point={p: trial.params[p] for p in params},
        seed=int(trial.params["seed"]),
        train_loss=float(attrs["train_loss"]),
        val_loss=None if attrs.get("val_loss") is None else float(attrs["val_loss"]),
        test_loss=float(attrs["test_loss"]),
        diverged=diverged,
        trial_number=trial.number,
        seconds=float(attrs["seconds"]),
    )


class _Objective:
    """Train one (point, seed) of one (parametrization, K); collect the rows it produced."""

    def __init__(self, config: dict[str, Any], kind: str, modes: int, data: _Data, device: str):
        self.config = config
        self.kind = kind
        self.modes = modes
        self.data = data
        self.device = resolve_device(device)
        self.parametrization = get_parametrization(kind, base_modes=config["base_modes"])
        self.rows: list[LandscapeRow] = []

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", _worker_tag())
        point, seed = _suggest(trial, self.config)
        hparams = HParams.from_dict({**self.config["hparams"], **point})
        model = FNO(
            dim=self.data.dim,
            modes=self.modes,
            width=self.config["width"],
            n_layers=self.config["n_layers"],
            in_channels=self.data.in_channels,
            out_channels=self.data.out_channels,
            **self.config["model_options"],
        )
        self.parametrization.initialize(model, generator=torch.Generator().manual_seed(seed))

        def report(record: Any) -> None:
            value = record.val_loss if record.val_loss is not None else record.train_loss
            trial.report(value, record.epoch)

        start = time.perf_counter()
        try:
            result = fit(
                model,
                self.data.train,
                hparams,
                self.config["epochs"],
                callbacks=[report],
                parametrization=self.parametrization,
                seed=seed,
                device=self.device,
            )
            test_loss = evaluate(
                model, self.data.x_test.to(self.device), self.data.y_test.to(self.device)
            )
            if not math.isfinite(test_loss):
                raise DivergenceError(f"test loss became {test_loss}")
        except DivergenceError as exc:
            seconds = time.perf_counter() - start
            inf = math.inf
            val = None if self.data.train.x_val is None else inf
            attrs = {
                "diverged": True,
                "reason": str(exc),
                "train_loss": inf,
                "val_loss": val,
                "test_loss": inf,
                "seconds": seconds,
            }
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            self.rows.append(self._row(trial.number, point, seed, attrs))
            raise optuna.TrialPruned(f"diverged: {exc}") from None
        seconds = time.perf_counter() - start
        attrs = {
            "diverged": False,
            "train_loss": result.train_loss,
            "val_loss": result.val_loss,
            "test_loss": test_loss,
            "seconds": seconds,
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        self.rows.append(self._row(trial.number, point, seed, attrs))
        return test_loss

    def _row(self, number: int, point: dict, seed: int, attrs: dict) -> LandscapeRow:
        return LandscapeRow(
            parametrization=self.kind,
            modes=self.modes,
            point=dict(point),
            seed=seed,
            train_loss=float(attrs["train_loss"]),
            val_loss=None if attrs["val_loss"] is None else float(attrs["val_loss"]),
            test_loss=float(attrs["test_loss"]),
            diverged=bool(attrs["diverged"]),
            trial_number=number,
            seconds=float(attrs["seconds"]),
        )


def _run_unit(
    url: str | BaseStorage,
    name: str,
    config: dict[str, Any],
    kind: str,
    modes: int,
    data: _Data,
    device: str,
    callbacks: Sequence[StudyCallback],
    threads: int | None,
) -> list[LandscapeRow]:
    """Work on one study until no grid point is left unstarted (runs in a worker process)."""
    if threads is not None:
        torch.set_num_threads(threads)
    space = _search_space(config)
    n_grid = math.prod(len(v) for v in space.values())
    study = optuna.load_study(
        study_name=name,
        storage=url if isinstance(url, BaseStorage) else get_storage(url),
        sampler=GridSampler(space, seed=_GRID_SEED),
    )
    objective = _Objective(config, kind, modes, data, device)

    def stop_when_all_started(study: optuna.Study, trial: FrozenTrial) -> None:
        # GridSampler would go on to re-run a point another worker is still running
        if not _has_work(study, n_grid):
            study.stop()

    if _has_work(study, n_grid):
        study.optimize(
            objective,
            n_trials=None,
            callbacks=[stop_when_all_started, *callbacks],
            gc_after_trial=False,
        )
    return objective.rows


def _rows_from_study(study: optuna.Study, kind: str, modes: int, params: list[str]):
    """First finished run of every (point, seed), keyed by grid point and seed."""
    rows: dict[tuple, LandscapeRow] = {}
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if not _finished_ok(t):
            continue
        row = _row_from_trial(t, kind, modes, params)
        rows.setdefault(_row_key(row, params), row)
    return rows


def _row_key(row: LandscapeRow, params: list[str]) -> tuple:
    return tuple(_key(row.point[p]) for p in params) + (row.seed,)


def _sort_rows(rows: Iterable[LandscapeRow], config: Mapping[str, Any]) -> list[LandscapeRow]:
    order = {k: i for i, k in enumerate(config["parametrizations"])}
    params = list(config["params"])
    index = [{_key(v): i for i, v in enumerate(config["values"][p])} for p in params]
    seeds = {s: i for i, s in enumerate(config["seeds"])}

    def key(row: LandscapeRow) -> tuple:
        pos = tuple(idx[_key(row.point[p])] for idx, p in zip(index, params, strict=True))
        return (order[row.parametrization], row.modes, pos, seeds[row.seed], row.trial_number)

    return sorted(rows, key=key)


def _identity(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: config.get(k) for k in _IDENTITY_KEYS}


def _jsonable(value: Any) -> Any:
    """Round-trip through the storage's JSON so comparisons see what storage gives back."""
    import json

    return json.loads(json.dumps(value))


def sweep(
    problem: Any,
    modes: Sequence[int],
    param: str | Sequence[str] = "lr",
    values: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    parametrizations: Sequence[str] = ("mup", "sp"),
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 10,
    storage: str | os.PathLike | None = None,
    n_jobs: int = 1,
    *,
    base_modes: int | None = None,
    width: int = 32,
    n_layers: int = 4,
    hparams: HParams | Mapping[str, Any] | None = None,
    sweep_name: str | None = None,
    test_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    problem_overrides: Mapping[str, Any] | None = None,
    model_options: Mapping[str, Any] | None = None,
    device: str = "auto",
    progress: bool = True,
    callbacks: Sequence[StudyCallback] = (),
    reset_running: bool = False,
) -> SweepResult:
    """Train every (parametrization, K, value(s), seed) and record the final losses.

    Parameters
    ----------
    problem : str, pdes.Problem or TrainData
        A problem name (``get_problem(problem, **problem_overrides)``), a problem, or explicit
        tensors (then ``test_data`` gives the test split; without it the validation split is
        used as the test split).
    modes : sequence of int
        The K values (each >= 2 and fitting the grid).
    param : str or pair of str
        Swept hyperparameter(s): ``"lr"``, ``"batch_size"``, ``"beta1"``, ``"beta2"``,
        ``"weight_decay"``, or two of them (e.g. ``("lr", "batch_size")``).
    values : sequence or mapping, optional
        Grid of the swept hyperparameter (a mapping ``{param: values}`` for two);
        :data:`DEFAULT_VALUES` by default.
    parametrizations : sequence of {"mup", "sp"}
        Parametrizations, all relative to ``base_modes``.
    seeds : sequence of int
        Seeds (initialisation and batch order) of every grid point.
    epochs : int
        Training epochs of every run.
    storage : str or path, optional
        Optuna storage URL (see :mod:`transfer_tune.search.storage`); the default SQLite file if
        ``None``.
    n_jobs : int
        Worker processes sharing the storage (1: run in this process).
    base_modes : int, optional
        K_base of µP (where µP equals SP); ``min(modes)`` by default.
    width, n_layers : int
        Width m and depth of the FNO (fixed while K varies).
    hparams : HParams or mapping, optional
        Values of the hyperparameters that are not swept (``HParams()`` defaults otherwise).
    sweep_name : str, optional
        Prefix of the studies; ``"landscape-{problem}-{params}"`` by default. Re-running with
        the same name resumes the sweep; adding K values or a parametrization extends it.
    test_data : pair of tensors, optional
        ``(x_test, y_test)`` when ``problem`` is a :class:`TrainData`.
    problem_overrides : mapping, optional
        Keyword arguments of ``get_problem`` when ``problem`` is a name.
    model_options : mapping, optional
        Extra :class:`~transfer_tune.core.model.FNO` arguments (``projection_width``,
        ``grid_features``).
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    progress : bool
        Show a progress bar over the runs.
    callbacks : sequence of callables
        Optuna study callbacks ``f(study, frozen_trial)`` called after every run (they must
        be picklable when ``n_jobs > 1``).
    reset_running : bool
        Fail *every* RUNNING trial of the sweep before starting, not only those whose worker
        process is known to be gone on this machine (use after a crash on another machine,
        when no other worker is running).

    Returns
    -------
    SweepResult
        All finished runs of the requested (parametrization, K), including those of earlier
        calls; equal to ``load_sweep(storage, sweep_name, parametrizations, modes)``.

    Raises
    ------
    TransferTuneError
        On a bad argument, or a ``sweep_name`` already used with another configuration.
    """
    params = _as_params(param)
    grid = _as_values(params, values)
    kinds = [str(k).lower() for k in parametrizations]
    for k in kinds:
        if k not in KINDS:
            raise TransferTuneError(
                f"unknown parametrization {k!r}; choose among {', '.join(KINDS)}"
            )
    if not kinds or len(set(kinds)) != len(kinds):
        raise TransferTuneError(f"parametrizations must be distinct and non-empty: {kinds}")
    modes_list = sorted(_as_int_list("modes", modes, 2))
    seed_list = _as_int_list("seeds", seeds, 0)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise TransferTuneError(f"epochs must be a positive integer, got {epochs!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise TransferTuneError(f"n_jobs must be a positive integer (or -1), got {n_jobs!r}")
    base = min(modes_list) if base_modes is None else base_modes
    get_parametrization("mup", base_modes=base)  # validates K_base
    if isinstance(hparams, HParams):
        base_hparams = hparams.to_dict()
    else:
        base_hparams = HParams.from_dict(dict(hparams or {})).to_dict()
    options = dict(model_options or {})
    forbidden = sorted(set(options) & {"dim", "modes", "width", "n_layers", "in_channels"})
    if forbidden:
        raise TransferTuneError(f"model_options may not set {forbidden}; use the arguments")

    data = _load_data(problem, test_data, problem_overrides)
    check_modes(max(modes_list), tuple(data.train.x_train.shape[2:]))
    if "batch_size" in grid and max(grid["batch_size"]) > data.train.n_train:
        raise TransferTuneError(
            f"batch sizes up to {max(grid['batch_size'])} exceed the training set "
            f"({data.train.n_train} samples); use batch sizes <= {data.train.n_train}"
        )
    if "batch_size" not in grid and base_hparams["batch_size"] > data.train.n_train:
        base_hparams["batch_size"] = data.train.n_train  # recorded in the config
    FNO(  # validates width, depth and options before anything is written
        dim=data.dim,
        modes=modes_list[0],
        width=width,
        n_layers=n_layers,
        in_channels=data.in_channels,
        out_channels=data.out_channels,
        **options,
    )

    name = sweep_name or f"landscape-{data.problem.get('name', 'problem')}-{'-'.join(params)}"
    config: dict[str, Any] = _jsonable(
        {
            "name": name,
            "params": params,
            "values": grid,
            "seeds": seed_list,
            "modes": modes_list,
            "parametrizations": kinds,
            "base_modes": base,
            "epochs": epochs,
            "width": width,
            "n_layers": n_layers,
            "model_options": options,
            "hparams": base_hparams,
            "problem": data.problem,
            "dim": data.dim,
            "in_channels": data.in_channels,
            "out_channels": data.out_channels,
        }
    )
    url = normalize_url(storage)
    store = get_storage(url)
    verbosity = optuna.logging.get_verbosity()
    if progress:  # the progress bar replaces Optuna's line per trial
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return _sweep(
            store,
            url,
            name,
            config,
            data,
            kinds,
            modes_list,
            params,
            device,
            progress,
            callbacks,
            reset_running,
            n_jobs,
        )
    finally:
        optuna.logging.set_verbosity(verbosity)


def _sweep(
    store: BaseStorage,
    url: str,
    name: str,
    config: dict[str, Any],
    data: _Data,
    kinds: list[str],
    modes_list: list[int],
    params: list[str],
    device: str,
    progress: bool,
    callbacks: Sequence[StudyCallback],
    reset_running: bool,
    n_jobs: int,
) -> SweepResult:
    base = config["base_modes"]
    seed_list = config["seeds"]
    epochs = config["epochs"]
    width, n_layers = config["width"], config["n_layers"]
    options, base_hparams = config["model_options"], config["hparams"]
    existing = _sweep_studies(store, name)
    for summary in existing:
        old = summary.user_attrs.get("sweep_config", {})
        if _identity(old) != _identity(config):
            diff = [k for k in _IDENTITY_KEYS if old.get(k) != config.get(k)]
            raise TransferTuneError(
                f"sweep {name!r} already exists in {url} with other settings ({', '.join(diff)});"
                " use another sweep_name, or the same settings to resume it"
            )
    # one study per (parametrization, K)
    units: list[tuple[str, str, int]] = []
    earlier: dict[tuple, LandscapeRow] = {}
    n_pending = 0
    space = _search_space(config)
    n_grid = math.prod(len(v) for v in space.values())
    for kind in kinds:
        param_dict = get_parametrization(kind, base_modes=base).to_dict()
        for k in modes_list:
            sname = study_name(name, kind, k)
            study = optuna.create_study(
                study_name=sname,
                storage=store,
                direction="minimize",
                sampler=GridSampler(space, seed=_GRID_SEED),
                load_if_exists=True,
            )
            if not study.user_attrs:
                model_config = {
                    "dim": data.dim,
                    "modes": k,
                    "width": width,
                    "n_layers": n_layers,
                    "in_channels": data.in_channels,
                    "out_channels": data.out_channels,
                    **options,
                }
                attrs = {
                    "kind": KIND,
                    "sweep": name,
                    "parametrization": param_dict,
                    "base_modes": base,
                    "modes": k,
                    "param": params[0],
                    "params": params,
                    "values": config["values"],
                    "seeds": seed_list,
                    "epochs": epochs,
                    "problem": data.problem,
                    "model": model_config,
                    "hparams": base_hparams,
                    "objective": "final test loss (relative L2); intermediate values: "
                    "validation loss per epoch",
                    "sweep_config": config,
                }
                for key, value in attrs.items():
                    study.set_user_attr(key, value)
            _prepare_study(study, reset_running)
            done = _rows_from_study(study, kind, k, params)
            for row_key, row in done.items():
                earlier[(kind, k) + row_key] = row
            n_pending += n_grid - len(done)
            units.append((sname, kind, k))

    rows: list[LandscapeRow] = []
    workers = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
    from tqdm.auto import tqdm

    bar = tqdm(total=n_pending, desc=name, disable=not progress or n_pending == 0)
    try:
        if workers == 1:

            def tick(study: optuna.Study, trial: FrozenTrial) -> None:
                bar.update(1)

            for sname, kind, k in units:
                rows.extend(
                    _run_unit(store, sname, config, kind, k, data, device, [*callbacks, tick], None)
                )
        else:
            from joblib import Parallel, delayed

            threads = max(1, (os.cpu_count() or 1) // workers)
            copies = max(1, math.ceil(workers / max(1, len(units))))
            jobs = [
                delayed(_run_unit)(url, sname, config, kind, k, data, device, callbacks, threads)
                for _ in range(copies)
                for sname, kind, k in units
            ]
            for part in Parallel(n_jobs=workers, return_as="generator_unordered")(jobs):
                rows.extend(part)
                bar.update(len(part))
    finally:
        bar.close()

    # merge: earlier runs, then this call's runs; the first finished trial of a point wins
    merged = dict(earlier)
    for row in sorted(rows, key=lambda r: r.trial_number):
        key = (row.parametrization, row.modes) + _row_key(row, params)
        if key not in merged or row.trial_number < merged[key].trial_number:
            merged[key] = row
    return SweepResult(
        name=name, config=config, rows=_sort_rows(merged.values(), config), storage=url
    )


# ---------------------------------------------------------------------------------------------
# Reading back
# ---------------------------------------------------------------------------------------------
def _sweep_studies(storage: Any, name: str | None = None) -> list[Any]:
    studies = [
        s
        for s in storage.get_all_studies()
        if s.user_attrs.get("kind") == KIND and (name is None or s.user_attrs.get("sweep") == name)
    ]
    return sorted(studies, key=lambda s: s._study_id)


def list_sweeps(storage: str | os.PathLike | None = None) -> list[str]:
    """Names of the sweeps held in ``storage``, in order of creation."""
    names: list[str] = []
    for s in _sweep_studies(get_storage(storage)):
        if s.user_attrs["sweep"] not in names:
            names.append(s.user_attrs["sweep"])
    return names


def load_sweep(
    storage: str | os.PathLike | None,
    sweep_name: str,
    parametrizations: Sequence[str] | None = None,
    modes: Sequence[int] | None = None,
) -> SweepResult:
    """Rebuild the tidy result of a sweep from the storage alone.

    Parameters
    ----------
    storage : str or path
        Storage URL (see :mod:`transfer_tune.search.storage`).
    sweep_name : str
        Name of the sweep (see :func:`list_sweeps`).
    parametrizations, modes : sequence, optional
        Keep only these; every study of the sweep by default.

    Returns
    -------
    SweepResult
        Unfinished grid points are absent (see :attr:`SweepResult.complete`).
    """
    url = normalize_url(storage)
    store = get_storage(url)
    studies = _sweep_studies(store, sweep_name)
    if not studies:
        known = list_sweeps(url)
        raise TransferTuneError(
            f"no sweep named {sweep_name!r} in {url}; "
            + (f"sweeps there: {', '.join(known)}" if known else "it holds no sweep")
        )
    config = dict(studies[0].user_attrs["sweep_config"])
    kinds: list[str] = []
    all_modes: set[int] = set()
    selected = []
    for s in studies:
        kind = s.user_attrs["parametrization"]["kind"]
        k = int(s.user_attrs["modes"])
        if parametrizations is not None and kind not in parametrizations:
            continue
        if modes is not None and k not in modes:
            continue
        selected.append((s, kind, k))
        all_modes.add(k)
    order = list(parametrizations) if parametrizations is not None else []
    for s in studies:
        for kind in s.user_attrs["sweep_config"]["parametrizations"]:
            if kind not in order and any(kind == sk for _, sk, _ in selected):
                order.append(kind)
    kinds = [k for k in order if any(k == sk for _, sk, _ in selected)]
    config["parametrizations"] = kinds
    config["modes"] = sorted(all_modes)
    params = list(config["params"])
    rows: list[LandscapeRow] = []
    for s, kind, k in selected:
        study = optuna.load_study(study_name=s.study_name, storage=store)
        rows.extend(_rows_from_study(study, kind, k, params).values())
    return SweepResult(name=sweep_name, config=config, rows=_sort_rows(rows, config), storage=url)


# ---------------------------------------------------------------------------------------------
# TOML specs
# ---------------------------------------------------------------------------------------------
_LANDSCAPE_KEYS = {
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
_MODEL_KEYS = {
    "width",
    "n_layers",
    "projection_width",
    "grid_features",
    "proxy_modes",  # the default K_base of the sweep
    "target_modes",  # read by the transfer, ignored here
}


def values_from_spec(param: str, spec: Any) -> list[float]:
    """Grid values from a spec: a list, or ``{low, high, num, log = true}``.

    ``log`` defaults to true for ``lr``, ``batch_size`` and ``weight_decay`` (log-spaced, like
    ``numpy.geomspace``) and false for the betas; batch sizes are rounded to integers.
    """
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"low", "high", "num", "log"})
        missing = sorted({"low", "high", "num"} - set(spec))
        if unknown or missing:
            raise TransferTuneError(
                f"values of {param!r}: a table needs low, high and num (and optionally log); "
                f"{'unknown ' + str(unknown) if unknown else 'missing ' + str(missing)}"
            )
        low, high, num = spec["low"], spec["high"], spec["num"]
        log = bool(spec.get("log", SWEEPABLE.get(param, True)))
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise TransferTuneError(f"values of {param!r}: num must be a positive integer")
        try:
            low, high = float(low), float(high)
        except (TypeError, ValueError):
            raise TransferTuneError(f"values of {param!r}: low and high must be numbers") from None
        if not low <= high:
            raise TransferTuneError(f"values of {param!r}: low must be <= high")
        if log and not low > 0:
            raise TransferTuneError(f"values of {param!r}: log spacing needs low > 0")
        grid = np.geomspace(low, high, num) if log else np.linspace(low, high, num)
        if param == "batch_size":
            return _check_values(param, sorted({int(round(v)) for v in grid}))
        return _check_values(param, [float(v) for v in grid])
    return _check_values(param, spec)


def sweep_from_spec(
    spec: Mapping[str, Any],
    storage: str | os.PathLike | None = None,
    n_jobs: int = 1,
    progress: bool = True,
) -> SweepResult:
    """Run the sweep described by a parsed TOML spec (``transfer-tune landscape SPEC``).

    The spec::

        [problem]                 # get_problem(name, **the other keys)
        name = "burgers"
        n_train = 200
        resolution = 128

        [model]                   # width, n_layers (projection_width, grid_features);
        width = 32                # proxy_modes, if given, is the default K_base
        n_layers = 4

        [train]                   # optional: fixed training settings (schedule, clip, ...)

        [landscape]
        modes = [4, 8, 16, 32]
        param = "lr"              # or ["lr", "batch_size"]
        values = { low = 1e-4, high = 1e-1, num = 13 }   # or a list
        # two parameters: [landscape.values] with one entry (list or table) per parameter
        parametrizations = ["mup", "sp"]
        seeds = [0, 1, 2]
        epochs = 20
        # optional: base_modes, name, device, storage, n_jobs,
        # [landscape.hparams] (fixed hyperparameters, e.g. batch_size = 20; over [train])

    Other tables of a study spec (``[tune]``, ``[target]``, ``[search_space]``) are ignored,
    except ``[tune] storage``, the storage when neither ``storage`` nor
    ``[landscape] storage`` is given.

    Parameters
    ----------
    spec : mapping
        The parsed TOML document.
    storage : str or path, optional
        Overrides ``[landscape] storage`` (and ``[tune] storage``); the default storage if
        none is given.
    n_jobs : int
        Worker processes (overrides ``landscape.n_jobs`` when not 1).
    progress : bool
        Show a progress bar.

    Returns
    -------
    SweepResult
    """
    return sweep(**sweep_kwargs_from_spec(spec, storage, n_jobs), progress=progress)


def sweep_kwargs_from_spec(
    spec: Mapping[str, Any],
    storage: str | os.PathLike | None = None,
    n_jobs: int = 1,
) -> dict[str, Any]:
    """Validate a spec and return the keyword arguments of :func:`sweep` it describes.

    Nothing runs and no data is generated; see :func:`sweep_from_spec` for the format.

    Raises
    ------
    TransferTuneError
        On a malformed spec, with the fix in the message.
    """
    if not isinstance(spec, Mapping) or "landscape" not in spec:
        raise TransferTuneError(
            "the spec has no [landscape] table; it needs at least [landscape] modes = [...] "
            "and a [problem] name"
        )
    land = spec["landscape"]
    if not isinstance(land, Mapping):
        raise TransferTuneError("[landscape] must be a table")
    unknown = sorted(set(land) - _LANDSCAPE_KEYS)
    if unknown:
        raise TransferTuneError(
            f"unknown key(s) {unknown} in [landscape]; valid: {', '.join(sorted(_LANDSCAPE_KEYS))}"
        )
    if "modes" not in land:
        raise TransferTuneError("[landscape] needs modes = [K1, K2, ...]")
    prob = dict(spec.get("problem") or {})
    if "name" not in prob:
        raise TransferTuneError('the spec needs [problem] name = "burgers" (or darcy, ...)')
    name = prob.pop("name")
    model = dict(spec.get("model") or {})
    unknown = sorted(set(model) - _MODEL_KEYS)
    if unknown:
        raise TransferTuneError(
            f"unknown key(s) {unknown} in [model]; valid: {', '.join(sorted(_MODEL_KEYS))}"
        )
    params = _as_params(land.get("param", "lr"))
    raw = land.get("values")
    if raw is None:
        values: Any = None
    elif len(params) == 1:
        if isinstance(raw, Mapping) and params[0] in raw:
            raw = raw[params[0]]
        values = values_from_spec(params[0], raw)
    else:
        if not isinstance(raw, Mapping):
            raise TransferTuneError(
                f"a two-parameter sweep needs [landscape.values] with an entry per parameter "
                f"({', '.join(params)})"
            )
        values = {p: values_from_spec(p, v) for p, v in raw.items()}
    kwargs: dict[str, Any] = {}
    for key in ("parametrizations", "seeds", "epochs", "base_modes", "device"):
        if key in land:
            kwargs[key] = land[key]
    if "name" in land:
        kwargs["sweep_name"] = land["name"]
    fixed = dict(spec.get("train") or {})
    fixed.update(dict(land.get("hparams") or {}))
    if fixed:
        kwargs["hparams"] = fixed
    proxy_modes = model.pop("proxy_modes", None)
    model.pop("target_modes", None)
    if "base_modes" not in kwargs and proxy_modes is not None:
        kwargs["base_modes"] = proxy_modes
    options = {k: model.pop(k) for k in ("projection_width", "grid_features") if k in model}
    if storage is None:
        storage = land.get("storage", (spec.get("tune") or {}).get("storage"))
    return {
        "problem": name,
        "modes": land["modes"],
        "param": params if len(params) > 1 else params[0],
        "values": values,
        "storage": storage,
        "n_jobs": n_jobs if n_jobs != 1 else int(land.get("n_jobs", 1)),
        "problem_overrides": prob,
        "model_options": options,
        **model,
        **kwargs,
    }
