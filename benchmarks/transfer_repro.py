"""Does the learning-rate optimum stay put as K grows? µP against SP where K matters.

Usage::

    python benchmarks/transfer_repro.py --n-jobs 1          # the full run (arms below)
    python benchmarks/transfer_repro.py --quick             # tiny sizes, seconds
    python benchmarks/transfer_repro.py --arms burgers-w8-none,burgers-w8-clip --out DIR
    python benchmarks/transfer_repro.py --write-readme      # README block from the JSON only

An **arm** is one problem, width and clipping setting. For each arm the base Adam rate eta is
swept over a grid 2^(1/4) apart, for every K, under µP and SP (both relative to
K_base = 4), with 5 seeds, by :func:`transfer_tune.analysis.landscape.sweep` on an SQLite file
in the output folder (the same command resumes an interrupted run). SP at K = K_base *is* the
µP model bit for bit (DESIGN.md §2): its curve is the µP curve at K_base.

Per K it reports (:mod:`transfer_tune.analysis.optimum`, :mod:`~transfer_tune.analysis.stats`,
:mod:`~transfer_tune.analysis.stability`):

* the test-loss and the train-loss optimum (per-seed parabola-refined minimiser, then the
  95 % Student-t interval over seeds of the paired per-seed shift from K_base) and the
  verdict (transfers / drifts / inconclusive; rules in the optimum module);
* the paired SP - µP gap, beside the rule's own factor on R's rate (log2 sqrt(ln 4 / ln K));
* the stability edge: the lowest rate at which at least half the seeds diverge or collapse
  (final test rel-L2 >= 0.99), and its shift from K_base;
* for arms with an R-only sweep: only R's rate moves (``spectral_lr``), every other group at
  the arm's K_base optimum; the shift of R's optimal rate gives the exponent p of
  ``eta_R* ∝ (ln K_base / ln K)^p`` (µP's rule: p = 1/2; K-independent R rate: p = 0).

It writes ``transfer_repro.json``, the HTML figures (one shared ``plotly.min.js``) and, for a
full run into benchmarks/results, the README block between the ``transfer_repro`` markers,
rendered from the JSON (``--write-readme`` re-renders it without training).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/machine.py

from machine import environment, load_average  # noqa: E402
from readme_block import markers, write_block  # noqa: E402

from transfer_tune.analysis.curves import Curves, landscape_curves  # noqa: E402
from transfer_tune.analysis.landscape import load_sweep, sweep  # noqa: E402
from transfer_tune.analysis.optimum import OptimumAnalysis, analyze_optimum  # noqa: E402
from transfer_tune.analysis.stability import stability_edges  # noqa: E402
from transfer_tune.analysis.stats import t_interval  # noqa: E402
from transfer_tune.core.parametrization import get_parametrization  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = markers("transfer_repro")
BURGERS = {  # nu = 0.002: viscous shocks, energy beyond K = 4 .. 64 (pdes/burgers.py)
    "nu": 0.002,
    "dt": 5e-4,
    "n_fine": 1024,
    "resolution": 256,
    "n_train": 192,
    "n_val": 32,
    "n_test": 128,
}


@dataclass(frozen=True)
class Arm:
    """One problem, width and clipping setting, and its sweep budget."""

    name: str
    problem: str
    overrides: dict[str, Any]
    width: int
    clip: str | None
    modes: tuple[int, ...]
    lr_center_log2: float
    base_modes: int = 4
    n_layers: int = 4
    epochs: int = 20
    batch_size: int = 16
    n_values: int = 13
    step_log2: float = 0.25
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    r_only: tuple[int, ...] = ()  # K values of the R-only sweep (with K_base); () for none
    r_values: int = 15
    #: the R-only grid's centre above the K_base optimum (log2): R's optimum at large K sat at
    #: the top of a centred grid in the first full run
    r_offset_log2: float = 0.5
    r_kinds: tuple[str, ...] = ("mup", "sp")  # parametrizations of the R-only sweep

    def grid(self, center: float | None = None, n: int | None = None) -> list[float]:
        """``n`` rates ``2**step_log2`` apart around ``2**center``."""
        center = self.lr_center_log2 if center is None else center
        n = n or self.n_values
        half = (n - 1) / 2
        return [2.0 ** (center + self.step_log2 * (i - half)) for i in range(n)]

    def hparams(self) -> dict[str, Any]:
        """Fixed hyperparameters of every run."""
        out: dict[str, Any] = {"batch_size": self.batch_size}
        if self.clip:
            out.update(clip=self.clip, clip_value=0.01)
        return out


FULL = [
    Arm(
        "burgers-w8-none",
        "burgers",
        BURGERS,
        8,
        None,
        (4, 16, 64),
        -4.25,
        r_only=(64,),
        r_kinds=("mup",),  # SP's R-only curve is µP's shifted by log2 m(K): nothing new
    ),
    Arm("burgers-w8-clip", "burgers", BURGERS, 8, "value", (4, 64), -4.25),
    # control: the same problem at width 32 (2-seed pilot, README); the grid runs from 1.5
    # log2 below the K_base optimum up past the collapse point, 2^-7.5 .. 2^-2.75
    Arm("burgers-w32-none", "burgers", BURGERS, 32, None, (4, 64), -5.125, n_values=20),
    # 2-D: Darcy 32 x 32, K 4 -> 16 (2K - 1 = 31 of 32 grid modes)
    Arm(
        "darcy-w8-none",
        "darcy",
        {"resolution": 32, "n_fine": 125, "n_train": 96, "n_val": 32, "n_test": 128},
        8,
        None,
        (4, 16),
        -4.75,  # 2^-7 .. 2^-2.5: past the collapse point (pilot: near 2^-3)
        epochs=10,
        batch_size=8,
        n_values=19,
    ),
]
_TINY = {"nu": 0.002, "dt": 1e-3, "n_fine": 256, "resolution": 32, "n_train": 16}
QUICK = [
    Arm(
        "burgers-w8-none",
        "burgers",
        {**_TINY, "n_val": 4, "n_test": 8},
        8,
        None,
        (2, 4),
        -5.0,
        base_modes=2,
        n_layers=2,
        epochs=2,
        batch_size=8,
        n_values=5,
        step_log2=0.5,
        seeds=(0, 1),
        r_only=(4,),
        r_values=3,
    ),
    Arm(
        "burgers-w8-clip",
        "burgers",
        {**_TINY, "n_val": 4, "n_test": 8},
        8,
        "value",
        (2, 4),
        -5.0,
        base_modes=2,
        n_layers=2,
        epochs=2,
        batch_size=8,
        n_values=5,
        step_log2=0.5,
        seeds=(0, 1),
    ),
]


def rule_log2(kind: str, modes: int, base_modes: int) -> float:
    """log2 of the parametrization's factor on R's rate (the table's; d cancels)."""
    return math.log2(get_parametrization(kind, base_modes=base_modes).spectral_multiplier(modes, 1))


def merged_curves(
    mup: Any, sp: Any, arm: Arm, param: str, loss: str, modes: tuple[int, ...]
) -> Curves:
    """µP and SP curves of one loss at K_base and ``modes``, SP at K_base taken from µP (the
    same model)."""
    wanted = {arm.base_modes, *modes}
    a = landscape_curves(mup, param, loss)
    losses = {key: v for key, v in a.losses.items() if key[0] == "mup" and key[1] in wanted}
    if sp is not None:
        b = landscape_curves(sp, param, loss).losses
        losses.update({key: v for key, v in b.items() if key[0] == "sp" and key[1] in wanted})
        losses[("sp", arm.base_modes)] = losses[("mup", arm.base_modes)].copy()
    order = [(kind, k) for kind in ("mup", "sp") for k in sorted({k for _, k in losses})]
    return Curves(
        param=param,
        values=a.values,
        losses={key: losses[key] for key in order if key in losses},
        base_modes=arm.base_modes,
        seeds=list(arm.seeds),
        loss=loss,
    )


def run_sweeps(
    arm: Arm,
    param: str,
    values: list[float],
    modes: tuple[int, ...],
    hparams: dict,
    common: dict,
    kinds: tuple[str, ...] = ("mup", "sp"),
) -> tuple[Any, Any, dict]:
    """µP at every K (with K_base), SP (when in ``kinds``) at every K but K_base."""
    kw = dict(common, param=param, values=values, hparams=hparams)
    name = kw.pop("sweep_name")
    analyse_only = kw.pop("analyse_only", False)
    start = time.perf_counter()
    all_modes = sorted({arm.base_modes, *modes})
    sp_modes = [k for k in all_modes if k != arm.base_modes]
    if analyse_only:  # the finished sweep as stored: no training, no settings check
        stored = load_sweep(kw["storage"], name)
        mup, sp = stored, (stored if "sp" in kinds else None)
        rows = [
            r
            for r in stored.rows
            if (r.parametrization, r.modes)
            in {("mup", k) for k in all_modes} | {("sp", k) for k in sp_modes if "sp" in kinds}
        ]
        stats = {"runs": len(rows), "run_seconds": sum(r.seconds for r in rows)}
        stats["diverged"] = sum(r.diverged for r in rows)
        return mup, sp, stats
    mup = sweep(arm.problem, all_modes, parametrizations=("mup",), sweep_name=name, **kw)
    sp = None
    if "sp" in kinds:
        sp = sweep(arm.problem, sp_modes, parametrizations=("sp",), sweep_name=name, **kw)
    rows = mup.rows + (sp.rows if sp is not None else [])
    stats = {
        "wall_seconds": time.perf_counter() - start,
        "runs": len(rows),
        "run_seconds": sum(r.seconds for r in rows),
        "diverged": sum(r.diverged for r in rows),
        "complete": mup.complete and (sp is None or sp.complete),
    }
    return mup, sp, stats


def exponent(analysis: OptimumAnalysis, arm: Arm) -> dict[str, dict]:
    """Per (parametrization, K): the exponent p of R's optimal rate, per seed then t interval.

    R's actual rate is ``spectral_lr * m(K)``; its optimum moves by ``shift + log2 m(K)``
    from K_base, and p = that / log2(ln K_base / ln K).
    """
    out: dict[str, dict] = {}
    for o in analysis.optima:
        if o.modes == arm.base_modes:
            continue
        lever = math.log2(math.log(arm.base_modes) / math.log(o.modes))
        m = rule_log2(o.parametrization, o.modes, arm.base_modes)
        p = [(s + m) / lever for s in o.seed_shifts]
        out[f"{o.parametrization}/K{o.modes}"] = t_interval(p, analysis.confidence).to_dict()
    return out


def analyse(mup: Any, sp: Any, arm: Arm, param: str, modes: tuple[int, ...]) -> dict[str, Any]:
    """Optima of both losses, gaps, stability edges and the curves, as plain data."""
    out: dict[str, Any] = {}
    curves = {}
    for loss in ("test_loss", "train_loss"):
        curves[loss] = merged_curves(mup, sp, arm, param, loss, modes)
        a = analyze_optimum(curves[loss])
        out[loss] = {
            "method": a.method_label,
            "grid_step": a.grid_step,
            "optima": a.to_records(),
            "verdicts": {k: {"verdict": v.verdict, "line": v.line} for k, v in a.verdicts.items()},
            "gaps": [g.to_dict() for g in a.gaps],
        }
        out.setdefault("_analysis", {})[loss] = a
    out["stability"] = [e.to_dict() for e in stability_edges(curves["test_loss"])]
    out["curves"] = {
        loss: {f"{k[0]}/K{k[1]}": v.tolist() for k, v in c.losses.items()}
        for loss, c in curves.items()
    }
    out["_curves"] = curves
    return out


def run_arm(
    arm: Arm, storage: str, n_jobs: int, progress: bool, out: Path, analyse_only: bool = False
) -> dict[str, Any]:
    """Sweep one arm (and its R-only sweep), analyse, draw; return its JSON record."""
    common = dict(
        analyse_only=analyse_only,
        seeds=list(arm.seeds),
        epochs=arm.epochs,
        storage=storage,
        n_jobs=n_jobs,
        base_modes=arm.base_modes,
        width=arm.width,
        n_layers=arm.n_layers,
        problem_overrides=arm.overrides,
        device="cpu",
        progress=progress,
        sweep_name=f"repro-{arm.name}",
    )
    grid = arm.grid()
    print(
        f"\n{arm.name}: {arm.problem} {arm.overrides}, width {arm.width}, {arm.n_layers} layers, "
        f"{arm.epochs} epochs, batch {arm.batch_size}, clip {arm.clip or 'none'}, K "
        f"{list(arm.modes)}, lr 2^{math.log2(grid[0]):.2f} .. 2^{math.log2(grid[-1]):.2f} "
        f"({len(grid)} values), seeds {list(arm.seeds)}",
        flush=True,
    )
    mup, sp, stats = run_sweeps(arm, "lr", grid, arm.modes, arm.hparams(), common)
    main = analyse(mup, sp, arm, "lr", arm.modes)
    record: dict[str, Any] = {
        "setup": {**asdict(arm), "lr_grid": grid},
        "stats": stats,
        **{k: v for k, v in main.items() if not k.startswith("_")},
    }
    paths = figures(arm.name, main["_curves"]["test_loss"], main["_analysis"]["test_loss"], out)
    if arm.r_only:
        base = main["_analysis"]["test_loss"].optimum("mup", arm.base_modes)
        lr_star = base.grid_value  # the K_base optimum on the grid (seed-averaged test loss)
        center = math.log2(lr_star)
        r_grid = arm.grid(center + arm.r_offset_log2, arm.r_values)
        print(f"{arm.name}: R-only sweep, lr fixed at 2^{center:.2f}, spectral_lr grid", flush=True)
        common["sweep_name"] = f"repro-{arm.name}-ronly-lr{center:+.2f}"
        rm, rs, rstats = run_sweeps(
            arm,
            "spectral_lr",
            r_grid,
            arm.r_only,
            {**arm.hparams(), "lr": lr_star},
            common,
            arm.r_kinds,
        )
        ronly = analyse(rm, rs, arm, "spectral_lr", arm.r_only)
        record["r_only"] = {
            "lr": lr_star,
            "grid": r_grid,
            "stats": rstats,
            "exponent": exponent(ronly["_analysis"]["test_loss"], arm),
            "exponent_train": exponent(ronly["_analysis"]["train_loss"], arm),
            **{k: v for k, v in ronly.items() if not k.startswith("_")},
        }
        paths += figures(
            f"{arm.name}-ronly",
            ronly["_curves"]["test_loss"],
            ronly["_analysis"]["test_loss"],
            out,
        )
    record["figures"] = [p.name for p in paths]
    print(render_arm(arm.name, record), flush=True)
    return record


def write_html(fig: Any, path: Path) -> Path:
    """Write ``fig`` as HTML sharing one ``plotly.min.js`` in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs="directory", full_html=True)
    return path


def figures(name: str, curves: Curves, analysis: OptimumAnalysis, out: Path) -> list[Path]:
    """The landscape and the optimum-shift figure of one arm, as HTML."""
    from transfer_tune.report.figures import landscape_figure, optimum_figure

    land = landscape_figure(
        curves, analysis=analysis, title=f"{name}: final test loss against {curves.param}"
    )
    shift = optimum_figure(analysis, title=f"{name}: optimum {curves.param} against K")
    return [
        write_html(land, out / f"transfer_{name}_landscape.html"),
        write_html(shift, out / f"transfer_{name}_optimum.html"),
    ]


# -- rendering (from the JSON record only) ---------------------------------------------------


def _ci(est: float, low: float, high: float) -> str:
    if not math.isfinite(est):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{est:+.2f} [n/a]"
    return f"{est:+.2f} [{low:+.2f}, {high:+.2f}]"


def _name(kind: str) -> str:
    return "µP" if kind == "mup" else "SP"


def _edge(e: dict) -> str:
    if e["edge"] is None:
        return f"> 2^{math.log2(e['stable']):.2f}" if e["stable"] else "n/a"
    i = next(i for i, f in enumerate(e["failures"]) if 2 * f >= e["n_seeds"])
    return f"2^{math.log2(e['edge']):.2f} ({e['failures'][i]}/{e['n_seeds']})"


def _edge_shift(e: dict) -> str:
    if e["shift_bound"]:
        return e["shift_bound"]
    return f"{e['shift']:+.2f}" if math.isfinite(e["shift"]) else "n/a"


def render_arm(name: str, rec: dict) -> str:
    """Markdown tables of one arm (main sweep, gaps, R-only)."""
    setup = rec["setup"]
    test, train = rec["test_loss"], rec["train_loss"]
    edges = {(e["parametrization"], e["modes"]): e for e in rec["stability"]}
    tr = {(o["parametrization"], o["modes"]): o for o in train["optima"]}
    lines = [
        f"\n#### {name}: optimum base lr per K (K_base = {setup['base_modes']}, width "
        f"{setup['width']}, clip {setup['clip'] or 'none'}, grid step "
        f"{test['grid_step']:.2f} log2; intervals: {test['method']} of the paired per-seed "
        "shift)\n",
        "| param. | K | test optimum log2 lr | test shift [95%] | test verdict | "
        "train shift [95%] | train verdict | stability edge (fail/seeds) | edge shift | "
        "test loss at grid min |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in test["optima"]:
        key = (o["parametrization"], o["modes"])
        t, e = tr[key], edges[key]
        edge = " (edge)" if o["at_edge"] else ""
        lines.append(
            f"| {_name(key[0])} | {key[1]} | {o['position']:+.2f}{edge}"
            f" | {_ci(o['shift'], o['shift_low'], o['shift_high'])} | {_verdict(o)} | "
            f"{_ci(t['shift'], t['shift_low'], t['shift_high'])} | {_verdict(t)} | "
            f"{_edge(e)} | {_edge_shift(e)} | {o['loss']:.4g} |"
        )
    if test["gaps"]:
        lines += [
            f"\n#### {name}: paired SP − µP gap of the optimum (log2; {test['method']})\n",
            "| K | test gap [95%] | train gap [95%] | rule log2 sqrt(ln 4 / ln K) |",
            "|---|---|---|---|",
        ]
        tgaps = {g["modes"]: g for g in train["gaps"]}
        for g in test["gaps"]:
            if g["modes"] == setup["base_modes"]:
                continue
            t = tgaps[g["modes"]]
            lines.append(
                f"| {g['modes']} | {_ci(g['estimate'], g['low'], g['high'])} | "
                f"{_ci(t['estimate'], t['low'], t['high'])} | {g['rule']:+.2f} |"
            )
    lines.append("")
    lines += [f"- test loss — {v['line']}" for v in test["verdicts"].values()]
    lines += [f"- train loss — {v['line']}" for v in train["verdicts"].values()]
    r = rec.get("r_only")
    if r:
        rt = r["test_loss"]
        lines += [
            f"\n#### {name}: R-only sweep (only R's rate moves; lr of the other groups fixed "
            f"at the K_base optimum 2^{math.log2(r['lr']):.2f}; {rt['method']})\n",
            "| param. | K | test optimum log2 spectral_lr | test shift [95%] | verdict | "
            "exponent p [95%] (test) | exponent p [95%] (train) |",
            "|---|---|---|---|---|---|---|",
        ]
        for o in rt["optima"]:
            key = f"{o['parametrization']}/K{o['modes']}"
            p, pt = r["exponent"].get(key), r["exponent_train"].get(key)
            lines.append(
                f"| {_name(o['parametrization'])} | {o['modes']} | {o['position']:+.2f}"
                f"{' (edge)' if o['at_edge'] else ''} | "
                f"{_ci(o['shift'], o['shift_low'], o['shift_high'])} | {_verdict(o)} | "
                + (_ci(p["estimate"], p["low"], p["high"]) if p else "—")
                + " | "
                + (_ci(pt["estimate"], pt["low"], pt["high"]) if pt else "—")
                + " |"
            )
        lines.append(
            "\n(p: R's optimal rate ∝ (ln K_base / ln K)^p; µP's rule is p = 0.5, an R rate "
            "that does not depend on K is p = 0.)"
        )
    return "\n".join(lines)


def _verdict(o: dict) -> str:
    if o["verdict"] == "reference":
        return "—"
    return o["verdict"] + (f" ({o['reason']})" if o["verdict"] == "inconclusive" else "")


def render(record: dict) -> str:
    """The whole README block from the JSON record."""
    env = record["env"]
    head = [
        f"Generated by `benchmarks/transfer_repro.py` from `results/transfer_repro.json` "
        f"({env['mode']} run, {env.get('total_seconds', 0):.0f} s wall, n_jobs "
        f"{env['n_jobs']}, {env['nproc']} cores, load average {env['load_before']} -> "
        f"{env.get('load_after')}). Do not edit by hand: rerun with `--write-readme`.",
    ]
    body = [summary(record)] + [render_arm(name, rec) for name, rec in record["arms"].items()]
    return "\n".join(head + body)


def summary(record: dict) -> str:
    """One row per arm and K: shifts (test, train), the train-loss gap, the edge shifts."""
    lines = [
        "\n#### Summary: shift of the optimum base lr from K_base (log2, 95% Student-t over "
        "seeds, paired) and of the stability edge\n",
        "| arm | K | µP test | SP test | µP train | SP train | SP − µP train gap (rule) | "
        "edge shift µP / SP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, rec in record["arms"].items():
        base = rec["setup"]["base_modes"]
        opt = {
            (loss, o["parametrization"], o["modes"]): o
            for loss in ("test_loss", "train_loss")
            for o in rec[loss]["optima"]
        }
        edges = {(e["parametrization"], e["modes"]): e for e in rec["stability"]}
        gaps = {g["modes"]: g for g in rec["train_loss"]["gaps"]}
        for k in rec["setup"]["modes"]:
            if k == base:
                continue
            cells = []
            for loss in ("test_loss", "train_loss"):
                for kind in ("mup", "sp"):
                    o = opt.get((loss, kind, k))
                    cells.append(
                        f"{_ci(o['shift'], o['shift_low'], o['shift_high'])} {o['verdict']}"
                        if o
                        else "—"
                    )
            g = gaps.get(k)
            gap = f"{_ci(g['estimate'], g['low'], g['high'])} ({g['rule']:+.2f})" if g else "—"
            edge = " / ".join(
                _edge_shift(edges[(kind, k)]) if (kind, k) in edges else "—"
                for kind in ("mup", "sp")
            )
            lines.append(f"| {name} | {k} | {' | '.join(cells)} | {gap} | {edge} |")
    return "\n".join(lines)


def write_readme(record: dict, path: Path = README) -> None:
    """Replace the block between the markers in ``path`` with :func:`render` of ``record``."""
    write_block("transfer_repro", render(record), path)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--arms", default=None, help="comma-separated arm names (default: all)")
    parser.add_argument("--n-jobs", type=int, default=1, help="sweep worker processes")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default benchmarks/results; --quick: a temporary one, removed)",
    )
    parser.add_argument(
        "--write-readme", action="store_true", help="only re-render the README block from JSON"
    )
    parser.add_argument(
        "--analyse-only",
        action="store_true",
        help="re-analyse the finished sweeps in the storage (no training); keeps the JSON's "
        "record of the run that trained them",
    )
    parser.add_argument("--progress", action="store_true", help="progress bars")
    args = parser.parse_args(argv)
    if args.write_readme:
        record = json.loads(((args.out or RESULTS) / "transfer_repro.json").read_text())
        write_readme(record)
        print(render(record))
        return 0
    arms = QUICK if args.quick else FULL
    known = {a.name: a for a in (QUICK if args.quick else FULL)}
    if args.arms:
        names = [a.strip() for a in args.arms.split(",") if a.strip()]
        unknown = sorted(set(names) - set(known))
        if unknown:
            parser.error(f"unknown arm(s) {unknown}; choose from {sorted(known)}")
        arms = [known[n] for n in names]
    if args.out is not None:
        out = args.out
    elif args.quick:
        out = Path(tempfile.mkdtemp(prefix="transfer_repro_quick_"))
    else:
        out = RESULTS
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(out / 'transfer_repro.db').resolve()}"
    import optuna
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    env = environment(
        args.quick,
        n_jobs=args.n_jobs,
        torch_threads=torch.get_num_threads(),
        storage=storage.rsplit("/", 1)[-1],
    )
    record: dict[str, Any] = {"env": env, "arms": {}}
    start = time.perf_counter()
    for arm in arms:
        record["arms"][arm.name] = run_arm(
            arm, storage, args.n_jobs, args.progress, out, args.analyse_only
        )
    env["load_after"] = load_average()
    env["total_seconds"] = time.perf_counter() - start
    previous = out / "transfer_repro.json"
    if args.analyse_only and previous.exists():  # the run that trained them, not this one
        trained = json.loads(previous.read_text())
        record["env"] = {**trained["env"], "reanalysed_seconds": env["total_seconds"]}
        for name, arm_record in record["arms"].items():
            old = trained["arms"].get(name, {})
            arm_record["stats"] = old.get("stats", arm_record["stats"])
            if "r_only" in arm_record and "r_only" in old:
                arm_record["r_only"]["stats"] = old["r_only"]["stats"]
    print(f"\ntotal {env['total_seconds']:.0f} s; load {env['load_before']} -> {env['load_after']}")
    (out / "transfer_repro.json").write_text(json.dumps(record, indent=1, default=_json) + "\n")
    if not args.quick and out.resolve() == RESULTS.resolve():
        write_readme(record)
    if args.quick and args.out is None:  # a quick run without --out leaves nothing behind
        shutil.rmtree(out, ignore_errors=True)
    return 0


def _json(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
