"""The Optuna study on the proxy FNO: objective, sampler, pruner, workers, resume.

The objective builds the proxy FNO under µP with ``K_base = K_proxy`` (so it *is* the SP
model: the tuned rate is the rate the proxy trained with), trains it with the trial's values,
reports the validation loss after every epoch and lets the pruner stop it early. A diverging
trial is pruned with the reason in its user attributes.

``n_trials`` is the number of *finished* (complete or pruned) trials the study should hold:
running :func:`tune` again on the same storage and study name resumes it up to that number,
never repeating a finished trial. Several processes (``n_jobs``, or workers on other
machines) share one study through the storage and together finish exactly ``n_trials``.
Every trial records its worker (host and pid); before each trial a worker fails, and
re-queues once, the trials of dead workers (:mod:`transfer_tune.search.workers`, the
mechanism the landscape sweeps share), so a rerun after a crash also ends with exactly
``n_trials``.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import optuna
import torch
from optuna.trial import TrialState
from tqdm.auto import tqdm

from pdes import load_problem
from pdes.checks import as_int, as_stored
from pdes.processes import parallel
from transfer_tune.core.factory import (
    allow_models,
    allowed_models,
    build_model,
    check_model_allowed,
    model_config,
)
from transfer_tune.core.model import check_modes
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.core.train import HParams, TrainData, fit, resolve_device
from transfer_tune.errors import DivergenceError, TransferTuneError
from transfer_tune.search.preflight import check_training_memory, estimated_shape
from transfer_tune.search.samplers import make_pruner, make_sampler
from transfer_tune.search.search_space import SearchSpace
from transfer_tune.search.storage import check_study_name, normalize_url, redact_url
from transfer_tune.search.workers import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    WORKER_ATTR,
    checkable_here,
    open_study_storage,
    record_worker,
    recover,
    torch_threads,
)

#: The proxy study's objective, as the dashboard names it (the validation split, in the
#: normalised units the model trains in).
METRIC_NAME = "val rel-L2 (normalised)"
#: Trial states that hold (or are about to hold) one of the study's ``n_trials``.
_CLAIMED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
#: Seconds between two looks at the study while other workers finish its last trials.
POLL_SECONDS = 1.0
_log = logging.getLogger("transfer_tune")
__all__ = [
    "GRACE_PERIOD",
    "HEARTBEAT_INTERVAL",
    "METRIC_NAME",
    "Objective",
    "ProxySetup",
    "best_values",
    "count_finished",
    "create_proxy_study",
    "make_pruner",
    "make_sampler",
    "open_study_storage",
    "run_worker",
    "tune",
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
        return cls(**{k: attrs[k] for k in cls.__dataclass_fields__})

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
    return len(study.get_trials(deepcopy=False, states=_FINISHED))


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


def _load_data(problem_config: dict) -> TrainData:
    problem = load_problem(problem_config)
    x, y = problem.dataset("train")
    xv, yv = problem.dataset("val")
    return TrainData(x, y, xv, yv)


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
    :func:`transfer_tune.core.factory.allow_models` adds; see
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
    try:
        study = optuna.load_study(
            study_name=study_name,
            storage=store,
            sampler=make_sampler(sampler, seed),
            pruner=make_pruner(pruner),
        )
    except KeyError as exc:
        raise TransferTuneError(f"no study named {study_name!r} in {redact_url(url)}") from exc
    setup = ProxySetup.from_study(study)
    check_model_allowed(setup.model)  # before any data or trial: the study names the code
    horizon = (study.user_attrs.get("horizon") or {}).get("epochs")
    objective = Objective(setup, _load_data(setup.problem), n_trials, device, horizon)
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
    stuck = [] if heartbeats else [t for t in running if not checkable_here(t)]
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
    study = optuna.create_study(
        storage=open_study_storage(url),
        study_name=name,
        direction="minimize",
        load_if_exists=True,
        sampler=make_sampler(sampler, setup.seed),
        pruner=make_pruner(pruner),
    )
    with warnings.catch_warnings():  # set_metric_names is experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([METRIC_NAME])
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


def tune(
    problem: Any = "burgers",
    proxy_modes: int = 4,
    width: int = 32,
    n_layers: int = 4,
    n_trials: int = 30,
    epochs: int = 10,
    *,
    search_space: dict | SearchSpace | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    n_jobs: int = 1,
    seed: int = 0,
    sampler: Any = "tpe",
    pruner: Any = "median",
    device: str = "auto",
    train: dict | None = None,
    problem_overrides: dict | None = None,
    progress: bool = True,
    base_modes: int | None = None,
    model: Any = "fno",
    horizon: int | str | None = None,
) -> optuna.Study:
    """Tune lr, batch size and betas of the proxy FNO; resumable by study name.

    Parameters
    ----------
    problem : str, dict or pdes.Problem
        The PDE problem (``"burgers"``, ``"darcy"``, ``"navier_stokes"``) or a built one.
    proxy_modes : int
        K of the proxy (also K_base of the µP rule).
    width, n_layers : int
        Hidden width m and number of Fourier layers (kept for the target).
    n_trials : int
        Finished (complete + pruned) trials the study should hold at the end.
    epochs : int
        Training epochs per trial (the pruner may stop a trial earlier).
    search_space : dict or SearchSpace, optional
        Overrides of the default ranges (see :mod:`transfer_tune.search.search_space`). Default
        batch sizes larger than the training set are dropped, with one logged line (logger
        ``transfer_tune``); batch sizes you give that cannot fit are an error.
    storage : str, optional
        Storage URL (:mod:`transfer_tune.search.storage`); default SQLite file under ``studies/``.
    study_name : str, optional
        Default ``"{problem}-proxy-K{proxy_modes}"``.
    n_jobs : int
        Worker processes sharing the storage, each with ``cores // n_jobs`` torch threads
        (:func:`transfer_tune.search.workers.torch_threads`).
    seed : int
        Seeds the sampler and each trial's initialisation (``seed + trial.number``).
    sampler, pruner : str or Optuna object
        ``"tpe"`` (multivariate, seeded), ``"random"``, ...; ``"median"``, ``"hyperband"``,
        ``"none"``, ... or any Optuna sampler/pruner instance.
    train : dict, optional
        Fixed training settings (``clip``, ``clip_value``, ``schedule``, ``weight_decay``...).
    problem_overrides : dict, optional
        Passed to ``pdes.get_problem`` (resolution, n_train, ...).
    base_modes : int, optional
        K_base of the searched model's µP (default ``proxy_modes``: the searched model is then
        exactly SP). Another value searches the base rate of a µP model at ``proxy_modes``
        (e.g. a direct µP search at the target's K, for a compute audit); the plan then
        transfers relative to it.
    model : {"fno", "neuralop"}, callable or str
        The model searched (and transferred): transfer-tune's FNO, neuraloperator's ``FNO``
        (``pip install "transfer-tune[neuralop]"``), or a module-level factory / its path
        ``"package.module:name"`` (:mod:`transfer_tune.core.factory`); stored in the study.
    horizon : None, int or "auto"
        Epochs each trial trains: ``None`` all ``epochs``; an int h the first h epochs of the
        ``epochs``-epoch schedule (the learning-rate schedule is unchanged, so the loss after h
        epochs is the one a full trial had then); ``"auto"`` measures h first with a pilot
        (:func:`pilot_horizon`). Stored as the study's ``horizon`` user attribute.

    Returns
    -------
    optuna.Study
    """
    if study_name is not None:
        check_study_name(study_name)  # before any data, model or study
    n_trials = as_int(n_trials, "n_trials")
    n_jobs = as_int(n_jobs, "n_jobs")
    epochs = as_int(epochs, "epochs")
    seed = as_int(seed, "seed", minimum=0, maximum=2**32 - 1)
    resolve_device(device)  # a bad device fails before any study is created
    prob = load_problem(problem, problem_overrides)
    space = SearchSpace.from_dict(search_space)
    explicit = isinstance(search_space, SearchSpace) or "batch_size" in (search_space or {})
    space, restricted = space.fit_batch_size(prob.n_train, explicit=explicit)
    if restricted:
        _log.warning(restricted)
    if train is not None and not isinstance(train, Mapping):
        raise TransferTuneError(
            f"train must be a mapping of fixed training settings (e.g. {{'clip': 'value'}}), "
            f"got {train!r}"
        )
    train = dict(train or {})
    HParams.from_dict({**train, "lr": 1e-3})  # validates the fixed settings early
    if "weight_decay" in train and not space.weight_decay.unset:
        raise TransferTuneError(
            "weight_decay is set both in train (fixed) and in search_space; keep one"
        )
    shape = estimated_shape(prob, proxy_modes, width, n_layers)
    check_modes(proxy_modes, prob.grid_shape)
    batch = space.max_batch_size()
    check_training_memory(prob, shape, batch, "a proxy trial")  # before any model or data
    config = model_config(
        model,
        dim=prob.dim,
        modes=proxy_modes,
        width=width,
        n_layers=n_layers,
        in_channels=prob.in_channels,
        out_channels=prob.out_channels,
    )
    setup = ProxySetup(
        problem=prob.config(),
        model=config,
        parametrization=get_parametrization(
            "mup", base_modes=proxy_modes if base_modes is None else base_modes
        ).to_dict(),
        search_space=space.to_dict(),
        train=train,
        epochs=epochs,
        seed=seed,
    )
    url = normalize_url(storage)
    study = create_proxy_study(setup, url, study_name, sampler, pruner)
    prob.dataset("train"), prob.dataset("val")  # generate / cache once, before any worker
    if horizon is not None:
        from transfer_tune.search.horizon import set_horizon

        set_horizon(study, horizon, setup, url, n_trials, device=device, progress=progress)
    kwargs = dict(sampler=sampler, pruner=pruner, device=device)
    if n_jobs == 1 or isinstance(sampler, optuna.samplers.BaseSampler):
        run_worker(study.study_name, url, n_trials, seed=seed, progress=progress, **kwargs)
    else:
        from joblib import delayed

        threads = torch_threads(n_jobs)  # the rule the landscape sweeps share
        parallel(n_jobs)(
            delayed(run_worker)(
                study.study_name,
                url,
                n_trials,
                seed=seed + i,
                threads=threads,
                progress=progress and i == 0,
                allowed=sorted(allowed_models()),  # a fresh process: what this one allows
                **kwargs,
            )
            for i in range(n_jobs)
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
