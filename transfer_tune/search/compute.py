"""What a proxy search and its target run cost: seconds, and FLOPs from what each trial ran.

``result.compute`` of :func:`transfer_tune.tune_then_transfer` is :func:`compute_summary`;
the FLOP formulas are :mod:`transfer_tune.core.flops`' (storage-free), the trials are read
here.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from pdes import load_problem
from transfer_tune.core.flops import TrialEpochs, run_flops, search_flops, train_step_flops
from transfer_tune.core.hparams import HParams
from transfer_tune.search.proxy import ProxySetup
from transfer_tune.search.transfer import TargetPlan, physics_grid, pino_step_flops

#: Trial states whose epochs cost compute (surplus trials, failed at once, are skipped).
_RAN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _search_seconds(study: optuna.Study) -> float:
    return sum(
        t.duration.total_seconds()
        for t in study.get_trials(deepcopy=False)
        if t.duration is not None and "surplus" not in t.user_attrs
    )


def trial_epochs(study: optuna.Study) -> list[TrialEpochs]:
    """What every trial of a proxy ``study`` ran: its batch size and its epochs.

    Complete, pruned and failed trials count (a pruned trial trained up to the epoch it was
    stopped after; a diverged one also trained the epoch whose loss blew up, and validated it
    only when it was the validation loss that diverged); surplus trials ran nothing.
    """
    runs = []
    for t in study.get_trials(deepcopy=False):
        if t.state not in _RAN or "surplus" in t.user_attrs:
            continue
        batch = t.user_attrs.get("hparams", {}).get("batch_size", t.params.get("batch_size"))
        if batch is None:  # a trial that failed before it sampled anything
            continue
        epochs = val = len(t.intermediate_values)
        diverged = t.user_attrs.get("diverged")
        if diverged is not None:
            epochs += 1
            val += str(diverged).startswith("validation")  # fit's message names the split
        runs.append(TrialEpochs(int(batch), epochs, val))
    return runs


def fine_physics_flops(
    train: dict, config: dict, grid: tuple[int, ...], n_train: int, runs: list[TrialEpochs]
) -> float:
    """The extra forward and backward passes of ``loss="pino"`` with a ``physics_resolution``
    finer than ``grid`` (every training sample once more, on the fine grid, every epoch); 0
    otherwise. The residual itself (finite differences, or FFTs of one channel) is left out:
    it is small against the FNO's layers."""
    fine = physics_grid(HParams(**train), tuple(grid))
    if fine is None:
        return 0.0
    return sum(r.train_epochs for r in runs) * train_step_flops(config, fine, n_train)


def compute_summary(study: optuna.Study, plan: TargetPlan, problem: Any, target_seconds: float):
    """``result.compute``: seconds and FLOP estimates of the search and of the target run.

    ``problem`` is the target's; the search is counted on the proxy's own (maybe coarser)
    grid.

    Keys: ``proxy_seconds`` (sum of the trials' durations), ``target_seconds``,
    ``proxy_step_flops`` / ``target_step_flops`` (one training step at the plan's batch size)
    and ``step_flop_ratio``; ``proxy_search_flops`` (every epoch every trial ran, with its
    validation pass and Adam updates, :func:`transfer_tune.core.flops.search_flops`),
    ``proxy_search_epochs``, ``target_run_flops`` (the target's epochs, same counting; its
    test evaluation excluded), both with :func:`fine_physics_flops`,
    ``search_to_target_flop_ratio`` and
    ``search_fraction_of_target`` (the same ratio in seconds).
    """
    setup = ProxySetup.from_study(study)
    grid = tuple(problem.grid_shape)
    proxy = load_problem(setup.problem)  # its grid may be coarser than the target's
    runs = trial_epochs(study)
    s_flops = search_flops(runs, setup.model, proxy.grid_shape, proxy.n_train, proxy.n_val)
    s_flops += fine_physics_flops(setup.train, setup.model, proxy.grid_shape, proxy.n_train, runs)
    t_run = TrialEpochs(plan.batch_size, plan.epochs)
    t_flops = run_flops(plan.model, grid, problem.n_train, problem.n_val, t_run)
    t_flops += fine_physics_flops(plan.train, plan.model, grid, problem.n_train, [t_run])
    proxy_hp = HParams(**setup.train)
    proxy_step = pino_step_flops(proxy_hp, setup.model, proxy.grid_shape, plan.batch_size)
    target_step = pino_step_flops(plan.hparams(), plan.model, grid, plan.batch_size)
    proxy_seconds = _search_seconds(study)
    return {
        "proxy_seconds": proxy_seconds,
        "target_seconds": target_seconds,
        "proxy_step_flops": proxy_step,
        "target_step_flops": target_step,
        "step_flop_ratio": proxy_step / target_step,
        "proxy_search_flops": s_flops,
        "proxy_search_epochs": sum(r.train_epochs for r in runs),
        "target_run_flops": t_flops,
        "search_to_target_flop_ratio": s_flops / t_flops,
        "search_fraction_of_target": proxy_seconds / max(target_seconds, 1e-9),
    }
