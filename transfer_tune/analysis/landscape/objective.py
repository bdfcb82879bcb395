"""The objective of a sweep's studies: train one (point, seed) of one (parametrization, K).

A diverged run is a result: its trial is PRUNED with ``diverged=True`` and the reason in its
user attributes, and its losses are ``inf``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import optuna
import torch

from transfer_tune.analysis.landscape.config import SWEEPABLE, SweepConfig
from transfer_tune.analysis.landscape.data import SweepData
from transfer_tune.analysis.landscape.results import LandscapeRow, finished_ok
from transfer_tune.core.hparams import HParams
from transfer_tune.core.model import FNO
from transfer_tune.core.parametrization import (
    SCALED_ROLES,
    Parametrization,
    RoleScale,
    get_parametrization,
)
from transfer_tune.core.train import evaluate, fit, resolve_device
from transfer_tune.errors import DivergenceError
from transfer_tune.search.workers import record_worker


def suggest(trial: optuna.Trial, config: SweepConfig) -> tuple[dict[str, float], int]:
    """The grid point and seed of ``trial`` (the GridSampler picks them)."""
    point: dict[str, float] = {}
    for p in config.params:
        values = config.values[p]
        low, high = min(values), max(values)
        if p == "batch_size":
            point[p] = trial.suggest_int(p, int(low), int(high), log=True)
        else:
            point[p] = trial.suggest_float(p, float(low), float(high), log=SWEEPABLE[p])
    seed = trial.suggest_int("seed", min(config.seeds), max(config.seeds))
    return point, seed


@dataclass(frozen=True)
class SpectralRate(Parametrization):
    """A parametrization whose spectral weights train at ``spectral_factor`` times their rate.

    The R-only sweep: R's Adam rate becomes ``spectral_lr * m_R(K)`` (``m_R`` from the
    parametrization's own table, so the rule is read, not re-derived) while every other group
    keeps ``lr * m(K)``; initial values are unchanged.
    """

    spectral_factor: float = 1.0

    @classmethod
    def of(cls, base: Parametrization, factor: float) -> SpectralRate:
        """``base`` with R's learning rate multiplied by ``factor``."""
        return cls(
            base.kind,
            base.base_modes,
            base.spectral_std,
            base.base_shapes,
            spectral_factor=float(factor),
        )

    def role_scales(self, modes: int, dim: int) -> dict[str, RoleScale]:
        """The base table, R's learning-rate multiplier times ``spectral_factor``."""
        scales = super().role_scales(modes, dim)
        return {
            role: RoleScale(s.init, s.lr * self.spectral_factor) if role in SCALED_ROLES else s
            for role, s in scales.items()
        }


class DuplicateRun(Exception):
    """Raised inside a trial whose grid point another trial already holds (see below)."""


def holder_of(trial: optuna.Trial) -> int | None:
    """Number of an earlier trial that holds ``trial``'s grid point (RUNNING or finished).

    Workers check that work is left, then start a trial; in between another worker may have
    started the last point, and the GridSampler then hands out a point again. Such a trial
    is not trained (:class:`DuplicateRun`).
    """
    params = trial.params
    for t in trial.study.get_trials(deepcopy=False):
        if t.number < trial.number and t.params == params:
            if t.state == optuna.trial.TrialState.RUNNING or finished_ok(t):
                return t.number
    return None


class Objective:
    """Train one (point, seed) of one (parametrization, K); collect the rows it produced."""

    def __init__(
        self, config: SweepConfig, kind: str, modes: int, data: SweepData, device: str
    ) -> None:
        self.config = config
        self.kind = kind
        self.modes = modes
        self.data = data
        self.device = resolve_device(device)
        self.parametrization = get_parametrization(kind, base_modes=config.base_modes)
        self.rows: list[LandscapeRow] = []

    def __call__(self, trial: optuna.Trial) -> float:
        record_worker(trial)
        point, seed = suggest(trial, self.config)
        holder = holder_of(trial)
        if holder is not None:
            trial.set_user_attr("duplicate", f"trial {holder} already holds this grid point")
            trial.study.stop()  # the grid is exhausted for this worker
            raise DuplicateRun
        rates = dict(point)
        spectral_lr = rates.pop("spectral_lr", None)
        hparams = HParams.from_dict({**self.config.hparams, **rates})
        parametrization = self.parametrization
        if spectral_lr is not None:
            parametrization = SpectralRate.of(parametrization, spectral_lr / hparams.lr)
        model = FNO(**self.config.model_kwargs(self.modes))
        parametrization.initialize(model, generator=torch.Generator().manual_seed(seed))

        def report(record: Any) -> None:
            value = record.val_loss if record.val_loss is not None else record.train_loss
            trial.report(value, record.epoch)

        start = time.perf_counter()
        try:
            result = fit(
                model,
                self.data.train,
                hparams,
                self.config.epochs,
                callbacks=[report],
                parametrization=parametrization,
                seed=seed,
                device=self.device,
            )
            test_loss = evaluate(
                model, self.data.x_test.to(self.device), self.data.y_test.to(self.device)
            )
            if not math.isfinite(test_loss):
                raise DivergenceError(f"test loss became {test_loss}")
        except DivergenceError as exc:
            inf = math.inf
            attrs = {
                "diverged": True,
                "reason": str(exc),
                "train_loss": inf,
                "val_loss": None if self.data.train.x_val is None else inf,
                "test_loss": inf,
                "seconds": time.perf_counter() - start,
            }
            self._record(trial, point, seed, attrs)
            raise optuna.TrialPruned(f"diverged: {exc}") from None
        attrs = {
            "diverged": False,
            "train_loss": result.train_loss,
            "val_loss": result.val_loss,
            "test_loss": test_loss,
            "seconds": time.perf_counter() - start,
        }
        self._record(trial, point, seed, attrs)
        return test_loss

    def _record(self, trial: optuna.Trial, point: dict, seed: int, attrs: dict) -> None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        self.rows.append(LandscapeRow.from_trial(trial, self.kind, self.modes, point, seed, attrs))
