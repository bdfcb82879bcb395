"""The Darcy search that compute_audit, calibrate, horizon and mup_parts share.

All four tune a K_proxy FNO on Darcy 32 x 32 with Optuna (TPE, median pruner) and train at
K_target, on the same data: :func:`full` is their common budget (horizon searches 8 epochs
instead of 6), :func:`quick` the tiny one of their ``--quick`` runs. Each script's
:class:`Budget` subclass adds what is its own (seeds, arms, the calibration grid, ...), so a
record's ``setup``/``design`` holds these fields first and the script's after.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Budget:
    """Problem, model and search sizes of a proxy search and its K_target runs."""

    problem: str
    overrides: dict[str, Any]
    proxy_modes: int
    target_modes: int
    width: int
    n_layers: int
    n_trials: int
    search_epochs: int
    final_epochs: int
    search_space: dict[str, Any] = field(default_factory=dict)


def full(**changes: Any) -> dict[str, Any]:
    """The full budget: Darcy 32 x 32 (solved on 125 x 125 nodes), 192 / 32 / 128 samples,
    width 16, 4 layers, K 4 -> 16, 12 trials x 6 epochs, batch size in {8, 16, 32}, 16 final
    epochs; ``changes`` override or add fields."""
    return {
        "problem": "darcy",
        "overrides": {"resolution": 32, "n_fine": 125, "n_train": 192, "n_val": 32, "n_test": 128},
        "proxy_modes": 4,
        "target_modes": 16,
        "width": 16,
        "n_layers": 4,
        "n_trials": 12,
        "search_epochs": 6,
        "final_epochs": 16,
        "search_space": {"batch_size": [8, 16, 32]},
        **changes,
    }


def quick(**changes: Any) -> dict[str, Any]:
    """The ``--quick`` budget: Darcy 8 x 8, width 8, 2 layers, K 2 -> 4, 3 trials x 2 epochs,
    batch size 8, 2 final epochs; ``changes`` override or add fields."""
    return {
        "problem": "darcy",
        "overrides": {"resolution": 8, "n_fine": 15, "n_train": 16, "n_val": 4, "n_test": 8},
        "proxy_modes": 2,
        "target_modes": 4,
        "width": 8,
        "n_layers": 2,
        "n_trials": 3,
        "search_epochs": 2,
        "final_epochs": 2,
        "search_space": {"batch_size": [8]},
        **changes,
    }


def prepared(budget: Budget, fine: bool = False) -> Any:
    """The budget's problem with its splits generated (or read from the cache) before any
    clock starts; with ``fine``, its finer test set too."""
    from pdes import load_problem

    problem = load_problem(budget.problem, budget.overrides)
    for split in ("train", "val", "test"):
        problem.dataset(split)
    finer = problem.fine_test_problem() if fine else None
    if finer is not None:
        finer.dataset("test")
    return problem


def search(
    budget: Budget,
    problem: Any,
    modes: int,
    *,
    storage: str,
    study_name: str,
    seed: int,
    width: int | None = None,
    **options: Any,
) -> tuple[Any, float]:
    """:func:`transfer_tune.search.tune.tune` of the budget at K = ``modes`` (and ``width``,
    default the budget's) on the CPU (``options``: ``base_modes``, ``base_width``,
    ``resolution``, ``pruner``, ``horizon``, ...); the study and the CPU seconds it took."""
    from transfer_tune.search.tune import tune

    cpu = time.process_time()
    study = tune(
        problem,
        modes,
        budget.width if width is None else width,
        budget.n_layers,
        budget.n_trials,
        budget.search_epochs,
        search_space=budget.search_space or None,
        storage=storage,
        study_name=study_name,
        seed=seed,
        device="cpu",
        progress=False,
        **options,
    )
    return study, time.process_time() - cpu


def target_run(
    model: Any, rule: Any, problem: Any, hparams: Any, epochs: int, seed: int
) -> dict[str, float]:
    """Train ``model`` (initialised) under ``rule`` on ``problem``'s train split, batched with
    ``seed``: its test rel-L2 (physical units), final validation loss and CPU seconds. A
    diverged run is a result (both losses ``inf``), not a crash."""
    import math

    from transfer_tune.core.train import TrainData, fit
    from transfer_tune.errors import DivergenceError
    from transfer_tune.search.transfer import physical_error

    data = TrainData.from_problem(problem, hparams)  # with the residual for loss="pino"
    xt, yt = problem.dataset("test")
    start = time.process_time()
    try:
        result = fit(model, data, hparams, epochs, parametrization=rule, seed=seed)
        test, val = physical_error(model, problem, xt, yt), result.val_loss
    except DivergenceError:
        test = val = math.inf
    return {"test_l2": test, "val_loss": val, "cpu_seconds": time.process_time() - start}


def sp_run(
    budget: Budget, problem: Any, modes: int, seed: int, hparams: dict[str, Any]
) -> tuple[float, float]:
    """Train K = ``modes`` under SP with fixed ``hparams`` for ``final_epochs`` (initialised
    and batched with ``seed``): does the target's K beat the proxy's on this problem? The
    test rel-L2 (physical units) and the seconds of training and testing."""
    import torch

    from transfer_tune.core.hparams import HParams
    from transfer_tune.core.model import FNO
    from transfer_tune.core.parametrization import get_parametrization
    from transfer_tune.core.train import TrainData, fit
    from transfer_tune.search.transfer import physical_error

    data = TrainData(*problem.dataset("train"), *problem.dataset("val"))
    xt, yt = problem.dataset("test")
    model = FNO(
        dim=problem.dim,
        modes=modes,
        width=budget.width,
        n_layers=budget.n_layers,
        in_channels=problem.in_channels,
        out_channels=problem.out_channels,
    )
    par = get_parametrization("sp", base_modes=modes)
    par.initialize(model, generator=torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    fit(
        model,
        data,
        HParams(**hparams),
        budget.final_epochs,
        parametrization=par,
        seed=seed,
        device="cpu",
    )
    return physical_error(model.cpu(), problem, xt, yt), time.perf_counter() - start
