"""Does the learning-rate optimum stay put as K grows? µP against SP on Burgers and Darcy.

Usage::

    python benchmarks/transfer_repro.py              # full (budgets below), both problems
    python benchmarks/transfer_repro.py --quick      # tiny sizes, seconds
    python benchmarks/transfer_repro.py --problems burgers --n-jobs 2 --out DIR

For every problem it sweeps the base Adam learning rate eta over a 9-point grid spaced by
2^(1/2), for every K, under µP and SP (both relative to K_base = 4), with 3 seeds, using
:func:`transfer_tune.analysis.landscape.sweep` on an SQLite file in the output folder (run the same
command again to resume an interrupted sweep). SP at K = K_base *is* the µP model bit for
bit (DESIGN.md §2), so it is not trained twice: its curve is the µP curve at K_base.

:func:`transfer_tune.analysis.optimum.analyze_optimum` then gives, per (parametrization, K), the
optimum (parabola through the grid minimum and its neighbours in log2(eta) against
log(test loss)), its 95 % bootstrap interval over seeds, its shift from K_base in log2 units
(paired bootstrap interval), and the verdict: "transfers" when every shift is within one grid
step (0.5), "drifts" otherwise. The rule moves R's rate by sqrt(ln K_base / ln K): if the
optimum were set by R alone, SP's optimum would move by ``log2 sqrt(ln K_base / ln K)``,
printed as "R-only SP prediction".

Figures (landscape and optimum shift per problem) are written as HTML into the output folder
with one shared ``plotly.min.js`` beside them (no CDN, no 3.5 MB per figure).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/machine.py

from machine import cpu_model, load_average  # noqa: E402

from transfer_tune.analysis.landscape import sweep  # noqa: E402
from transfer_tune.analysis.optimum import (  # noqa: E402
    Curves,
    OptimumAnalysis,
    analyze_optimum,
    landscape_curves,
)
from transfer_tune.core.parametrization import get_parametrization  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Setup:
    """Budget of one problem's landscape."""

    problem: str
    modes: tuple[int, ...]
    base_modes: int
    overrides: dict[str, Any]
    width: int
    n_layers: int
    epochs: int
    batch_size: int
    lr_center_log2: float
    n_values: int = 9
    step_log2: float = 0.5
    seeds: tuple[int, ...] = (0, 1, 2)
    hparams: dict[str, Any] = field(default_factory=dict)

    def lr_grid(self) -> list[float]:
        """``n_values`` rates spaced by ``2**step_log2`` around ``2**lr_center_log2``."""
        half = (self.n_values - 1) / 2
        return [
            2.0 ** (self.lr_center_log2 + self.step_log2 * (i - half)) for i in range(self.n_values)
        ]


FULL = {
    "burgers": Setup(
        problem="burgers",
        modes=(4, 8, 16, 32),
        base_modes=4,
        overrides={"resolution": 128, "n_train": 192, "n_val": 32, "n_test": 128},
        width=32,
        n_layers=4,
        epochs=20,
        batch_size=16,
        lr_center_log2=-7.0,
    ),
    "darcy": Setup(
        problem="darcy",
        modes=(4, 8, 12, 16),
        base_modes=4,
        # 32 x 32 nodes: resolution - 1 = 31 divides n_fine - 1 = 124 (the default 127-node
        # grid allows 43, prime and slow to FFT, or 64, 4x the cost)
        overrides={"resolution": 32, "n_fine": 125, "n_train": 96, "n_val": 32, "n_test": 128},
        width=32,
        n_layers=4,
        epochs=10,
        batch_size=8,
        lr_center_log2=-7.5,
    ),
}

QUICK = {
    "burgers": Setup(
        problem="burgers",
        modes=(2, 4),
        base_modes=2,
        overrides={"resolution": 32, "n_fine": 256, "n_train": 16, "n_val": 4, "n_test": 8},
        width=8,
        n_layers=2,
        epochs=2,
        batch_size=8,
        lr_center_log2=-7.0,
        n_values=3,
        seeds=(0, 1),
    ),
    "darcy": Setup(
        problem="darcy",
        modes=(2, 3),
        base_modes=2,
        overrides={"resolution": 8, "n_fine": 15, "n_train": 16, "n_val": 4, "n_test": 8},
        width=8,
        n_layers=2,
        epochs=2,
        batch_size=8,
        lr_center_log2=-7.0,
        n_values=3,
        seeds=(0, 1),
    ),
}


def rule_shift(modes: int, base_modes: int) -> float:
    """log2 of the µP factor on R's rate (from the parametrization table; d cancels)."""
    mup = get_parametrization("mup", base_modes=base_modes)
    return math.log2(mup.spectral_multiplier(modes, 1))


def run_landscape(
    name: str, setup: Setup, storage: str, n_jobs: int, progress: bool, sweep_name: str
) -> tuple[Curves, dict]:
    """Sweep µP at every K and SP at every K but K_base; return the curves and run stats."""
    common = dict(
        param="lr",
        values=setup.lr_grid(),
        seeds=list(setup.seeds),
        epochs=setup.epochs,
        storage=storage,
        n_jobs=n_jobs,
        base_modes=setup.base_modes,
        width=setup.width,
        n_layers=setup.n_layers,
        hparams={"batch_size": setup.batch_size, **setup.hparams},
        sweep_name=sweep_name,
        problem_overrides=setup.overrides,
        device="cpu",
        progress=progress,
    )
    start = time.perf_counter()
    mup = sweep(setup.problem, list(setup.modes), parametrizations=("mup",), **common)
    others = [k for k in setup.modes if k != setup.base_modes]
    sp = sweep(setup.problem, others, parametrizations=("sp",), **common)
    wall = time.perf_counter() - start
    losses = dict(landscape_curves(mup).losses)
    losses.update(landscape_curves(sp).losses)
    losses[("sp", setup.base_modes)] = losses[("mup", setup.base_modes)].copy()
    order = {("mup", k): i for i, k in enumerate(setup.modes)}
    order.update({("sp", k): len(order) + i for i, k in enumerate(setup.modes)})
    curves = Curves(
        param="lr",
        values=np.asarray(setup.lr_grid()),
        losses={key: losses[key] for key in sorted(losses, key=order.__getitem__)},
        base_modes=setup.base_modes,
        seeds=list(setup.seeds),
        loss="test_loss",
    )
    rows = mup.rows + sp.rows
    stats = {
        "wall_seconds": wall,
        "runs": len(rows),
        "run_seconds": sum(r.seconds for r in rows),
        "diverged": sum(r.diverged for r in rows),
        "complete": mup.complete and sp.complete,
    }
    return curves, stats


def write_html(fig: Any, path: Path) -> Path:
    """Write ``fig`` as HTML sharing one ``plotly.min.js`` in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs="directory", full_html=True)
    return path


def figures(name: str, curves: Curves, analysis: OptimumAnalysis, out: Path) -> list[Path]:
    """The landscape and the optimum-shift figure of one problem, as HTML."""
    from transfer_tune.report.figures import landscape_figure, optimum_figure

    land = landscape_figure(
        curves, analysis=analysis, title=f"{name}: final test loss against the base Adam rate"
    )
    # plots.landscape_figure sets the log loss axis on the first panel only; the SP panel
    # shares its range but would draw it on a linear axis
    land.update_yaxes(type="log")
    shift = optimum_figure(analysis, title=f"{name}: optimum learning rate against K")
    return [
        write_html(land, out / f"transfer_{name}_landscape.html"),
        write_html(shift, out / f"transfer_{name}_optimum.html"),
    ]


def table(name: str, setup: Setup, analysis: OptimumAnalysis) -> str:
    """Markdown table of the optima, shifts and the R-only prediction."""
    lines = [
        f"\n### {name}: optimum base learning rate per K (K_base = {setup.base_modes}, "
        f"{len(setup.seeds)} seeds, grid step {analysis.grid_step:.2f} log2)\n",
        "| param. | K | optimum lr | 95% interval | shift log2 [95%] | R-only SP prediction | "
        "test loss at grid min | diverged runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in analysis.optima:
        pred = rule_shift(o.modes, setup.base_modes) if o.parametrization == "sp" else 0.0
        edge = " (edge)" if o.at_edge else ""
        lines.append(
            f"| {'µP' if o.parametrization == 'mup' else 'SP'} | {o.modes} | "
            f"{o.value:.3e}{edge} | {o.low:.3e} .. {o.high:.3e} | "
            f"{o.shift:+.2f} [{o.shift_low:+.2f}, {o.shift_high:+.2f}] | {pred:+.2f} | "
            f"{o.loss:.4g} | {o.n_diverged} |"
        )
    lines.append("")
    lines.extend(f"- {line}" for line in analysis.lines())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds")
    parser.add_argument(
        "--problems", default="burgers,darcy", help="comma-separated: burgers, darcy"
    )
    parser.add_argument(
        "--n-jobs", type=int, default=None, help="sweep worker processes (full 2, quick 1)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default benchmarks/results; --quick: a temporary one, removed)",
    )
    parser.add_argument(
        "--seeds", default=None, help="comma-separated seeds instead of the default 0,1,2"
    )
    parser.add_argument("--progress", action="store_true", help="progress bars")
    args = parser.parse_args(argv)
    setups = QUICK if args.quick else FULL
    n_jobs = args.n_jobs or (1 if args.quick else 2)
    names = [p.strip() for p in args.problems.split(",") if p.strip()]
    unknown = sorted(set(names) - set(setups))
    if unknown:
        parser.error(f"unknown problem(s) {unknown}; choose from {sorted(setups)}")
    if args.out is not None:
        out = args.out
    elif args.quick:
        out = Path(tempfile.mkdtemp(prefix="transfer_repro_quick_"))
    else:
        out = RESULTS
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(out / 'transfer_repro.db').resolve()}"
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    env = {
        "mode": "quick" if args.quick else "full",
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "n_jobs": n_jobs,
        "load_before": load_average(),
        "storage": storage,
    }
    print(" ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    record: dict[str, Any] = {"env": env, "problems": {}}
    start = time.perf_counter()
    for name in names:
        setup = setups[name]
        sweep_name = f"repro-{name}"
        if args.seeds:
            seeds = tuple(int(v) for v in args.seeds.split(","))
            if seeds != setup.seeds:  # another sweep: a sweep's seeds are part of its identity
                setup = replace(setup, seeds=seeds)
                sweep_name += "-seeds" + "_".join(map(str, seeds))
        grid = setup.lr_grid()
        print(
            f"\n{name}: K {list(setup.modes)}, K_base {setup.base_modes}, width {setup.width}, "
            f"{setup.n_layers} layers, {setup.epochs} epochs, batch {setup.batch_size}, "
            f"data {setup.overrides}, lr 2^{math.log2(grid[0]):.1f} .. 2^{math.log2(grid[-1]):.1f}"
            f" ({len(grid)} values), seeds {list(setup.seeds)}",
            flush=True,
        )
        curves, stats = run_landscape(name, setup, storage, n_jobs, args.progress, sweep_name)
        analysis = analyze_optimum(curves, n_boot=2000, seed=0)
        print(table(name, setup, analysis), flush=True)
        print(
            f"\n{name}: {stats['runs']} runs ({stats['diverged']} diverged) in "
            f"{stats['wall_seconds']:.0f} s wall, {stats['run_seconds']:.0f} s of training",
            flush=True,
        )
        paths = figures(name, curves, analysis, out)
        print("figures: " + ", ".join(str(p) for p in paths), flush=True)
        record["problems"][name] = {
            "setup": {**setup.__dict__, "lr_grid": grid},
            "stats": stats,
            "optima": analysis.to_records(),
            "verdicts": {k: v.line for k, v in analysis.verdicts.items()},
            "curves": {f"{k[0]}/K{k[1]}": v.tolist() for k, v in curves.losses.items()},
            "figures": [p.name for p in paths],
        }
    env["load_after"] = load_average()
    env["total_seconds"] = time.perf_counter() - start
    print(
        f"\ntotal {env['total_seconds']:.0f} s; load average {env['load_before']} -> "
        f"{env['load_after']}"
    )
    (out / "transfer_repro.json").write_text(
        json.dumps(record, indent=2, default=_json_default) + "\n"
    )
    if args.quick and args.out is None:  # a quick run without --out leaves nothing behind
        shutil.rmtree(out, ignore_errors=True)
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
