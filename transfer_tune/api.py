"""``tune_then_transfer()``: the proxy search, the µP plan and the target run, composed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import optuna

from pdes import load_problem
from transfer_tune.core.flops import train_step_flops
from transfer_tune.search.search_space import SearchSpace
from transfer_tune.search.storage import dashboard_command, normalize_url
from transfer_tune.search.transfer import (
    TargetPlan,
    TargetResult,
    check_target,
    plan_transfer,
    run_target,
)
from transfer_tune.search.tune import ProxySetup, best_values, tune


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
                f"(ratio {c['step_flop_ratio']:.3f})",
                f"inspect: {dashboard_command(self.storage)}",
            ]
        )


def _search_seconds(study: optuna.Study) -> float:
    return sum(
        t.duration.total_seconds()
        for t in study.get_trials(deepcopy=False)
        if t.duration is not None and "surplus" not in t.user_attrs
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
    annotate : bool
        Write optuna-dashboard notes, the tuning-history figure (HTML) and the checkpoint as
        artifacts on the proxy and target studies.

    Returns
    -------
    TransferResult
        ``study``, ``proxy_params``, ``target_plan``, ``target`` and ``compute``.
    """
    url = normalize_url(storage)
    prob = load_problem(problem, problem_overrides)
    check_target(prob, target_modes, target_epochs, eval_resolution)  # before any trial
    study = tune(
        prob,
        proxy_modes,
        width,
        n_layers,
        n_trials,
        proxy_epochs,
        search_space=search_space,
        storage=url,
        study_name=study_name,
        n_jobs=n_jobs,
        seed=seed,
        sampler=sampler,
        pruner=pruner,
        device=device,
        train=train,
        progress=progress,
    )
    plan = plan_transfer(study, target_modes, target_epochs)
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
    setup = ProxySetup.from_study(study)
    grid = prob.grid_shape
    proxy_flops = train_step_flops(setup.model, grid, plan.batch_size)
    target_flops = train_step_flops(plan.model, grid, plan.batch_size)
    steps_per_epoch = -(-prob.n_train // plan.batch_size)
    compute = {
        "proxy_seconds": _search_seconds(study),
        "target_seconds": target_seconds,
        "proxy_step_flops": proxy_flops,
        "target_step_flops": target_flops,
        "step_flop_ratio": proxy_flops / target_flops,
        "target_run_flops": target_flops * steps_per_epoch * plan.epochs,
    }
    compute["search_fraction_of_target"] = compute["proxy_seconds"] / max(target_seconds, 1e-9)
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
