"""Does the learning-rate optimum stay put as K grows when the FNO trains physics-informed?

Usage::

    python benchmarks/pino_transfer.py --n-jobs 2          # the full run (arms below)
    python benchmarks/pino_transfer.py --quick             # tiny sizes, seconds
    python benchmarks/pino_transfer.py --readme-from benchmarks/results/pino_transfer.json

The landscapes of ``benchmarks/transfer_repro.py`` with the PINO loss (``train={"loss":
"pino"}``: relative L2 data loss + ``physics_weight`` x the problem's PDE residual,
:mod:`pdes.physics`): for each arm the base Adam rate is swept over a grid 2^(1/4) apart at
K_base = 4 and K = 16, under µP and SP, 5 seeds, width fixed. The machinery is
``transfer_repro``'s own (its :func:`~transfer_repro.run_arm`, optimum location on validation
loss as the primary test and train loss as the secondary one, paired per-seed shifts from
K_base, Student-t intervals at the Bonferroni family level, Holm-adjusted p-values, the same
verdict rules and stability edges), so the verdicts read like its table.

Arms (fixed in :data:`FULL` before the first run; the JSON's ``run_id`` hashes them):

* ``darcy-pino``: Darcy 33 x 33 **solved on its training grid** (``n_fine = 33``), so the
  labels' residual is round-off (tests/test_darcy_residual.py; subsampled from a finer solve
  it is ~1, the coarse stencil disagreeing with the fine flux at the coefficient's jumps);
  K 4 -> 16 (2K - 1 = 31 of 33 modes), width 8.
* ``burgers_time-pino``: Burgers in space-time 32 x 32 (``burgers_time``, ``nu = 0.01``; its
  exact data's residual is 0.02), K 4 -> 16, width 8.

Both use ``physics_weight = 0.1``, picked by a 1-seed pilot at K = 4 (lr 2^-7 .. 2^-3, weights
0.01, 0.1, 1): at the best rate it lowered the test residual (Burgers 0.69 -> 0.42, Darcy
2.7 -> 1.7) while the validation error stayed near the data loss's on Burgers (0.052 against
0.050) and rose on Darcy (0.18 against 0.13, 10 epochs); weight 1 cost 2-10x the error.
Multiplicity: the two shifts and the gap of each arm's K = 16 form one family per loss
(m = 6), as in ``transfer_repro``.

It writes ``pino_transfer.json``, HTML figures and, for a full run into benchmarks/results,
the README block between the ``pino_transfer`` markers, rendered from the JSON.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
from transfer_repro import Arm, output_folder, run_arms
from transfer_repro import design_id as repro_design_id
from transfer_repro_report import landscape_lines, non_reference


@dataclass(frozen=True)
class PinoArm(Arm):
    """An arm of ``transfer_repro`` trained with the PINO loss at a fixed physics weight."""

    physics_weight: float = 0.1
    data_weight: float = 1.0

    def hparams(self) -> dict[str, Any]:
        """The arm's fixed hyperparameters with the PINO loss."""
        return {
            **super().hparams(),
            "loss": "pino",
            "physics_weight": self.physics_weight,
            "data_weight": self.data_weight,
        }


DARCY = {"resolution": 33, "n_fine": 33, "n_train": 96, "n_val": 32, "n_test": 128}
BURGERS_TIME = {"resolution": 32, "n_train": 96, "n_val": 32, "n_test": 128}
FULL = [
    # pilot (K = 4, 1 seed): optimum near 2^-5.5, collapse at 2^-3 -> 2^-7.25 .. 2^-3.25
    PinoArm("darcy-pino", "darcy", DARCY, 8, None, (4, 16), -5.25, epochs=10, batch_size=8,
            n_values=17),
    # pilot: optimum near 2^-6, 50 % worse at 2^-5, divergence at 2^-3 -> 2^-8 .. 2^-4
    PinoArm("burgers_time-pino", "burgers_time", BURGERS_TIME, 8, None, (4, 16), -6.0,
            epochs=10, batch_size=8, n_values=17),
]  # fmt: skip
#: The quick arms' shared budget (tiny grids, two seeds).
_QUICK = dict(
    base_modes=2,
    n_layers=2,
    epochs=2,
    batch_size=8,
    n_values=3,
    step_log2=0.5,
    seeds=(0, 1),
)
QUICK = [
    PinoArm("darcy-pino", "darcy",
            {"resolution": 9, "n_fine": 9, "n_train": 16, "n_val": 4, "n_test": 8},
            8, None, (2, 4), -5.0, **_QUICK),
    PinoArm("burgers_time-pino", "burgers_time",
            {"resolution": 8, "n_train": 16, "n_val": 4, "n_test": 8},
            8, None, (2, 4), -5.0, **_QUICK),
]  # fmt: skip


def design_id(arms: dict[str, dict]) -> str:
    """``transfer_repro``'s design hash of the arms, with each arm's loss weights."""
    weights = {
        name: (rec["setup"]["physics_weight"], rec["setup"]["data_weight"])
        for name, rec in arms.items()
    }
    text = repro_design_id(arms) + json.dumps(weights, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


#: What a stability edge shift reads when neither K failed on the grid.
NO_EDGE = "none (no edge on the grid)"


def contains(interval: dict, value: float) -> bool:
    """Whether ``value`` lies in the interval ``low``..``high`` of ``interval``."""
    return interval["low"] - 1e-9 <= value <= interval["high"] + 1e-9


def arm_sentences(record: dict) -> list[str]:
    """Per arm and K: both shifts, the SP − µP gap against the rule's own factor, and the
    stability edges, in words (every number from ``record``)."""
    out = []
    for name, rec in record["arms"].items():
        val = rec["val_loss"]
        optima = non_reference(rec, "val_loss")
        gaps = {g["modes"]: g for g in val["gaps"]}
        edges = {(e["parametrization"], e["modes"]): e for e in rec["stability"]}
        for k in rec["setup"]["modes"]:
            if k == rec["setup"]["base_modes"]:
                continue
            mu, sp, gap = optima[("mup", k)], optima[("sp", k)], gaps[k]
            says = [
                f"{'contains' if contains(gap, v) else 'excludes'} {what} ({v:+.2f})"
                for v, what in ((0.0, "no gap"), (gap["rule"], "the rule's factor"))
            ]
            edge = ", ".join(
                f"{_ci_name(kind)} {edges[(kind, k)].get('shift_bound') or NO_EDGE}"
                for kind in ("mup", "sp")
                if (kind, k) in edges
            )
            out.append(
                f"`{name}` K = {k} (validation loss, {100 * val['level']:.2f} % intervals, log2 "
                f"lr from K = {rec['setup']['base_modes']}): µP's optimum moved "
                f"{_ci(mu['shift'], mu['shift_low'], mu['shift_high'])}, SP's "
                f"{_ci(sp['shift'], sp['shift_low'], sp['shift_high'])}; the SP − µP gap "
                f"{_ci(gap['estimate'], gap['low'], gap['high'])} {' and '.join(says)}; "
                f"stability edge shift (grid bound) {edge}."
            )
    return out


def _ci_name(kind: str) -> str:
    return "µP" if kind == "mup" else "SP"


def _ci(estimate: float, low: float, high: float) -> str:
    return f"{estimate:+.2f} [{low:+.2f}, {high:+.2f}]"


def render(record: dict) -> str:
    """The README block from the JSON record alone."""
    weights = "; ".join(
        f"`{name}`: data weight {rec['setup']['data_weight']:g}, physics weight "
        f"{rec['setup']['physics_weight']:g}"
        for name, rec in record["arms"].items()
    )
    note = f"Loss: relative L2 data loss + physics weight × PDE residual ({weights})."
    lines = landscape_lines(
        record, "pino_transfer", "--readme-from", notes=[note], sentences=arm_sentences(record)
    )
    return "\n".join(lines)


BLOCK = harness.Block("pino_transfer", render)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = harness.parser(__doc__, n_jobs=1)
    parser.add_argument("--out", type=Path, default=None, help="sweeps and figures folder")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    args = parser.parse_args(argv)
    if args.readme_from:
        return harness.rerender(BLOCK, args.readme_from)
    arms = QUICK if args.quick else FULL
    out = output_folder(args.out, args.quick, "pino_transfer")
    storage = f"sqlite:///{(out / 'pino_transfer.db').resolve()}"
    record = run_arms(arms, storage, out, args)
    record["run_id"] = design_id(record["arms"])
    print(render(record))
    print(f"\ntotal {record['env']['total_seconds']:.0f} s")
    harness.publish(args, record, BLOCK)
    if args.quick and args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
