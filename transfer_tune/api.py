"""``tune_then_transfer()``: the proxy search, the µP plan and the target run, composed."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import optuna

from pdes import load_problem
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
from transfer_tune.search.sides import Side, resolve_sides
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
    proxy_modes: int | None = None,
    target_modes: int | None = None,
    width: int | None = None,
    n_layers: int = 4,
    n_trials: int = 30,
    proxy_epochs: int | None = None,
    target_epochs: int | None = None,
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
    proxy: dict | Side | None = None,
    target: dict | Side | None = None,
) -> TransferResult:
    """Tune a cheap proxy FNO, transfer its values with µP, train the target once.

    The proxy may have fewer modes, a smaller width and a coarser training grid than the
    target (``proxy=dict(modes=4, width=16, resolution=32, epochs=10)``,
    ``target=dict(modes=16, width=64, epochs=40)``): width and grid are what make it cheap
    (a smaller K alone barely shrinks an FNO's step). Fields one side leaves out take the
    other side's value (:func:`transfer_tune.search.sides.resolve_sides`); the target trains
    on the problem's own grid.

    Parameters
    ----------
    problem : str, dict or pdes.Problem
        ``"burgers"``, ``"darcy"``, ``"navier_stokes"`` (with ``problem_overrides``), or a
        built problem, at the target's grid.
    proxy, target : dict or Side, optional
        Fields ``modes`` (K; the proxy's is K_base), ``width``, ``resolution`` (the proxy's
        training grid, an exact subsample of the problem's; the target's is the problem's),
        ``epochs`` (per trial for the proxy, of the one run for the target).
    proxy_modes, target_modes, width, proxy_epochs, target_epochs : int, optional
        Shortcuts for the K-only case (``width`` sets both sides); defaults K 4 -> 32,
        width 32, 10 and 40 epochs when neither a shortcut nor a side says.
    n_layers : int
        Depth, shared by proxy and target.
    n_trials : int
        Size of the proxy search.
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
    p, t = resolve_sides(
        proxy,
        target,
        proxy_modes=proxy_modes,
        target_modes=target_modes,
        width=width,
        proxy_epochs=proxy_epochs,
        target_epochs=target_epochs,
        resolution=prob.resolution,
        allow_smaller=allow_smaller,
    )
    check_target_args(t.modes, t.epochs, eval_resolution)
    check_target_k(p.modes, t.modes, allow_smaller)
    target_shape = estimated_shape(prob, t.modes, t.width, n_layers)
    batch = min(SearchSpace.from_dict(search_space).max_batch_size(), prob.n_train)
    check_target(  # before any trial: the target's K, grid, memory and data
        prob, t.modes, t.epochs, eval_resolution, model=target_shape, batch_size=batch
    )
    note = energy_warning(added_target_energy(prob, p.modes, t.modes), t.modes)
    if note:  # said before the search, when the user can still choose another K
        warnings.warn(note.removeprefix("warning: "), TargetEnergyWarning, stacklevel=2)
    coarse = None if p.resolution == prob.resolution else p.resolution
    study = tune(
        prob, p.modes, p.width, n_layers, n_trials, p.epochs,
        search_space=search_space, storage=url, study_name=study_name, n_jobs=n_jobs,
        seed=seed, sampler=sampler, pruner=pruner, device=device, train=train,
        progress=progress, model=model, horizon=horizon, resolution=coarse,
    )  # fmt: skip
    plan = plan_transfer(study, t.modes, t.epochs, allow_smaller=allow_smaller, width=t.width)
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
        from transfer_tune.report import annotate_proxy_study

        annotate_proxy_study(url, study.study_name, image_formats=())
    return TransferResult(
        study=study,
        proxy_params=best_values(study),
        target_plan=plan,
        target=target,
        compute=compute,
        storage=url,
    )
