"""Our FNO and neuraloperator's FNO, both under µP through this toolkit, on one file problem.

Usage::

    python benchmarks/own_model.py            # full: Darcy 16 x 16 files, 31 x 31 test file
    python benchmarks/own_model.py --quick    # tiny sizes, seconds (the test suite's)
    python benchmarks/own_model.py --readme-from benchmarks/results/own_model.json

The data are written as a neuraloperator-layout file problem (``.pt`` dicts with keys ``x``
and ``y``, shaped ``(N, r, r)``, in physical units) into a temporary folder: a training file
on the coarse grid (train + val samples), a test file on the same grid and a finer test file
holding the same test samples on the finer grid. Both grids come from
``pdes.get_problem("darcy", resolution=r, n_fine=...)`` with the same seeds and node grid, so
the coarse data are exactly every other node of the fine data (checked before any training).
Nothing is downloaded.

Then :func:`transfer_tune.tune_then_transfer` runs with ``problem="file"`` for
``model="fno"`` (transfer-tune's FNO) and ``model="neuralop"`` (neuraloperator 2.0's ``FNO``,
``n_modes = 2K - 2``), interleaved per seed (fno, neuralop, fno, ...), both under µP with
K_base = K_proxy, with the same width, depth, K pair, epochs and hyperparameters: the search
space is fixed to one configuration, so the one proxy trial is a formality and both targets
train the same values. Seed s drives the initialisation and the batch order; the data are the
same for every seed. Recorded per run: test rel-L2 (physical units) at the training grid
(``metrics["test_l2"]``) and at the finer grid (``metrics["test_l2_fine"]``, at
``metrics["fine_resolution"]``), seconds per target epoch (``train_seconds / epochs``, and the
median of the per-epoch durations; both include the per-epoch validation pass and the
checkpoint write, alike for both models), and the parameter count (complex entries count
twice).

The full run writes ``benchmarks/results/own_model.json`` and rewrites the block between
``<!-- own_model:begin -->`` and ``<!-- own_model:end -->`` in ``benchmarks/README.md`` from
that JSON (``--readme-from`` redoes only that), so no number there is typed by hand.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from seed_stats import mean, sd

MODELS = {"fno": "transfer-tune FNO", "neuralop": "neuraloperator FNO"}


@dataclass(frozen=True)
class Setup:
    """Sizes of the comparison."""

    resolution: int
    fine_resolution: int
    n_fine: int
    n_train: int
    n_val: int
    n_test: int
    proxy_modes: int
    target_modes: int
    width: int
    n_layers: int
    proxy_epochs: int
    target_epochs: int
    hparams: dict[str, Any] = field(
        default_factory=lambda: {"lr": 3e-3, "batch_size": 16, "beta1": 0.9, "beta2": 0.999}
    )
    seeds: tuple[int, ...] = (0, 1, 2)


FULL = Setup(
    resolution=16,
    fine_resolution=31,
    n_fine=91,
    n_train=384,
    n_val=64,
    n_test=128,
    proxy_modes=4,
    target_modes=8,
    width=32,
    n_layers=4,
    proxy_epochs=1,
    target_epochs=30,
)
QUICK = Setup(
    resolution=8,
    fine_resolution=15,
    n_fine=15,
    n_train=16,
    n_val=4,
    n_test=4,
    proxy_modes=2,
    target_modes=4,
    width=8,
    n_layers=2,
    proxy_epochs=1,
    target_epochs=2,
    hparams={"lr": 3e-3, "batch_size": 8, "beta1": 0.9, "beta2": 0.999},
    seeds=(0, 1),
)


# -- data -------------------------------------------------------------------------------------
def write_files(setup: Setup, folder: Path) -> dict[str, Any]:
    """Write the train, test and fine test ``.pt`` files; return the file problem's options."""
    import torch

    import pdes

    sizes = {"n_train": setup.n_train, "n_val": setup.n_val, "n_test": setup.n_test}
    common = {"n_fine": setup.n_fine, "n_jobs": 1, "cache_dir": str(folder / "cache"), **sizes}
    coarse = pdes.get_problem("darcy", resolution=setup.resolution, **common)
    fine = pdes.get_problem("darcy", resolution=setup.fine_resolution, **common)
    s = (setup.fine_resolution - 1) // (setup.resolution - 1)

    def pair(problem: Any, split: str) -> tuple[Any, Any]:
        x, y = problem.dataset(split, normalized=False)
        return x[:, 0].contiguous(), y[:, 0].contiguous()  # neuraloperator's (N, r, r)

    xs, ys = zip(*(pair(coarse, split) for split in ("train", "val")), strict=True)
    x_test, y_test = pair(coarse, "test")
    x_fine, y_fine = pair(fine, "test")
    if not (torch.equal(x_fine[:, ::s, ::s], x_test) and torch.equal(y_fine[:, ::s, ::s], y_test)):
        raise SystemExit("the coarse test samples are not a subsample of the fine ones")
    paths = {
        "path": folder / f"darcy_train_{setup.resolution}.pt",
        "test_path": folder / f"darcy_test_{setup.resolution}.pt",
        "fine_test_path": folder / f"darcy_test_{setup.fine_resolution}.pt",
    }
    torch.save({"x": torch.cat(xs), "y": torch.cat(ys)}, paths["path"])
    torch.save({"x": x_test, "y": y_test}, paths["test_path"])
    torch.save({"x": x_fine, "y": y_fine}, paths["fine_test_path"])
    return {
        **{k: str(v) for k, v in paths.items()},
        "n_train": setup.n_train,
        "n_val": setup.n_val,
    }


# -- running ----------------------------------------------------------------------------------
def built(config: dict) -> tuple[int, Any]:
    """Real parameter count of the model ``config`` builds (complex entries count twice), and
    its ``n_modes`` (neuraloperator's; ``None`` for ours)."""
    from transfer_tune.core.factory import build_model

    model = build_model(config)
    count = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    n_modes = getattr(model, "n_modes", None)
    return count, (list(n_modes) if n_modes is not None else None)


def run_one(setup: Setup, overrides: dict, storage: str, kind: str, seed: int) -> dict:
    """One proxy trial (fixed values) and one µP target run of model ``kind``."""
    from transfer_tune.api import tune_then_transfer

    space = {k: ([v] if k == "batch_size" else v) for k, v in setup.hparams.items()}
    cpu, start = time.process_time(), time.perf_counter()
    r = tune_then_transfer(
        "file",
        proxy_modes=setup.proxy_modes,
        target_modes=setup.target_modes,
        width=setup.width,
        n_layers=setup.n_layers,
        n_trials=1,
        proxy_epochs=setup.proxy_epochs,
        target_epochs=setup.target_epochs,
        search_space=space,
        storage=storage,
        study_name=f"{kind}-seed{seed}",
        seed=seed,
        device="cpu",
        problem_overrides=overrides,
        progress=False,
        annotate=False,
        model=kind,
    )
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    m, plan = r.target.metrics, r.target_plan
    ends = [h["seconds"] for h in r.target.history]
    epochs = [b - a for a, b in zip([0.0, *ends[:-1]], ends, strict=True)]
    spectral = next(g for g in plan.groups if g.role == "spectral")
    count, n_modes = built(plan.model)
    return {
        "model": kind,
        "seed": seed,
        "params": count,
        "n_modes": n_modes,
        "model_config": plan.model,
        "parametrization": plan.parametrization,
        "spectral_lr": spectral.lr,
        "spectral_init": spectral.init_multiplier,
        "hparams": {k: getattr(plan, k) for k in ("lr", "batch_size", "beta1", "beta2")},
        "resolution": m["resolution"],
        "fine_resolution": m.get("fine_resolution"),
        "test_l2": m["test_l2"],
        "test_l2_fine": m.get("test_l2_fine"),
        "val_loss": m["val_loss"],
        "train_loss": m["train_loss"],
        "epochs": len(epochs),
        "s_per_epoch": m["train_seconds"] / len(epochs),
        "median_epoch_s": statistics.median(epochs),
        "target_seconds": m["seconds"],
        "wall_seconds": wall,
        "cpu_seconds": cpu,
    }


# -- summary and tables -----------------------------------------------------------------------
def summarise(rows: list[dict]) -> dict:
    """Mean and sd over seeds per model, and the paired neuralop / fno ratios."""
    out: dict[str, Any] = {}
    keys = ("test_l2", "test_l2_fine", "s_per_epoch", "median_epoch_s")
    for kind in MODELS:
        recs = [r for r in rows if r["model"] == kind]
        out[kind] = {
            "params": recs[0]["params"],
            **{f"{k}_mean": mean([r[k] for r in recs]) for k in keys},
            **{f"{k}_sd": sd([r[k] for r in recs]) for k in keys},
        }
    pairs = list(
        zip(
            [r for r in rows if r["model"] == "fno"],
            [r for r in rows if r["model"] == "neuralop"],
            strict=True,
        )
    )
    out["neuralop_over_fno"] = {k: mean([n[k] / f[k] for f, n in pairs]) for k in (*keys, "params")}
    out["fno_lower_fine"] = sum(f["test_l2_fine"] < n["test_l2_fine"] for f, n in pairs)
    out["fno_lower"] = sum(f["test_l2"] < n["test_l2"] for f, n in pairs)
    out["fno_faster"] = sum(f["s_per_epoch"] < n["s_per_epoch"] for f, n in pairs)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def render(record: dict) -> str:
    """The Markdown block, from the JSON record alone."""
    s, env, rows, summ = record["setup"], record["env"], record["rows"], record["summary"]
    n = len(s["seeds"])
    r0 = {kind: next(r for r in rows if r["model"] == kind) for kind in MODELS}
    par = r0["fno"]["parametrization"]
    lines = [
        f"File problem (neuraloperator layout, `.pt` dicts `x`, `y` of shape (N, r, r), physical "
        f'units): Darcy from `pdes.get_problem("darcy", n_fine={s["n_fine"]})`, training file '
        f"{s['resolution']} × {s['resolution']} ({s['n_train']} train + {s['n_val']} val), test "
        f"file {s['resolution']} × {s['resolution']} ({s['n_test']} samples) and the same "
        f"{s['n_test']} samples in a finer test file {s['fine_resolution']} × "
        f"{s['fine_resolution']} (the coarse file is every other node of it). Width "
        f"{s['width']}, {s['n_layers']} layers, K {s['proxy_modes']} -> {s['target_modes']} "
        f"(neuraloperator's target: n_modes = {r0['neuralop']['n_modes']}), "
        f"{ {'mup': 'µP', 'sp': 'SP'}.get(par['kind'], par['kind']) } with K_base = "
        f"{par['base_modes']}; search fixed to {s['hparams']} (one proxy trial of "
        f"{s['proxy_epochs']} epoch(s)); target {s['target_epochs']} epochs; seeds "
        f"{list(s['seeds'])}, interleaved (fno, neuralop per seed).",
        "",
        f"Command: `{record['command']}`; {env['total_seconds']:.0f} s wall "
        f"({env['cpu_seconds']:.0f} CPU s), one process, {env['threads']} torch thread(s), CPU "
        f"{env['cpu']} (nproc {env['nproc']}), load average {env['load_before']} -> "
        f"{env['load_after']}; neuraloperator {env['neuralop']}, torch {env['torch']}.",
        "",
        f"Test rel-L2 (%, physical units) at the training grid and at the finer grid, and "
        f"seconds per target epoch (training + validation pass + checkpoint write; mean over "
        f"the run, median epoch in brackets); mean ± sd over {n} seeds:",
        "",
        f"| model | params | test rel-L2 @{s['resolution']} | test rel-L2 @{s['fine_resolution']}"
        " | s / epoch (median) | per seed @train grid | per seed @fine grid |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, name in MODELS.items():
        a = summ[kind]
        recs = [r for r in rows if r["model"] == kind]
        lines.append(
            f"| {name} | {a['params']:,} | {_pct(a['test_l2_mean'])} ± {_pct(a['test_l2_sd'])} | "
            f"{_pct(a['test_l2_fine_mean'])} ± {_pct(a['test_l2_fine_sd'])} | "
            f"{a['s_per_epoch_mean']:.3f} ({a['median_epoch_s_mean']:.3f}) | "
            f"{', '.join(_pct(r['test_l2']) for r in recs)} | "
            f"{', '.join(_pct(r['test_l2_fine']) for r in recs)} |"
        )
    ratio = summ["neuralop_over_fno"]
    lines += [
        "",
        f"neuraloperator / ours (mean of the per-seed ratios): test error "
        f"{ratio['test_l2']:.3f}x at {s['resolution']}, {ratio['test_l2_fine']:.3f}x at "
        f"{s['fine_resolution']}; seconds per epoch {ratio['s_per_epoch']:.2f}x (median epoch "
        f"{ratio['median_epoch_s']:.2f}x); parameters {ratio['params']:.3f}x. Ours lower at the "
        f"training grid in {summ['fno_lower']}/{n} seeds, at the fine grid in "
        f"{summ['fno_lower_fine']}/{n}; ours faster per epoch in {summ['fno_faster']}/{n}.",
        "",
        "Per run:",
        "",
        "| seed | model | test rel-L2 (%) train grid | fine grid | fine / train | s / epoch | "
        "median epoch s | spectral lr (µP) | run wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {MODELS[r['model']]} | {_pct(r['test_l2'])} | "
            f"{_pct(r['test_l2_fine'])} | {r['test_l2_fine'] / r['test_l2']:.3f} | "
            f"{r['s_per_epoch']:.3f} | {r['median_epoch_s']:.3f} | {r['spectral_lr']:.2e} | "
            f"{r['wall_seconds']:.1f} |"
        )
    return "\n".join(lines)


BLOCK = harness.Block("own_model", render)


# -- entry point ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = harness.parser(__doc__, threads=1, seeds=True).parse_args(argv)
    if args.readme_from:
        return harness.rerender(BLOCK, args.readme_from)
    setup = QUICK if args.quick else FULL
    if args.seeds:
        setup = dataclasses.replace(setup, seeds=args.seeds)
    import warnings

    import neuralop
    import optuna
    import torch

    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", module="neuralop")
    clock = harness.Run(
        args.quick,
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        neuralop=getattr(neuralop, "__version__", "?"),
    )
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="own_model_") as tmp:
        folder = Path(tmp)
        overrides = write_files(setup, folder)
        clock.env["data_seconds"] = clock.seconds
        print(f"wrote the files in {clock.env['data_seconds']:.1f} s", flush=True)
        storage = f"sqlite:///{folder / 'own_model.db'}"
        for seed in setup.seeds:
            for kind in MODELS:
                row = run_one(setup, overrides, storage, kind, seed)
                rows.append(row)
                print(
                    f"seed {seed} {kind}: test rel-L2 {_pct(row['test_l2'])} % @"
                    f"{row['resolution']}, {_pct(row['test_l2_fine'])} % @"
                    f"{row['fine_resolution']}; {row['s_per_epoch']:.3f} s/epoch; "
                    f"{row['wall_seconds']:.1f} s",
                    flush=True,
                )
    record = {
        "command": harness.command(__file__, argv, prefix="OMP_NUM_THREADS=1 "),
        "env": clock.stop(cpu=True),
        "setup": dataclasses.asdict(setup),
        "rows": rows,
        "summary": summarise(rows),
    }
    print("\n" + render(record))
    harness.publish(args, record, BLOCK)
    return 0


if __name__ == "__main__":
    sys.exit(main())
