"""Time the generation of the default PDE datasets (1000 train + 200 test samples each).

Usage::

    python benchmarks/pde_speed.py            # full: Burgers 1024, Darcy 64x64, NS 64x64
    python benchmarks/pde_speed.py --quick    # 20 + 4 samples each, a few seconds
    python benchmarks/pde_speed.py --n-jobs 1 --json results.json

Targets (full mode, two CPU cores): Burgers < 60 s, Darcy < 60 s, Navier-Stokes < 300 s.
Exit status 1 if a full-mode target is missed.
"""

from __future__ import annotations

import platform
import sys
import time

import harness
import numpy as np
import scipy

from pdes import burgers, darcy, navier_stokes

CASES = [
    # name, module, resolution, target seconds for 1000 + 200 samples
    ("burgers", burgers, 1024, 60.0),
    ("darcy", darcy, 64, 60.0),
    ("navier_stokes", navier_stokes, 64, 300.0),
]


def run(n_train: int, n_test: int, n_jobs: int) -> list[dict]:
    """Generate every default dataset once and return one timing record per problem."""
    records = []
    for name, module, resolution, target in CASES:
        t0 = time.perf_counter()
        x_tr, y_tr = module.generate(n_train, resolution, seed=0, n_jobs=n_jobs)
        x_te, y_te = module.generate(n_test, resolution, seed=1, n_jobs=n_jobs)
        seconds = time.perf_counter() - t0
        assert x_tr.shape[0] == n_train and x_te.shape[0] == n_test
        finite = bool(np.all(np.isfinite(y_tr)) and np.all(np.isfinite(y_te)))
        records.append(
            {
                "problem": name,
                "resolution": resolution,
                "samples": n_train + n_test,
                "seconds": round(seconds, 2),
                "ms_per_sample": round(1e3 * seconds / (n_train + n_test), 2),
                "target_s": target,
                "x_std": float(np.std(x_tr)),
                "y_std": float(np.std(y_tr)),
                "finite": finite,
            }
        )
        print(
            f"{name:14s} res {resolution:5d}  {n_train + n_test:5d} samples  "
            f"{seconds:8.2f} s  ({records[-1]['ms_per_sample']:.2f} ms/sample, "
            f"target {target:.0f} s)  std(x)={records[-1]['x_std']:.3g} "
            f"std(y)={records[-1]['y_std']:.3g}",
            flush=True,
        )
    return records


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = harness.parser(__doc__, readme=False, n_jobs=-1).parse_args(argv)
    n_train, n_test = (20, 4) if args.quick else (1000, 200)
    clock = harness.Run(
        args.quick,
        python=platform.python_version(),
        numpy=np.__version__,
        scipy=scipy.__version__,
        n_jobs=args.n_jobs,
    )
    records = run(n_train, n_test, args.n_jobs)
    harness.publish(args, {"env": clock.stop(), "records": records})
    if args.quick:
        return 0 if all(r["finite"] for r in records) else 1
    missed = [r["problem"] for r in records if r["seconds"] > r["target_s"] or not r["finite"]]
    if missed:
        print(f"targets missed: {missed}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
