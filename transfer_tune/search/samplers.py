"""Optuna samplers and pruners by name, with the seeding rule for processes that share a study.

The seeding rule: a named sampler draws trial ``n`` with the seed ``seed + n``. Trial numbers
are unique across every process sharing a study, so two processes (or machines) started with
the same ``seed`` never propose the same random configuration for different trials, and one
process alone is as reproducible as with a single seed. (The model of trial ``n`` is
initialised with ``seed + n`` too.)
"""

from __future__ import annotations

from typing import Any

import optuna

from transfer_tune.errors import TransferTuneError

SAMPLERS = ("tpe", "random", "cmaes", "qmc", "gp")
PRUNERS = ("median", "percentile", "hyperband", "successive_halving", "none")


class PerTrialSeed(optuna.samplers.BaseSampler):
    """A named Optuna sampler re-created with the seed ``seed + trial.number`` for each trial.

    TPE, random, CMA-ES and GP samplers read the history from the study at every trial, so a
    fresh instance per trial samples as the long-lived one would, with a per-trial seed.
    """

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.seed = seed
        self._current: tuple[int, optuna.samplers.BaseSampler] | None = None

    def _for(self, trial: Any) -> optuna.samplers.BaseSampler:
        number = trial.number
        if self._current is None or self._current[0] != number:
            self._current = (number, _named_sampler(self.name, self.seed + number))
        return self._current[1]

    def infer_relative_search_space(self, study, trial):  # noqa: D102
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):  # noqa: D102
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):  # noqa: D102
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):  # noqa: D102
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values):  # noqa: D102
        self._for(trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:  # noqa: D102
        self._current = None


def make_sampler(
    sampler: str | optuna.samplers.BaseSampler, seed: int
) -> optuna.samplers.BaseSampler:
    """An Optuna sampler by name, seeded per trial, or the instance given (used as it is).

    A named sampler is re-seeded with ``seed + trial.number`` for every trial (see
    :class:`PerTrialSeed`), except ``qmc``, whose scrambled sequence takes one seed.
    """
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    name = str(sampler).lower()
    first = _named_sampler(name, seed, sampler)  # an unknown name or a missing package fail here
    return PerTrialSeed(name, seed) if name != "qmc" else first


def _named_sampler(name: str, seed: int, given: Any = None) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=5)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        from importlib.util import find_spec

        if find_spec("cmaes") is None:
            raise TransferTuneError("the cmaes sampler needs the cmaes package: pip install cmaes")
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise TransferTuneError(f"unknown sampler {given!r}; choose one of {', '.join(SAMPLERS)}")


def make_pruner(pruner: str | optuna.pruners.BasePruner | None) -> optuna.pruners.BasePruner:
    """An Optuna pruner by name (``median`` by default) or the instance given."""
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    name = "none" if pruner is None else str(pruner).lower()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=3, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name in ("none", "nop"):
        return optuna.pruners.NopPruner()
    raise TransferTuneError(f"unknown pruner {pruner!r}; choose one of {', '.join(PRUNERS)}")
