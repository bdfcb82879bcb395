"""``tune_then_transfer()``: the proxy search, the µP plan and the target run, composed."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import optuna

from pdes import load_problem
from pdes.checks import as_int
from transfer_tune.search.compute import compute_summary
from transfer_tune.search.preflight import (
    TargetEnergyWarning,
    added_target_energy,
    check_target,
    check_target_args,
    check_target_k,
    energy_warning,
    estimated_shape,
)
from transfer_tune.search.proxy import best_values
from transfer_tune.search.search_space import SearchSpace
from transfer_tune.search.storage import check_study_name, dashboard_command, normalize_url
from transfer_tune.search.transfer import TargetPlan, TargetResult, plan_transfer, run_target
from transfer_tune.search.tune import tune


@dataclass
class TransferResult:
    """Everything :func:`tune_then_transfer` produced; ``print(result)`` summarises it."""

    study: optuna.Study
    proxy_params: dict[str, Any]
    target_plan: TargetPlan
    target: TargetResult
    compute: dict[str, float]
    storage: str

    def __str__(self) -> str:
        p, c = self.proxy_params, self.compute
        return "\n".join(
            [
                f"proxy study {self.study.study_name!r}: best val rel-L2 "
                f"{self.study.best_value:.4f} with lr {p['lr']:.3e}, batch {p['batch_size']}, "
                f"betas ({p['beta1']:.3f}, {p['beta2']:.5f})",
                self.target_plan.table(),
                str(self.target),
                f"compute: proxy search {c['proxy_seconds']:.1f} s, target run "
                f"{c['target_seconds']:.1f} s; one step: proxy {c['proxy_step_flops']:.3g} "
                f"FLOP, target {c['target_step_flops']:.3g} FLOP "
                f"(ratio {c['step_flop_ratio']:.3f}); whole search "
                f"{c['proxy_search_flops']:.3g} FLOP = {c['search_to_target_flop_ratio']:.2f}x "
                "the target run",
                f"inspect: {dashboard_command(self.storage)}",
            ]
        )


def tune_then_transfer(
    problem: Any = "burgers",
    proxy_modes: int = 4,
    target_modes: int = 32,
    width: int = 32,
    n_layers: int = 4,
    n_trials: int = 30,
    proxy_epochs: int = 10,
    target_epochs: int = 40,
    search_space: dict | SearchSpace | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    n_jobs: int = 1,
    seed: int = 0,
    device: str = "auto",
    *,
    problem_overrides: dict | None = None,
    sampler: Any = "tpe",
    pruner: Any = "median",
    train: dict | None = None,
    eval_resolution: int | None = None,
    target_study_name: str | None = None,
    progress: bool = True,
    annotate: bool = True,
    model: Any = "fno",
    horizon: int | str | None = None,
    allow_smaller: bool = False,
) -> TransferResult:
    """Tune the proxy FNO (K = ``proxy_modes``), transfer with µP, train the target once.

    Parameters
    ----------
    problem : str, dict or pdes.Problem
        ``"burgers"``, ``"darcy"``, ``"navier_stokes"`` (with ``problem_overrides``), or a
        built problem.
    proxy_modes, target_modes : int
        K of the proxy (= K_base) and of the target.
    width, n_layers : int
        Hidden width and depth, shared by proxy and target.
    n_trials, proxy_epochs : int
        Size of the proxy search and epochs per trial.
    target_epochs : int
        Epochs of the one target run.
    search_space : dict or SearchSpace, optional
        Overrides of the default ranges.
    storage, study_name : str, optional
        Where the studies live (default SQLite file under ``studies/``) and the proxy study's
        name; an existing study of that name is resumed.
    n_jobs : int
        Worker processes for the proxy search.
    seed : int
        Seeds sampler, initialisations and batch order.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    horizon : None, int or "auto"
        Epochs per proxy trial: all (``None``), the first ``h`` of the schedule, or a
        measured horizon (a pilot picks it; see :mod:`transfer_tune.search.horizon`).
    allow_smaller : bool
        Train a ``target_modes`` below ``proxy_modes`` anyway. By default that is an error,
        raised before the search: µP transfers the tuned values upward from the proxy's K.
    annotate : bool
        Write optuna-dashboard notes, the tuning-history figure (HTML) and the checkpoint as
        artifacts on the proxy and target studies.
    model : {"fno", "neuralop"}, callable or str
        transfer-tune's FNO (default), neuraloperator 2.0's ``FNO`` (``pip install
        "transfer-tune[neuralop]"``; K maps to ``n_modes = 2K - 2``), or a module-level
        factory ``f(dim, modes, width, n_layers, in_channels, out_channels)`` or its path
        ``"package.module:name"`` (:mod:`transfer_tune.core.factory`). Stored in the study,
        so ``transfer`` in another process rebuilds it.

    Returns
    -------
    TransferResult
        ``study``, ``proxy_params``, ``target_plan``, ``target`` and ``compute``.
    """
    for name, what in ((study_name, "study name"), (target_study_name, "target study name")):
        if name is not None:
            check_study_name(name, what)  # before the search, not when annotating after it
    url = normalize_url(storage)
    prob = load_problem(problem, problem_overrides)
    check_target_args(target_modes, target_epochs, eval_resolution)
    check_target_k(as_int(proxy_modes, "proxy_modes", minimum=2), target_modes, allow_smaller)
    target_shape = estimated_shape(prob, target_modes, width, n_layers)
    batch = min(SearchSpace.from_dict(search_space).max_batch_size(), prob.n_train)
    check_target(  # before any trial: the target's K, grid, memory and data
        prob, target_modes, target_epochs, eval_resolution, model=target_shape, batch_size=batch
    )
    note = energy_warning(added_target_energy(prob, proxy_modes, target_modes), target_modes)
    if note:  # said before the search, when the user can still choose another K
        warnings.warn(note.removeprefix("warning: "), TargetEnergyWarning, stacklevel=2)
    study = tune(
        prob, proxy_modes, width, n_layers, n_trials, proxy_epochs,
        search_space=search_space, storage=url, study_name=study_name, n_jobs=n_jobs,
        seed=seed, sampler=sampler, pruner=pruner, device=device, train=train,
        progress=progress, model=model, horizon=horizon,
    )  # fmt: skip
    plan = plan_transfer(study, target_modes, target_epochs, allow_smaller=allow_smaller)
    start = time.perf_counter()
    target = run_target(
        plan,
        url,
        study_name=target_study_name,
        eval_resolution=eval_resolution,
        seed=seed,
        device=device,
        progress=progress,
    )
    target_seconds = time.perf_counter() - start
    compute = compute_summary(study, plan, prob, target_seconds)
    study.set_user_attr("compute", compute)
    if annotate:
        from transfer_tune.report.dashboard import annotate_proxy_study

        annotate_proxy_study(url, study.study_name, image_formats=())
    return TransferResult(
        study=study,
        proxy_params=best_values(study),
        target_plan=plan,
        target=target,
        compute=compute,
        storage=url,
    )
