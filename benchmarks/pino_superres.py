"""Coarse data, fine physics: does a residual on a finer grid help zero-shot super-resolution?

Usage::

    python benchmarks/pino_superres.py --n-jobs 2          # the full run (pre-registered)
    python benchmarks/pino_superres.py --quick             # tiny sizes, seconds
    python benchmarks/pino_superres.py --readme-from benchmarks/results/pino_superres.json

PINO's point (Li et al. 2021): the FNO is resolution-invariant, so its PDE residual can be
evaluated on a finer grid than the labels. Darcy is solved on a 33 x 33 grid; the model trains
on every other node (17 x 17 labels) and is tested on both grids (the 33 x 33 test set is
zero-shot super-resolution). Per seed, the same initial draw, batch order, rate and epochs:

* ``data``: the data loss alone;
* ``pino-coarse w``: + w x the residual on the 17 x 17 training grid (where the labels, being
  a subsample of the 33 x 33 solve, do not satisfy the coarse stencil exactly);
* ``pino-fine w``: + w x the residual on the 33 x 33 grid (``physics_resolution = 33``), where
  the discrete solution's residual is round-off;

for w in ``weights``. The rate is fixed in code (2^-5.5, the K = 4 validation optimum of the
recorded ``pino_transfer`` Darcy landscape; no search), as are the primary test and family:

* **primary**: ``pino-fine 0.1`` − ``data`` test rel-L2 on the 33 x 33 grid (physical units),
  paired Student-t over seeds at 95 %;
* **secondary** (one family, Holm, Bonferroni-level intervals): every other PINO arm − data
  on the 33 x 33 grid, and ``pino-fine 0.1`` − ``pino-coarse 0.1`` there.

It writes ``pino_superres.json`` and, for a full run into benchmarks/results, the README
block between the ``pino_superres`` markers, rendered from the JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import harness
from seed_stats import TESTS_HEADER, finite_mean, paired, per_seed, pp, test_row

CONFIDENCE = 0.95
PRIMARY = ("pino-fine 0.1", "data")


@dataclass(frozen=True)
class Design(harness.Registered):
    """The pre-registered comparison (everything that decides a result)."""

    overrides: dict[str, Any]
    fine: int
    modes: int
    width: int
    n_layers: int
    lr: float
    batch_size: int
    epochs: int
    weights: tuple[float, ...] = (0.01, 0.1)
    seeds: tuple[int, ...] = tuple(50000 + 1000 * i for i in range(8))

    def arms(self) -> dict[str, dict[str, Any]]:
        """Arm name -> its ``train`` settings."""
        out: dict[str, dict[str, Any]] = {"data": {}}
        for w in self.weights:
            out[f"pino-coarse {w:g}"] = {"loss": "pino", "physics_weight": w}
            out[f"pino-fine {w:g}"] = {
                "loss": "pino",
                "physics_weight": w,
                "physics_resolution": self.fine,
            }
        return out


FULL = Design(
    overrides={"resolution": 17, "n_fine": 33, "n_train": 96, "n_val": 32, "n_test": 128},
    fine=33,
    modes=8,
    width=16,
    n_layers=4,
    lr=2.0**-5.5,
    batch_size=8,
    epochs=20,
)
QUICK = Design(
    overrides={"resolution": 5, "n_fine": 9, "n_train": 16, "n_val": 4, "n_test": 8},
    fine=9,
    modes=3,
    width=4,
    n_layers=2,
    lr=1e-2,
    batch_size=8,
    epochs=2,
    seeds=(0, 1000, 2000),
)


def run_seed(design: Design, seed: int) -> dict[str, Any]:
    """Every arm of one seed (one process, one thread)."""
    import torch

    from pdes import load_problem
    from transfer_tune.core.hparams import HParams
    from transfer_tune.core.model import FNO
    from transfer_tune.core.parametrization import get_parametrization
    from transfer_tune.core.train import TrainData, evaluate_physics, fit
    from transfer_tune.errors import DivergenceError
    from transfer_tune.search.transfer import physical_error

    torch.set_num_threads(1)
    problem = load_problem("darcy", design.overrides)
    fine = problem.fine_test_problem(design.fine)
    xt, yt = problem.dataset("test")
    xf, yf = fine.dataset("test")
    runs = {}
    for arm, train in design.arms().items():
        hparams = HParams(lr=design.lr, batch_size=design.batch_size, **train)
        model = FNO(
            dim=2, modes=design.modes, width=design.width, n_layers=design.n_layers,
            in_channels=1, out_channels=1,
        )  # fmt: skip
        rule = get_parametrization("sp", base_modes=design.modes)
        rule.initialize(model, generator=torch.Generator().manual_seed(seed))
        data = TrainData.from_problem(problem, hparams)
        try:
            result = fit(model, data, hparams, design.epochs, parametrization=rule, seed=seed,
                         device="cpu")  # fmt: skip
            runs[arm] = {
                "test_l2": physical_error(model, problem, xt, yt),
                "test_l2_fine": physical_error(model, fine, xf, yf),
                "residual_fine": evaluate_physics(model, xf, fine.physics),
                "seconds": result.seconds,
            }
        except DivergenceError:
            runs[arm] = dict.fromkeys(("test_l2", "test_l2_fine", "residual_fine"), math.inf)
            runs[arm]["seconds"] = math.nan
    print(
        f"seed {seed}: " + ", ".join(f"{a} {r['test_l2_fine']:.4f}" for a, r in runs.items()),
        flush=True,
    )
    return {"seed": seed, "runs": runs}


#: The error the tests compare: zero-shot super-resolution.
FINE = "test_l2_fine"


def summarise(record: dict) -> dict[str, Any]:
    """The primary test (95 %) and the secondary family (Holm) on the fine grid."""
    from transfer_tune.analysis.stats import family_tests

    arms = list(record["seeds"][0]["runs"])
    name = f"{PRIMARY[0]} − {PRIMARY[1]}"
    primary = family_tests({name: paired(record, *PRIMARY, FINE)}, CONFIDENCE)[name]
    family = {f"{a} − data": paired(record, a, "data", FINE) for a in arms if a not in PRIMARY}
    family["pino-fine 0.1 − pino-coarse 0.1"] = paired(
        record, "pino-fine 0.1", "pino-coarse 0.1", FINE
    )
    keys = ("test_l2", "test_l2_fine", "residual_fine", "seconds")
    return {
        "primary_name": name,
        "primary": primary,
        "secondary": family_tests(family, CONFIDENCE),
        "means": {a: {k: finite_mean(per_seed(record, a, k)) for k in keys} for a in arms},
    }


def render(record: dict) -> str:
    """The README block, from the JSON record alone."""
    d, env, s = record["design"], record["env"], record["summary"]
    res = d["overrides"]["resolution"]
    lines = [
        f"Run `{record['run_id']}` (design hash), generated by `benchmarks/pino_superres.py` "
        "from `results/pino_superres.json`; do not edit by hand. "
        f"Darcy solved on {d['fine']}×{d['fine']}, trained on {res}×{res} labels "
        f"({d['overrides']['n_train']} samples), tested on both; width {d['width']}, K "
        f"{d['modes']}, lr 2^{math.log2(d['lr']):.2f}, batch {d['batch_size']}, "
        f"{d['epochs']} epochs, {len(record['seeds'])} seeds. {env['total_seconds'] / 60:.1f} "
        f"min wall, {env['n_jobs']} worker processes × 1 thread, {env['nproc']} cores, load "
        f"{env['load_before']} -> {env['load_after']}.",
        "",
        f"| arm | test rel-L2 on {res}² (mean, %) | on {d['fine']}² (mean, %) | residual on "
        f"{d['fine']}² (mean) | training s (mean) |",
        "|---|---|---|---|---|",
    ]
    for arm, m in s["means"].items():
        lines.append(
            f"| {arm} | {100 * m['test_l2']:.3f} | {100 * m['test_l2_fine']:.3f} | "
            f"{m['residual_fine']:.4g} | {m['seconds']:.1f} |"
        )
    lines += [
        "",
        f"Differences of the test error on the {d['fine']}×{d['fine']} grid (percentage points, "
        "paired over seeds, Student-t; negative: the first arm is better). The primary test at "
        f"95 %; the secondary family of {len(s['secondary'])} with Holm-adjusted p and "
        "intervals at the Bonferroni level:",
        "",
        *TESTS_HEADER,
        test_row(f"**primary: {s['primary_name']}**", s["primary"]),
        *[test_row(n, v) for n, v in s["secondary"].items()],
        "",
        prose(record),
    ]
    return "\n".join(lines)


def prose(record: dict) -> str:
    """The sentence the README quotes, from the JSON alone."""
    d, s = record["design"], record["summary"]
    p, m = s["primary"], s["means"]
    verdict = {"< 0": "fine physics helps", "> 0": "fine physics hurts"}.get(
        p["decision"], "not resolved"
    )
    return (
        f"Trained on {d['overrides']['resolution']}² labels and tested on {d['fine']}² "
        f"(zero-shot super-resolution), the residual on the {d['fine']}² grid at weight 0.1 "
        f"minus the data loss alone: {pp(p['estimate'])} pp [{pp(p['low'])}, "
        f"{pp(p['high'])}] (95 %, {p['n']} seeds, {p['positive']} > 0): {verdict}. Means on "
        f"{d['fine']}²: data {100 * m['data']['test_l2_fine']:.3f} %, fine physics "
        f"{100 * m['pino-fine 0.1']['test_l2_fine']:.3f} %, coarse physics "
        f"{100 * m['pino-coarse 0.1']['test_l2_fine']:.3f} %; residual on {d['fine']}² "
        f"{m['data']['residual_fine']:.3g}, {m['pino-fine 0.1']['residual_fine']:.3g} and "
        f"{m['pino-coarse 0.1']['residual_fine']:.3g}."
    )


BLOCK = harness.Block("pino_superres", render)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = harness.parser(__doc__, n_jobs=2).parse_args(argv)
    if args.readme_from:
        return harness.rerender(BLOCK, args.readme_from)
    design = QUICK if args.quick else FULL

    def prepare() -> None:
        from pdes import load_problem

        problem = load_problem("darcy", design.overrides)
        harness.generate_splits(problem, problem.with_overrides(resolution=design.fine))

    return harness.run_audit(args, design, run_seed, summarise, render, BLOCK, prepare)


if __name__ == "__main__":
    raise SystemExit(main())
