"""Is tuning a small-K proxy and transferring with µP as good as tuning the large-K model?

Usage::

    python benchmarks/compute_audit.py            # full: Darcy 32 x 32, K 4 -> 16, 5 seeds
    python benchmarks/compute_audit.py --quick    # tiny sizes, seconds (the test suite's)
    python benchmarks/compute_audit.py --readme-from benchmarks/results/compute_audit.json

Four arms, each with the same search space, number of trials, epochs per trial, sampler (TPE,
median pruner) and seed, and the same final-run budget (``final_epochs`` at K_target):

(a) search on the proxy (K_proxy; µP with K_base = K_proxy, i.e. the SP model) and µP
    transfer to K_target (:func:`transfer_tune.tune_then_transfer`);
(b) search directly at K_target under SP, final run under SP;
(c) search directly at K_target under µP with K_base = K_proxy, final run under the same µP:
    the same final parametrization as (a), so (a) vs (c) is the transfer alone;
(d) naive transfer: the values (a)'s search found, reused unchanged at K_target under SP
    (its search is (a)'s, reused: same cost).

Seed s drives the sampler, every initialisation and the batch order of every arm; the data set
is the same for all seeds. Before the arms, a check trains K_proxy and K_target once each with
the same reference hyperparameters: if the target's K does not beat the proxy's on this
problem, the audit cannot show anything and says so.

Search seconds are the sum of the trials' durations, search FLOPs the estimate of
:func:`transfer_tune.core.flops.search_flops` (every epoch each trial ran, pruned and diverged
ones included, with validation passes and Adam updates), both read from ``result.compute``
(:func:`transfer_tune.search.compute.compute_summary`). The test error is the relative L2 error in
physical units on the test split. Paired comparisons across seeds: the mean difference with a
t-based 95 % interval, the paired t-test, the exact Wilcoxon signed-rank test and the exact
sign test (two-sided).

The full run writes ``benchmarks/results/compute_audit.json`` and rewrites the block between
``<!-- compute_audit:begin -->`` and ``<!-- compute_audit:end -->`` in ``benchmarks/README.md``
from that JSON (``--readme-from`` redoes only that), so no number there is typed by hand.
"""

from __future__ import annotations

import dataclasses
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

ARMS = {
    "a": "(a) proxy search + µTransfer",
    "b": "(b) direct search, SP",
    "c": "(c) direct search, µP",
    "d": "(d) naive transfer, SP",
}
#: Paired comparisons reported (first minus second, in test error).
PAIRS = (("b", "a"), ("c", "a"), ("d", "a"), ("c", "b"))
#: Published numbers, not measured here (typed from the paper: Li, Yoo & Yang, "µTransfer-FNO",
#: ICML 2025, arXiv 2506.19396, its comparison of µTransfer against tuning the large model
#: directly). Rendered on a line of their own, never in a table of measured values.
PAPER = (
    "µTransfer-FNO (arXiv 2506.19396) against tuning the large model directly: Navier-Stokes "
    "5.34 % vs 5.69 % test error at 0.30x the tuning compute; Darcy 1.22 % vs 1.25 % at 1.38x."
)
#: Coverage of the family of paired comparisons (:data:`PAIRS`), Holm-corrected.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Setup(darcy_search.Budget):
    """Budget of the audit: the shared Darcy search (:class:`darcy_search.Budget`), its seeds
    and the reference check."""

    #: Spaced apart: trial t of seed s samples with sampler seed s + t and initialises with
    #: s + t, so seeds closer than ``n_trials`` would share trials.
    seeds: tuple[int, ...] = (0, 1000, 2000, 3000, 4000)
    #: Hyperparameters of the "does the target's K beat the proxy's?" check.
    check_hparams: dict[str, Any] = field(default_factory=lambda: {"lr": 3e-3, "batch_size": 8})
    check_seeds: tuple[int, ...] = (0, 1000)


FULL = Setup(**darcy_search.full())
QUICK = Setup(**darcy_search.quick(seeds=(0, 1000), check_seeds=(0,)))


# -- running ----------------------------------------------------------------------------------
def reference_check(setup: Setup, problem: Any) -> dict:
    """Train K_proxy and K_target under SP with the same hyperparameters: does K matter?"""
    rows = []
    for seed in setup.check_seeds:
        for modes in (setup.proxy_modes, setup.target_modes):
            err, seconds = darcy_search.sp_run(setup, problem, modes, seed, setup.check_hparams)
            rows.append({"seed": seed, "modes": modes, "test_l2": err, "seconds": seconds})
    err = {k: [r["test_l2"] for r in rows if r["modes"] == k] for k in {r["modes"] for r in rows}}
    proxy, target = err[setup.proxy_modes], err[setup.target_modes]
    return {
        "hparams": setup.check_hparams,
        "epochs": setup.final_epochs,
        "rows": rows,
        "target_beats_proxy": all(t < p for t, p in zip(target, proxy, strict=True)),
        "mean_ratio": mean(target) / mean(proxy),
    }


def _sp_plan(plan: Any) -> Any:
    """``plan`` with its values unchanged and every multiplier SP's (arm (d))."""
    from transfer_tune.core.parametrization import get_parametrization
    from transfer_tune.search.transfer import GroupPlan

    sp = get_parametrization("sp", base_modes=plan.base_modes)
    scales = sp.role_scales(plan.modes, plan.dim)
    groups = [GroupPlan(role, s.lr, s.init, plan.lr * s.lr) for role, s in scales.items()]
    return dataclasses.replace(plan, parametrization=sp.to_dict(), groups=groups)


def _record(
    arm: str,
    seed: int,
    study: Any,
    plan: Any,
    target: Any,
    compute: dict,
    search_cpu: float,
    final_cpu: float,
) -> dict:
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    par = plan.parametrization
    spectral = next(g for g in plan.groups if g.role == "spectral")
    return {
        "arm": arm,
        "seed": seed,
        "search_modes": study.user_attrs["model"]["modes"],
        "search_base_modes": study.user_attrs["parametrization"]["base_modes"],
        "final_modes": plan.modes,
        "final_parametrization": (
            "SP"
            if par["kind"] == "sp" or par["base_modes"] == plan.modes
            else f"µP K_base={par['base_modes']}"
        ),
        "search_seconds": compute["proxy_seconds"],
        "search_flops": compute["proxy_search_flops"],
        "search_epochs": compute["proxy_search_epochs"],
        "final_seconds": compute["target_seconds"],
        "search_cpu_seconds": search_cpu,
        "final_cpu_seconds": final_cpu,
        "best_trial": study.best_trial.number,
        "final_flops": compute["target_run_flops"],
        "complete_trials": states.count(TrialState.COMPLETE),
        "pruned_trials": states.count(TrialState.PRUNED),
        "best_search_val": study.best_value,
        "params": {k: getattr(plan, k) for k in ("lr", "batch_size", "beta1", "beta2")},
        "spectral_lr": spectral.lr,
        "spectral_init": spectral.init_multiplier,
        "test_l2": target.metrics["test_l2"],
        "final_val_loss": target.metrics["val_loss"],
    }


def run_seed(setup: Setup, problem: Any, storage: str, seed: int) -> dict[str, dict]:
    """The four arms for one seed, composed as :func:`transfer_tune.tune_then_transfer` is.

    ``tune`` -> ``plan_transfer`` -> ``run_target`` -> ``compute_summary`` (what builds
    ``result.compute``), called one by one so that each phase's CPU time is measured apart
    from its wall time (the machine is shared: CPU seconds are the fairer cost).
    """
    from transfer_tune.search.compute import compute_summary
    from transfer_tune.search.transfer import plan_transfer, run_target

    def search(modes: int, base_modes: int, name: str) -> tuple[Any, float]:
        return darcy_search.search(
            setup,
            problem,
            modes,
            storage=storage,
            study_name=f"{name}-seed{seed}",
            seed=seed,
            base_modes=base_modes,
        )

    def final(arm: str, study: Any, plan: Any, search_cpu: float) -> dict:
        cpu, start = time.process_time(), time.perf_counter()
        target = run_target(
            plan,
            storage,
            study_name=f"{arm}-seed{seed}-final",
            seed=seed,
            device="cpu",
            progress=False,
        )
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        compute = compute_summary(study, plan, problem, seconds)
        return _record(arm, seed, study, plan, target, compute, search_cpu, cpu)

    k, k0 = setup.target_modes, setup.proxy_modes
    study_a, cpu_a = search(k0, k0, "a")  # µP with K_base = K at K: the SP model
    plan_a = plan_transfer(study_a, k, setup.final_epochs)
    study_b, cpu_b = search(k, k, "b")  # SP at K_target; its plan is SP too (K = K_base)
    study_c, cpu_c = search(k, k0, "c")  # µP at K_target relative to K_proxy
    return {
        "a": final("a", study_a, plan_a, cpu_a),
        "b": final("b", study_b, plan_transfer(study_b, k, setup.final_epochs), cpu_b),
        "c": final("c", study_c, plan_transfer(study_c, k, setup.final_epochs), cpu_c),
        "d": final("d", study_a, _sp_plan(plan_a), cpu_a),
    }


# -- statistics -------------------------------------------------------------------------------
def paired(first: list[float], second: list[float]) -> dict:
    """Paired comparison of ``first - second`` across seeds (two-sided tests)."""
    from scipy import stats

    diffs = [f - s for f, s in zip(first, second, strict=True)]
    n = len(diffs)
    out: dict[str, Any] = {"n": n, "diffs": diffs, "mean": mean(diffs), "sd": sd(diffs)}
    out["first_lower"] = sum(d < 0 for d in diffs)
    out["second_lower"] = sum(d > 0 for d in diffs)
    out["ci95"] = t95(diffs)
    ci_defined = not math.isnan(out["ci95"][0])
    out["t_p"] = float(stats.ttest_rel(first, second).pvalue) if ci_defined else math.nan
    nonzero = [d for d in diffs if d != 0]
    if nonzero:
        out["wilcoxon_p"] = float(stats.wilcoxon(nonzero, method="exact").pvalue)
        k = out["first_lower"]
        out["sign_p"] = float(stats.binomtest(k, len(nonzero), 0.5).pvalue)
    else:
        out["wilcoxon_p"] = out["sign_p"] = 1.0
    return out


def _costs(recs: list[dict]) -> dict[str, float]:
    """Mean costs per seed of one arm's records."""
    keys = ("search_seconds", "search_cpu_seconds", "search_flops", "final_seconds")
    out = {k: mean([r[k] for r in recs]) for k in (*keys, "final_cpu_seconds", "final_flops")}
    out["total_seconds"] = out["search_seconds"] + out["final_seconds"]
    out["total_cpu_seconds"] = out["search_cpu_seconds"] + out["final_cpu_seconds"]
    out["total_flops"] = out["search_flops"] + out["final_flops"]
    return out


def summarise(runs: dict[str, list[dict]]) -> dict:
    """Means over seeds, ratios to arm (b), the paired tests, and how often arms agree."""
    base = _costs(runs["b"])
    b_err = mean([r["test_l2"] for r in runs["b"]])
    arms = {}
    for arm, recs in runs.items():
        errs = [r["test_l2"] for r in recs]
        costs = _costs(recs)
        same = sum(r["params"] == a["params"] for r, a in zip(recs, runs["a"], strict=True))
        arms[arm] = {
            "test_l2_mean": mean(errs),
            "test_l2_sd": sd(errs),
            "test_l2": errs,
            **costs,
            **{
                f"{k}_vs_b": costs[k] / base[k]
                for k in ("search_seconds", "search_cpu_seconds", "search_flops", "total_flops")
            },
            "total_cpu_seconds_vs_b": costs["total_cpu_seconds"] / base["total_cpu_seconds"],
            "test_l2_vs_b": mean(errs) / b_err,
            "same_values_as_a": same,
        }
    tests = {
        f"{x}-{y}": paired([r["test_l2"] for r in runs[x]], [r["test_l2"] for r in runs[y]])
        for x, y in PAIRS
    }
    correct(tests)
    return {"arms": arms, "tests": tests}


def correct(tests: dict[str, dict]) -> None:
    """Holm-adjust the paired t-tests' p over the family of :data:`PAIRS` and add each
    difference's Student-t interval at the family's Bonferroni level, in place."""
    from transfer_tune.analysis.stats import family_level, holm, t_interval

    level = family_level(CONFIDENCE, len(tests))
    for t, p in zip(tests.values(), holm([t["t_p"] for t in tests.values()]), strict=True):
        t["t_p_holm"] = p
        t["family_level"] = level
        ci = t_interval(t["diffs"], level) if not math.isnan(t["ci95"][0]) else None
        t["ci_family"] = [ci.low, ci.high] if ci else [math.nan, math.nan]


# -- the tables (stdout and README, from the record alone) -------------------------------------
def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _p(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.3f}"


def render(record: dict) -> str:
    """The Markdown block of the audit, from the JSON record alone."""
    s, env, check = record["setup"], record["env"], record["check"]
    summ, runs = record["summary"], record["runs"]
    n = len(s["seeds"])
    lines = [
        f"{s['problem']} {s['overrides']}; width {s['width']}, {s['n_layers']} layers; "
        f"K {s['proxy_modes']} -> {s['target_modes']}; {s['n_trials']} trials x "
        f"{s['search_epochs']} epochs (TPE, median pruner), search space overrides "
        f"{s['search_space']}; final run {s['final_epochs']} epochs at K = {s['target_modes']}; "
        f"seeds {list(s['seeds'])}.",
        "",
        f"Command: `{record['command']}`; {env['total_seconds']:.0f} s wall"
        + (f" ({env['cpu_seconds']:.0f} CPU s)" if "cpu_seconds" in env else "")
        + ", one process, "
        f"{env['threads']} torch thread(s), CPU {env['cpu']} (nproc {env['nproc']}), load "
        f"average {env['load_before']} -> {env['load_after']}.",
        "",
        f"**Does the target's K matter here?** Both K trained under SP with the same "
        f"hyperparameters {check['hparams']} for {check['epochs']} epochs (test rel-L2, %):",
        "",
        "| seed | K proxy | K target | target / proxy |",
        "|---|---|---|---|",
    ]
    by_seed: dict[int, dict[int, float]] = {}
    for r in check["rows"]:
        by_seed.setdefault(r["seed"], {})[r["modes"]] = r["test_l2"]
    for seed, errs in by_seed.items():
        p, t = errs[s["proxy_modes"]], errs[s["target_modes"]]
        lines.append(f"| {seed} | {_pct(p)} | {_pct(t)} | {t / p:.3f} |")
    verdict = "yes" if check["target_beats_proxy"] else "NO: the audit below cannot show much"
    lines += [
        "",
        f"Target better in every checked seed: {verdict} (mean ratio {check['mean_ratio']:.3f}).",
        "",
        f'Final test rel-L2 (%, physical units) over {n} seeds; "values = (a)\'s": seeds whose '
        "search chose exactly (a)'s lr, batch and betas; costs are means per seed (wall seconds "
        "are the trials' durations on a shared machine, CPU seconds this process's), ratios to "
        "arm (b):",
        "",
        "| arm | searched at | final run | test rel-L2 mean ± sd | per seed | values = (a)'s | "
        "search s (CPU s) | search GFLOP | final s (CPU s) | total CPU s | total GFLOP | "
        "search CPU / (b) | search FLOP / (b) | total CPU / (b) | total FLOP / (b) | "
        "test error / (b) |",
        "|" + "---|" * 16,
    ]
    for arm, name in ARMS.items():
        a, r0 = summ["arms"][arm], runs[arm][0]
        searched = f"K={r0['search_modes']} (µP K_base={r0['search_base_modes']})"
        if r0["search_modes"] == r0["search_base_modes"]:
            searched = f"K={r0['search_modes']} (SP)"
        lines.append(
            f"| {name} | {searched} | {r0['final_parametrization']} | "
            f"{_pct(a['test_l2_mean'])} ± {_pct(a['test_l2_sd'])} | "
            f"{', '.join(_pct(x) for x in a['test_l2'])} | {a['same_values_as_a']}/{n} | "
            f"{a['search_seconds']:.1f} ({a['search_cpu_seconds']:.1f}) | "
            f"{a['search_flops'] / 1e9:.1f} | "
            f"{a['final_seconds']:.1f} ({a['final_cpu_seconds']:.1f}) | "
            f"{a['total_cpu_seconds']:.1f} | {a['total_flops'] / 1e9:.1f} | "
            f"{a['search_cpu_seconds_vs_b']:.2f} | {a['search_flops_vs_b']:.2f} | "
            f"{a['total_cpu_seconds_vs_b']:.2f} | {a['total_flops_vs_b']:.2f} | "
            f"{a['test_l2_vs_b']:.3f} |"
        )
    level = next(iter(summ["tests"].values()))["family_level"]
    lines += [
        "",
        "Paired differences of the test error across seeds (first minus second, percentage "
        f"points), read as one family of {len(PAIRS)}: the t interval at 95 % alone and at the "
        f"family's Bonferroni level {100 * level:.2f} %; two-sided p of the paired t-test, "
        "Holm-adjusted over the family, beside the exact Wilcoxon signed-rank and sign tests "
        "(uncorrected):",
        "",
        "| pair | mean diff (pp) [95 % CI] | [family CI] | seeds first lower | paired t p | "
        "t p (Holm) | Wilcoxon p | sign p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x, y in PAIRS:
        t = summ["tests"][f"{x}-{y}"]
        lo, hi = t["ci95"]
        ci = "n/a" if not math.isfinite(lo) else f"[{100 * lo:+.2f}, {100 * hi:+.2f}]"
        flo, fhi = t["ci_family"]
        fci = "n/a" if not math.isfinite(flo) else f"[{100 * flo:+.2f}, {100 * fhi:+.2f}]"
        lines.append(
            f"| ({x}) - ({y}) | {100 * t['mean']:+.2f} {ci} | {fci} | "
            f"{t['first_lower']}/{t['n']} | {_p(t['t_p'])} | {_p(t['t_p_holm'])} | "
            f"{_p(t['wilcoxon_p'])} | {_p(t['sign_p'])} |"
        )
    smallest = 2.0 / 2**n
    lines += [
        "",
        f"With {n} seeds the smallest two-sided p an exact sign or Wilcoxon test can give is "
        f"{smallest:.4f}.",
        "",
        "Chosen values per seed (lr / batch / β1 / β2, the best trial's number; the spectral "
        "weights' rate in the final run in brackets) and the test error (%):",
        "",
        "| seed | " + " | ".join(ARMS[a] for a in ARMS) + " |",
        "|---|" + "---|" * len(ARMS),
    ]
    for i, seed in enumerate(s["seeds"]):
        cells = []
        for arm in ARMS:
            r = runs[arm][i]
            p = r["params"]
            cells.append(
                f"{p['lr']:.2e} / {p['batch_size']} / {p['beta1']:.3f} / {p['beta2']:.4f}, "
                f"#{r['best_trial']} [{r['spectral_lr']:.2e}]; {_pct(r['test_l2'])}"
            )
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    lines += ["", "**What this shows** (templated from the JSON):", ""]
    lines += [f"- {f}" for f in findings(record)]
    lines += ["", f"Published, not measured here: {PAPER}"]
    return "\n".join(lines)


def findings(record: dict) -> list[str]:
    """The sentences the block's numbers support, every number from ``record``."""
    s, summ, check = record["setup"], record["summary"], record["check"]
    arms, tests = summ["arms"], summ["tests"]
    n = len(s["seeds"])
    level = 100 * next(iter(tests.values()))["family_level"]

    def contains_zero(key: str) -> bool:
        lo, hi = tests[key]["ci_family"]
        return not (math.isfinite(lo) and (lo > 0 or hi < 0))

    quality = [k for k in ("b-a", "c-a") if contains_zero(k)]
    d = tests["d-a"]
    out = [
        f"Cost: (a)'s search takes {arms['a']['search_cpu_seconds_vs_b']:.2f}x the CPU time and "
        f"{arms['a']['search_flops_vs_b']:.2f}x the estimated FLOPs of the same search at "
        f"K = {s['target_modes']} (b); a smaller K alone shrinks neither the FFTs nor the "
        "pointwise layers.",
        f"Quality of the transfer: the {level:.2f} % family interval of "
        + " and ".join(f"({k[0]}) − (a)" for k in ("b-a", "c-a"))
        + (
            " both contain 0"
            if len(quality) == 2
            else f" contain 0 for {', '.join(quality) or 'neither'}"
        )
        + f"; (a) and (c) chose identical values in {arms['c']['same_values_as_a']} of {n} "
        "seeds, so the audit has little room to separate the searches.",
        f"µP against naive reuse of the same values: (d) − (a) {100 * d['mean']:+.2f} pp, µP lower "
        f"in {d['second_lower']} of {d['n']} seeds, Holm p {_p(d['t_p_holm'])} (exact sign test "
        f"p {_p(d['sign_p'])}; with {n} seeds it cannot go below {2.0 / 2**n:.4f}).",
        f"Does K matter here: at the reference hyperparameters K = {s['target_modes']}'s test "
        f"error is {check['mean_ratio']:.3f}x K = {s['proxy_modes']}'s "
        f"({'lower' if check['target_beats_proxy'] else 'not lower'} in every checked seed).",
    ]
    return out


def block(record: dict) -> str:
    """The README block from the JSON record alone (with today's statistics of its runs)."""
    return render({**record, "summary": summarise(record["runs"])})


BLOCK = harness.Block("compute_audit", block)


# -- entry point ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = harness.parser(__doc__, threads=1, seeds=True).parse_args(argv)
    if args.readme_from:
        return harness.rerender(BLOCK, args.readme_from)
    setup = QUICK if args.quick else FULL
    if args.seeds:
        setup = dataclasses.replace(setup, seeds=args.seeds)
    import optuna
    import torch

    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    clock = harness.Run(args.quick, threads=torch.get_num_threads())
    problem = darcy_search.prepared(setup, fine=True)  # before any clock starts
    clock.restart()
    check = reference_check(setup, problem)
    for r in check["rows"]:
        print(f"check seed {r['seed']} K={r['modes']}: test rel-L2 {r['test_l2']:.4f}", flush=True)
    print(
        f"target K={setup.target_modes} beats proxy K={setup.proxy_modes} at the same "
        f"hyperparameters in every checked seed: {check['target_beats_proxy']} (mean ratio "
        f"{check['mean_ratio']:.3f})",
        flush=True,
    )
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory(prefix="compute_audit_") as tmp:
        storage = f"sqlite:///{Path(tmp) / 'audit.db'}"
        for seed in setup.seeds:
            t0 = time.perf_counter()
            out = run_seed(setup, problem, storage, seed)
            for arm in ARMS:
                runs[arm].append(out[arm])
            errs = ", ".join(f"({a}) {100 * out[a]['test_l2']:.2f} %" for a in ARMS)
            print(f"seed {seed}: {time.perf_counter() - t0:.0f} s; {errs}", flush=True)
    record = {
        "command": harness.command(__file__, argv),
        "env": clock.stop(cpu=True),
        "setup": dataclasses.asdict(setup),
        "check": check,
        "runs": runs,
        "summary": summarise(runs),
    }
    print("\n" + render(record))
    harness.publish(args, record, BLOCK)
    return 0


if __name__ == "__main__":
    sys.exit(main())
