"""Time the generation of the default PDE datasets (1000 train + 200 test samples each).

Usage::

    python benchmarks/pde_speed.py            # full: every problem with n_jobs -1, then 1
    python benchmarks/pde_speed.py --quick    # 20 + 4 samples each, a few seconds
    python benchmarks/pde_speed.py --n-jobs 1 --json out.json    # one setting only
    python benchmarks/pde_speed.py --readme-from benchmarks/results/pde_speed.json

Each problem (:data:`CASES`, the solver modules' ``DEFAULTS``) is generated once per
``--n-jobs`` setting (default ``-1,1``: joblib over all cores, then this process alone), the
settings back to back for one problem before the next, so that load from other processes
hits both settings of a problem alike. Times are wall-clock seconds; the record
(``results/pde_speed.json``) holds the solver parameters, every timing with the load average
before and after it, and the machine, and the ``pde_speed`` block of ``benchmarks/README.md``
is rendered from it alone (:func:`render`).

Targets (:data:`TARGETS`, full mode): a problem meets its target when its fastest setting is
under it; exit status 1 if a full-mode target is missed or a dataset is not finite.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import harness
import numpy as np
import scipy

from pdes import burgers, darcy, navier_stokes

#: Seconds for 1000 + 200 samples of each default dataset on the 2-core machine: issue 3
#: ("PDE problems and data", section "Speed"): "Burgers at 1024 points and Darcy at 64 x 64
#: each under 60 s; Navier-Stokes at 64 x 64 for its default horizon under 5 min".
TARGETS = {"burgers": 60.0, "darcy": 60.0, "navier_stokes": 300.0}

#: name, solver module, output resolution per axis.
CASES = [("burgers", burgers, 1024), ("darcy", darcy, 64), ("navier_stokes", navier_stokes, 64)]

#: How each problem is named and its solver described in the README (the numbers in the
#: descriptions are filled in from the recorded solver parameters).
LABELS = {"burgers": "Burgers", "darcy": "Darcy", "navier_stokes": "Navier–Stokes"}
DIMS = {"burgers": 1, "darcy": 2, "navier_stokes": 2}


def _describe(problem: str, p: dict[str, Any]) -> str:
    """The solver of ``problem`` with its recorded parameters ``p``."""
    n = p["n_fine"]
    if problem == "burgers":
        return (
            f"pseudo-spectral ETDRK4 (2/3 rule), {n}-point grid, dt ≤ {p['dt']:g} (and advective "
            f"number ≤ {p['cfl']:g}), T = {p['T']:g}, nu = {p['nu']:g}"
        )
    if problem == "darcy":
        return (
            f"5-point FD with averaged face coefficients on a {n} × {n} node grid, one SuperLU "
            "solve per sample"
        )
    return (
        f"pseudo-spectral RK3/Crank–Nicolson (2/3 rule), {n} × {n} grid, dt = {p['dt']:g}, "
        f"T = {p['T']:g}, nu = {p['nu']:g}, {p['precision']}"
    )


def _n_jobs(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def time_one(module: Any, resolution: int, n_train: int, n_test: int, n_jobs: int) -> dict:
    """Generate one default dataset (train seed 0, test seed 1) once; its timing record."""
    load_before = harness.load_average()
    t0 = time.perf_counter()
    x_tr, y_tr = module.generate(n_train, resolution, seed=0, n_jobs=n_jobs)
    x_te, y_te = module.generate(n_test, resolution, seed=1, n_jobs=n_jobs)
    seconds = time.perf_counter() - t0
    assert x_tr.shape[0] == n_train and x_te.shape[0] == n_test
    return {
        "n_jobs": n_jobs,
        "seconds": seconds,
        "ms_per_sample": 1e3 * seconds / (n_train + n_test),
        "load_before": load_before,
        "load_after": harness.load_average(),
        "finite": bool(np.all(np.isfinite(y_tr)) and np.all(np.isfinite(y_te))),
        "x_std": float(np.std(x_tr)),
        "y_std": float(np.std(y_tr)),
    }


def run(n_train: int, n_test: int, settings: tuple[int, ...]) -> list[dict]:
    """Every default dataset under every ``n_jobs`` setting; one record per problem."""
    problems = []
    for name, module, resolution in CASES:
        timings = []
        for n_jobs in settings:
            t = time_one(module, resolution, n_train, n_test, n_jobs)
            timings.append(t)
            print(
                f"{name:14s} res {resolution:5d}  {n_train + n_test:5d} samples  "
                f"n_jobs {n_jobs:3d}  {t['seconds']:8.2f} s  ({t['ms_per_sample']:.2f} ms/sample, "
                f"target {TARGETS[name]:.0f} s, load {t['load_before']} -> {t['load_after']})  "
                f"std(x)={t['x_std']:.3g} std(y)={t['y_std']:.3g}",
                flush=True,
            )
        problems.append(
            {
                "problem": name,
                "resolution": resolution,
                "samples": n_train + n_test,
                "params": dict(module.DEFAULTS),
                "chunk_size": module.SOLVER.chunk_size,
                "target_s": TARGETS[name],
                "timings": timings,
            }
        )
    return problems


# -- the README block (from the JSON record alone) --------------------------------------------
def met(problem: dict) -> bool:
    """Whether the problem's fastest setting is under its target (and its data finite)."""
    ok = [t for t in problem["timings"] if t["finite"]]
    return bool(ok) and min(t["seconds"] for t in ok) < problem["target_s"]


def _setting(n_jobs: int, workers: int) -> str:
    return f"n_jobs = {n_jobs} ({workers} processes)" if n_jobs < 0 else f"n_jobs = {n_jobs}"


def _seconds(problem: dict, n_jobs: int) -> float:
    return next(t["seconds"] for t in problem["timings"] if t["n_jobs"] == n_jobs)


def _one(load: str) -> str:
    """The 1-minute figure of a recorded ``1/5/15`` load average."""
    return load.split("/")[0]


def _grid(problem: dict) -> str:
    return " × ".join([str(problem["resolution"])] * DIMS[problem["problem"]])


def render(record: dict) -> str:
    """The section's solver table, results table and verdicts, from the JSON record alone."""
    env, problems, settings = record["env"], record["problems"], record["n_jobs"]
    s = record["samples"]
    ram = f", {env['ram_gib']:g} GiB RAM" if env.get("ram_gib") else ""
    nice = f", niceness {env['niceness']}" if "niceness" in env else ""
    lines = [
        f"Generated by `benchmarks/pde_speed.py` from `results/pde_speed.json` ({env['mode']} "
        "run); do not edit by hand. Each default dataset is generated once per setting: "
        f"{s['train']} train + {s['test']} test samples (train seed {s['train_seed']}, test "
        f"seed {s['test_seed']}), with the default parameters of each solver module:",
        "",
        "| problem | resolution | solver (defaults) | samples per chunk |",
        "|---|---|---|---|",
    ]
    for p in problems:
        lines.append(
            f"| {LABELS[p['problem']]} | {_grid(p)} | {_describe(p['problem'], p['params'])} | "
            f"{p['chunk_size']} |"
        )
    lines += [
        "",
        f'Machine: `nproc` = {env["nproc"]}, CPU "{env["cpu"]}"{ram}; Python {env["python"]}, '
        f"numpy {env['numpy']}, scipy {env['scipy']}; `OMP_NUM_THREADS` = "
        f"{env.get('omp_num_threads') or 'unset'}{nice}. The times are **wall-clock seconds on a "
        "shared machine**, under the load recorded beside each timing (1-minute load average "
        "before → after it); the 1/5/15-minute load averages were "
        f"{env['load_before']} before the run and {env['load_after']} after it, on "
        f"{env['nproc']} cores, and the run took {env['total_seconds'] / 60:.1f} min.",
        "",
        "| problem | "
        + " | ".join(_setting(n, env["workers"]) for n in settings)
        + " | target | met |",
        "|---|" + "---|" * len(settings) + "---|---|",
    ]
    for p in problems:
        by = {t["n_jobs"]: t for t in p["timings"]}
        cells = []
        for n in settings:
            t = by[n]
            bad = "" if t["finite"] else ", **not finite**"
            cells.append(
                f"{t['seconds']:.1f} s ({t['ms_per_sample']:.1f} ms/sample{bad}; load "
                f"{_one(t['load_before'])} → {_one(t['load_after'])})"
            )
        under = [n for n in settings if by[n]["finite"] and by[n]["seconds"] < p["target_s"]]
        if env["mode"] != "full":
            verdict = "n/a (quick run)"
        elif not met(p):
            verdict = "**no**"
        elif len(under) == len(settings):
            verdict = "yes (every setting)"
        else:
            verdict = "yes (" + ", ".join(f"n_jobs = {n}" for n in under) + " only)"
        lines.append(
            f"| {LABELS[p['problem']]}, {p['samples']} × {_grid(p)} | "
            + " | ".join(cells)
            + f" | < {p['target_s']:.0f} s | {verdict} |"
        )
    missed = [LABELS[p["problem"]] for p in problems if not met(p)]
    if env["mode"] != "full":
        verdict = "apply to full runs only."
    else:
        verdict = "**all met**." if not missed else f"**missed** by {', '.join(missed)}."
    lines += ["", f"Targets (issue 3; met when the fastest setting is under them): {verdict}"]
    if -1 in settings and 1 in settings:
        faster = [LABELS[p["problem"]] for p in problems if _seconds(p, -1) < _seconds(p, 1)]
        lines[-1] += (
            f" All cores (`n_jobs = -1`) beat one process in {len(faster)} of {len(problems)} "
            "problems" + (f" ({', '.join(faster)})." if faster else ".")
        )
    return "\n".join(lines)


BLOCK = harness.Block("pde_speed", render)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = harness.parser(__doc__)
    parser.add_argument(
        "--n-jobs",
        type=_n_jobs,
        default=(-1, 1),
        help="comma-separated joblib settings, each timed (default -1,1)",
    )
    args = parser.parse_args(argv)
    if args.readme_from:
        return harness.rerender(BLOCK, args.readme_from)
    from joblib import cpu_count

    n_train, n_test = (20, 4) if args.quick else (1000, 200)
    clock = harness.Run(
        args.quick,
        python=platform.python_version(),
        numpy=np.__version__,
        scipy=scipy.__version__,
        ram_gib=_ram_gib(),
        omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
        niceness=os.nice(0),
        workers=cpu_count(),
    )
    problems = run(n_train, n_test, args.n_jobs)
    record = {
        "env": clock.stop(),
        "n_jobs": list(args.n_jobs),
        "samples": {"train": n_train, "test": n_test, "train_seed": 0, "test_seed": 1},
        "problems": problems,
    }
    print(render(record))
    harness.publish(args, record, BLOCK)
    finite = all(t["finite"] for p in problems for t in p["timings"])
    if args.quick:
        return 0 if finite else 1
    missed = [p["problem"] for p in problems if not met(p)]
    if missed:
        print(f"targets missed: {missed}", flush=True)
    return 1 if missed or not finite else 0


if __name__ == "__main__":
    sys.exit(main())
