"""Cheaper search from early statistics: the training horizon of proxy trials, measured.

Usage::

    python benchmarks/horizon.py               # full: Darcy 32 x 32, K 4 -> 16, 5 seeds
    python benchmarks/horizon.py --quick       # tiny sizes, seconds (the test suite's)
    python benchmarks/horizon.py --readme-from benchmarks/results/horizon.json

Three parts, one process, one torch thread:

1. **Does µP settle earlier than SP?** A landscape sweep over the learning rate (both
   parametrizations, K_proxy and K_target, full epochs) read back with
   :func:`transfer_tune.report.readers.read_curves` and analysed with
   :func:`transfer_tune.analyse_horizon`: per epoch, the Spearman / Kendall rank
   correlation with the final loss and the regret of the early leader; the horizon is the
   shortest epoch from which Spearman >= 0.9 and regret <= 2 % hold.
2. **Arm (e) against arm (b)** of the compute audit, per seed: (e) searches the proxy
   (K_proxy; µP with K_base = K_proxy, the SP model there) with ``horizon="auto"`` (a pilot of
   ``PILOT_TRIALS`` random trials at full epochs picks h, the rest of the trials train h
   epochs), then µP transfer to K_target; (b) searches K_target directly under SP (all
   epochs) and trains the final run under SP. Same sampler (TPE), pruner (median), number of
   trials, epochs, search space, seed and final-run budget. Goal: search FLOPs of (e) <= 0.1x
   (b)'s at a test error no worse than (b)'s (its mean + one seed sd).
3. **Against what Optuna already offers**: the proxy search with the median, Hyperband and
   SuccessiveHalving pruners, each at all epochs and at the fixed horizon h that (e)'s pilot
   chose for that seed (``tune(..., horizon=h)``, no pilot), each transferred and trained as
   (e) is.

Costs: search FLOPs from :func:`transfer_tune.search.compute.compute_summary` (every epoch
every trial ran, the pilot's included; validation passes and Adam updates counted), CPU
seconds measured around each search. Test error: relative L2 in physical units on the test
split. The full run writes ``benchmarks/results/horizon.json`` and the block between
``<!-- horizon:begin -->`` and ``<!-- horizon:end -->`` of ``benchmarks/README.md`` from it;
nothing there is typed by hand.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import darcy_search
import harness
from seed_stats import mean, sd, t95

FIGURE = harness.RESULTS / "horizon_sweep"
#: arm -> (label, K searched, pruner, horizon: None | "auto" | "h" (the pilot's choice)).
ARMS = {
    "b": ("(b) direct search at K_target, SP", "target", "median", None),
    "e": ("(e) µP proxy, auto horizon", "proxy", "median", "auto"),
    "median": ("proxy, median, all epochs", "proxy", "median", None),
    "hyperband": ("proxy, Hyperband, all epochs", "proxy", "hyperband", None),
    "sh": ("proxy, SuccessiveHalving, all epochs", "proxy", "successive_halving", None),
    "median-h": ("proxy, median, fixed h", "proxy", "median", "h"),
    "hyperband-h": ("proxy, Hyperband, fixed h", "proxy", "hyperband", "h"),
    "sh-h": ("proxy, SuccessiveHalving, fixed h", "proxy", "successive_halving", "h"),
}
GOAL = 0.1
#: The README section written (before the markers) when the README has none yet.
SECTION = (
    "## Training horizon: cheaper proxy trials from early statistics (`benchmarks/horizon.py`)"
    "\n\n"
    'What `transfer-tune horizon` and `tune(..., horizon="auto")` measure, and what '
    "the auto horizon buys against direct tuning and Optuna's pruners. Everything "
    "between the markers is written by the script from its JSON records "
    "(`benchmarks/results/horizon*.json`; `--readme-from` re-renders them)."
)


@dataclass(frozen=True)
class Setup(darcy_search.Budget):
    """Budget of the benchmark: the shared Darcy search (:class:`darcy_search.Budget`), the
    seeds, the arms, the lr sweep of part 1 and the reference check."""

    seeds: tuple[int, ...] = (0, 1000, 2000, 3000, 4000)
    arms: tuple[str, ...] = tuple(ARMS)
    sweep_lrs: tuple[float, ...] = (1e-4, 2.5e-4, 6e-4, 1.5e-3, 4e-3, 1e-2, 2.5e-2, 6e-2)
    sweep_batch: int = 16
    check_hparams: dict[str, Any] = field(default_factory=lambda: {"lr": 3e-3, "batch_size": 8})


FULL = Setup(**darcy_search.full(search_epochs=8))
QUICK = Setup(
    **darcy_search.quick(width=4, n_layers=1, n_trials=6, search_epochs=3),
    seeds=(0, 1000),
    sweep_lrs=(1e-3, 1e-2, 5e-2),
    sweep_batch=8,
)


# -- running ----------------------------------------------------------------------------------
def reference_check(setup: Setup, problem: Any) -> dict:
    """Train K_proxy and K_target under SP with the same hyperparameters: does K matter?"""
    errors = {
        modes: darcy_search.sp_run(setup, problem, modes, 0, setup.check_hparams)[0]
        for modes in (setup.proxy_modes, setup.target_modes)
    }
    return {
        "hparams": setup.check_hparams,
        "epochs": setup.final_epochs,
        "test_l2": {str(k): v for k, v in errors.items()},
        "ratio": errors[setup.target_modes] / errors[setup.proxy_modes],
    }


def landscape(setup: Setup, problem: Any, storage: str, figure: bool) -> list[dict]:
    """Part 1: the lr sweep under µP and SP, read back and analysed per (parametrization, K)."""
    from transfer_tune import analyse_horizon as analyse
    from transfer_tune.analysis.landscape import sweep
    from transfer_tune.report import horizon_figure, read_curves

    sweep(
        problem,
        modes=[setup.proxy_modes, setup.target_modes],
        values=list(setup.sweep_lrs),
        seeds=[0],
        epochs=setup.search_epochs,
        storage=storage,
        base_modes=setup.proxy_modes,
        width=setup.width,
        n_layers=setup.n_layers,
        hparams={"batch_size": setup.sweep_batch},
        sweep_name="horizon-lr",
        device="cpu",
        progress=False,
    )
    results = [analyse(s) for s in read_curves(storage, "horizon-lr")]
    if figure:
        # the shared benchmarks/results/plotly.min.js, not a 4.8 MB copy per figure
        horizon_figure(results).write_html(
            str(FIGURE.with_suffix(".html")), include_plotlyjs="directory", full_html=True
        )
    return [r.to_dict() for r in results]


def run_seed(setup: Setup, problem: Any, storage: str, seed: int) -> dict[str, dict]:
    """Every arm of ``setup.arms`` for one seed (arm (e) first: its h fixes the "-h" arms)."""
    from optuna.trial import TrialState

    from transfer_tune.search.compute import compute_summary
    from transfer_tune.search.transfer import plan_transfer, run_target

    out: dict[str, dict] = {}
    h: int | None = None
    order = sorted(setup.arms, key=lambda a: a != "e")
    for arm in order:
        _, where, pruner, horizon = ARMS[arm]
        modes = setup.target_modes if where == "target" else setup.proxy_modes
        if horizon == "h":
            horizon = h
        study, search_cpu = darcy_search.search(
            setup,
            problem,
            modes,
            storage=storage,
            study_name=f"{arm}-seed{seed}",
            seed=seed,
            pruner=pruner,
            horizon=horizon,
        )
        evidence = study.user_attrs.get("horizon") or {}
        if arm == "e":
            h = int(evidence["epochs"])
        plan = plan_transfer(study, setup.target_modes, setup.final_epochs)
        cpu, start = time.process_time(), time.perf_counter()
        target = run_target(
            plan, storage, study_name=f"{arm}-seed{seed}-final", seed=seed, device="cpu",
            progress=False,
        )  # fmt: skip
        seconds, final_cpu = time.perf_counter() - start, time.process_time() - cpu
        compute = compute_summary(study, plan, problem, seconds)
        states = [t.state for t in study.get_trials(deepcopy=False)]
        stats = {s["epoch"]: s for s in evidence.get("stats", [])}
        chosen = stats.get(evidence.get("epochs"), {})
        out[arm] = {
            "arm": arm,
            "seed": seed,
            "search_modes": modes,
            "horizon": evidence.get("epochs", setup.search_epochs),
            "pilot_spearman": chosen.get("spearman"),
            "pilot_regret": chosen.get("regret"),
            "pilot_configs": evidence.get("n_configs"),
            "search_flops": compute["proxy_search_flops"],
            "search_epochs": compute["proxy_search_epochs"],
            "search_seconds": compute["proxy_seconds"],
            "search_cpu_seconds": search_cpu,
            "final_cpu_seconds": final_cpu,
            "complete_trials": states.count(TrialState.COMPLETE),
            "pruned_trials": states.count(TrialState.PRUNED),
            "params": {k: getattr(plan, k) for k in ("lr", "batch_size", "beta1", "beta2")},
            "test_l2": target.metrics["test_l2"],
        }
    return out


# -- statistics -------------------------------------------------------------------------------
def summarise(runs: dict[str, list[dict]], sweep: list[dict]) -> dict:
    """Means over seeds, ratios to (b), paired differences, the winner and the verdicts."""
    b_flops = mean([r["search_flops"] for r in runs["b"]])
    b_cpu = mean([r["search_cpu_seconds"] for r in runs["b"]])
    b_err = [r["test_l2"] for r in runs["b"]]
    arms = {}
    for arm, recs in runs.items():
        errs = [r["test_l2"] for r in recs]
        diffs = [e - b for e, b in zip(errs, b_err, strict=True)]
        arms[arm] = {
            "test_l2": errs,
            "test_l2_mean": mean(errs),
            "test_l2_sd": sd(errs),
            "search_flops": mean([r["search_flops"] for r in recs]),
            "search_flops_vs_b": mean([r["search_flops"] for r in recs]) / b_flops,
            "search_cpu_seconds": mean([r["search_cpu_seconds"] for r in recs]),
            "search_cpu_vs_b": mean([r["search_cpu_seconds"] for r in recs]) / b_cpu,
            "search_epochs": mean([r["search_epochs"] for r in recs]),
            "horizons": [r["horizon"] for r in recs],
            "minus_b_mean": mean(diffs),
            "minus_b_ci95": t95(diffs),
            "seeds_better_than_b": sum(d < 0 for d in diffs),
        }
    limit = arms["b"]["test_l2_mean"] + arms["b"]["test_l2_sd"]
    for a in arms.values():
        a["within_b_spread"] = a["test_l2_mean"] <= limit
    proxy = [a for a in runs if a != "b"]
    best = min(proxy, key=lambda a: arms[a]["test_l2_mean"])
    tie = arms[best]["test_l2_mean"] + arms[best]["test_l2_sd"]
    winner = min(
        (a for a in proxy if arms[a]["test_l2_mean"] <= tie),
        key=lambda a: arms[a]["search_flops"],
    )
    e = arms.get("e")
    settle = {}
    for s in sweep:
        settle.setdefault(s["modes"], {})[s["parametrization"]] = s["horizon"]
    return {
        "arms": arms,
        "b_limit": limit,
        "best_error_arm": best,
        "winner": winner,
        "goal_cost": None if e is None else e["search_flops_vs_b"] <= GOAL,
        "goal_error": None if e is None else e["within_b_spread"],
        "settle": settle,
    }


# -- the tables (stdout and README, from the record alone) -------------------------------------
def _pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.2f}"


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, fmt)


def family(record: dict) -> dict[str, dict]:
    """Every arm's per-seed difference to (b), read as one family (Holm p, Bonferroni t)."""
    from transfer_tune.analysis.stats import family_tests

    runs = record["runs"]
    b = [r["test_l2"] for r in runs["b"]]
    return family_tests(
        {
            arm: [r["test_l2"] - x for r, x in zip(recs, b, strict=True)]
            for arm, recs in runs.items()
            if arm != "b"
        }
    )


def render(record: dict) -> str:
    """The Markdown block: setup, sweep horizons, arms, verdicts (from the JSON alone)."""
    s, env, summ = record["setup"], record["env"], record["summary"]
    arms = summ["arms"]
    seeds = len(s["seeds"])
    fam = family(record)
    level = next(iter(fam.values()))["level"] if fam else 0.95
    lines = [
        f"Command: `{record['command']}`; {env['mode']} mode, {seeds} seed(s) "
        f"({', '.join(map(str, s['seeds']))}), {env['threads']} torch thread, {env['cpu']} "
        f"({env['nproc']} cores), load {env['load_before']} before / {env['load_after']} after, "
        f"{env['total_seconds'] / 60:.1f} min wall.",
        "",
        f"Problem `{s['problem']}` {s['overrides']}; width {s['width']}, {s['n_layers']} "
        f"layers; K {s['proxy_modes']} -> {s['target_modes']}; {s['n_trials']} trials x "
        f"{s['search_epochs']} epochs per search (TPE), final run {s['final_epochs']} epochs.",
        "",
        f"Does K matter here? SP at lr {s['check_hparams']['lr']:g}, batch "
        f"{s['check_hparams']['batch_size']}, {s['final_epochs']} epochs: test rel-L2 K="
        f"{s['proxy_modes']} {_pct(record['check']['test_l2'][str(s['proxy_modes'])])} %, K="
        f"{s['target_modes']} {_pct(record['check']['test_l2'][str(s['target_modes'])])} % "
        f"(ratio {record['check']['ratio']:.3f}).",
        "",
        "**1. When does the ranking settle?** lr sweep "
        f"({len(s['sweep_lrs'])} values, batch {s['sweep_batch']}, 1 seed, {s['search_epochs']} "
        "epochs), Spearman ρ and regret of the early leader per epoch:",
        "",
        "| parametrization | K | configs | excluded | horizon | ρ by epoch | regret % by epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    if not record["sweep"]:
        lines[-4:] = ["**1. When does the ranking settle?** (no sweep in this record)"]
    for r in record["sweep"]:
        rho = ", ".join(_f(x["spearman"], ".2f") for x in r["stats"])
        reg = ", ".join(_f(100 * x["regret"], ".1f") for x in r["stats"])
        lines.append(
            f"| {'µP' if r['parametrization'] == 'mup' else 'SP'} | {r['modes']} | "
            f"{r['n_configs']} | {r['n_pruned']} | {r['horizon']}/{r['final_epoch']} | {rho} | "
            f"{reg} |"
        )
    lines += [
        "",
        "**2–3. Arms** (search FLOPs and CPU: mean per seed; test error: physical rel-L2 of the "
        f"final K={s['target_modes']} run; Δ vs (b): paired mean with 95 % t-interval, and "
        f"read as one family of {len(fam)} arm{'s' if len(fam) != 1 else ''}: the t interval "
        f"at the Bonferroni level {100 * level:.2f} % and the Holm-adjusted p):",
        "",
        "| arm | horizon per seed | search epochs | search GFLOP | search FLOP / (b) | "
        "search CPU s | search CPU / (b) | test rel-L2 % mean ± sd | per seed | Δ vs (b) % "
        "[95 % CI] | [family CI] | p (Holm) | seeds better than (b) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, a in arms.items():
        ci = a["minus_b_ci95"]
        f = fam.get(arm)
        fci = "—" if f is None else f"[{_pct(f['low'])}, {_pct(f['high'])}]"
        holm_p = "—" if f is None else _f(f["p_holm"], ".2g")
        lines.append(
            f"| {ARMS[arm][0]} | {','.join(map(str, a['horizons']))} | "
            f"{a['search_epochs']:.1f} | {a['search_flops'] / 1e9:.1f} | "
            f"{a['search_flops_vs_b']:.3f} | {a['search_cpu_seconds']:.1f} | "
            f"{a['search_cpu_vs_b']:.3f} | {_pct(a['test_l2_mean'])} ± {_pct(a['test_l2_sd'])} | "
            f"{','.join(_pct(x) for x in a['test_l2'])} | {_pct(a['minus_b_mean'])} "
            f"[{_pct(ci[0])}, {_pct(ci[1])}] | {fci} | {holm_p} | "
            f"{a['seeds_better_than_b']}/{seeds} |"
        )
    e = record["runs"].get("e", [])
    if e:
        lines += [
            "",
            f"Pilot of (e) per seed (first {record['pilot_trials']} random trials at all epochs):",
            "",
            "| seed | horizon | complete pilot trials | ρ at horizon | regret % at horizon |",
            "|---|---|---|---|---|",
        ]
        for r in e:
            lines.append(
                f"| {r['seed']} | {r['horizon']}/{s['search_epochs']} | {r['pilot_configs']} | "
                f"{_f(r['pilot_spearman'], '.2f')} | {_pct(r['pilot_regret'])} |"
            )
    lines += ["", *verdicts(record)]
    return "\n".join(lines)


def verdicts(record: dict) -> list[str]:
    """The sentences under the tables, from the summary."""
    summ, s = record["summary"], record["setup"]
    arms = summ["arms"]
    out = []
    if "e" in arms:
        e = arms["e"]
        out.append(
            f"- Goal, cost: (e)'s search costs {e['search_flops_vs_b']:.3f}x (b)'s FLOPs "
            f"({e['search_cpu_vs_b']:.3f}x its CPU time): "
            + ("met" if summ["goal_cost"] else f"not met (goal <= {GOAL}x)")
            + "."
        )
        out.append(
            f"- Goal, error: (e) {_pct(e['test_l2_mean'])} % vs (b) "
            f"{_pct(arms['b']['test_l2_mean'])} ± {_pct(arms['b']['test_l2_sd'])} %: "
            + ("no worse than (b) within its seed spread." if summ["goal_error"] else "worse.")
        )
    runs = record["runs"]
    n = len(runs["b"])
    same = sum(
        len({json.dumps(runs[a][i]["params"], sort_keys=True) for a in runs}) == 1 for i in range(n)
    )
    out.append(
        f"- In {same}/{n} seed(s) every arm of this record trained its final run with the same "
        "values (there, test-error differences come from the final parametrization, µP or SP, "
        "not from the search)."
    )
    w, best = summ["winner"], ARMS[summ["best_error_arm"]][0]
    if len(arms) > 2:
        out.append(
            f"- Among the proxy searches, the lowest mean test error is {best}; the cheapest "
            f"arm within one sd of it is **{ARMS[w][0]}** ({arms[w]['search_flops_vs_b']:.3f}x "
            "(b)'s search FLOPs)."
        )
    parts = []
    for k, by in sorted(summ["settle"].items(), key=lambda kv: int(kv[0])):
        if "mup" in by and "sp" in by:
            parts.append(f"K={k}: µP {by['mup']}, SP {by['sp']} of {s['search_epochs']} epochs")
    if parts:
        out.append(
            "- Horizon on the lr sweep: "
            + "; ".join(parts)
            + " (at K = K_base the two are the same model)."
        )
    return out


BLOCK = harness.Block("horizon", render, headed=True, section=SECTION)


# -- entry point ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = harness.parser(__doc__, seeds=True)
    parser.add_argument("--arms", type=str, default=None, help=f"subset of {','.join(ARMS)}")
    parser.add_argument("--no-sweep", action="store_true", help="skip part 1")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop before a seed that would end past this wall time (the seeds run are said)",
    )
    args = parser.parse_args(argv)
    if args.readme_from:
        return harness.rerender(BLOCK, args.readme_from)
    setup = QUICK if args.quick else FULL
    if args.seeds:
        setup = dataclasses.replace(setup, seeds=args.seeds)
    if args.arms:
        chosen = tuple(a for a in args.arms.split(",") if a)
        unknown = [a for a in chosen if a not in ARMS]
        if unknown or "b" not in chosen:
            parser.error(f"--arms must include b and name only {', '.join(ARMS)}")
        setup = dataclasses.replace(setup, arms=chosen)
    import optuna
    import torch

    from transfer_tune.search.horizon import PILOT_TRIALS

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    clock = harness.Run(args.quick, threads=torch.get_num_threads())
    problem = darcy_search.prepared(setup)  # before any clock starts
    clock.restart()
    check = reference_check(setup, problem)
    print(f"check: test rel-L2 by K {check['test_l2']} (ratio {check['ratio']:.3f})", flush=True)
    runs: dict[str, list[dict]] = {arm: [] for arm in setup.arms}
    runs_seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="horizon_") as tmp:
        storage = f"sqlite:///{Path(tmp) / 'horizon.db'}"
        sweep = [] if args.no_sweep else landscape(setup, problem, storage, not args.quick)
        for r in sweep:
            print(f"sweep {r['name']}: horizon {r['horizon']}/{r['final_epoch']}", flush=True)
        done: list[int] = []
        for seed in setup.seeds:
            t0 = time.perf_counter()
            last = max(runs_seconds or [0.0])
            if args.max_minutes and t0 - clock.start + last > 60 * args.max_minutes:
                print(f"stopping before seed {seed}: --max-minutes {args.max_minutes}", flush=True)
                break
            out = run_seed(setup, problem, storage, seed)
            for arm in setup.arms:
                runs[arm].append(out[arm])
            errs = ", ".join(f"{a} {100 * out[a]['test_l2']:.2f} %" for a in setup.arms)
            done.append(seed)
            runs_seconds.append(time.perf_counter() - t0)
            h = out.get("e", {}).get("horizon")
            print(f"seed {seed}: {time.perf_counter() - t0:.0f} s; h={h}; {errs}", flush=True)
    if len(done) < len(setup.seeds):
        clock.env["seeds_planned"] = list(setup.seeds)
        setup = dataclasses.replace(setup, seeds=tuple(done))
    record = {
        "command": harness.command(__file__, argv),
        "env": clock.stop(),
        "setup": dataclasses.asdict(setup),
        "pilot_trials": PILOT_TRIALS,
        "check": check,
        "sweep": sweep,
        "runs": runs,
        "summary": summarise(runs, sweep),
    }
    print(render(record))
    harness.publish(args, record, BLOCK)
    return 0


if __name__ == "__main__":
    sys.exit(main())
