"""The proxy study and its workers: setup, objective, one worker's loop, best values.

The objective builds the proxy FNO under µP with ``K_base = K_proxy`` (so it *is* the SP
model: the tuned rate is the rate the proxy trained with), trains it with the trial's values,
reports the validation loss after every epoch and lets the pruner stop it early. A diverging
trial is pruned with the reason in its user attributes.

A worker (:func:`run_worker`, one per process) runs trials until the study holds ``n_trials``
finished (complete or pruned) ones; :func:`transfer_tune.tune` creates the study
(:func:`create_proxy_study`), fixes its horizon (:mod:`transfer_tune.search.horizon`) and
starts the workers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import optuna
import torch
from optuna.trial import TrialState
from tqdm.auto import tqdm

from pdes import load_problem
from pdes.checks import as_int, as_stored
from transfer_tune.core.factory import (
    allow_models,
    build_model,
    check_model_allowed,
)
from transfer_tune.core.hparams import HParams
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.core.train import TrainData, fit, resolve_device
from transfer_tune.errors import DivergenceError, TransferTuneError
from transfer_tune.search.samplers import make_pruner, make_sampler
from transfer_tune.search.search_space import SearchSpace
from transfer_tune.search.storage import check_study_name, normalize_url, redact_url
from transfer_tune.search.studies import create_study, open_study
from transfer_tune.search.workers import (
    WORKER_ATTR,
    checkable_here,
    open_study_storage,
    record_worker,
    recover,
    still_starting,
)

#: The proxy study's objective, as the dashboard names it (the validation split, in the
#: normalised units the model trains in).
METRIC_NAME = "val rel-L2 (normalised)"
#: Trial states that hold (or are about to hold) one of the study's ``n_trials``.
_CLAIMED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
#: Trial states of a finished trial (one of the study's ``n_trials``).
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
#: Seconds between two looks at the study while other workers finish its last trials.
POLL_SECONDS = 1.0
_log = logging.getLogger("transfer_tune")
__all__ = [
    "FINISHED",
    "METRIC_NAME",
    "Objective",
    "ProxySetup",
    "best_values",
    "count_finished",
    "create_proxy_study",
    "run_worker",
]


class _SurplusTrial(Exception):
    """Raised inside a trial created after the study already had its ``n_trials``."""


@dataclass
class ProxySetup:
    """Everything needed to rebuild the proxy and its data; stored in the study's user attrs."""

    problem: dict
    model: dict
    parametrization: dict
    search_space: dict
    train: dict
    epochs: int
    seed: int
    #: The problem the target trains on when the proxy's is a coarser grid of it (``None``:
    #: the proxy's own problem, the K-only case).
    target_problem: dict | None = None

    def to_attrs(self) -> dict:
        """User attributes of the proxy study."""
        return {"kind": "proxy", **asdict(self)}

    @classmethod
    def from_study(cls, study: optuna.Study) -> ProxySetup:
        """Read the setup back from a study made by :func:`tune` (any process)."""
        attrs = study.user_attrs
        if attrs.get("kind") != "proxy":
            raise TransferTuneError(
                f"study {study.study_name!r} is not a transfer-tune proxy study "
                f"(its user attribute 'kind' is {attrs.get('kind')!r})"
            )
        optional = {"target_problem"}  # absent from studies made before it existed
        return cls(
            **{k: attrs[k] for k in cls.__dataclass_fields__ if k in attrs or k not in optional}
        )

    def hparams(self, values: dict[str, Any]) -> HParams:
        """Training hyperparameters from tuned ``values`` and the fixed ``train`` settings."""
        return HParams(**{**self.train, **values})

    def build_model(self, seed: int) -> torch.nn.Module:
        """The proxy model, initialised under its parametrization with ``seed``."""
        model = build_model(self.model, seed=seed)
        par = get_parametrization(**self.parametrization)
        par.initialize(model, generator=torch.Generator().manual_seed(seed))
        return model


def _claimed_before(study: optuna.Study, number: int | None = None) -> int:
    trials = study.get_trials(deepcopy=False, states=_CLAIMED)
    return sum(1 for t in trials if number is None or t.number < number)


def count_finished(study: optuna.Study) -> int:
    """Number of complete or pruned trials of ``study``."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


class Objective:
    """The proxy objective: train with the trial's values, report, prune, return val loss.

    With a ``horizon`` h, a trial trains the first h epochs of the ``setup.epochs``-epoch
    schedule and returns the validation loss after epoch h (see :func:`tune`).
    """

    def __init__(
        self,
        setup: ProxySetup,
        data: TrainData,
        n_trials: int,
        device: str = "auto",
        horizon: int | None = None,
    ) -> None:
        self.setup = setup
        self.data = data
        self.n_trials = n_trials
        self.device = device
        self.horizon = horizon
        self.space = SearchSpace.from_dict(setup.search_space)

    def __call__(self, trial: optuna.Trial) -> float:
        record_worker(trial)
        if _claimed_before(trial.study, trial.number) >= self.n_trials:
            trial.set_user_attr("surplus", "the study already had its n_trials when this began")
            raise _SurplusTrial
        values = self.space.suggest(trial)
        trial.set_user_attr("hparams", values)
        hparams = self.setup.hparams(values)
        seed = self.setup.seed + trial.number
        model = self.setup.build_model(seed)

        def report(record) -> bool:
            trial.report(record.val_loss, record.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {record.epoch}")
            return self.horizon is not None and record.epoch + 1 >= self.horizon

        par = get_parametrization(**self.setup.parametrization)
        try:
            result = fit(
                model,
                self.data,
                hparams,
                self.setup.epochs,
                [report],
                parametrization=par,
                seed=seed,
                device=self.device,
            )
        except DivergenceError as exc:
            trial.set_user_attr("diverged", str(exc))
            raise optuna.TrialPruned(f"diverged: {exc}") from exc
        trial.set_user_attr("train_loss", result.train_loss)
        trial.set_user_attr("seconds", result.seconds)
        trial.set_user_attr("torch_threads", torch.get_num_threads())
        return result.val_loss


def _load_data(setup: ProxySetup) -> TrainData:
    return TrainData.from_problem(load_problem(setup.problem), HParams(**setup.train))


def run_worker(
    study_name: str,
    storage: str,
    n_trials: int,
    *,
    seed: int = 0,
    sampler: str = "tpe",
    pruner: str | None = "median",
    device: str = "auto",
    threads: int | None = None,
    progress: bool = False,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    allowed: Sequence[str] = (),
) -> int:
    """Join ``study_name`` and run trials until it holds ``n_trials`` finished ones.

    Returns the number of trials this worker finished. Safe to run in several processes or on
    several machines at once (each with its own ``seed``): a trial that starts after the
    study is full is marked failed with the user attribute ``surplus`` and not run. Before
    each trial, the dead workers' trials are failed and re-queued once
    (:func:`transfer_tune.search.workers.recover`): those whose process is gone on this host
    at once, and on RDB storages those whose worker stopped beating for ``grace_period``
    seconds, wherever it ran. A worker returns only when the study holds ``n_trials``
    finished trials: it waits for the last trials of live workers (and runs their retries)
    and refuses, naming them, RUNNING trials nothing here can resolve. A model factory named
    by the study is imported only when this machine allows it (``allowed``, the paths
    :func:`transfer_tune.model.allow_models` adds; see
    :func:`~transfer_tune.core.factory.check_factory_allowed`), checked before any trial.
    """
    check_study_name(study_name)
    allow_models(allowed)
    n_trials = as_int(n_trials, "n_trials")
    seed = as_int(seed, "seed (the sampler's)", minimum=0, maximum=2**32 - 1)
    resolve_device(device)  # an unusable device fails before any trial is claimed
    if threads:
        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = normalize_url(storage)
    store = open_study_storage(url, heartbeat_interval, grace_period)
    study = open_study(
        study_name, store, sampler=make_sampler(sampler, seed), pruner=make_pruner(pruner)
    )
    setup = ProxySetup.from_study(study)
    check_model_allowed(setup.model)  # before any data or trial: the study names the code
    horizon = (study.user_attrs.get("horizon") or {}).get("epochs")
    objective = Objective(setup, _load_data(setup), n_trials, device, horizon)
    done = 0
    bar = tqdm(
        total=n_trials,
        initial=count_finished(study),
        desc="proxy trials",
        disable=not progress,
        unit="trial",
    )
    heartbeats = not url.startswith("journal:")  # heartbeats exist on RDB storages only
    while True:
        recover(study, store, heartbeats)  # fail, and re-queue once, dead workers' trials
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if _claimed_before(study) >= n_trials and not waiting:  # retries still get run
            if count_finished(study) >= n_trials:
                break
            _wait_for_others(study, n_trials, heartbeats)  # or say why it cannot end
            continue
        study.optimize(objective, n_trials=1, catch=(_SurplusTrial,), gc_after_trial=False)
        done += 1
        bar.n = count_finished(study)
        bar.refresh()
    bar.close()
    return done


def _wait_for_others(study: optuna.Study, n_trials: int, heartbeats: bool) -> None:
    """Wait :data:`POLL_SECONDS` for the RUNNING trials of other workers to end.

    Those workers are alive (else :func:`recover` failed their trials), or on an RDB
    storage their heartbeats will tell. A RUNNING trial that nothing here can ever resolve
    (a journal file's trial of another host, or recorded without a process identity) is
    refused: the study would otherwise end short of ``n_trials`` without a word.

    Raises
    ------
    TransferTuneError
        Naming the trials and their workers.
    """
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    stuck = (
        []
        if heartbeats
        else [t for t in running if not checkable_here(t) and not still_starting(t)]
    )
    if stuck:
        which = ", ".join(f"{t.number} ({t.user_attrs.get(WORKER_ATTR, '?')})" for t in stuck)
        raise TransferTuneError(
            f"study {study.study_name!r} holds {count_finished(study)} of {n_trials} finished "
            f"trials; trial(s) {which} are RUNNING in processes this machine cannot check. If "
            "they still run, wait for them; if they are dead, run `transfer-tune worker` on "
            "their machine (it fails and retries them) and then this command again"
        )
    _log.info("waiting for trial(s) %s of other workers", [t.number for t in running])
    time.sleep(POLL_SECONDS)


def create_proxy_study(
    setup: ProxySetup,
    storage: str | None,
    study_name: str | None,
    sampler: Any = "tpe",
    pruner: Any = "median",
) -> optuna.Study:
    """Create the proxy study, or load it when it exists with the same setup (resume)."""
    url = normalize_url(storage)
    if study_name is not None:
        check_study_name(study_name)
    name = study_name or f"{setup.problem['name']}-proxy-K{setup.model['modes']}"
    study = create_study(
        name,
        open_study_storage(url),
        metric_name=METRIC_NAME,
        sampler=make_sampler(sampler, setup.seed),
        pruner=make_pruner(pruner),
    )
    attrs = setup.to_attrs()
    if study.user_attrs.get("kind") is None:
        for key, value in attrs.items():
            study.set_user_attr(key, value)
    else:
        stored = {k: study.user_attrs.get(k) for k in attrs}
        diff = sorted(k for k in attrs if as_stored(stored[k]) != as_stored(attrs[k]))
        if diff:
            raise TransferTuneError(
                f"study {name!r} in {redact_url(url)} exists with a different setup "
                f"({', '.join(diff)}); resume it with the same settings or choose another "
                "study_name"
            )
    return study


def best_values(study: optuna.Study) -> dict[str, Any]:
    """The best trial's hyperparameter values (lr, batch_size, beta1, beta2)."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        pruned = len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))
        raise TransferTuneError(
            f"study {study.study_name!r} has no complete trial yet ({pruned} pruned or "
            "diverged); run more trials, or lower the learning-rate range if they diverge"
        )
    setup = ProxySetup.from_study(study)
    space = SearchSpace.from_dict(setup.search_space)
    return space.values_from_params(study.best_trial.params)
