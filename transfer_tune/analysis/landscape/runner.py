"""Running a sweep: one Optuna study per (parametrization, K), a GridSampler over
``{values x seeds}``, resumable and shared by worker processes.

Before work starts, every study is prepared: the RUNNING trials of dead workers are failed
(:func:`transfer_tune.search.workers.fail_orphans`, the mechanism the proxy search uses too)
and every failed grid point is queued again, recorded as Optuna records a retry
(:func:`transfer_tune.search.studies.queue_retry`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import torch
from optuna.samplers import GridSampler
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from transfer_tune.analysis.landscape.config import (
    IDENTITY_KEYS,
    KIND,
    RunOptions,
    StudyCallback,
    SweepConfig,
    build_config,
    check_args,
    check_run,
    identity,
    study_name,
)
from transfer_tune.analysis.landscape.data import SweepData, load_data
from transfer_tune.analysis.landscape.objective import DuplicateRun, Objective
from transfer_tune.analysis.landscape.readback import sweep_studies
from transfer_tune.analysis.landscape.results import (
    LandscapeRow,
    SweepResult,
    finished_ok,
    row_key,
    rows_from_study,
    sort_rows,
)
from transfer_tune.core.hparams import HParams
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.core.train import resolve_device
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.optuna_internals import grid_attrs, grid_id
from transfer_tune.search.storage import get_storage, redact_url
from transfer_tune.search.studies import create_study, open_study, queue_retry
from transfer_tune.search.workers import fail_orphans, torch_threads

_GRID_SEED = 0  # every worker builds the same GridSampler, so grid ids mean the same points
_OBJECTIVE = "final test loss (relative L2); intermediate values: validation loss per epoch"


def metric_name(problem: Mapping[str, Any]) -> str:
    """The dashboard's name of a sweep study's objective (the final test loss) and its units."""
    units = "as given" if problem.get("name") == "tensors" else "normalised"
    return f"final test rel-L2 ({units})"


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
    problem : str, dict, pdes.Problem or TrainData
        A problem (anything :func:`pdes.load_problem` takes, with ``problem_overrides``), or
        explicit tensors (then ``test_data`` gives the test split; without it the validation
        split is used as the test split).
    modes : sequence of int
        The K values (each >= 2 and fitting the grid).
    param : str or pair of str
        Swept hyperparameter(s): ``"lr"``, ``"batch_size"``, ``"beta1"``, ``"beta2"``,
        ``"weight_decay"``, ``"physics_weight"`` (with ``hparams={"loss": "pino"}``), or two
        of them (e.g. ``("lr", "batch_size")``).
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
        Optuna storage URL (see :mod:`transfer_tune.search.storage`); the default SQLite file
        if ``None``.
    n_jobs : int
        Worker processes sharing the storage (1: run in this process; -1: one per core).
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
        Laid over the problem (see :func:`pdes.load_problem`).
    model_options : mapping, optional
        Extra :class:`~transfer_tune.FNO` arguments (``projection_width``,
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
    args = check_args(
        param, values, parametrizations, seeds, modes, epochs, base_modes, hparams, model_options
    )
    run = check_run(
        storage,
        n_jobs,
        device=device,
        progress=progress,
        callbacks=callbacks,
        reset_running=reset_running,
    )
    data = load_data(problem, test_data, problem_overrides)
    config = build_config(args, data, width, n_layers, sweep_name)
    verbosity = optuna.logging.get_verbosity()
    if progress:  # the progress bar replaces Optuna's line per trial
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return run_sweep(config, data, run)
    finally:
        optuna.logging.set_verbosity(verbosity)


def run_sweep(config: SweepConfig, data: SweepData, run: RunOptions) -> SweepResult:
    """Prepare the studies of ``config``, run what is left of them, and return the result."""
    store = get_storage(run.url)
    _check_same_sweep(store, config, run.url)
    units: list[tuple[str, str, int]] = []
    earlier: dict[tuple, LandscapeRow] = {}
    n_pending = 0
    params = list(config.params)
    for kind in config.parametrizations:
        for k in config.modes:
            study = _open_study(store, config, kind, k)
            prepare_study(study, store, run.reset_running)
            done = rows_from_study(study, kind, k, params)
            earlier.update({(kind, k) + key: row for key, row in done.items()})
            n_pending += config.n_grid - len(done)
            units.append((study.study_name, kind, k))
    rows = _run_units(store, config, data, run, units, n_pending)
    # merge: earlier runs, then this call's runs; the first finished trial of a point wins
    merged = dict(earlier)
    for row in sorted(rows, key=lambda r: r.trial_number):
        key = (row.parametrization, row.modes) + row_key(row, params)
        if key not in merged or row.trial_number < merged[key].trial_number:
            merged[key] = row
    stored = config.to_dict()
    return SweepResult(
        name=config.name, config=stored, rows=sort_rows(merged.values(), stored), storage=run.url
    )


def _check_same_sweep(store: BaseStorage, config: SweepConfig, url: str) -> None:
    mine = config.identity()
    for summary in sweep_studies(store, config.name):
        old = summary.user_attrs.get("sweep_config", {})
        if identity(old) != mine:
            diff = [k for k in IDENTITY_KEYS if old.get(k) != mine.get(k)]
            raise TransferTuneError(
                f"sweep {config.name!r} already exists in {redact_url(url)} with other settings "
                f"({', '.join(diff)}); use another sweep_name, or the same settings to resume it"
            )


def _open_study(store: BaseStorage, config: SweepConfig, kind: str, k: int) -> optuna.Study:
    """The study of one (parametrization, K), created with its user attributes if new."""
    study = create_study(
        study_name(config.name, kind, k),
        store,
        metric_name=metric_name(config.problem),
        sampler=GridSampler(config.grid_space(), seed=_GRID_SEED),
    )
    if not study.user_attrs:
        stored = config.to_dict()
        attrs = {
            "kind": KIND,
            "sweep": config.name,
            "parametrization": get_parametrization(kind, base_modes=config.base_modes).to_dict(),
            "base_modes": config.base_modes,
            "modes": k,
            "param": config.params[0],
            "params": stored["params"],
            "values": stored["values"],
            "seeds": stored["seeds"],
            "epochs": config.epochs,
            "problem": stored["problem"],
            "model": config.model_kwargs(k),
            "hparams": stored["hparams"],
            "objective": _OBJECTIVE,
            "sweep_config": stored,
        }
        for key, value in attrs.items():
            study.set_user_attr(key, value)
    return study


def prepare_study(study: optuna.Study, storage: BaseStorage, reset_running: bool) -> int:
    """Fail dead workers' RUNNING trials and queue every failed grid point again; #queued."""
    fail_orphans(study, storage, every_running=reset_running)
    trials = study.get_trials(deepcopy=False)
    done = {grid_id(t) for t in trials if finished_ok(t)}
    busy = {grid_id(t) for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)}
    queued = 0
    for t in trials:
        point = grid_id(t)
        if point is None or point in done or point in busy or not t.state.is_finished():
            continue
        # a FAIL trial (or a PRUNED one without a divergence record): run its point again
        queue_retry(study, t, system_attrs=grid_attrs(t))
        busy.add(point)
        queued += 1
    return queued


def has_work(study: optuna.Study, n_grid: int) -> bool:
    """Whether a grid point of ``study`` is queued or was never started."""
    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials):
        return True
    started = {grid_id(t) for t in trials if t.state.is_finished() or t.state == TrialState.RUNNING}
    return any(g not in started for g in range(n_grid))


def run_unit(
    storage: str | BaseStorage,
    name: str,
    config: SweepConfig,
    kind: str,
    modes: int,
    data: SweepData,
    device: str,
    callbacks: Sequence[StudyCallback],
    threads: int | None,
    verbosity: int | None = None,
) -> list[LandscapeRow]:
    """Work on one study until no grid point is left unstarted (runs in a worker process).

    ``threads`` and ``verbosity`` (Optuna's logging level) are the caller's, passed on because
    a worker process starts with the defaults.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    if verbosity is not None:
        optuna.logging.set_verbosity(verbosity)
    study = open_study(name, storage, sampler=GridSampler(config.grid_space(), seed=_GRID_SEED))
    objective = Objective(config, kind, modes, data, device)
    n_grid = config.n_grid

    def stop_when_all_started(study: optuna.Study, trial: FrozenTrial) -> None:
        # GridSampler would go on to re-run a point another worker is still running
        if not has_work(study, n_grid):
            study.stop()

    if has_work(study, n_grid):
        study.optimize(
            objective,
            n_trials=None,
            catch=(DuplicateRun,),
            callbacks=[*callbacks, stop_when_all_started],  # the check last: closest to the
            gc_after_trial=False,  # next trial (what is left to do may change in callbacks)
        )
    return objective.rows


def _run_units(
    store: BaseStorage,
    config: SweepConfig,
    data: SweepData,
    run: RunOptions,
    units: list[tuple[str, str, int]],
    n_pending: int,
) -> list[LandscapeRow]:
    """Run the studies in this process (``n_jobs == 1``) or in joblib worker processes."""
    from tqdm.auto import tqdm

    resolve_device(run.device)  # a bad device fails here, not in every worker
    workers = (os.cpu_count() or 1) if run.n_jobs == -1 else run.n_jobs
    rows: list[LandscapeRow] = []
    bar = tqdm(total=n_pending, desc=config.name, disable=not run.progress or n_pending == 0)
    try:
        if workers == 1:

            def tick(study: optuna.Study, trial: FrozenTrial) -> None:
                bar.update(1)

            for sname, kind, k in units:
                rows.extend(
                    run_unit(
                        store,
                        sname,
                        config,
                        kind,
                        k,
                        data,
                        run.device,
                        [*run.callbacks, tick],
                        None,
                    )
                )
        else:
            from joblib import delayed

            from pdes.processes import parallel  # workers that die with this process

            threads = torch_threads(workers)  # the rule the proxy search shares
            # every worker may join every study (grid points are claimed one trial at a
            # time), so a worker that finishes its study helps with the last one instead of
            # idling; a study with nothing left returns at once
            copies = workers
            jobs = [
                delayed(run_unit)(
                    run.url,
                    sname,
                    config,
                    kind,
                    k,
                    data,
                    run.device,
                    run.callbacks,
                    threads,
                    optuna.logging.get_verbosity(),
                )
                for _ in range(copies)
                for sname, kind, k in units
            ]
            for part in parallel(workers, return_as="generator_unordered")(jobs):
                rows.extend(part)
                bar.update(len(part))
    finally:
        bar.close()
    return rows
