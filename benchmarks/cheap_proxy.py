"""Is a narrow, coarse, few-mode µP proxy a search >= 10x cheaper at equal target error?

The headline audit of issue "Make the proxy cheap" (§4). The design and the tests below were
written into this file before its first full run; the JSON records them with a run id (a hash
of the design), so a changed design is a new run.

Usage::

    python benchmarks/cheap_proxy.py                # full: 5 seeds, 2 worker processes
    python benchmarks/cheap_proxy.py --quick        # tiny sizes, seconds (the test suite's)
    python benchmarks/cheap_proxy.py --readme-from benchmarks/results/cheap_proxy.json

Design (:data:`FULL`): Darcy on a 33 x 33 grid (solved on 129 x 129 nodes); the target is an
FNO of width 32, K = 12, 4 layers, trained 16 epochs on the full grid. Every search has the
same size: TPE + median pruner, 12 trials x 6 epochs, chosen on the validation split; lr, batch
size in {8, 16, 32} and betas are searched. Per seed s, five arms:

(a) **cheap µP proxy**: width 8, K = 4, the 17 x 17 subsample of the grid; its values
    transferred with µP (K and width) to the target;
(b) **direct SP search** on the target itself (width 32, K = 12, 33 x 33);
(c) **direct µP search** on the target (µP relative to width 8, K = 4: the rates searched are
    the base rates (a) would transfer);
(d) **the cheap proxy of (a) under SP**: the same search, its values reused unchanged (no
    extra search);
(e) **today's K-only proxy**: width 32, K = 4, 33 x 33, values transferred with µP.

Each arm's values train one target (seed s: the same initial draw of the target's SP tensors
and the same batch order in every arm). Search cost: FLOPs (every epoch every trial ran,
validation and Adam included, :func:`transfer_tune.core.flops.search_flops`) and the CPU seconds
of the search process (1 thread), after one throwaway trial has paid the process's one-off
costs.

Pre-registered goal, three parts, each read at its own 95 %:

1. cost: (a)'s search costs <= 0.1x (b)'s, in FLOPs and in CPU seconds (the ratio of the
   seeds' totals; per-seed ratios reported beside);
2. error: (a)'s target test error minus (b)'s, paired Student-t 95 % interval: "within seed
   noise or better" when the interval's upper end is <= 0 or it contains 0;
3. (a) beats (d): (d) minus (a), paired 95 % interval above 0.

Secondary family (Holm over the family, intervals at the Bonferroni level): (a) − (c),
(a) − (e), (b) − (c).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import darcy_search
import harness
from seed_stats import TESTS_HEADER, finite_mean, paired, per_seed, pp, test_row

CONFIDENCE = 0.95
ARMS = {
    "a": "cheap µP proxy → µP",
    "b": "direct SP search",
    "c": "direct µP search",
    "d": "cheap proxy, SP reuse",
    "e": "K-only µP proxy → µP",
}


@dataclass(frozen=True)
class Design(harness.Registered):
    """The pre-registered audit (everything that decides a result)."""

    problem: str
    overrides: dict[str, Any]
    target: dict[str, int]
    cheap: dict[str, int]
    k_only: dict[str, int]
    n_layers: int
    n_trials: int
    search_epochs: int
    final_epochs: int
    search_space: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = tuple(30000 + 1000 * i for i in range(5))
    goal: str = (
        "(a) search <= 0.1x (b) in FLOPs and CPU s; (a)-(b) test error 95 % interval <= 0 or "
        "containing 0; (d)-(a) 95 % interval > 0"
    )


FULL = Design(
    problem="darcy",
    overrides={"resolution": 33, "n_fine": 129, "n_train": 128, "n_val": 32, "n_test": 96},
    target={"modes": 12, "width": 32},
    cheap={"modes": 4, "width": 8, "resolution": 17},
    k_only={"modes": 4, "width": 32, "resolution": 33},
    n_layers=4,
    n_trials=12,
    search_epochs=6,
    final_epochs=16,
    search_space={"batch_size": [8, 16, 32]},
)
QUICK = Design(
    problem="darcy",
    overrides={"resolution": 9, "n_fine": 17, "n_train": 16, "n_val": 4, "n_test": 8},
    target={"modes": 4, "width": 8},
    cheap={"modes": 2, "width": 4, "resolution": 5},
    k_only={"modes": 2, "width": 8, "resolution": 9},
    n_layers=2,
    n_trials=2,
    search_epochs=1,
    final_epochs=1,
    search_space={"batch_size": [8]},
    seeds=(0, 1000, 2000),
)


# -- running ----------------------------------------------------------------------------------
def run_seed(design: Design, seed: int, folder: str) -> dict[str, Any]:
    """The four searches of one seed and its five target runs (one process, one thread)."""
    import optuna
    import torch

    from pdes import load_problem
    from transfer_tune.core.factory import build_model
    from transfer_tune.core.flops import search_flops
    from transfer_tune.core.parametrization import get_parametrization
    from transfer_tune.search.compute import trial_epochs
    from transfer_tune.search.proxy import ProxySetup
    from transfer_tune.search.transfer import plan_transfer

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    problem = load_problem(design.problem, design.overrides)
    t = design.target
    storage = f"sqlite:///{Path(folder) / f'seed{seed}.db'}"

    def search(name: str, modes: int, width: int, resolution=None, budget=design, **options):
        if resolution not in (None, problem.resolution):
            options["resolution"] = resolution
        study, seconds = darcy_search.search(
            budget,
            problem,
            modes,
            width=width,
            storage=storage,
            study_name=f"{name}-seed{seed}",
            seed=seed,
            **options,
        )
        setup = ProxySetup.from_study(study)
        grid = load_problem(setup.problem).grid_shape
        flops = search_flops(trial_epochs(study), setup.model, grid, problem.n_train, problem.n_val)
        return study, {"cpu_seconds": seconds, "flops": flops, "best_val": study.best_value}

    c, k = design.cheap, design.k_only
    # one throwaway trial first: the process's one-off costs (lazy imports, the storage
    # engine, torch's first kernels) are then charged to no arm
    warm = dataclasses.replace(design, n_trials=1, search_epochs=1)
    search("warm-up", c["modes"], c["width"], c["resolution"], budget=warm)
    studies, costs = {}, {}
    studies["a"], costs["a"] = search("cheap", c["modes"], c["width"], c["resolution"])
    studies["b"], costs["b"] = search("direct-sp", t["modes"], t["width"])
    studies["c"], costs["c"] = search(
        "direct-mup", t["modes"], t["width"], base_modes=c["modes"], base_width=c["width"]
    )
    studies["e"], costs["e"] = search("k-only", k["modes"], k["width"], k["resolution"])
    plans = {
        arm: plan_transfer(studies[arm], t["modes"], design.final_epochs, width=t["width"])
        for arm in ("a", "b", "c", "e")
    }
    plans["d"] = plan_transfer(
        studies["a"], t["modes"], design.final_epochs, rule="sp", width=t["width"]
    )
    runs = {}
    for arm, plan in plans.items():
        rule = get_parametrization(**plan.parametrization)
        model = build_model(plan.model, seed=seed)
        rule.initialize(model, generator=torch.Generator().manual_seed(seed))
        run = darcy_search.target_run(model, rule, problem, plan.hparams(), plan.epochs, seed)
        runs[arm] = {
            **run,
            "lr": plan.lr,
            "batch_size": plan.batch_size,
            "step_flop_ratio": plan.step_flop_ratio,
        }
    costs["d"] = costs["a"]  # the same search
    print(f"seed {seed}: " + ", ".join(f"{a} {runs[a]['test_l2']:.4f}" for a in ARMS), flush=True)
    return {"seed": seed, "search": costs, "runs": runs}


# -- reading ----------------------------------------------------------------------------------
def summarise(record: dict) -> dict[str, Any]:
    """The three goal tests (each at 95 %) and the secondary family (Holm)."""
    from transfer_tune.analysis.stats import family_tests

    seeds = record["seeds"]
    cost = {}
    for unit in ("flops", "cpu_seconds"):
        total = {arm: sum(s["search"][arm][unit] for s in seeds) for arm in ARMS}
        cost[unit] = {
            "a_over_b": total["a"] / total["b"],
            "e_over_b": total["e"] / total["b"],
            "c_over_b": total["c"] / total["b"],
            "per_seed_a_over_b": [s["search"]["a"][unit] / s["search"]["b"][unit] for s in seeds],
        }
    goal = {
        "(a) − (b)": family_tests({"x": paired(record, "a", "b")}, CONFIDENCE)["x"],
        "(d) − (a)": family_tests({"x": paired(record, "d", "a")}, CONFIDENCE)["x"],
    }
    secondary = family_tests(
        {
            "(a) − (c)": paired(record, "a", "c"),
            "(a) − (e)": paired(record, "a", "e"),
            "(b) − (c)": paired(record, "b", "c"),
        },
        CONFIDENCE,
    )
    ab, da = goal["(a) − (b)"], goal["(d) − (a)"]
    holds = {
        "cost": cost["flops"]["a_over_b"] <= 0.1 and cost["cpu_seconds"]["a_over_b"] <= 0.1,
        "error": ab["high"] <= 0 or ab["low"] <= 0 <= ab["high"],
        "beats_sp": da["low"] > 0,
    }
    means = {arm: finite_mean(per_seed(record, arm)) for arm in ARMS}
    return {"cost": cost, "goal": goal, "secondary": secondary, "holds": holds, "means": means}


def render(record: dict) -> str:
    """The README block of the audit, from the JSON record alone."""
    d, env, s = record["design"], record["env"], record["summary"]
    seeds = record["seeds"]
    t, c, k = d["target"], d["cheap"], d["k_only"]
    res = d["overrides"]["resolution"]
    lines = [
        f"Run `{record['run_id']}` (design hash), generated by `benchmarks/cheap_proxy.py` "
        "from `results/cheap_proxy.json`; do not edit by hand. "
        f"{d['problem']} {d['overrides']}; target width {t['width']}, K {t['modes']}, "
        f"{res}×{res}, {d['final_epochs']} epochs; every search {d['n_trials']} trials × "
        f"{d['search_epochs']} epochs (TPE, median pruner, chosen on validation); "
        f"{len(seeds)} seeds. {env['total_seconds'] / 60:.1f} min wall, {env['n_jobs']} worker "
        f"processes × 1 thread, {env['nproc']} cores, load {env['load_before']} -> "
        f"{env['load_after']}.",
        "",
        "| arm | searched model | search FLOPs (mean) | search CPU s (mean) | "
        "one step vs target | target test rel-L2 (mean, %) |",
        "|---|---|---|---|---|---|",
    ]
    models = {
        "a": f"width {c['width']}, K {c['modes']}, {c['resolution']}² (µP)",
        "b": f"width {t['width']}, K {t['modes']}, {res}² (SP)",
        "c": f"width {t['width']}, K {t['modes']}, {res}² (µP, base width {c['width']}, K "
        f"{c['modes']})",
        "d": "the search of (a), values reused under SP",
        "e": f"width {k['width']}, K {k['modes']}, {k['resolution']}² (µP)",
    }
    for arm, name in ARMS.items():
        flops = finite_mean([x["search"][arm]["flops"] for x in seeds])
        cpu = finite_mean([x["search"][arm]["cpu_seconds"] for x in seeds])
        ratio = seeds[0]["runs"][arm]["step_flop_ratio"]
        lines.append(
            f"| ({arm}) {name} | {models[arm]} | {flops:.3g} | {cpu:.1f} | "
            f"{ratio:.3f} | {100 * s['means'][arm]:.3f} |"
        )
    lines += [
        "",
        "Differences of the target's test error (percentage points, paired over seeds, "
        "Student-t; negative: the first arm is better). The two goal tests at 95 % each; the "
        f"secondary family of {len(s['secondary'])} with Holm-adjusted p and intervals at the "
        "Bonferroni level:",
        "",
        *TESTS_HEADER,
    ]
    lines += [test_row(f"**goal: {n}**", v) for n, v in s["goal"].items()]
    lines += [test_row(n, v) for n, v in s["secondary"].items()]
    lines += ["", prose(record)]
    return "\n".join(lines)


def prose(record: dict) -> str:
    """The sentences the README quotes, from the JSON alone (never typed by hand)."""
    s = record["summary"]
    cost, ab, da, holds = s["cost"], s["goal"]["(a) − (b)"], s["goal"]["(d) − (a)"], s["holds"]
    per = cost["flops"]["per_seed_a_over_b"]
    word = {True: "holds", False: "does not hold"}
    flops_ok = cost["flops"]["a_over_b"] <= 0.1
    cpu_ok = cost["cpu_seconds"]["a_over_b"] <= 0.1
    gaps = paired(record, "d", "a")
    return (
        f"Cost: the cheap proxy's search took {cost['flops']['a_over_b']:.3f}x the direct "
        f"search's FLOPs (per seed {min(per):.3f}–{max(per):.3f}) and "
        f"{cost['cpu_seconds']['a_over_b']:.3f}x its CPU seconds; today's K-only proxy "
        f"{cost['flops']['e_over_b']:.3f}x and {cost['cpu_seconds']['e_over_b']:.3f}x. Goal "
        f"≤ 0.1x: in FLOPs it {word[flops_ok]}, in CPU seconds it {word[cpu_ok]} "
        f"(so the cost goal as a whole {word[holds['cost']]}). Error: (a) − (b) "
        f"{pp(ab['estimate'])} pp [{pp(ab['low'])}, {pp(ab['high'])}] (95 %; goal: within "
        f"seed noise or better: {word[holds['error']]}; the interval cannot exclude (a) being "
        f"up to {100 * ab['high']:.2f} pp worse). Against SP reuse of the same cheap proxy: "
        f"(d) − (a) {pp(da['estimate'])} pp [{pp(da['low'])}, {pp(da['high'])}] (95 %; goal: "
        f"(a) beats (d): {word[holds['beats_sp']]}); SP reuse was worse in "
        f"{sum(g > 0 for g in gaps)} of {len(gaps)} seeds, by {pp(min(gaps))} to "
        f"{pp(max(gaps))} pp"
        + ("." if holds["beats_sp"] else ": too spread for the t interval to resolve.")
    )


BLOCK = harness.Block("cheap_proxy", render)


# -- entry point ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = harness.parser(__doc__, n_jobs=2).parse_args(argv)
    if args.readme_from:
        return harness.rerender(BLOCK, args.readme_from)
    design = QUICK if args.quick else FULL

    def prepare() -> None:
        from pdes import load_problem
        from pdes.coarse import coarse_problem

        problem = load_problem(design.problem, design.overrides)
        sides = (design.cheap, design.k_only)
        coarse = {coarse_problem(problem, side["resolution"]) for side in sides}
        harness.generate_splits(*({problem} | coarse))

    return harness.run_audit(
        args, design, run_seed, summarise, render, BLOCK, prepare, folder_prefix="cheap_proxy_"
    )


if __name__ == "__main__":
    raise SystemExit(main())
