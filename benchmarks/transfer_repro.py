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

* the optimum located on **validation** loss (primary; the test split selects nothing and is
  reported at that optimum) and on train loss (secondary: the optimiser alone): per-seed
  parabola-refined minimiser, the paired per-seed shift from K_base, its Student-t interval
  and the verdict (transfers / drifts / inconclusive; rules in the optimum module);
* the paired SP - µP gap, beside the rule's own factor on R's rate (log2 sqrt(ln 4 / ln K));
* the stability edge: the lowest rate at which at least half the seeds diverge or collapse
  (final validation rel-L2 >= 0.99), and its shift from K_base;
* for arms with an R-only sweep: only R's Adam rate moves (``spectral_lr``; R keeps µP's init
  at each K, every other group trains at a fixed lr); the shift of R's optimal rate gives the
  exponent p of ``eta_R* ∝ (ln K_base / ln K)^p`` (µP's rule: p = 1/2; K-independent: p = 0).

Multiplicity (:data:`FAMILIES`, fixed before the first run that recorded validation losses):
the shifts and gaps of one loss over all arms of a run form one family; its intervals are at
the Bonferroni level 1 - 0.05 / m and its p-values (zero shift, zero gap) are Holm-adjusted.
The R-only exponents (validation, train) are a family of two. Verdicts read the family-level
intervals. A grid is fixed in :data:`FULL`; the JSON's ``run_id`` hashes every grid, so a
changed grid is a new run, and the README shows earlier runs' values beside it
(:data:`EARLIER_RUNS`, re-analysed from their recorded curves with today's rules).

It writes ``transfer_repro.json``, the HTML figures (one shared ``plotly.min.js``) and, for a
full run into benchmarks/results, the README block between the ``transfer_repro`` markers,
rendered from the JSON (``--write-readme`` re-renders it without training).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import harness
import numpy as np
from readme_block import write_block
from transfer_repro_report import render

from transfer_tune.analysis.curves import Curves, landscape_curves
from transfer_tune.analysis.landscape import load_sweep, sweep
from transfer_tune.analysis.optimum import OptimumAnalysis, analyze_optimum
from transfer_tune.analysis.stability import stability_edges
from transfer_tune.analysis.stats import family_level, holm, t_interval
from transfer_tune.core.parametrization import get_parametrization

RESULTS = harness.RESULTS
CONFIDENCE = 0.95
#: The losses an optimum is located on, in order: validation is primary (the test split is only
#: reported at the validation optimum), train loss secondary. Each is one family.
FAMILIES = ("val_loss", "train_loss")
#: Earlier full runs (JSON in results/), shown beside this one: the first (narrower grids,
#: 2026-12-02) and the repeat with widened grids; both located optima on test loss and
#: recorded no validation loss, so only their train-loss results are re-analysed.
EARLIER_RUNS = ("transfer_repro_run1.json", "transfer_repro_run2.json")
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
    #: the fixed lr of every other group in the R-only sweep (log2): the K_base test-loss
    #: optimum on the grid of the first full run (2^-4.25), fixed in code since
    r_lr_log2: float = -4.25
    #: the R-only grid's centre (log2): 0.5 above r_lr_log2, since R's optimum at large K sat
    #: at the top of a grid centred on it in the first full run
    r_center_log2: float = -3.75
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
    from K_base, and p = that / log2(ln K_base / ln K). The interval is at the analysis's
    (family) level.
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


def family_sizes(arms: list[Arm]) -> dict[str, int]:
    """Intervals per family: two shifts and one gap for every K other than K_base, per arm."""
    per_loss = sum(3 * len([k for k in a.modes if k != a.base_modes]) for a in arms)
    return {loss: per_loss for loss in FAMILIES}


def grid_index(values: np.ndarray, value: float) -> int:
    """Index of the grid value nearest ``value`` (log scale)."""
    return int(np.argmin(np.abs(np.log2(values) - math.log2(value))))


def analyse(
    mup: Any, sp: Any, arm: Arm, param: str, modes: tuple[int, ...], levels: dict[str, float]
) -> dict[str, Any]:
    """Optima located on each loss of :data:`FAMILIES` at its family level, the test loss at
    the validation optimum, gaps, stability edges and the curves, as plain data."""
    out: dict[str, Any] = {}
    curves = {
        loss: merged_curves(mup, sp, arm, param, loss, modes) for loss in (*FAMILIES, "test_loss")
    }
    for loss in FAMILIES:
        a = analyze_optimum(curves[loss], confidence=levels[loss])
        records = a.to_records()
        for rec in records:
            key = (rec["parametrization"], rec["modes"])
            i = grid_index(curves[loss].values, rec["grid_value"])
            rec["test_loss_at_optimum"] = float(np.mean(curves["test_loss"].losses[key][i]))
        out[loss] = {
            "method": a.method_label,
            "level": levels[loss],
            "grid_step": a.grid_step,
            "optima": records,
            "verdicts": {k: {"verdict": v.verdict, "line": v.line} for k, v in a.verdicts.items()},
            "gaps": [g.to_dict() for g in a.gaps],
        }
        out.setdefault("_analysis", {})[loss] = a
    out["stability"] = [e.to_dict() for e in stability_edges(curves["val_loss"])]
    out["curves"] = {
        loss: {f"{k[0]}/K{k[1]}": v.tolist() for k, v in c.losses.items()}
        for loss, c in curves.items()
    }
    out["_curves"] = curves
    return out


def content(arm: Arm) -> dict[str, float]:
    """Energy of the arm's training targets beyond each K (can the larger K learn more?)."""
    from pdes import load_problem
    from pdes.spectrum import energy_beyond

    _, y = load_problem(arm.problem, arm.overrides).dataset("train", normalized=False)
    return {str(k): energy_beyond(y, k) for k in sorted({arm.base_modes, *arm.modes})}


def run_arm(
    arm: Arm,
    storage: str,
    n_jobs: int,
    progress: bool,
    out: Path,
    levels: dict[str, float],
    analyse_only: bool = False,
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
    main = analyse(mup, sp, arm, "lr", arm.modes, levels)
    record: dict[str, Any] = {
        "setup": {**asdict(arm), "lr_grid": grid},
        "content": content(arm),
        "stats": stats,
        **{k: v for k, v in main.items() if not k.startswith("_")},
    }
    paths = figures(arm.name, main["_curves"]["val_loss"], main["_analysis"]["val_loss"], out)
    if arm.r_only:
        lr_fixed = 2.0**arm.r_lr_log2
        r_grid = arm.grid(arm.r_center_log2, arm.r_values)
        print(f"{arm.name}: R-only sweep, lr fixed at 2^{arm.r_lr_log2:.2f}", flush=True)
        common["sweep_name"] = f"repro-{arm.name}-ronly-lr{arm.r_lr_log2:+.2f}"
        rm, rs, rstats = run_sweeps(
            arm,
            "spectral_lr",
            r_grid,
            arm.r_only,
            {**arm.hparams(), "lr": lr_fixed},
            common,
            arm.r_kinds,
        )
        r_level = family_level(CONFIDENCE, len(FAMILIES))  # the two exponents: one family
        ronly = analyse(rm, rs, arm, "spectral_lr", arm.r_only, dict.fromkeys(FAMILIES, r_level))
        record["r_only"] = {
            "lr": lr_fixed,
            "grid": r_grid,
            "stats": rstats,
            "exponent": {loss: exponent(ronly["_analysis"][loss], arm) for loss in FAMILIES},
            **{k: v for k, v in ronly.items() if not k.startswith("_")},
        }
        paths += figures(
            f"{arm.name}-ronly", ronly["_curves"]["val_loss"], ronly["_analysis"]["val_loss"], out
        )
    record["figures"] = [p.name for p in paths]
    return record


def correct(record: dict) -> None:
    """Holm-adjust each family's p-values (zero shift, zero gap) over all arms, in place."""
    for loss in FAMILIES:
        entries = []
        for rec in record["arms"].values():
            base = rec["setup"]["base_modes"]
            entries += [o for o in rec[loss]["optima"] if o["verdict"] != "reference"]
            entries += [g for g in rec[loss]["gaps"] if g["modes"] != base]
        adjusted = holm([e.get("shift_p", e.get("p", math.nan)) for e in entries])
        for e, p in zip(entries, adjusted, strict=True):
            e["p_holm"] = p


def design_id(arms: dict[str, dict]) -> str:
    """A hash of everything that decides the runs of a record's arms (grids included)."""
    keys = ("problem", "overrides", "width", "clip", "modes", "base_modes", "n_layers")
    keys += ("epochs", "batch_size", "seeds", "lr_grid")
    design = {
        name: {
            **{k: rec["setup"][k] for k in keys},
            "r_only": (rec["r_only"]["lr"], rec["r_only"]["grid"]) if "r_only" in rec else None,
        }
        for name, rec in arms.items()
    }
    text = json.dumps(design, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def write_html(fig: Any, path: Path) -> Path:
    """Write ``fig`` as HTML sharing one ``plotly.min.js`` in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs="directory", full_html=True)
    return path


def figures(name: str, curves: Curves, analysis: OptimumAnalysis, out: Path) -> list[Path]:
    """The landscape and the optimum-shift figure of one arm, as HTML."""
    from transfer_tune.report import landscape_figure, optimum_figure

    land = landscape_figure(
        curves, analysis=analysis, title=f"{name}: final test loss against {curves.param}"
    )
    shift = optimum_figure(analysis, title=f"{name}: optimum {curves.param} against K")
    return [
        write_html(land, out / f"transfer_{name}_landscape.html"),
        write_html(shift, out / f"transfer_{name}_optimum.html"),
    ]


# -- the record and the README ----------------------------------------------------------------


def load_earlier(folder: Path = RESULTS) -> dict[str, dict]:
    """The earlier full runs' records that are present, each with its design id as ``_id``."""
    out = {}
    for i, name in enumerate(EARLIER_RUNS, start=1):
        path = folder / name
        if path.exists():
            record = harness.load(path)
            record["_id"] = design_id(record["arms"])
            out[f"run {i}"] = record
    return out


def block(record: dict) -> str:
    """The README block: ``record`` beside the earlier runs, from the JSON alone."""
    return render(record, load_earlier())


BLOCK = harness.Block("transfer_repro", block)


def write_readme(record: dict, path: Path = harness.README) -> str:
    """Replace the block between the markers in ``path`` with the rendered ``record``."""
    text = block(record)
    write_block("transfer_repro", text, path)
    return text


def output_folder(out: Path | None, quick: bool, name: str) -> Path:
    """Where a landscape script's sweeps and figures go, created: ``--out``; else, for a quick
    run, a temporary folder (its caller removes it); else benchmarks/results."""
    if out is None:
        out = Path(tempfile.mkdtemp(prefix=f"{name}_quick_")) if quick else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_arms(
    arms: list[Arm],
    storage: str,
    out: Path,
    args: Any,
    analyse_only: bool = False,
) -> dict[str, Any]:
    """Sweep and analyse every arm (1 torch thread per process) at its family's level and
    Holm-adjust the families: the record, timed from the first arm (its ``run_id`` is the
    caller's; ``args``: ``quick``, ``n_jobs``, ``progress``)."""
    import optuna
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    clock = harness.Run(
        args.quick,
        n_jobs=args.n_jobs,
        torch_threads=torch.get_num_threads(),
        storage=storage.rsplit("/", 1)[-1],
    )
    sizes = family_sizes(arms)
    levels = {loss: family_level(CONFIDENCE, m) for loss, m in sizes.items()}
    families = {loss: {"m": sizes[loss], "level": levels[loss]} for loss in FAMILIES}
    record: dict[str, Any] = {"env": clock.env, "families": families, "arms": {}}
    clock.restart()
    for arm in arms:
        record["arms"][arm.name] = run_arm(
            arm, storage, args.n_jobs, args.progress, out, levels, analyse_only
        )
    correct(record)
    clock.stop()
    return record


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = harness.parser(__doc__, n_jobs=1)
    parser.add_argument("--arms", default=None, help="comma-separated arm names (default: all)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder: sweeps, figures and (unless --json) the record (default "
        "benchmarks/results; --quick: a temporary one, removed)",
    )
    parser.add_argument(
        "--write-readme",
        action="store_true",
        help="only re-render the README block from the output folder's transfer_repro.json",
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
        args.readme_from = [(args.out or RESULTS) / "transfer_repro.json"]
    if args.readme_from:
        return harness.rerender(BLOCK, args.readme_from)
    arms = QUICK if args.quick else FULL
    known = {a.name: a for a in (QUICK if args.quick else FULL)}
    if args.arms:
        names = [a.strip() for a in args.arms.split(",") if a.strip()]
        unknown = sorted(set(names) - set(known))
        if unknown:
            parser.error(f"unknown arm(s) {unknown}; choose from {sorted(known)}")
        arms = [known[n] for n in names]
    out = output_folder(args.out, args.quick, "transfer_repro")
    storage = f"sqlite:///{(out / 'transfer_repro.db').resolve()}"
    record = run_arms(arms, storage, out, args, args.analyse_only)
    record["run_id"] = design_id(record["arms"])
    env = record["env"]
    path = args.json or out / "transfer_repro.json"
    if args.analyse_only and path.exists():  # the run that trained them, not this one
        trained = harness.load(path)
        record["env"] = {**trained["env"], "reanalysed_seconds": env["total_seconds"]}
        for name, arm_record in record["arms"].items():
            old = trained["arms"].get(name, {})
            arm_record["stats"] = old.get("stats", arm_record["stats"])
            if "r_only" in arm_record and "r_only" in old:
                arm_record["r_only"]["stats"] = old["r_only"]["stats"]
    print(render(record))
    print(f"\ntotal {env['total_seconds']:.0f} s; load {env['load_before']} -> {env['load_after']}")
    harness.publish(args, record, BLOCK, path=path)
    if args.quick and args.out is None:  # a quick run without --out leaves nothing behind
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
