"""Does physics-informed training help the transferred target, and does tuning its weight pay?

Usage::

    python benchmarks/pino_audit.py --n-jobs 2          # the full run (pre-registered below)
    python benchmarks/pino_audit.py --quick             # tiny sizes, seconds
    python benchmarks/pino_audit.py --readme-from benchmarks/results/pino_audit.json

Per seed (one process, one thread), on Darcy 33 x 33 solved on its training grid (the labels'
residual is round-off), K-only µTransfer from a K = 4 proxy to the K = 16 target (width 16):

* **data**: the proxy search (TPE, median pruner, ``n_trials`` x ``search_epochs``) tunes lr,
  batch size and betas on the data loss; the transferred values train the target;
* **pino**: the same search with ``train={"loss": "pino"}`` also tunes the physics weight
  (log-uniform on ``physics_range``); the transferred values, the weight unchanged, train the
  target with the PINO loss;
* **grid**: the pino search's transferred lr, batch size and betas with each weight of
  ``weight_grid`` instead of the tuned one; "val-selected" is, per seed, the grid weight with
  the lowest validation loss (what a user would pick without the tuned one).

Equal budget: every search has the same trials and epochs, every target the same epochs and
data. What is not equal: a PINO step also evaluates the residual (its CPU seconds are reported
beside), and the pino search has one more dimension to tune with the same trials.

Pre-registered (fixed in :data:`FULL` before the run; ``run_id`` hashes it):

* **primary**: pino − data target test rel-L2 (physical units), paired over seeds, Student-t
  95 %; "PINO helps" if the interval lies below 0, "hurts" if above, else "not resolved";
* **secondary** (one family, Holm, Bonferroni-level intervals): tuned − each grid weight and
  tuned − val-selected.

It writes ``pino_audit.json`` and, for a full run into benchmarks/results, the README block
between the ``pino_audit`` markers, rendered from the JSON.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import darcy_search
import harness
from seed_stats import TESTS_HEADER, finite_mean, per_seed, pp, test_row

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Design(harness.Registered):
    """The pre-registered audit (everything that decides a result)."""

    problem: str
    overrides: dict[str, Any]
    proxy: dict[str, int]
    target: dict[str, int]
    n_layers: int
    n_trials: int
    search_epochs: int
    final_epochs: int
    search_space: dict[str, Any] = field(default_factory=dict)
    physics_range: dict[str, float] = field(default_factory=dict)
    weight_grid: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
    seeds: tuple[int, ...] = tuple(40000 + 1000 * i for i in range(6))
    primary: str = "pino − data test rel-L2, 95 % Student-t over seeds"

    @property
    def width(self) -> int:
        """The proxy's width (what :func:`darcy_search.search` reads by default)."""
        return self.proxy["width"]


FULL = Design(
    problem="darcy",
    overrides={"resolution": 33, "n_fine": 33, "n_train": 96, "n_val": 32, "n_test": 128},
    proxy={"modes": 4, "width": 16},
    target={"modes": 16, "width": 16},
    n_layers=4,
    n_trials=12,
    search_epochs=6,
    final_epochs=16,
    search_space={"batch_size": [8, 16, 32]},
    physics_range={"low": 0.003, "high": 3.0},
)
QUICK = Design(
    problem="darcy",
    overrides={"resolution": 9, "n_fine": 9, "n_train": 16, "n_val": 4, "n_test": 8},
    proxy={"modes": 2, "width": 4},
    target={"modes": 4, "width": 4},
    n_layers=2,
    n_trials=2,
    search_epochs=1,
    final_epochs=1,
    search_space={"batch_size": [8]},
    physics_range={"low": 0.01, "high": 1.0},
    weight_grid=(0.1, 1.0),
    seeds=(0, 1000, 2000),
)


# -- running ----------------------------------------------------------------------------------
def run_seed(design: Design, seed: int, folder: str) -> dict[str, Any]:
    """The two searches of one seed and its targets (one process, one thread)."""
    import optuna
    import torch

    from pdes import load_problem
    from transfer_tune.core.factory import build_model
    from transfer_tune.core.hparams import HParams
    from transfer_tune.core.parametrization import get_parametrization
    from transfer_tune.core.train import evaluate_physics
    from transfer_tune.search.transfer import plan_transfer

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    problem = load_problem(design.problem, design.overrides)
    storage = f"sqlite:///{Path(folder) / f'seed{seed}.db'}"
    p, t = design.proxy, design.target

    def search(name: str, budget: Design = design, **options: Any):
        study, seconds = darcy_search.search(
            budget, problem, p["modes"], storage=storage, study_name=f"{name}-{seed}",
            seed=seed, **options,
        )  # fmt: skip
        return study, seconds

    # one throwaway trial first: the one-off costs of the process are charged to no arm
    search("warm-up", dataclasses.replace(design, n_trials=1, search_epochs=1))
    pino_space = {**design.search_space, "physics_weight": dict(design.physics_range)}
    studies, search_cpu = {}, {}
    studies["data"], search_cpu["data"] = search("data")
    studies["pino"], search_cpu["pino"] = search(
        "pino", dataclasses.replace(design, search_space=pino_space), train={"loss": "pino"}
    )
    plans = {
        arm: plan_transfer(studies[arm], t["modes"], design.final_epochs, width=t["width"])
        for arm in ("data", "pino")
    }
    tuned = plans["pino"].hparams()
    settings = {"data": plans["data"].hparams(), "pino": tuned}
    for w in design.weight_grid:
        settings[f"w={w:g}"] = HParams(**{**tuned.to_dict(), "physics_weight": w})
    runs = {}
    for arm, hparams in settings.items():
        plan = plans["data" if arm == "data" else "pino"]
        rule = get_parametrization(**plan.parametrization)
        model = build_model(plan.model, seed=seed)
        rule.initialize(model, generator=torch.Generator().manual_seed(seed))
        run = darcy_search.target_run(model, rule, problem, hparams, plan.epochs, seed)
        residual = math.inf
        if math.isfinite(run["test_l2"]):
            residual = evaluate_physics(model.cpu(), problem.dataset("test")[0], problem.physics)
        runs[arm] = {
            **run,
            "test_residual": residual,
            "lr": hparams.lr,
            "batch_size": hparams.batch_size,
            "physics_weight": hparams.physics_weight if hparams.loss == "pino" else 0.0,
        }
    print(
        f"seed {seed}: tuned weight {tuned.physics_weight:.3g}; "
        + ", ".join(f"{a} {r['test_l2']:.4f}" for a, r in runs.items()),
        flush=True,
    )
    return {"seed": seed, "search_cpu_seconds": search_cpu, "runs": runs}


# -- reading ----------------------------------------------------------------------------------
def _selected(seed: dict, grid: list[str]) -> str:
    """The grid arm of ``seed`` with the lowest validation loss."""
    return min(grid, key=lambda a: seed["runs"][a]["val_loss"])


def summarise(record: dict) -> dict[str, Any]:
    """The primary test (95 %) and the secondary family (Holm)."""
    from transfer_tune.analysis.stats import family_tests

    seeds = record["seeds"]
    grid = [f"w={w:g}" for w in record["design"]["weight_grid"]]
    tuned = per_seed(record, "pino")

    def minus(other: list[float]) -> list[float]:
        return [a - b for a, b in zip(tuned, other, strict=True)]

    primary = family_tests({"pino − data": minus(per_seed(record, "data"))}, CONFIDENCE)[
        "pino − data"
    ]
    selected = [s["runs"][_selected(s, grid)]["test_l2"] for s in seeds]
    family = {f"tuned − {a}": minus(per_seed(record, a)) for a in grid}
    family["tuned − val-selected grid"] = minus(selected)
    secondary = family_tests(family, CONFIDENCE)
    arms = ["data", "pino", *grid]
    verdict = (
        "PINO helps" if primary["high"] < 0 else "PINO hurts" if primary["low"] > 0 else
        "not resolved"
    )  # fmt: skip
    return {
        "primary": primary,
        "verdict": verdict,
        "secondary": secondary,
        "means": {a: finite_mean(per_seed(record, a)) for a in arms},
        "residuals": {a: finite_mean(per_seed(record, a, "test_residual")) for a in arms},
        "target_cpu": {a: finite_mean(per_seed(record, a, "cpu_seconds")) for a in arms},
        "search_cpu": {
            a: finite_mean([s["search_cpu_seconds"][a] for s in seeds]) for a in ("data", "pino")
        },
        "tuned_weights": [s["runs"]["pino"]["physics_weight"] for s in seeds],
        "selected": [_selected(s, grid) for s in seeds],
    }


def render(record: dict) -> str:
    """The README block of the audit, from the JSON record alone."""
    d, env, s = record["design"], record["env"], record["summary"]
    res = d["overrides"]["resolution"]
    lines = [
        f"Run `{record['run_id']}` (design hash), generated by `benchmarks/pino_audit.py` from "
        "`results/pino_audit.json`; do not edit by hand. "
        f"{d['problem']} {d['overrides']}; proxy K {d['proxy']['modes']} → target K "
        f"{d['target']['modes']} (width {d['target']['width']}, {res}×{res}, "
        f"{d['final_epochs']} epochs); every search {d['n_trials']} trials × "
        f"{d['search_epochs']} epochs (TPE, median pruner, chosen on validation data loss); "
        f"physics weight searched log-uniform on [{d['physics_range']['low']:g}, "
        f"{d['physics_range']['high']:g}]; {len(record['seeds'])} seeds. "
        f"{env['total_seconds'] / 60:.1f} min wall, {env['n_jobs']} worker processes × 1 "
        f"thread, {env['nproc']} cores, load {env['load_before']} -> {env['load_after']}.",
        "",
        "| arm | loss | physics weight | target test rel-L2 (mean, %) | test residual (mean) | "
        "target CPU s (mean) |",
        "|---|---|---|---|---|---|",
    ]
    for arm, mean in s["means"].items():
        weight = (
            "—" if arm == "data" else "tuned (per seed)" if arm == "pino" else arm[2:]
        )  # fmt: skip
        lines.append(
            f"| {arm} | {'data' if arm == 'data' else 'pino'} | {weight} | {100 * mean:.3f} | "
            f"{s['residuals'][arm]:.4g} | {s['target_cpu'][arm]:.1f} |"
        )
    lines += [
        "",
        "Differences of the target's test error (percentage points, paired over seeds, "
        "Student-t; negative: the first arm is better). The primary test at 95 %; the "
        f"secondary family of {len(s['secondary'])} with Holm-adjusted p and intervals at "
        "the Bonferroni level:",
        "",
        *TESTS_HEADER,
        test_row("**primary: pino − data**", s["primary"]),
        *[test_row(n, v) for n, v in s["secondary"].items()],
        "",
        prose(record),
    ]
    return "\n".join(lines)


def prose(record: dict) -> str:
    """The sentences the README quotes, from the JSON alone (never typed by hand)."""
    s = record["summary"]
    p = s["primary"]
    weights = ", ".join(f"{w:.3g}" for w in s["tuned_weights"])
    cpu = s["target_cpu"]
    sel = s["secondary"]["tuned − val-selected grid"]
    return (
        f"At equal epochs and search trials, the PINO target's test error minus the data-only "
        f"target's is {pp(p['estimate'])} pp [{pp(p['low'])}, {pp(p['high'])}] (95 %, "
        f"{p['n']} seeds, {p['positive']} of them > 0): {s['verdict']}. Means: data-only "
        f"{100 * s['means']['data']:.3f} %, PINO {100 * s['means']['pino']:.3f} %; test "
        f"residual {s['residuals']['data']:.3g} against {s['residuals']['pino']:.3g}. A PINO "
        f"target run took {cpu['pino'] / cpu['data']:.2f}x the data-only run's CPU seconds. "
        f"The tuned physics weights were {weights}; tuned minus the weight a user would pick "
        f"from the grid on validation loss: {pp(sel['estimate'])} pp [{pp(sel['low'])}, "
        f"{pp(sel['high'])}] (Holm p {sel['p_holm']:.3g}, {sel['decision']})."
    )


BLOCK = harness.Block("pino_audit", render)


# -- entry point ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = harness.parser(__doc__, n_jobs=2).parse_args(argv)
    if args.readme_from:
        return harness.rerender(BLOCK, args.readme_from)
    design = QUICK if args.quick else FULL

    def prepare() -> None:
        from pdes import load_problem

        harness.generate_splits(load_problem(design.problem, design.overrides))

    return harness.run_audit(
        args, design, run_seed, summarise, render, BLOCK, prepare, folder_prefix="pino_audit_"
    )


if __name__ == "__main__":
    raise SystemExit(main())
