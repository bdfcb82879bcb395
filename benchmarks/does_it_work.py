"""The README's "Does it work?" bullets, written from the benchmarks' JSON records alone.

Usage::

    python benchmarks/does_it_work.py        # rewrite the block in README.md and print it

Every number in the block comes from ``benchmarks/results/*.json`` through the sentence
templates below (and the benchmarks' own ``findings``/``prose``), so a rerun that changes a
result changes the sentence; ``tests/test_benchmarks.py`` fails when the README and the JSON
disagree. Published numbers are not mixed in: they stay in the compute audit's own block.
"""

from __future__ import annotations

import math
from pathlib import Path

import harness
from readme_block import write_block

RESULTS = harness.RESULTS
README = harness.TOP_README


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return harness.load(path) if path.exists() else None


def _pp(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:+.2f}"


def content_bullet(repro: dict) -> str:
    """Do the benchmarked problems reward the larger K? (energy of the targets beyond K)."""
    parts = []
    for name, rec in repro["arms"].items():
        if name.endswith("-clip") or "w32" in name:
            continue  # the same data as the width-8 arm
        energy = ", ".join(f"{v:.2g} beyond K = {k}" for k, v in rec["content"].items())
        parts.append(f"{rec['setup']['problem']} ({name}): {energy}")
    return (
        "**The benchmarked problems have something for a larger K to learn** (fraction of the "
        "training targets' energy in modes a K-mode FNO does not keep): "
        + "; ".join(parts)
        + ". `transfer-tune data NAME --spectrum` prints this for any problem, and the workflow "
        "warns when the target's K would add less than 1e-3."
    )


def audit_bullet(audit: dict) -> str:
    """The compute audit in one sentence: cost ratios and the Holm-corrected pairs."""
    from compute_audit import summarise

    summ = summarise(audit["runs"])
    s, a = audit["setup"], summ["arms"]["a"]
    pairs = []
    for key, t in summ["tests"].items():
        x, y = key.split("-")
        lo, hi = t["ci_family"]
        pairs.append(
            f"({x}) − ({y}) {_pp(t['mean'])} pp [{_pp(lo)}, {_pp(hi)}] (Holm p {t['t_p_holm']:.2g})"
        )
    resolved = [t for t in summ["tests"].values() if t["t_p_holm"] < 0.05]
    verdict = (
        "none of the four pairs is resolved after Holm's correction"
        if not resolved
        else f"{len(resolved)} of the four pairs are resolved after Holm's correction"
    )
    return (
        f"**Compute audit** ({s['problem']} {s['overrides']['resolution']}², width {s['width']}, "
        f"K {s['proxy_modes']} → {s['target_modes']}, {len(s['seeds'])} seeds; arms (a) proxy "
        "search + µTransfer, (b) direct SP search, (c) direct µP search, (d) proxy values "
        f"reused unchanged): (a)'s search cost {a['search_cpu_seconds_vs_b']:.2f}x (b)'s CPU "
        f"time and {a['search_flops_vs_b']:.2f}x its FLOPs. Test-error differences "
        f"({100 * next(iter(summ['tests'].values()))['family_level']:.2f} % family intervals): "
        + "; ".join(pairs)
        + f" — {verdict}."
    )


def render() -> str:
    """The block: one bullet per recorded benchmark that speaks to "does it work?"."""
    bullets = []
    cheap = _load("cheap_proxy.json")
    if cheap:
        from cheap_proxy import prose as cheap_prose
        from cheap_proxy import summarise as cheap_summary

        cheap["summary"] = cheap_summary(cheap)
        d = cheap["design"]
        t, c, k = d["target"], d["cheap"], d["k_only"]
        res = d["overrides"]["resolution"]
        bullets.append(
            f"**Is a cheap proxy enough?** (`cheap_proxy`, run `{cheap['run_id']}`, "
            f"{d['problem']} {res}², target width {t['width']}, K {t['modes']}; proxy width "
            f"{c['width']}, K {c['modes']}, {c['resolution']}²; today's K-only proxy width "
            f"{k['width']}, K {k['modes']}, {k['resolution']}²; {len(cheap['seeds'])} seeds) "
            + cheap_prose(cheap)
        )
    width = _load("width_transfer.json")
    if width:
        from width_transfer import findings as width_findings

        bullets.append(
            f"**Does the optimum stay put over width?** (`width_transfer`, run "
            f"`{width['run_id']}`):" + "".join(f"\n  - {f}" for f in width_findings(width))
        )
    repro = _load("transfer_repro.json")
    if repro and "families" in repro:
        from transfer_repro_report import findings

        bullets.append(content_bullet(repro))
    audit = _load("compute_audit.json")
    if audit:
        bullets.append(audit_bullet(audit))
    parts = _load("mup_parts.json")
    if parts:
        from mup_parts import prose, summarise

        parts["summary"] = summarise(parts)
        bullets.append(
            "**Which part of µP's K rule helps** (pre-registered factorial): " + prose(parts)
        )
    pino = _load("pino_audit.json")
    if pino:
        from pino_audit import prose as pino_prose
        from pino_audit import summarise as pino_summary

        pino["summary"] = pino_summary(pino)
        d = pino["design"]
        bullets.append(
            f"**Does physics-informed training help?** (`pino_audit`, run `{pino['run_id']}`, "
            f"{d['problem']} {d['overrides']['resolution']}² solved on its grid, K "
            f"{d['proxy']['modes']} → {d['target']['modes']}, width {d['target']['width']}, "
            f"{len(pino['seeds'])} seeds) " + pino_prose(pino)
        )
    superres = _load("pino_superres.json")
    if superres:
        from pino_superres import prose as superres_prose
        from pino_superres import summarise as superres_summary

        superres["summary"] = superres_summary(superres)
        bullets.append(
            f"**Coarse data, fine physics** (`pino_superres`, run `{superres['run_id']}`, "
            f"{len(superres['seeds'])} seeds, fixed rate) " + superres_prose(superres)
        )
    landscapes = _load("pino_transfer.json")
    if landscapes:
        from pino_transfer import arm_sentences
        from transfer_repro_report import findings as pino_findings

        env = landscapes["env"]
        bullets.append(
            f"**Does the optimum stay put under µP with the PINO loss?** (`pino_transfer`, run "
            f"`{landscapes['run_id']}`, {', '.join(landscapes['arms'])}, 5 seeds, µP beside SP, "
            f"{env['total_seconds'] / 60:.0f} min):"
            + "".join(
                f"\n  - {f}" for f in (*pino_findings(landscapes), *arm_sentences(landscapes))
            )
        )
    if repro and "families" in repro:
        env = repro["env"]
        head = (
            f"**Does the optimum stay put under µP?** Landscapes (`transfer_repro`, run "
            f"`{repro['run_id']}`, {len(repro['arms'])} arms, 5 seeds, µP beside SP, "
            f"{env['total_seconds'] / 60:.0f} min): "
        )
        bullets.append(head + "".join(f"\n  - {f}" for f in findings(repro)))
    return "\n".join(f"- {b}" for b in bullets)


def write_readme(path: Path = README) -> str:
    """Rewrite the ``does_it_work`` block of ``path``; return the block."""
    block = render()
    write_block("does_it_work", block, path)
    return block


if __name__ == "__main__":
    print(write_readme())
