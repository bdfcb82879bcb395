"""Does the best learning rate stay put across width (µP against SP) and across training grids?

A pre-registered benchmark (issue 23, §2 and §4): the design below was fixed in this file
before its first full run, and the JSON records a hash of it as the run id, so a changed grid,
size or seed list is a new run.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/width_transfer.py --n-jobs 2    # full, ~16 min alone
    python benchmarks/width_transfer.py --quick                          # tiny sizes, seconds
    python benchmarks/width_transfer.py --readme-from benchmarks/results/width_transfer.json

**Width landscapes** (:data:`FULL`): Burgers (default ν = 1e-3) on 64 points, K 8, widths
8, 16, 32, 64; Darcy on 17 x 17 nodes (solved on 129 x 129), K 4, widths 8, 16, 32. Adam's
base rate on a grid 2^(1/4) apart, wide enough for both sides of the optimum and SP's collapse
edge, 5 fresh seeds (each seed draws the initialisation and the batch order; every seed sees
the same data). µP over width (hidden weights' rate x base/width, readout init r^-1/2 and rate
/ r, :mod:`transfer_tune.core.parametrization`) beside SP, both relative to the smallest
width. At that base width µP *is* SP bit for bit, so the two arms share those runs (one run of
each arm checks the identity, :func:`base_check`).

**Resolution landscape**: Burgers, width 16, K 8, the same model trained on 32, 64 and the
full 128 points (exact subsamples of the same solves, :func:`pdes.coarse.coarse_problem`);
width and K are fixed, so µP and SP are one parametrization here. Every run is evaluated on
the grid it trained on and on the full grid.

Analysis (from the JSON alone, :func:`analyse`): the optimum is located on the **validation**
loss (per seed, parabola-refined on the log2 lr grid; :func:`transfer_tune.analysis.optimum.
analyze_optimum`, keyed by width, or by training grid, where that module says K); train loss
and test error (relative L2, physical units) are reported at that optimum. Shifts from the
base width (from the full grid) are paired over seeds with Student-t intervals and verdicts:
"transfers" only when the interval lies within ± one grid step, "drifts" when it lies beyond,
else "inconclusive" (or when an optimum sits at a grid edge). The shift **per doubling of
width** is each seed's least-squares slope of its optimum (log2 lr) against log2 width.

Multiplicity (fixed with the design, :func:`families`): three families, each with intervals at
the Bonferroni level 1 - 0.05 / m and Holm-adjusted p-values (zero shift): (1) every
per-width shift of both problems and both parametrizations; (2) per problem, SP's and µP's
shift per doubling and their paired difference; (3) the coarse grids' shifts from the full
grid, located on the validation loss on the training grid and on the full grid.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages first
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

NAME = "width_transfer"
CONFIDENCE = 0.95
#: What every figure in the block is measured in; the analysis module's words, said once.
VERDICT_WORDS = {
    "transfers": "stays within one grid step",
    "drifts": "moves beyond one grid step",
    "inconclusive": "is not resolved",
}
#: The slope SP is expected to show under Adam (DESIGN.md §2: one octave down per doubling).
SP_THEORY = -1.0


# -- the design -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """A learning-rate grid: ``n_values`` rates ``2**step_log2`` apart from ``2**low_log2``."""

    low_log2: float
    n_values: int
    step_log2: float = 0.25

    def values(self) -> list[float]:
        """The rates, ascending."""
        return [2.0 ** (self.low_log2 + self.step_log2 * i) for i in range(self.n_values)]


@dataclass(frozen=True)
class WidthArm:
    """One width landscape: a problem, K, the widths (the first is the base) and the budget."""

    name: str
    problem: str
    overrides: dict[str, Any]
    modes: int
    widths: tuple[int, ...]
    lr: Grid
    n_layers: int = 4
    epochs: int = 10
    batch_size: int = 16


@dataclass(frozen=True)
class ResolutionArm:
    """The resolution landscape: the target's problem (its resolution is the full grid) and the
    training grids (ascending, the last is the full one) at fixed width and K."""

    name: str
    problem: str
    overrides: dict[str, Any]
    modes: int
    width: int
    resolutions: tuple[int, ...]
    lr: Grid
    n_layers: int = 4
    epochs: int = 10
    batch_size: int = 16


@dataclass(frozen=True)
class Design(harness.Registered):
    """The pre-registered experiment (everything that decides a result)."""

    width_arms: tuple[WidthArm, ...]
    resolution: ResolutionArm
    #: Fresh seeds (transfer_repro used 0 .. 4, mup_parts 20000 + 1000 i).
    seeds: tuple[int, ...] = tuple(40000 + 1000 * i for i in range(5))
    located_on: str = "val_loss"
    budget_minutes: float = 25.0


_BURGERS = {"resolution": 64, "n_train": 128, "n_val": 32, "n_test": 128}  # nu = 1e-3 default
FULL = Design(
    width_arms=(
        WidthArm("burgers", "burgers", _BURGERS, 8, (8, 16, 32, 64), Grid(-9.0, 29)),
        WidthArm(
            "darcy",
            "darcy",
            {"resolution": 17, "n_fine": 129, "n_train": 96, "n_val": 32, "n_test": 128},
            4,
            (8, 16, 32),
            Grid(-8.5, 29),
            epochs=8,
        ),
    ),
    resolution=ResolutionArm(
        "burgers-grid",
        "burgers",
        {**_BURGERS, "resolution": 128},
        8,
        16,
        (32, 64, 128),
        Grid(-8.5, 25),
    ),
)
_TINY = {"nu": 0.002, "dt": 1e-3, "n_fine": 256, "resolution": 32, "n_train": 16, "n_val": 4}
_TINY_BUDGET = {"n_layers": 2, "epochs": 2, "batch_size": 8}
QUICK = Design(
    width_arms=(
        WidthArm(
            "burgers",
            "burgers",
            {**_TINY, "n_test": 8},
            4,
            (8, 16),
            Grid(-7, 5, 0.5),
            **_TINY_BUDGET,
        ),
        WidthArm(
            "darcy",
            "darcy",
            {"resolution": 8, "n_fine": 15, "n_train": 16, "n_val": 4, "n_test": 8},
            2,
            (8, 16),
            Grid(-7, 5, 0.5),
            **_TINY_BUDGET,
        ),
    ),
    resolution=ResolutionArm(
        "burgers-grid",
        "burgers",
        {**_TINY, "n_test": 8},
        2,
        8,
        (8, 16, 32),
        Grid(-7, 5, 0.5),
        **_TINY_BUDGET,
    ),
    seeds=(0, 1, 2),
)


def families(design: dict) -> dict[str, dict[str, float]]:
    """The three families of intervals (their sizes m and Bonferroni levels) of a design."""
    from transfer_tune.analysis.stats import family_level

    arms = design["width_arms"]
    sizes = {
        "width shifts": sum(2 * (len(a["widths"]) - 1) for a in arms),
        "per doubling": 3 * len(arms),
        "grid shifts": 2 * (len(design["resolution"]["resolutions"]) - 1),
    }
    return {k: {"m": m, "level": family_level(CONFIDENCE, m)} for k, m in sizes.items()}


# -- running ----------------------------------------------------------------------------------
def jobs(design: Design) -> list[tuple]:
    """Every training run: ``(arm, kind, width or grid, lr index, seed, check)``.

    SP at every width, µP at every width but the base (its runs are SP's), and one µP run at
    the base width (first seed, middle rate) that :func:`base_check` compares with SP's. The
    costliest runs come first so two workers finish together.
    """
    out = []
    for arm in design.width_arms:
        for w in arm.widths:
            for kind in ("sp", "mup") if w != arm.widths[0] else ("sp",):
                out += [
                    (arm.name, kind, w, i, s, False)
                    for i in range(arm.lr.n_values)
                    for s in design.seeds
                ]
        out.append((arm.name, "mup", arm.widths[0], arm.lr.n_values // 2, design.seeds[0], True))
    res = design.resolution
    out += [
        (res.name, "sp", r, i, s, False)
        for r in res.resolutions
        for i in range(res.lr.n_values)
        for s in design.seeds
    ]
    arms = {a.name: a for a in design.width_arms}

    def cost(job: tuple) -> float:  # grid points x a width factor: a rough ordering only
        arm = arms.get(job[0], res)
        points = (job[2] if arm is res else arm.overrides["resolution"]) ** (
            2 if arm.problem == "darcy" else 1
        )
        return points * (4 + (res.width if arm is res else job[2]) / 16)

    return sorted(out, key=lambda j: -cost(j))


_PROBLEMS: dict[str, Any] = {}  # per worker process: problems and tensors, loaded once


def _data(design: Design, arm: str, x: int) -> dict[str, Any]:
    """The problem (and, for the resolution arm, the full-grid evaluation data) of one run."""
    from pdes import load_problem
    from pdes.coarse import coarse_problem

    key = f"{design.run_id()}/{arm}/{x}"
    if key not in _PROBLEMS:
        widths = {a.name: a for a in design.width_arms}
        if arm in widths:
            a = widths[arm]
            problem = load_problem(a.problem, a.overrides)
            full = None
        else:
            a = design.resolution
            problem = coarse_problem(load_problem(a.problem, a.overrides), x)
            # the full grid, encoded with *this* model's normalisers (fitted on its own grid)
            full = problem.with_overrides(resolution=a.overrides["resolution"])
        _PROBLEMS[key] = {"problem": problem, "full": full, "arm": a}
    return _PROBLEMS[key]


def run_job(design: Design, job: tuple) -> dict[str, Any]:
    """Train one model (one process, one thread); a diverged run scores ``inf`` everywhere."""
    import torch

    from transfer_tune.core.hparams import HParams
    from transfer_tune.core.model import FNO
    from transfer_tune.core.parametrization import get_parametrization
    from transfer_tune.core.train import TrainData, evaluate, fit
    from transfer_tune.errors import DivergenceError
    from transfer_tune.search.transfer import physical_error

    torch.set_num_threads(1)
    arm_name, kind, x, i, seed, check = job
    d = _data(design, arm_name, x)
    problem, full, arm = d["problem"], d["full"], d["arm"]
    width = x if full is None else arm.width

    def build(w: int) -> FNO:
        return FNO(
            dim=problem.dim,
            modes=arm.modes,
            width=w,
            n_layers=arm.n_layers,
            in_channels=problem.in_channels,
            out_channels=problem.out_channels,
        )

    base = build(arm.widths[0]) if full is None else None
    par = get_parametrization(kind, base_modes=arm.modes, base_shapes=base)
    model = build(width)
    par.initialize(model, generator=torch.Generator().manual_seed(seed))
    lr = arm.lr.values()[i]
    hp = HParams(lr=lr, batch_size=arm.batch_size)
    data = TrainData(*problem.dataset("train"), *problem.dataset("val"))
    out: dict[str, Any] = {"arm": arm_name, "kind": kind, "x": x, "lr_index": i, "lr": lr}
    out.update(seed=seed, check=check)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        result = fit(model, data, hp, arm.epochs, parametrization=par, seed=seed, device="cpu")
        out.update(val_loss=result.val_loss, train_loss=result.train_loss)
        out["test_l2"] = physical_error(model, problem, *problem.dataset("test"))
        if full is not None:
            out["val_loss_full"] = evaluate(model, *full.dataset("val"))
            out["test_l2_full"] = physical_error(model, full, *full.dataset("test"))
    except DivergenceError:
        out.update(val_loss=math.inf, train_loss=math.inf, test_l2=math.inf)
        if full is not None:
            out.update(val_loss_full=math.inf, test_l2_full=math.inf)
    out["seconds"] = time.perf_counter() - start
    out["cpu_seconds"] = time.process_time() - cpu  # one thread: the run's time on a free core
    return out


def prepare(design: Design) -> None:
    """Generate (or read from the cache) every data set once, before the workers start."""
    from pdes import load_problem
    from pdes.coarse import coarse_problem

    problems = [load_problem(a.problem, a.overrides) for a in design.width_arms]
    res = design.resolution
    target = load_problem(res.problem, res.overrides)
    problems += [target] + [coarse_problem(target, r) for r in res.resolutions]
    for problem in problems:
        for split in ("train", "val", "test"):
            problem.dataset(split)


def run(design: Design, n_jobs: int) -> dict[str, Any]:
    """Every run of ``design`` on ``n_jobs`` worker processes (1 thread each), a progress line
    per finished run; the record (design, env, runs, analysis) as plain data."""
    from joblib import delayed

    from pdes.processes import parallel

    clock = harness.Run(design == QUICK, n_jobs=n_jobs, threads=1)
    prepare(design)
    clock.restart()
    todo = jobs(design)
    runs = []
    calls = (delayed(run_job)(design, job) for job in todo)
    for n, r in enumerate(parallel(n_jobs, return_as="generator_unordered")(calls), start=1):
        runs.append(r)
        tag = "base check " if r["check"] else ""
        print(
            f"[{n}/{len(todo)}] {tag}{r['arm']} {r['kind']} {r['x']} lr 2^"
            f"{math.log2(r['lr']):+.2f} seed {r['seed']}: val {r['val_loss']:.4g}, test "
            f"{r['test_l2']:.4g} ({r['seconds']:.1f} s; {clock.seconds:.0f} s elapsed)",
            flush=True,
        )
    runs.sort(key=lambda r: (r["arm"], r["kind"], r["x"], r["lr_index"], r["seed"], r["check"]))
    record: dict[str, Any] = {
        "run_id": design.run_id(),
        "design": dataclasses.asdict(design),
        "env": clock.stop(),
        "runs": runs,
    }
    record["env"]["run_seconds"] = sum(r["seconds"] for r in runs)
    record["env"]["run_cpu_seconds"] = sum(r["cpu_seconds"] for r in runs)
    record["analysis"] = analyse(record)
    return record


# -- analysis (from the JSON record alone) ----------------------------------------------------
def _lrs(arm: dict) -> list[float]:
    return Grid(**arm["lr"]).values()


def _array(record: dict, arm: str, kind: str, x: int, metric: str) -> Any:
    """``(n_lr, n_seeds)`` of one metric of one curve (NaN where a run is missing)."""
    import numpy as np

    d = record["design"]
    arms = {a["name"]: a for a in d["width_arms"]} | {d["resolution"]["name"]: d["resolution"]}
    seeds = list(d["seeds"])
    arr = np.full((len(_lrs(arms[arm])), len(seeds)), np.nan)
    for r in record["runs"]:
        if (r["arm"], r["kind"], r["x"]) == (arm, kind, x) and not r["check"]:
            arr[r["lr_index"], seeds.index(r["seed"])] = r[metric]
    return arr


def _curves(record: dict, arm: dict, metric: str, keys: list[tuple[str, int]], base: int) -> Any:
    """:class:`Curves` keyed ``(kind, width or grid)``; µP at the base width is SP's runs."""
    from transfer_tune.analysis.curves import Curves

    losses = {}
    for kind, x in keys:
        src = "sp" if ("widths" in arm and x == arm["widths"][0]) else kind
        losses[(kind, x)] = _array(record, arm["name"], src, x, metric)
    return Curves(
        param="lr",
        values=_lrs(arm),
        losses=losses,
        base_modes=base,
        seeds=list(record["design"]["seeds"]),
        loss=metric,
    )


def _optima(curves: Any, level: float, ref: int, extra: dict[str, Any], axis: str) -> list[dict]:
    """The optima of ``curves`` at ``level`` (shift from ``ref``), each with the seed-mean of
    every curve of ``extra`` at the located grid value; ``axis`` names the key (width, grid)."""
    import numpy as np

    from transfer_tune.analysis.optimum import analyze_optimum
    from transfer_tune.analysis.stability import stability_edges

    a = analyze_optimum(curves, confidence=level, reference_modes=ref)
    edges = {(e.parametrization, e.modes): e for e in stability_edges(curves, ref)}
    out = []
    for o in a.optima:
        rec = dataclasses.asdict(o)
        key = (rec["parametrization"], rec.pop("modes"))
        rec[axis] = key[1]
        rec["grid_step"] = a.grid_step
        i = int(np.argmin(np.abs(np.log2(curves.values) - math.log2(o.grid_value))))
        for name, c in extra.items():
            v = c.losses[key][i]
            rec[f"{name}_at_optimum"] = float(np.mean(v)) if np.all(np.isfinite(v)) else math.inf
        rec["edge"] = edges[key].to_dict()
        rec["edge_text"] = edges[key].text()
        out.append(rec)
    return out


def _slope(positions: list[list[float]], widths: list[int]) -> list[float]:
    """Per seed, the least-squares slope of the optimum (log2 lr) against log2 width."""
    import numpy as np

    x = np.log2(np.asarray(widths, float))
    x = x - x.mean()
    p = np.asarray(positions, float)  # (n_widths, n_seeds)
    return [float(v) for v in (x @ (p - p.mean(axis=0))) / (x @ x)]


def _test(values: list[float], level: float, step: float, at_edge: bool) -> dict[str, Any]:
    """Student-t interval at ``level``, two-sided p of zero and the shift verdict."""
    from transfer_tune.analysis.optimum import classify_shift
    from transfer_tune.analysis.stats import t_interval, t_pvalue

    ci = t_interval(values, level)
    verdict, reason = classify_shift(ci, step, at_edge)
    out = {"estimate": ci.estimate, "low": ci.low, "high": ci.high, "n": ci.n, "level": level}
    return {**out, "p": t_pvalue(values), "verdict": verdict, "reason": reason, "seeds": values}


def base_check(record: dict) -> list[dict[str, Any]]:
    """Per width arm: the µP check run at the base width beside SP's run with the same rate and
    seed; ``identical`` when every recorded loss is equal (bit for bit)."""
    out = []
    for r in (r for r in record["runs"] if r["check"]):
        sp = next(
            s
            for s in record["runs"]
            if not s["check"]
            and (s["arm"], s["kind"], s["x"], s["lr_index"], s["seed"])
            == (r["arm"], "sp", r["x"], r["lr_index"], r["seed"])
        )
        metrics = ("val_loss", "train_loss", "test_l2")
        same = all(sp[m] == r[m] for m in metrics)
        out.append(
            {
                "arm": r["arm"],
                "width": r["x"],
                "lr": r["lr"],
                "seed": r["seed"],
                "sp": {m: sp[m] for m in metrics},
                "mup": {m: r[m] for m in metrics},
                "identical": same,
            }
        )
    return out


def analyse(record: dict) -> dict[str, Any]:
    """Optima, shifts, slopes, verdicts and Holm-adjusted p of the whole record."""
    from transfer_tune.analysis.stats import holm

    d = record["design"]
    fam = families(d)
    out: dict[str, Any] = {"families": fam, "width": {}, "per_doubling": {}}
    for arm in d["width_arms"]:
        widths = list(arm["widths"])
        keys = [(k, w) for k in ("sp", "mup") for w in widths]
        curves = {
            m: _curves(record, arm, m, keys, widths[0])
            for m in ("val_loss", "train_loss", "test_l2")
        }
        extra = {
            "val_loss": curves["val_loss"],
            "train_loss": curves["train_loss"],
            "test_l2": curves["test_l2"],
        }
        level = fam["width shifts"]["level"]
        optima = _optima(curves["val_loss"], level, widths[0], extra, "width")
        out["width"][arm["name"]] = optima
        slope_level = fam["per doubling"]["level"]
        step = arm["lr"]["step_log2"]
        slopes, per_seed = {}, {}
        for kind in ("sp", "mup"):
            mine = [o for o in optima if o["parametrization"] == kind]
            per_seed[kind] = _slope([o["seed_positions"] for o in mine], widths)
            slopes[kind] = _test(per_seed[kind], slope_level, step, any(o["at_edge"] for o in mine))
        diff = [a - b for a, b in zip(per_seed["sp"], per_seed["mup"], strict=True)]
        edge = slopes["sp"]["verdict"] == slopes["mup"]["verdict"] == "inconclusive" and any(
            s["reason"] == "optimum at a grid edge" for s in slopes.values()
        )
        slopes["sp - mup"] = _test(diff, slope_level, step, edge)
        out["per_doubling"][arm["name"]] = slopes
    res = d["resolution"]
    grids, full = list(res["resolutions"]), res["resolutions"][-1]
    keys = [("sp", r) for r in grids]
    metrics = ("val_loss", "train_loss", "test_l2", "val_loss_full", "test_l2_full")
    curves = {m: _curves(record, res, m, keys, full) for m in metrics}
    level = fam["grid shifts"]["level"]
    out["resolution"] = {
        where: _optima(curves[metric], level, full, curves, "grid")
        for where, metric in (("training grid", "val_loss"), ("full grid", "val_loss_full"))
    }
    # Holm over each family
    width_family = [o for arm in out["width"].values() for o in arm if o["verdict"] != "reference"]
    slope_family = [t for arm in out["per_doubling"].values() for t in arm.values()]
    grid_family = [o for v in out["resolution"].values() for o in v if o["verdict"] != "reference"]
    for members, p_key in (
        (width_family, "shift_p"),
        (slope_family, "p"),
        (grid_family, "shift_p"),
    ):
        for m, p in zip(members, holm([m[p_key] for m in members]), strict=True):
            m["p_holm"] = p
    sizes = [len(width_family), len(slope_family), len(grid_family)]
    assert sizes == [f["m"] for f in fam.values()], (sizes, fam)
    out["base_check"] = base_check(record)
    return out


# -- rendering (from the JSON record alone) ---------------------------------------------------
def _ci(t: dict, est: str = "estimate", lo: str = "low", hi: str = "high") -> str:
    if not math.isfinite(t[est]):
        return "n/a"
    if not (math.isfinite(t[lo]) and math.isfinite(t[hi])):
        return f"{t[est]:+.2f} [n/a]"
    return f"{t[est]:+.2f} [{t[lo]:+.2f}, {t[hi]:+.2f}]"


def _shift(o: dict) -> str:
    if o["verdict"] == "reference":
        return "—"
    return _ci(o, "shift", "shift_low", "shift_high")


def _p(p: float | None) -> str:
    return "n/a" if p is None or not math.isfinite(p) else f"{p:.2g}"


def _num(v: float) -> str:
    return "inf" if not math.isfinite(v) else f"{v:.4f}"


def _name(kind: str) -> str:
    return {"mup": "µP", "sp": "SP", "sp - mup": "SP − µP"}[kind]


def _reason(t: dict) -> str:
    """The analysis's reason, its "(width x)" (of the interval) said unambiguously here."""
    return t["reason"].replace("(width ", "(interval width ")


def _verdict(o: dict) -> str:
    if o["verdict"] == "reference":
        return "— (reference)"
    return o["verdict"] + (f" ({_reason(o)})" if o["verdict"] == "inconclusive" else "")


def _level(level: float) -> str:
    return f"{100 * level:.2f} %"


def _grid(arm: dict) -> str:
    lrs = _lrs(arm)
    step = arm["lr"]["step_log2"]
    return f"2^{math.log2(lrs[0]):.2f} … 2^{math.log2(lrs[-1]):.2f} ({len(lrs)}, step 2^{step:g})"


def _where(arm: dict) -> str:
    r = arm["overrides"]["resolution"]
    return f"{arm['problem']} {r}×{r}" if arm["problem"] == "darcy" else f"{arm['problem']} {r}"


def setup_table(record: dict) -> str:
    """The landscapes as run."""
    d = record["design"]
    lines = [
        "| landscape | problem, grid | K | varied | layers | epochs × batch | train / val / test "
        "| lr grid (values) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a in [*d["width_arms"], d["resolution"]]:
        o = a["overrides"]
        varied = (
            f"width {' → '.join(map(str, a['widths']))}"
            if "widths" in a
            else f"grid {' → '.join(map(str, a['resolutions']))} (width {a['width']})"
        )
        lines.append(
            f"| {a['name']} | {_where(a)} | {a['modes']} | {varied} | {a['n_layers']} | "
            f"{a['epochs']} × {a['batch_size']} | {o['n_train']} / {o['n_val']} / {o['n_test']} | "
            f"{_grid(a)} |"
        )
    return "\n".join(lines)


def width_table(name: str, optima: list[dict], level: float) -> str:
    """One width landscape: optimum, shift from the base width, verdict, losses at the optimum."""
    base = next(o["width"] for o in optima if o["verdict"] == "reference")
    lines = [
        f"\n#### {name}: optimum base lr per width (located on validation loss; shift from width "
        f"{base}, log2, paired over seeds, Student-t at {_level(level)})\n",
        "| param. | width | optimum log2 lr [interval] | shift [interval] | p (Holm) | verdict | "
        "val loss | train loss | test rel-L2 | collapse edge (fail/seeds) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in optima:
        edge = " (grid edge)" if o["at_edge"] else ""
        pos = {
            "estimate": o["position"],
            "low": math.log2(o["low"]) if o["low"] > 0 else math.nan,
            "high": math.log2(o["high"]) if o["high"] > 0 else math.nan,
        }
        lines.append(
            f"| {_name(o['parametrization'])} | {o['width']} | {_ci(pos)}{edge} | {_shift(o)} | "
            f"{_p(o.get('p_holm'))} | {_verdict(o)} | {_num(o['val_loss_at_optimum'])} | "
            f"{_num(o['train_loss_at_optimum'])} | {_num(o['test_l2_at_optimum'])} | "
            f"{o['edge_text']} |"
        )
    return "\n".join(lines)


def slope_table(record: dict) -> str:
    """SP's and µP's shift per doubling of width, and their difference."""
    a, fam = record["analysis"], record["analysis"]["families"]["per doubling"]
    lines = [
        f"\n#### Shift of the optimum per doubling of width (log2 lr per doubling, least squares "
        f"per seed; Student-t at {_level(fam['level'])}, Bonferroni over m = {fam['m']}; "
        "p: Holm, zero slope; verdict: within / beyond ± one grid step per doubling)\n",
        "| problem | SP [interval] | SP verdict | p (Holm) | µP [interval] | µP verdict | "
        "p (Holm) | SP − µP [interval] | p (Holm) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in a["per_doubling"].items():
        sp, mu, diff = s["sp"], s["mup"], s["sp - mup"]
        lines.append(
            f"| {name} | {_ci(sp)} | {_verdict(sp)} | {_p(sp['p_holm'])} | {_ci(mu)} | "
            f"{_verdict(mu)} | {_p(mu['p_holm'])} | {_ci(diff)} | {_p(diff['p_holm'])} |"
        )
    return "\n".join(lines)


def resolution_table(record: dict) -> str:
    """The optimum per training grid, located on validation at that grid and at the full grid."""
    res, a = record["design"]["resolution"], record["analysis"]
    fam = a["families"]["grid shifts"]
    full = res["resolutions"][-1]
    lines = [
        f"\n#### {res['name']}: optimum base lr per training grid (width {res['width']}, K "
        f"{res['modes']}; shift from the full grid {full}, log2, paired over seeds, Student-t at "
        f"{_level(fam['level'])}, Bonferroni over m = {fam['m']})\n",
        "| training grid | located on validation at | optimum log2 lr | shift [interval] | "
        "p (Holm) | verdict | train loss | test rel-L2 on its grid | "
        "test rel-L2 on the full grid |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for where, optima in a["resolution"].items():
        for o in optima:
            edge = " (grid edge)" if o["at_edge"] else ""
            lines.append(
                f"| {o['grid']} | {where} | {o['position']:+.2f}{edge} | {_shift(o)} | "
                f"{_p(o.get('p_holm'))} | {_verdict(o)} | {_num(o['train_loss_at_optimum'])} | "
                f"{_num(o['test_l2_at_optimum'])} | {_num(o['test_l2_full_at_optimum'])} |"
            )
    return "\n".join(lines)


def _slope_words(t: dict) -> str:
    if t["verdict"] == "inconclusive":
        return f"inconclusive: {_reason(t)}"
    return f"{t['verdict']}: {VERDICT_WORDS[t['verdict']]} per doubling"


def _contains(t: dict, v: float) -> str:
    if not (math.isfinite(t["low"]) and math.isfinite(t["high"])):
        return "cannot say about"
    return "contains" if t["low"] - 1e-9 <= v <= t["high"] + 1e-9 else "excludes"


def findings(record: dict) -> list[str]:
    """Templated sentences of what the run shows (every number from ``record``)."""
    d, a, env = record["design"], record["analysis"], record["env"]
    fam = a["families"]
    out = []
    counts = []
    for kind in ("sp", "mup"):
        got = [
            o["verdict"]
            for arm in a["width"].values()
            for o in arm
            if o["parametrization"] == kind and o["verdict"] != "reference"
        ]
        counts.append(
            f"{_name(kind)}'s {len(got)}: {got.count('transfers')} transfer, "
            f"{got.count('drifts')} drift, {got.count('inconclusive')} inconclusive"
        )
    out.append(
        "Verdicts of the per-width shifts from the base width (both problems; transfers: the "
        "interval lies within ± one grid step; drifts: beyond it): " + "; ".join(counts) + "."
    )
    for arm in d["width_arms"]:
        optima = a["width"][arm["name"]]
        parts = []
        for kind in ("sp", "mup"):
            per = [
                f"width {o['width']} {_verdict(o)}: {_shift(o)} (Holm p {_p(o['p_holm'])})"
                for o in optima
                if o["parametrization"] == kind and o["verdict"] != "reference"
            ]
            parts.append(f"{_name(kind)}: " + "; ".join(per))
        out.append(
            f"{_where(arm)}, K {arm['modes']}, widths {' → '.join(map(str, arm['widths']))}, "
            f"optimum located on validation loss ({_level(fam['width shifts']['level'])} "
            f"intervals, m = {fam['width shifts']['m']}); shift of the optimum log2 lr from width "
            f"{arm['widths'][0]}: " + ". ".join(parts) + "."
        )
    for name, s in a["per_doubling"].items():
        sp, mu, diff = s["sp"], s["mup"], s["sp - mup"]
        out.append(
            f"{name}: per doubling of width, SP's optimum moves {_ci(sp)} log2 lr "
            f"({_slope_words(sp)}; the interval {_contains(sp, SP_THEORY)} the {SP_THEORY:+g} "
            f"expected under SP), µP's {_ci(mu)} ({_slope_words(mu)}; the interval "
            f"{_contains(mu, 0.0)} 0); SP − µP {_ci(diff)} (Holm p {_p(diff['p_holm'])}; "
            f"{_level(fam['per doubling']['level'])} intervals, m = {fam['per doubling']['m']})."
        )
    res = d["resolution"]
    full = res["resolutions"][-1]
    for where, optima in a["resolution"].items():
        per = [
            f"grid {o['grid']} {VERDICT_WORDS[o['verdict']]} ({_verdict(o)}: {_shift(o)}, "
            f"Holm p {_p(o['p_holm'])})"
            for o in optima
            if o["verdict"] != "reference"
        ]
        out.append(
            f"Resolution ({res['problem']}, width {res['width']}, K {res['modes']}), optimum "
            f"located on validation loss at the {where}: against the full grid {full}, the "
            f"optimum of " + "; ".join(per) + f" ({_level(fam['grid shifts']['level'])} "
            f"intervals, m = {fam['grid shifts']['m']})."
        )
    tested = a["resolution"]["training grid"]
    out.append(
        "Test rel-L2 on the full grid at the optimum located on each training grid: "
        + ", ".join(f"grid {o['grid']}: {_num(o['test_l2_full_at_optimum'])}" for o in tested)
        + "."
    )
    checks = a["base_check"]
    same = sum(c["identical"] for c in checks)
    out.append(
        f"At the base width µP and SP are the same model: {same} of {len(checks)} check runs "
        "(µP trained beside SP's run at the same rate and seed) gave bit-identical validation, "
        "train and test losses, so the two arms share their base-width runs."
    )
    minutes = env["total_seconds"] / 60
    out.append(
        f"Wall time {minutes:.1f} min ({'within' if minutes <= d['budget_minutes'] else 'over'} "
        f"the {d['budget_minutes']:g}-minute budget) for {len(record['runs'])} runs, "
        f"{env['n_jobs']} worker processes × 1 thread on {env['nproc']} cores (load average "
        f"{env['load_before']} → {env['load_after']}); {env['run_seconds'] / 60:.1f} min of "
        f"training wall time and {env['run_cpu_seconds'] / 60:.1f} min of CPU time summed over "
        f"runs, i.e. about {env['run_cpu_seconds'] / 60 / env['n_jobs']:.1f} min of wall time "
        f"on {env['n_jobs']} otherwise idle cores."
    )
    return out


def confounds(record: dict) -> list[str]:
    """What else could move an optimum here (named with the design's numbers)."""
    import inspect

    from pdes.burgers import DEFAULTS
    from transfer_tune.core.model import FNO

    d = record["design"]
    res = d["resolution"]
    nu = res["overrides"].get("nu", DEFAULTS["nu"])
    widths = [w for a in d["width_arms"] for w in a["widths"]]
    projection = inspect.signature(FNO).parameters["projection_width"].default
    steps = ", ".join(
        f"{a['name']} {a['epochs']} × {math.ceil(a['overrides']['n_train'] / a['batch_size'])}"
        for a in [*d["width_arms"], res]
    )
    return [
        f"Short training (epochs × steps per epoch: {steps}, cosine schedule): the optimum of a "
        "short horizon, which can sit at higher rates than a long run's.",
        "Seeds draw the initialisation and the batch order only; every seed trains on the same "
        "data, so the intervals cover optimisation noise, not a new draw of the data.",
        f"Small widths ({min(widths)} to {max(widths)}) under a fixed projection width of "
        f"{projection}: the first projection layer is µP's readout only in that its fan-in "
        "grows; µP's rule is an infinite-width limit.",
        "The train loss is fit's mean over the last epoch's batches while the weights move, not "
        "an evaluation of the final model.",
        f"Resolution: each training grid fits its own normalisers and the full-grid evaluation "
        f"uses them; at {res['resolutions'][0]} points the Burgers shocks (ν = {nu:g}) are "
        "aliased, which raises the full-grid error of a coarse-trained model at every rate.",
        "Other processes shared the machine (load average above): this changes the wall time, "
        "not the results (one thread per run, deterministic seeds).",
    ]


def render(record: dict) -> str:
    """The README block, from the JSON record alone (the analysis recomputed from its runs)."""
    record = {**record, "analysis": analyse(record)}
    env, a = record["env"], record["analysis"]
    fam = a["families"]
    head = [
        f"Run `{record['run_id']}` (design hash; {env['mode']} run), generated by "
        f"`benchmarks/width_transfer.py` from `results/width_transfer.json`; do not edit by hand "
        f"(rerun with `--readme-from`). {len(record['design']['seeds'])} seeds "
        f"{', '.join(map(str, record['design']['seeds']))}; CPU {env['cpu']}. "
        "Optima located on the validation loss; train loss and test rel-L2 (physical units) "
        "are seed means at the located grid value. Families (Bonferroni levels, Holm p): "
        + "; ".join(f"{k} m = {v['m']} at {_level(v['level'])}" for k, v in fam.items())
        + ".",
        "",
        setup_table(record),
        "",
        "**What the run shows** (templated from the JSON):",
        "",
        *[f"- {s}" for s in findings(record)],
        "",
        "**Confounds:**",
        "",
        *[f"- {s}" for s in confounds(record)],
    ]
    body = [
        width_table(name, optima, fam["width shifts"]["level"])
        for name, optima in a["width"].items()
    ]
    return "\n".join(head + body + [slope_table(record), resolution_table(record)])


SECTION = (
    "## Does the optimum transfer across width and grid? (`benchmarks/width_transfer.py`)\n\n"
    "Issue 23 §2 and §4: width landscapes (µP over width beside SP) on Burgers and Darcy, and a "
    "resolution landscape (the same model trained on coarser grids), with the design fixed in "
    "the script before its first run (the JSON records its hash as the run id).\n\n"
    "```\n"
    "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/width_transfer.py --n-jobs 2\n"
    ".venv/bin/python benchmarks/width_transfer.py --readme-from "
    "benchmarks/results/width_transfer.json\n"
    "```"
)
BLOCK = harness.Block(NAME, render, section=SECTION)


# -- entry point ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = harness.parser(__doc__, n_jobs=2).parse_args(argv)
    if args.readme_from:
        return harness.rerender(BLOCK, args.readme_from)
    design = QUICK if args.quick else FULL
    record = run(design, args.n_jobs)
    print(render(record))
    harness.publish(args, record, BLOCK)
    return 0


if __name__ == "__main__":
    # run as the module ``width_transfer``: its functions and designs pickle by reference, and
    # each worker process imports it once (and keeps its data cache, :data:`_PROBLEMS`)
    import width_transfer

    raise SystemExit(width_transfer.main())
