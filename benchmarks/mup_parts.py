"""Which part of µP's K rule helps: R's init scale, R's learning-rate factor, or both?

A pre-registered 2 x 2 factorial (issue "Verdicts a reviewer can trust", §3). The design and
the primary test below were written into this file before its first full run; the JSON
records them with a run id (a hash of the design), so a changed design is a new run.

Usage::

    python benchmarks/mup_parts.py                 # full: 16 seeds, 2 worker processes
    python benchmarks/mup_parts.py --quick         # tiny sizes, seconds (the test suite's)
    python benchmarks/mup_parts.py --readme-from benchmarks/results/mup_parts.json

Design (:data:`FULL`): Darcy 32 x 32, width 16, 4 layers, K 4 -> 16, 16 fresh seeds. For each
seed s:

1. its own K = 4 proxy search (TPE + median pruner, seeded s, 12 trials x 6 epochs), chosen on
   the **validation** split (the study's objective; the test split is never looked at);
2. at K = 16, a 2 x 2 factorial of R's Adam-rate factor {1, µP's} x R's init-std factor
   {1, µP's} (µP's factor is sqrt(ln 4 / ln 16) = 0.707 for both; every other tensor as in
   SP), each trained at the tuned lr x 2^{-0.5, 0, +0.5} with the tuned batch size and betas,
   16 epochs, initialised and batched with seed s. The four cells are the calibrated rule of
   :mod:`transfer_tune.core.parametrization` with exponents (lr, init) in {0, 1/2}^2: (0, 0) is
   naive reuse (SP), (1/2, 1/2) is µP.

Primary result (one test, 95 %): the test error (relative L2, physical units) of naive reuse
minus µP at the tuned lr, its paired Student-t interval over seeds and two-sided p.

Secondary family (Holm over the family, intervals at the Bonferroni level 1 - 0.05 / m, which
every interval Holm rejects also excludes): at the tuned lr, the main effect of R's lr factor
(mean over both init levels of "factor 1 minus µP's"), the main effect of R's init factor
(the same over both lr levels) and their interaction; at lr x 2^-0.5 and x 2^+0.5, naive minus
µP (does the answer survive a mis-tuned proxy?).

A positive difference means the µP part lowers the test error. The seeds' search cost is
reported beside the results; the figures are the JSON's, rendered by :func:`render`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import darcy_search
import harness
from seed_stats import finite_mean, pp, test_row

#: The four cells: (R's lr exponent, R's init exponent) of the calibrated rule.
CELLS = {"naive": (0.0, 0.0), "lr only": (0.5, 0.0), "init only": (0.0, 0.5), "µP": (0.5, 0.5)}
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Design(darcy_search.Budget, harness.Registered):
    """The pre-registered experiment (everything that decides a result): the shared Darcy
    budget (:class:`darcy_search.Budget`) and the factorial's own fields."""

    lr_offsets_log2: tuple[float, ...] = (-0.5, 0.0, 0.5)
    #: Fresh seeds (the compute audit used 0 .. 4000); trial t of seed s samples with seed
    #: s + t, so seeds are spaced by more than ``n_trials``.
    seeds: tuple[int, ...] = tuple(20000 + 1000 * i for i in range(16))
    primary: str = "test error of naive minus µP at the tuned lr, paired Student-t 95 %"


#: Darcy 32 x 32, width 16, 4 layers, K 4 -> 16, 12 trials x 6 epochs, 16 final epochs.
FULL = Design(**darcy_search.full())
QUICK = Design(
    **darcy_search.quick(n_trials=2, search_epochs=1, final_epochs=1, seeds=(0, 1000, 2000))
)


# -- running ----------------------------------------------------------------------------------
def run_seed(design: Design, seed: int, folder: str) -> dict[str, Any]:
    """The proxy search of one seed and its 4 x 3 target runs (one process, one thread)."""
    import optuna
    import torch

    from pdes import load_problem
    from transfer_tune.core.model import FNO
    from transfer_tune.core.parametrization import get_parametrization
    from transfer_tune.search.transfer import plan_transfer

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    problem = load_problem(design.problem, design.overrides)
    study, search_cpu = darcy_search.search(
        design,
        problem,
        design.proxy_modes,
        storage=f"sqlite:///{Path(folder) / f'seed{seed}.db'}",
        study_name=f"proxy-seed{seed}",
        seed=seed,
    )
    hp = plan_transfer(study, design.target_modes, design.final_epochs).hparams()
    runs = []
    for cell, (lr_exp, init_exp) in CELLS.items():
        rule = get_parametrization(
            "calibrated",
            base_modes=design.proxy_modes,
            lr_exponent=lr_exp,
            init_exponent=init_exp,
        )
        for offset in design.lr_offsets_log2:
            model = FNO(
                dim=problem.dim,
                modes=design.target_modes,
                width=design.width,
                n_layers=design.n_layers,
                in_channels=problem.in_channels,
                out_channels=problem.out_channels,
            )
            rule.initialize(model, generator=torch.Generator().manual_seed(seed))
            run_hp = dataclasses.replace(hp, lr=hp.lr * 2.0**offset)
            run = darcy_search.target_run(model, rule, problem, run_hp, design.final_epochs, seed)
            runs.append({"cell": cell, "lr_offset_log2": offset, **run})
    return {
        "seed": seed,
        "tuned": {k: getattr(hp, k) for k in ("lr", "batch_size", "beta1", "beta2")},
        "best_val": study.best_value,
        "search_cpu_seconds": search_cpu,
        "runs": runs,
    }


# -- statistics (from the JSON record alone) --------------------------------------------------
def cell_errors(record: dict, cell: str, offset: float) -> list[float]:
    """Test errors of one cell at one lr offset, in seed order."""
    return [
        next(r["test_l2"] for r in s["runs"] if r["cell"] == cell and r["lr_offset_log2"] == offset)
        for s in record["seeds"]
    ]


def contrasts(record: dict) -> dict[str, list[float]]:
    """Per-seed differences of every reported contrast (positive: the µP part helps)."""

    def err(cell: str, offset: float = 0.0) -> list[float]:
        return cell_errors(record, cell, offset)

    naive, lr_only, init_only, mup = err("naive"), err("lr only"), err("init only"), err("µP")
    out = {
        "primary: naive − µP at the tuned lr": [a - b for a, b in zip(naive, mup, strict=True)],
        "main effect of R's lr factor (1 − µP's, mean over init)": [
            ((a - b) + (c - d)) / 2
            for a, b, c, d in zip(naive, lr_only, init_only, mup, strict=True)
        ],
        "main effect of R's init factor (1 − µP's, mean over lr)": [
            ((a - b) + (c - d)) / 2
            for a, b, c, d in zip(naive, init_only, lr_only, mup, strict=True)
        ],
        "interaction (lr effect with µP's init − without)": [
            (c - d) - (a - b) for a, b, c, d in zip(naive, lr_only, init_only, mup, strict=True)
        ],
    }
    for offset in record["design"]["lr_offsets_log2"]:
        if offset != 0.0:
            a, b = err("naive", offset), err("µP", offset)
            out[f"naive − µP at lr × 2^{offset:+.1f}"] = [x - y for x, y in zip(a, b, strict=True)]
    return out


def summarise(record: dict) -> dict[str, Any]:
    """The primary test at 95 % and the secondary family with Holm's correction."""
    from transfer_tune.analysis.stats import family_tests

    diffs = contrasts(record)
    names = list(diffs)
    primary = family_tests({names[0]: diffs[names[0]]}, CONFIDENCE)[names[0]]
    secondary = family_tests({n: diffs[n] for n in names[1:]}, CONFIDENCE)
    means = {
        cell: {
            f"{o:+.1f}": finite_mean(cell_errors(record, cell, o))
            for o in record["design"]["lr_offsets_log2"]
        }
        for cell in CELLS
    }
    return {"primary": primary, "secondary": secondary, "cell_means": means}


def render(record: dict) -> str:
    """The README block of the factorial, from the JSON record alone."""
    d, env, s = record["design"], record["env"], record["summary"]
    n = len(d["seeds"])
    prim = s["primary"]
    lines = [
        f"Run `{record['run_id']}` (design hash), generated by `benchmarks/mup_parts.py` from "
        "`results/mup_parts.json`; do not edit by hand. "
        f"{d['problem']} {d['overrides']}, width {d['width']}, {d['n_layers']} layers, K "
        f"{d['proxy_modes']} -> {d['target_modes']}, {n} seeds; per seed a K = "
        f"{d['proxy_modes']} search of {d['n_trials']} trials x {d['search_epochs']} epochs "
        f"chosen on validation, then {len(CELLS)} x {len(d['lr_offsets_log2'])} target runs "
        f"of {d['final_epochs']} epochs. {env['total_seconds'] / 60:.1f} min wall, "
        f"{env['n_jobs']} worker processes x 1 thread, {env['nproc']} cores, load "
        f"{env['load_before']} -> {env['load_after']}.",
        "",
        "Mean test rel-L2 (%, physical units) per cell and lr offset:",
        "",
        "| R's lr factor | R's init factor | cell | "
        + " | ".join(f"lr × 2^{o:+.1f}" for o in d["lr_offsets_log2"])
        + " |",
        "|---|---|---|" + "---|" * len(d["lr_offsets_log2"]),
    ]
    for cell, (lr_exp, init_exp) in CELLS.items():
        factor = {0.0: "1", 0.5: "µP's"}
        cells = " | ".join(
            f"{100 * s['cell_means'][cell][f'{o:+.1f}']:.3f}" for o in d["lr_offsets_log2"]
        )
        lines.append(f"| {factor[lr_exp]} | {factor[init_exp]} | {cell} | {cells} |")
    lines += [
        "",
        "Contrasts of the test error (percentage points; positive: the µP part lowers the "
        "error), paired over seeds, Student-t intervals; the primary test alone at 95 %, the "
        f"secondary family of {len(s['secondary'])} with Holm-adjusted p and intervals at the "
        "Bonferroni level:",
        "",
        "| contrast | mean [interval] (pp) | level | seeds > 0 | p | p (Holm) | at 5 % |",
        "|---|---|---|---|---|---|---|",
        test_row("**" + next(iter(contrasts(record))) + "**", prim),
    ]
    lines += [test_row(name, t) for name, t in s["secondary"].items()]
    return "\n".join(lines)


def prose(record: dict) -> str:
    """The sentence the README quotes, from the JSON alone (never typed by hand)."""
    prim = record["summary"]["primary"]
    sec = record["summary"]["secondary"]
    lr = next(v for k, v in sec.items() if k.startswith("main effect of R's lr"))
    init = next(v for k, v in sec.items() if k.startswith("main effect of R's init"))
    d = record["design"]
    grid = "×".join([str(d["overrides"]["resolution"])] * (2 if d["problem"] == "darcy" else 1))
    return (
        f"{d['problem'].capitalize()} {grid}, width {d['width']}, K {d['proxy_modes']} → "
        f"{d['target_modes']} ({prim['n']} seeds, pre-registered run `{record['run_id']}`): "
        f"test error of naive reuse minus µP at the tuned lr {pp(prim['estimate'])} pp "
        f"[{pp(prim['low'])}, {pp(prim['high'])}] (95 %, p = {prim['p']:.2g}; "
        f"{prim['decision']}). By part (Holm-corrected, positive: the part helps): R's init factor "
        f"{pp(init['estimate'])} pp [{pp(init['low'])}, {pp(init['high'])}] "
        f"({init['decision']}), R's learning-rate factor {pp(lr['estimate'])} pp "
        f"[{pp(lr['low'])}, {pp(lr['high'])}] ({lr['decision']})."
    )


def block(record: dict) -> str:
    """The README block (tables and sentence) from the JSON record alone."""
    record = {**record, "summary": summarise(record)}
    return render(record) + "\n\n" + prose(record)


BLOCK = harness.Block("mup_parts", block)


# -- entry point ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = harness.parser(__doc__, n_jobs=2).parse_args(argv)
    if args.readme_from:
        return harness.rerender(BLOCK, args.readme_from)
    design = QUICK if args.quick else FULL
    return harness.run_audit(
        args, design, run_seed, summarise, block, BLOCK,
        prepare=lambda: darcy_search.prepared(design),  # once, before the workers
        folder_prefix="mup_parts_",
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
