"""The tidy result of a sweep: one :class:`LandscapeRow` per finished run, in a
:class:`SweepResult`; rows are built in one place (:meth:`LandscapeRow.from_trial`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from transfer_tune.errors import TransferTuneError


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

    @classmethod
    def from_trial(
        cls,
        trial: FrozenTrial | optuna.Trial,
        parametrization: str,
        modes: int,
        point: Mapping[str, float],
        seed: int,
        attrs: Mapping[str, Any],
    ) -> LandscapeRow:
        """The row of a trial: its grid ``point`` and ``seed`` and the run's user ``attrs``
        (``train_loss``, ``val_loss``, ``test_loss``, ``seconds``, ``diverged``)."""
        val = attrs.get("val_loss")
        return cls(
            parametrization=parametrization,
            modes=int(modes),
            point=dict(point),
            seed=int(seed),
            train_loss=float(attrs["train_loss"]),
            val_loss=None if val is None else float(val),
            test_loss=float(attrs["test_loss"]),
            diverged=bool(attrs.get("diverged", False)),
            trial_number=trial.number,
            seconds=float(attrs["seconds"]),
        )

    @classmethod
    def from_frozen(
        cls, trial: FrozenTrial, parametrization: str, modes: int, params: list[str]
    ) -> LandscapeRow:
        """The row of a finished trial read back from storage."""
        point = {p: trial.params[p] for p in params}
        return cls.from_trial(
            trial, parametrization, modes, point, trial.params["seed"], trial.user_attrs
        )

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
        index = [{grid_key(v): i for i, v in enumerate(self.config["values"][p])} for p in names]
        seeds = {s: i for i, s in enumerate(self.seeds)}
        shape = [len(self.config["values"][p]) for p in names] + [len(seeds)]
        out = np.full(shape, np.nan)
        for row in self.select(parametrization, modes):
            value = getattr(row, loss)
            pos = tuple(idx[grid_key(row.point[p])] for idx, p in zip(index, names, strict=True))
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


def grid_key(value: float) -> float:
    """Dictionary key for a grid value (ints and floats of equal value collide on purpose)."""
    return float(value)


def row_key(row: LandscapeRow, params: list[str]) -> tuple:
    """``(*grid values, seed)`` of a row: the identity of a run within one study."""
    return tuple(grid_key(row.point[p]) for p in params) + (row.seed,)


def finished_ok(trial: FrozenTrial) -> bool:
    """A trial that holds a result: COMPLETE, or PRUNED because the run diverged."""
    return trial.state == TrialState.COMPLETE or (
        trial.state == TrialState.PRUNED and "diverged" in trial.user_attrs
    )


def rows_from_study(
    study: optuna.Study, kind: str, modes: int, params: list[str]
) -> dict[tuple, LandscapeRow]:
    """First finished run of every (point, seed), keyed by :func:`row_key`."""
    rows: dict[tuple, LandscapeRow] = {}
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if finished_ok(t):
            row = LandscapeRow.from_frozen(t, kind, modes, params)
            rows.setdefault(row_key(row, params), row)
    return rows


def sort_rows(rows: Iterable[LandscapeRow], config: Mapping[str, Any]) -> list[LandscapeRow]:
    """Rows in parametrization, K, grid and seed order (see :class:`SweepResult`)."""
    order = {k: i for i, k in enumerate(config["parametrizations"])}
    params = list(config["params"])
    index = [{grid_key(v): i for i, v in enumerate(config["values"][p])} for p in params]
    seeds = {s: i for i, s in enumerate(config["seeds"])}

    def key(row: LandscapeRow) -> tuple:
        pos = tuple(idx[grid_key(row.point[p])] for idx, p in zip(index, params, strict=True))
        return (order[row.parametrization], row.modes, pos, seeds[row.seed], row.trial_number)

    return sorted(rows, key=key)
