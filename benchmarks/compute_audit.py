"""Is tuning a small proxy cheaper than tuning the large model, at equal quality?

Usage::

    python benchmarks/compute_audit.py              # full: Darcy 32 x 32, K 4 -> 16
    python benchmarks/compute_audit.py --quick      # tiny sizes, seconds
    python benchmarks/compute_audit.py --problem burgers --json out.json

Same problem, same search space, same number of trials, same sampler (TPE) seed:

(a) ``tune_then_transfer(proxy_modes=K_proxy, target_modes=K_target)``: the Optuna search on
    the small-K proxy, then one µP-transferred run of the target;
(b) ``tune_then_transfer(proxy_modes=K_target, target_modes=K_target)``: the same search run
    directly on the target K (µP at K = K_base is SP, so this is plain tuning of the large
    model), then its best configuration trained once with the target's epochs.

Reported for both: wall time of the search and of the final run, FLOP estimates
(:mod:`transfer_tune.core.flops`: every epoch each trial actually ran, training on the whole
training set plus the validation pass, and the same for the final run plus its test pass),
the ratio (a)/(b), the chosen hyperparameters and the final model's test error (relative L2
in physical units). The datasets are generated before the clock starts; every run uses a fresh
storage in a temporary folder (timings of a resumed search would mean nothing).

The full mode repeats the pair for three seeds (seed s: TPE seed s for both arms, model
initialisations and batch orders from s as well) and ends with a summary over the seeds:
one pair of single-seed searches is too noisy to compare test errors.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/machine.py

from machine import cpu_model, load_average  # noqa: E402

from transfer_tune.core.flops import forward_flops, train_step_flops  # noqa: E402

PAPER = (
    "µTransfer-FNO (arXiv 2506.19396) against tuning the large model directly: Navier-Stokes "
    "5.34 % vs 5.69 % test error at 0.30x the tuning compute; Darcy 1.22 % vs 1.25 % at 1.38x."
)


@dataclass(frozen=True)
class Setup:
    """Budget of the audit."""

    problem: str
    overrides: dict[str, Any]
    proxy_modes: int
    target_modes: int
    width: int
    n_layers: int
    n_trials: int
    proxy_epochs: int
    target_epochs: int
    search_space: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2)


FULL = {
    "darcy": Setup(
        problem="darcy",
        overrides={"resolution": 32, "n_fine": 125, "n_train": 96, "n_val": 32, "n_test": 128},
        proxy_modes=4,
        target_modes=16,
        width=32,
        n_layers=4,
        n_trials=16,
        proxy_epochs=8,
        target_epochs=20,
        search_space={"batch_size": [8, 16, 32]},
    ),
    "burgers": Setup(
        problem="burgers",
        overrides={"resolution": 128, "n_train": 192, "n_val": 32, "n_test": 128},
        proxy_modes=4,
        target_modes=32,
        width=32,
        n_layers=4,
        n_trials=16,
        proxy_epochs=10,
        target_epochs=30,
        search_space={"batch_size": [8, 16, 32]},
    ),
}
QUICK = {
    "darcy": Setup(
        problem="darcy",
        overrides={"resolution": 8, "n_fine": 15, "n_train": 16, "n_val": 4, "n_test": 8},
        proxy_modes=2,
        target_modes=4,
        width=8,
        n_layers=2,
        n_trials=3,
        proxy_epochs=2,
        target_epochs=2,
        search_space={"batch_size": [8]},
        seeds=(0,),
    ),
    "burgers": Setup(
        problem="burgers",
        overrides={"resolution": 32, "n_fine": 256, "n_train": 16, "n_val": 4, "n_test": 8},
        proxy_modes=2,
        target_modes=8,
        width=8,
        n_layers=2,
        n_trials=3,
        proxy_epochs=2,
        target_epochs=2,
        search_space={"batch_size": [8]},
        seeds=(0,),
    ),
}


def epoch_flops(config: dict, grid: tuple[int, ...], n_train: int, n_val: int) -> float:
    """FLOPs of one epoch: training on every sample, then the validation forward pass."""
    return train_step_flops(config, grid, n_train) + forward_flops(config, grid, n_val)


def search_flops(study: Any, config: dict, grid: tuple[int, ...], n_train: int, n_val: int):
    """FLOPs and epochs of every epoch each trial of ``study`` ran (pruned ones included)."""
    from optuna.trial import TrialState

    epochs = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            continue
        ran = len(trial.intermediate_values)
        if "diverged" in trial.user_attrs:
            ran += 1  # the epoch that diverged was trained but not reported
        epochs += ran
    return epochs * epoch_flops(config, grid, n_train, n_val), epochs


def run_arm(label: str, setup: Setup, proxy_modes: int, storage: str, seed: int) -> dict:
    """One arm of the audit: search at ``proxy_modes``, then the target run at K_target."""
    import transfer_tune
    from pdes import load_problem

    problem = load_problem(setup.problem, setup.overrides)
    start = time.perf_counter()
    result = transfer_tune.tune_then_transfer(
        problem=problem,
        proxy_modes=proxy_modes,
        target_modes=setup.target_modes,
        width=setup.width,
        n_layers=setup.n_layers,
        n_trials=setup.n_trials,
        proxy_epochs=setup.proxy_epochs,
        target_epochs=setup.target_epochs,
        search_space=setup.search_space or None,
        storage=storage,
        study_name=f"audit-{setup.problem}-{label}-seed{seed}",
        n_jobs=1,
        seed=seed,
        device="cpu",
        progress=False,
        annotate=False,
    )
    wall = time.perf_counter() - start
    grid = tuple(problem.grid_shape)
    proxy_config = dict(result.study.user_attrs["model"])
    target_config = dict(result.target_plan.model)
    s_flops, s_epochs = search_flops(
        result.study, proxy_config, grid, problem.n_train, problem.n_val
    )
    t_flops = result.target_plan.epochs * epoch_flops(
        target_config, grid, problem.n_train, problem.n_val
    ) + forward_flops(target_config, grid, problem.n_test)
    metrics = result.target.metrics
    states = [t.state.name for t in result.study.get_trials(deepcopy=False)]
    return {
        "arm": label,
        "seed": seed,
        "search_modes": proxy_modes,
        "target_modes": setup.target_modes,
        "wall_seconds": wall,
        "search_seconds": result.compute["proxy_seconds"],
        "target_seconds": result.compute["target_seconds"],
        "search_flops": s_flops,
        "search_epochs": s_epochs,
        "target_flops": t_flops,
        "total_flops": s_flops + t_flops,
        "complete_trials": states.count("COMPLETE"),
        "pruned_trials": states.count("PRUNED"),
        "best_search_val": result.study.best_value,
        "params": result.proxy_params,
        "test_l2": metrics["test_l2"],
        "test_l2_fine": metrics.get("test_l2_fine"),
        "target_val_loss": metrics["val_loss"],
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def print_table(a: dict, b: dict, title: str) -> None:
    """The audit table of one seed in Markdown."""
    print(f"\n{title}")
    print(
        "\n| arm | search K | search s | search GFLOP (epochs) | final run s | final run GFLOP | "
        "total s | total GFLOP | best search val | chosen lr, batch, beta1, beta2 | "
        "final test rel-L2 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r, name in ((a, "(a) proxy + µTransfer"), (b, "(b) tune target directly")):
        p = r["params"]
        print(
            f"| {name} | {r['search_modes']} | {r['search_seconds']:.1f} | "
            f"{r['search_flops'] / 1e9:.4g} ({r['search_epochs']}) | {r['target_seconds']:.1f} | "
            f"{r['target_flops'] / 1e9:.4g} | {r['search_seconds'] + r['target_seconds']:.1f} | "
            f"{r['total_flops'] / 1e9:.4g} | {r['best_search_val']:.4f} | "
            f"{p['lr']:.2e}, {p['batch_size']}, {p['beta1']:.3f}, {p['beta2']:.4f} | "
            f"{100 * r['test_l2']:.2f} % |"
        )
    ta = a["search_seconds"] + a["target_seconds"]
    tb = b["search_seconds"] + b["target_seconds"]
    print(
        f"| ratio (a)/(b) | | {_ratio(a['search_seconds'], b['search_seconds']):.2f} | "
        f"{_ratio(a['search_flops'], b['search_flops']):.2f} | "
        f"{_ratio(a['target_seconds'], b['target_seconds']):.2f} | "
        f"{_ratio(a['target_flops'], b['target_flops']):.2f} | {_ratio(ta, tb):.2f} | "
        f"{_ratio(a['total_flops'], b['total_flops']):.2f} | | | "
        f"{_ratio(a['test_l2'], b['test_l2']):.2f} |"
    )


def _mean(records: list[dict], key: str) -> float:
    return sum(r[key] for r in records) / len(records)


def _sd(records: list[dict], key: str) -> float:
    if len(records) < 2:
        return 0.0
    m = _mean(records, key)
    return math.sqrt(sum((r[key] - m) ** 2 for r in records) / (len(records) - 1))


def print_summary(arms_a: list[dict], arms_b: list[dict]) -> None:
    """Means over the seeds (test error with its standard deviation) and their ratios."""
    print(f"\nSummary over {len(arms_a)} seed(s): means (test error: mean ± s.d. over seeds)")
    print(
        "\n| arm | search s | search GFLOP | final run s | total s | total GFLOP | "
        "final test rel-L2 | seeds (a) better |"
    )
    print("|---|---|---|---|---|---|---|---|")
    better = sum(a["test_l2"] < b["test_l2"] for a, b in zip(arms_a, arms_b, strict=True))
    for recs, name, wins in (
        (arms_a, "(a) proxy + µTransfer", f"{better}/{len(arms_a)}"),
        (arms_b, "(b) tune target directly", ""),
    ):
        print(
            f"| {name} | {_mean(recs, 'search_seconds'):.1f} | "
            f"{_mean(recs, 'search_flops') / 1e9:.4g} | {_mean(recs, 'target_seconds'):.1f} | "
            f"{_mean(recs, 'search_seconds') + _mean(recs, 'target_seconds'):.1f} | "
            f"{_mean(recs, 'total_flops') / 1e9:.4g} | {100 * _mean(recs, 'test_l2'):.2f} ± "
            f"{100 * _sd(recs, 'test_l2'):.2f} % | {wins} |"
        )
    total = {
        k: sum(r["search_seconds"] + r["target_seconds"] for r in recs)
        for k, recs in (("a", arms_a), ("b", arms_b))
    }
    print(
        f"| ratio (a)/(b) | "
        f"{_ratio(_mean(arms_a, 'search_seconds'), _mean(arms_b, 'search_seconds')):.2f} | "
        f"{_ratio(_mean(arms_a, 'search_flops'), _mean(arms_b, 'search_flops')):.2f} | "
        f"{_ratio(_mean(arms_a, 'target_seconds'), _mean(arms_b, 'target_seconds')):.2f} | "
        f"{_ratio(total['a'], total['b']):.2f} | "
        f"{_ratio(_mean(arms_a, 'total_flops'), _mean(arms_b, 'total_flops')):.2f} | "
        f"{_ratio(_mean(arms_a, 'test_l2'), _mean(arms_b, 'test_l2')):.2f} | |"
    )
    print(f"\n{PAPER}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--problem", default="darcy", choices=sorted(FULL))
    parser.add_argument("--json", type=Path, default=None, help="also write the records here")
    args = parser.parse_args(argv)
    setup = (QUICK if args.quick else FULL)[args.problem]
    import optuna

    from pdes import load_problem

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    env = {
        "mode": "quick" if args.quick else "full",
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "load_before": load_average(),
    }
    print(" ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    print(
        f"{setup.problem} {setup.overrides}: width {setup.width}, {setup.n_layers} layers, "
        f"{setup.n_trials} trials x {setup.proxy_epochs} epochs (TPE, median pruner), seeds "
        f"{list(setup.seeds)}, final run {setup.target_epochs} epochs at K = {setup.target_modes}; "
        f"search space overrides {setup.search_space}",
        flush=True,
    )
    problem = load_problem(setup.problem, setup.overrides)
    for split in ("train", "val", "test"):
        problem.dataset(split)  # generated (or read from the cache) before any clock starts
    arms_a: list[dict] = []
    arms_b: list[dict] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="compute_audit_") as tmp:
        storage = f"sqlite:///{Path(tmp) / 'audit.db'}"
        for seed in setup.seeds:
            a = run_arm("proxy", setup, setup.proxy_modes, storage, seed)
            b = run_arm("direct", setup, setup.target_modes, storage, seed)
            print(
                f"seed {seed}: (a) {a['wall_seconds']:.0f} s, (b) {b['wall_seconds']:.0f} s",
                flush=True,
            )
            arms_a.append(a)
            arms_b.append(b)
    env["load_after"] = load_average()
    env["total_seconds"] = time.perf_counter() - start
    for a, b in zip(arms_a, arms_b, strict=True):
        print_table(a, b, f"seed {a['seed']}:")
    print_summary(arms_a, arms_b)
    print(
        f"total {env['total_seconds']:.0f} s; load average {env['load_before']} -> "
        f"{env['load_after']}"
    )
    if args.json is not None:
        record = {"env": env, "setup": setup.__dict__, "a": arms_a, "b": arms_b}
        args.json.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
