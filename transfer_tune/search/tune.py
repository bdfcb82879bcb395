"""The proxy search: :func:`tune` creates (or resumes) the Optuna study and runs its workers.

The study, its objective and one worker's loop are :mod:`transfer_tune.search.proxy`'s; the
training horizon (``horizon="auto"``) is :mod:`transfer_tune.search.horizon`'s.

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
from collections.abc import Mapping
from typing import Any

import optuna

from pdes import load_problem
from pdes.checks import as_int
from pdes.coarse import coarse_problem
from pdes.physics import no_physics_message
from pdes.processes import parallel
from transfer_tune.core.base_shapes import base_shapes
from transfer_tune.core.factory import allowed_models, model_config, shapes_model
from transfer_tune.core.hparams import HParams
from transfer_tune.core.model import check_modes
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.core.train import resolve_device
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.horizon import set_horizon
from transfer_tune.search.preflight import check_training_memory, estimated_shape
from transfer_tune.search.proxy import ProxySetup, create_proxy_study, run_worker
from transfer_tune.search.search_space import OPTIONAL, SearchSpace
from transfer_tune.search.storage import check_study_name, normalize_url
from transfer_tune.search.workers import torch_threads

_log = logging.getLogger("transfer_tune")
__all__ = ["tune"]


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
    resolution: int | None = None,
    base_width: int | None = None,
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
        Fixed training settings (``clip``, ``clip_value``, ``schedule``, ``weight_decay``...),
        e.g. ``{"loss": "pino", "physics_weight": 0.1}`` for physics-informed training
        (:class:`~transfer_tune.core.hparams.HParams`; give ``search_space`` a
        ``physics_weight`` range to tune the weight instead).
    problem_overrides : dict, optional
        Passed to ``pdes.get_problem`` (resolution, n_train, ...).
    base_modes : int, optional
        K_base of the searched model's µP (default ``proxy_modes``: the searched model is then
        exactly SP). Another value searches the base rate of a µP model at ``proxy_modes``
        (e.g. a direct µP search at the target's K, for a compute audit); the plan then
        transfers relative to it.
    base_width : int, optional
        The width at which the searched model's µP is SP (default ``width``): like
        ``base_modes``, another value searches a µP model wider than its base.
    resolution : int, optional
        The proxy's training grid, coarser than the problem's (an exact subsample,
        :func:`pdes.coarse.coarse_problem`); default the problem's own. K must fit it. The
        study records the problem's full grid as the target's.
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
        check_study_name(study_name, "study name (study_name)")  # before any data, model or study
    n_trials = as_int(n_trials, "n_trials")
    n_jobs = as_int(n_jobs, "n_jobs")
    epochs = as_int(epochs, "epochs")
    seed = as_int(seed, "seed", minimum=0, maximum=2**32 - 1)
    resolve_device(device)  # a bad device fails before any study is created
    full = load_problem(problem, problem_overrides)
    prob = full if resolution is None else coarse_problem(full, resolution)
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
    for name in OPTIONAL:
        if name in train and not getattr(space, name).unset:
            raise TransferTuneError(
                f"{name} is set both in train (fixed) and in search_space; keep one"
            )
    if not space.physics_weight.unset and train.get("loss") != "pino":
        raise TransferTuneError(
            "search_space has physics_weight, but training uses the data loss only; pass "
            "train={'loss': 'pino'} to train with the PDE residual"
        )
    if train.get("loss") == "pino" and not prob.has_physics:
        raise TransferTuneError(no_physics_message(prob.name))
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
    shapes = None
    if base_width is not None and as_int(base_width, "base_width") != width:
        shapes = base_shapes(shapes_model({**config, "width": base_width}))
    setup = ProxySetup(
        problem=prob.config(),
        model=config,
        parametrization=get_parametrization(
            "mup", base_modes=proxy_modes if base_modes is None else base_modes, base_shapes=shapes
        ).to_dict(),
        search_space=space.to_dict(),
        train=train,
        epochs=epochs,
        seed=seed,
        target_problem=None if prob is full else full.config(),
    )
    url = normalize_url(storage)
    study = create_proxy_study(setup, url, study_name, sampler, pruner)
    prob.dataset("train"), prob.dataset("val")  # generate / cache once, before any worker
    if horizon is not None:
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
