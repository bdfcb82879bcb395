"""The tables and sentences of ``transfer_repro``, rendered from its JSON record alone.

Nothing here trains or reads storage: :func:`render` turns ``results/transfer_repro.json``
(and the earlier runs' JSON) into the README block, and :func:`findings` into the templated
sentences that ``benchmarks/README.md`` and the README's "Does it work?" quote, so no number in
them is typed by hand. Earlier runs recorded test-located optima under older rules; their
recorded train-loss curves are re-analysed here with today's rules (:func:`reanalyse`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import harness  # noqa: F401  (puts this checkout on sys.path before transfer_tune)
import numpy as np

from transfer_tune.analysis.curves import Curves
from transfer_tune.analysis.optimum import analyze_optimum
from transfer_tune.analysis.stats import family_level, holm

LOSS_NAMES = {"val_loss": "validation", "train_loss": "train", "test_loss": "test"}
VERDICT_WORDS = {
    "transfers": "stays within one grid step",
    "drifts": "moves beyond one grid step",
    "inconclusive": "is not resolved",
}


def _ci(est: float, low: float, high: float) -> str:
    if not math.isfinite(est):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{est:+.2f} [n/a]"
    return f"{est:+.2f} [{low:+.2f}, {high:+.2f}]"


def _p(p: float | None) -> str:
    return "n/a" if p is None or not math.isfinite(p) else f"{p:.2g}"


def _name(kind: str) -> str:
    return "µP" if kind == "mup" else "SP"


def _level(level: float) -> str:
    return f"{100 * level:.2f} %"


def _edge(e: dict) -> str:
    if e["edge"] is None:
        return f"> 2^{math.log2(e['stable']):.2f}" if e["stable"] else "n/a"
    i = next(i for i, f in enumerate(e["failures"]) if 2 * f >= e["n_seeds"])
    return f"2^{math.log2(e['edge']):.2f} ({e['failures'][i]}/{e['n_seeds']})"


def _edge_shift(e: dict) -> str:
    if e["shift_bound"]:
        return e["shift_bound"]
    return f"{e['shift']:+.2f}" if math.isfinite(e["shift"]) else "n/a"


def _verdict(o: dict) -> str:
    if o["verdict"] == "reference":
        return "—"
    return o["verdict"] + (f" ({o['reason']})" if o["verdict"] == "inconclusive" else "")


def _shift(o: dict) -> str:
    return _ci(o["shift"], o["shift_low"], o["shift_high"])


def _gap(g: dict) -> str:
    return _ci(g["estimate"], g["low"], g["high"])


def non_reference(rec: dict, loss: str) -> dict[tuple[str, int], dict]:
    """``(parametrization, K) -> optimum`` of one arm and loss, the reference K left out."""
    return {
        (o["parametrization"], o["modes"]): o
        for o in rec[loss]["optima"]
        if o["verdict"] != "reference"
    }


# -- the tables -------------------------------------------------------------------------------


def setup_table(record: dict) -> str:
    """The arms as run: problem, width, clipping, K, grid, budget, energy beyond each K."""
    lines = [
        "| arm | problem | width | clipping | K | lr grid (values) | epochs × batch | "
        "target energy beyond K |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, rec in record["arms"].items():
        s = rec["setup"]
        grid = s["lr_grid"]
        energy = " / ".join(f"K={k}: {v:.2g}" for k, v in rec["content"].items())
        lines.append(
            f"| `{name}` | {s['problem']} {s['overrides'].get('resolution')} | {s['width']} | "
            f"{s['clip'] or 'none'} | {', '.join(map(str, sorted({s['base_modes'], *s['modes']})))}"
            f" | 2^{math.log2(grid[0]):.2f} … 2^{math.log2(grid[-1]):.2f} ({len(grid)}) | "
            f"{s['epochs']} × {s['batch_size']} | {energy} |"
        )
    return "\n".join(lines)


def summary(record: dict) -> str:
    """One row per arm and K: validation and train shifts, gaps (Holm p), edge shifts."""
    fam = record["families"]
    lines = [
        "\n#### Summary: shift of the optimum base lr from K_base (log2, paired over seeds; "
        f"intervals at the family level: validation {_level(fam['val_loss']['level'])}, train "
        f"{_level(fam['train_loss']['level'])}, Bonferroni over m = {fam['val_loss']['m']} each; "
        "p: Holm-adjusted, zero shift / zero gap)\n",
        "| arm | K | µP val | SP val | SP − µP val gap (rule) | µP train | SP train | "
        "SP − µP train gap | edge shift µP / SP |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rec in record["arms"].items():
        edges = {(e["parametrization"], e["modes"]): e for e in rec["stability"]}
        for k in rec["setup"]["modes"]:
            if k == rec["setup"]["base_modes"]:
                continue
            cells = []
            for loss in ("val_loss", "train_loss"):
                opt = non_reference(rec, loss)
                gaps = {g["modes"]: g for g in rec[loss]["gaps"]}
                for kind in ("mup", "sp"):
                    o = opt.get((kind, k))
                    cells.append(
                        f"{_shift(o)} {o['verdict']} (p {_p(o.get('p_holm'))})" if o else "—"
                    )
                g = gaps.get(k)
                rule = f" ({g['rule']:+.2f})" if g and loss == "val_loss" else ""
                cells.append(f"{_gap(g)}{rule} (p {_p(g.get('p_holm'))})" if g else "—")
            edge = " / ".join(
                _edge_shift(edges[(kind, k)]) if (kind, k) in edges else "—"
                for kind in ("mup", "sp")
            )
            lines.append(f"| {name} | {k} | {' | '.join(cells)} | {edge} |")
    return "\n".join(lines)


def render_arm(name: str, rec: dict) -> str:
    """Markdown tables of one arm (main sweep, gaps, R-only)."""
    setup = rec["setup"]
    val, train = rec["val_loss"], rec["train_loss"]
    edges = {(e["parametrization"], e["modes"]): e for e in rec["stability"]}
    tr = {(o["parametrization"], o["modes"]): o for o in train["optima"]}
    lines = [
        f"\n#### {name}: optimum base lr per K (K_base = {setup['base_modes']}, width "
        f"{setup['width']}, clip {setup['clip'] or 'none'}, grid step {val['grid_step']:.2f} "
        f"log2; intervals: {val['method']} of the paired per-seed shift)\n",
        "| param. | K | val optimum log2 lr | val shift [interval] | p (Holm) | val verdict | "
        "test loss at val optimum | train shift [interval] | p (Holm) | train verdict | "
        "stability edge (fail/seeds) | edge shift |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in val["optima"]:
        key = (o["parametrization"], o["modes"])
        t, e = tr[key], edges[key]
        edge = " (edge)" if o["at_edge"] else ""
        lines.append(
            f"| {_name(key[0])} | {key[1]} | {o['position']:+.2f}{edge} | {_shift(o)} | "
            f"{_p(o.get('p_holm'))} | {_verdict(o)} | {o['test_loss_at_optimum']:.4g} | "
            f"{_shift(t)} | {_p(t.get('p_holm'))} | {_verdict(t)} | {_edge(e)} | "
            f"{_edge_shift(e)} |"
        )
    r = rec.get("r_only")
    if r:
        rv = r["val_loss"]
        lines += [
            f"\n#### {name}: R-only sweep (R's Adam rate alone varies; R keeps µP's init at each "
            f"K; every other group at lr = 2^{math.log2(r['lr']):.2f}; {rv['method']})\n",
            "| param. | K | val optimum log2 spectral_lr | val shift [interval] | verdict | "
            "exponent p (val) | exponent p (train) |",
            "|---|---|---|---|---|---|---|",
        ]
        for o in rv["optima"]:
            key = f"{o['parametrization']}/K{o['modes']}"
            pv, pt = r["exponent"]["val_loss"].get(key), r["exponent"]["train_loss"].get(key)
            lines.append(
                f"| {_name(o['parametrization'])} | {o['modes']} | {o['position']:+.2f}"
                f"{' (edge)' if o['at_edge'] else ''} | {_shift(o)} | {_verdict(o)} | "
                + (_ci(pv["estimate"], pv["low"], pv["high"]) if pv else "—")
                + " | "
                + (_ci(pt["estimate"], pt["low"], pt["high"]) if pt else "—")
                + " |"
            )
        lines.append(
            "\n(p: R's optimal rate ∝ (ln K_base / ln K)^p; µP's rule is p = 0.5, an R rate "
            "that does not depend on K is p = 0.)"
        )
    return "\n".join(lines)


# -- earlier runs -----------------------------------------------------------------------------


def reanalyse(rec: dict, loss: str, level: float) -> dict[tuple[str, int], dict]:
    """Optima of one arm's recorded ``loss`` curves under today's rules at ``level``."""
    losses = {
        (key.split("/K")[0], int(key.split("/K")[1])): np.asarray(v, dtype=float)
        for key, v in rec["curves"][loss].items()
    }
    curves = Curves(
        param="lr",
        values=np.asarray(rec["setup"]["lr_grid"], dtype=float),
        losses=losses,
        base_modes=rec["setup"]["base_modes"],
        seeds=list(rec["setup"]["seeds"]),
        loss=loss,
    )
    a = analyze_optimum(curves, confidence=level)
    return {(o.parametrization, o.modes): vars(o) for o in a.optima if o.verdict != "reference"}


def earlier_train_results(earlier: dict[str, dict], m: int) -> dict[str, dict]:
    """Per earlier run: its train-loss shifts re-analysed at the family level, Holm-adjusted."""
    level = family_level(0.95, m)
    out = {}
    for label, record in earlier.items():
        optima = {name: reanalyse(rec, "train_loss", level) for name, rec in record["arms"].items()}
        flat = [o for arm in optima.values() for o in arm.values()]
        for o, p in zip(flat, holm([o["shift_p"] for o in flat]), strict=True):
            o["p_holm"] = p
        out[label] = optima
    return out


def earlier_table(record: dict, earlier: dict[str, dict]) -> str:
    """This run's train-loss shifts beside the earlier runs' (same rules, same level)."""
    if not earlier:
        return ""
    m = record["families"]["train_loss"]["m"]
    results = earlier_train_results(earlier, m)
    labels = list(earlier)
    head = " | ".join(f"{lab} ({earlier[lab]['_id']})" for lab in labels)
    lines = [
        "\n#### This run beside the earlier full runs (train loss, today's rules and level; "
        "the earlier runs recorded no validation loss)\n",
        f"| arm | param. | K | {head} | this run ({record['run_id']}) |",
        "|---|---|---|" + "---|" * (len(labels) + 1),
    ]
    for name, rec in record["arms"].items():
        now = non_reference(rec, "train_loss")
        for (kind, k), o in now.items():
            cells = []
            for lab in labels:
                e = results[lab].get(name, {}).get((kind, k))
                cells.append(f"{_shift(e)} {e['verdict']}" if e else "—")
            lines.append(
                f"| {name} | {_name(kind)} | {k} | {' | '.join(cells)} | "
                f"{_shift(o)} {o['verdict']} |"
            )
    return "\n".join(lines)


# -- sentences --------------------------------------------------------------------------------


def _count(record: dict, loss: str) -> dict[str, int]:
    out = dict.fromkeys(VERDICT_WORDS, 0)
    for rec in record["arms"].values():
        for o in non_reference(rec, loss).values():
            out[o["verdict"]] += 1
    return out


def findings(record: dict) -> list[str]:
    """Templated sentences of what the run shows (every number from ``record``)."""
    fam = record["families"]
    out = []
    for loss in ("val_loss", "train_loss"):
        c = _count(record, loss)
        n = sum(c.values())
        out.append(
            f"Optimum located on {LOSS_NAMES[loss]} loss ({_level(fam[loss]['level'])} "
            f"intervals, m = {fam[loss]['m']}): of {n} shifts, {c['transfers']} transfer "
            f"(interval within one grid step), {c['drifts']} drift (interval beyond one grid "
            f"step) and {c['inconclusive']} are inconclusive."
        )
    for loss in ("val_loss", "train_loss"):
        resolved = []
        for name, rec in record["arms"].items():
            for (kind, k), o in non_reference(rec, loss).items():
                if o["verdict"] != "inconclusive":
                    resolved.append(
                        f"{_name(kind)} {VERDICT_WORDS[o['verdict']]} at {name} K = {k} "
                        f"({_shift(o)}, Holm p {_p(o.get('p_holm'))})"
                    )
            for g in rec[loss]["gaps"]:
                if math.isfinite(g.get("p_holm", math.nan)) and g["p_holm"] < 0.05:
                    resolved.append(
                        f"the SP − µP gap at {name} K = {g['modes']} is {_gap(g)} (rule "
                        f"{g['rule']:+.2f}, Holm p {_p(g['p_holm'])})"
                    )
        if resolved:
            out.append(f"Resolved on {LOSS_NAMES[loss]} loss: " + "; ".join(resolved) + ".")
        else:
            out.append(
                f"On {LOSS_NAMES[loss]} loss no shift and no SP − µP gap is resolved after the "
                "correction."
            )
    out.append(stability_sentence(record))
    r = next((rec["r_only"] for rec in record["arms"].values() if "r_only" in rec), None)
    if r:
        parts = []
        for loss in ("val_loss", "train_loss"):
            for key, e in r["exponent"][loss].items():
                says = [
                    f"{'contains' if e['low'] - 1e-9 <= v <= e['high'] + 1e-9 else 'excludes'} "
                    f"{v:g}"
                    for v in (0.5, 0.0)
                ]
                parts.append(
                    f"{LOSS_NAMES[loss]} {_ci(e['estimate'], e['low'], e['high'])} ({key}; "
                    f"{' and '.join(says)})"
                )
        out.append(
            "R-only exponent p of R's optimal rate ∝ (ln K_base / ln K)^p (µP: 0.5; "
            f"K-independent: 0), {_level(r['val_loss']['level'])} intervals: "
            + "; ".join(parts)
            + "."
        )
    out.append(clipping_sentence(record))
    return [s for s in out if s]


def stability_sentence(record: dict) -> str:
    """How µP's and SP's stability edges moved from K_base (grid resolution, no interval)."""
    higher = equal = lower = 0
    drops = []
    for name, rec in record["arms"].items():
        edges = {(e["parametrization"], e["modes"]): e for e in rec["stability"]}
        for k in rec["setup"]["modes"]:
            if k == rec["setup"]["base_modes"]:
                continue
            mu, sp = edges.get(("mup", k)), edges.get(("sp", k))
            if not mu or not sp or not (math.isfinite(mu["shift"]) and math.isfinite(sp["shift"])):
                continue
            higher += mu["shift"] > sp["shift"]
            equal += mu["shift"] == sp["shift"]
            lower += mu["shift"] < sp["shift"]
            if sp["shift"] < 0:
                drops.append(f"{name} K = {k} ({sp['shift']:+.2f})")
    n = higher + equal + lower
    steps = sorted({rec["setup"]["step_log2"] for rec in record["arms"].values()})
    text = (
        f"Stability edge (largest stable lr, on the grid: steps of "
        f"{' / '.join(f'{s:g}' for s in steps)} log2, no interval): µP's moved "
        f"above SP's in {higher} of {n} comparisons, equal in {equal}, below in {lower}"
    )
    return text + (f"; SP's fell below K_base's at {', '.join(drops)}." if drops else ".")


def clipping_sentence(record: dict) -> str:
    """Which verdicts and intervals clipping changed (arms ``X-none`` against ``X-clip``)."""
    arms = record["arms"]
    changes, narrower, total = [], 0, 0
    for name in arms:
        if not name.endswith("-clip"):
            continue
        plain = arms.get(name[: -len("-clip")] + "-none")
        if plain is None:
            continue
        for loss in ("val_loss", "train_loss"):
            a, b = non_reference(plain, loss), non_reference(arms[name], loss)
            for key in sorted(set(a) & set(b)):
                total += 1
                wa = a[key]["shift_high"] - a[key]["shift_low"]
                wb = b[key]["shift_high"] - b[key]["shift_low"]
                narrower += wb < wa
                if a[key]["verdict"] != b[key]["verdict"]:
                    changes.append(
                        f"{_name(key[0])} K = {key[1]} {LOSS_NAMES[loss]}: "
                        f"{a[key]['verdict']} → {b[key]['verdict']}"
                    )
    if not total:
        return ""
    changed = f"changed {len(changes)} of {total} verdicts" + (
        f" ({'; '.join(changes)})" if changes else ""
    )
    return (
        f"Element-wise clipping at 0.01 {changed} and narrowed {narrower} of {total} intervals "
        "(same grid and seeds without clipping)."
    )


# -- the block --------------------------------------------------------------------------------


def landscape_lines(
    record: dict,
    script: str,
    rerun: str,
    notes: Sequence[str] = (),
    sentences: Sequence[str] = (),
) -> list[str]:
    """A landscape block's lines from its JSON record: where it comes from, ``notes`` (each
    followed by an empty line), the set-up, the templated findings (then ``sentences``), the
    summary and one table per arm. ``script`` names the record; ``rerun`` is the flag that
    re-renders it."""
    env = record["env"]
    head = [
        f"Generated by `benchmarks/{script}.py` from `results/{script}.json` (run "
        f"`{record['run_id']}`, {env['mode']} run, {env.get('total_seconds', 0) / 60:.1f} min "
        f"wall, n_jobs {env['n_jobs']}, {env['nproc']} cores, CPU {env['cpu']}, load average "
        f"{env['load_before']} -> {env.get('load_after')}). Do not edit by hand: rerun with "
        f"`{rerun}`.",
        "",
        *[line for note in notes for line in (note, "")],
        setup_table(record),
        "",
        "**What the run shows** (templated from the JSON):",
        "",
        *[f"- {s}" for s in (*findings(record), *sentences)],
    ]
    body = [summary(record)] + [render_arm(name, rec) for name, rec in record["arms"].items()]
    return head + body


def render(record: dict, earlier: dict[str, dict] | None = None) -> str:
    """The whole README block from the JSON record (and the earlier runs' records)."""
    lines = landscape_lines(record, "transfer_repro", "--write-readme")
    return "\n".join(lines + [earlier_table(record, earlier or {})])
