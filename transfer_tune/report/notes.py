"""The Markdown notes the dashboard shows: what each study means, in words and tables.

:func:`proxy_note` tells the whole workflow on the proxy study (what was tuned, what was
transferred with which multipliers, what the target reached, the storage's landscapes and
coord check) and then the details; :func:`target_note` puts the target's µP plan and result
first and links back to the proxy study; :func:`sweep_note` gives a landscape study its optimum,
the whole sweep's verdicts and the link back. They read plain results (:mod:`.readers`, the
landscape and optimum analyses), never a storage; :mod:`.dashboard` writes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from transfer_tune.core.parametrization import display_name
from transfer_tune.errors import TransferTuneError
from transfer_tune.report.readers import ProxyHistory, TargetRun
from transfer_tune.search.sides import describe

__all__ = [
    "WORKFLOW_LINK",
    "Workflow",
    "anchor_name",
    "proxy_note",
    "sweep_note",
    "target_note",
    "with_workflow_link",
    "workflow_link",
]


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _link(name: str, ids: dict[str, int] | None) -> str:
    """``name`` in backticks, linked to its page when its dashboard id is known."""
    sid = (ids or {}).get(name)
    return f"[`{name}`](/dashboard/studies/{sid})" if sid is not None else f"`{name}`"


def sweep_note(
    result: Any,
    analysis: Any,
    parametrization: str,
    modes: int,
    proxies: Sequence[str] = (),
    ids: dict[str, int] | None = None,
) -> str:
    """The Markdown note of one study of a sweep: its own optimum, then the whole sweep.

    ``proxies`` names the proxy studies whose notes tell the workflow this sweep belongs to
    (linked when ``ids``, name -> dashboard id, is given).
    """
    rows = result.select(parametrization, modes)
    diverged = sum(r.diverged for r in rows)
    expected = len(result.points) * len(result.seeds)
    grid = ", ".join(f"{len(v)} values of {p}" for p, v in result.values.items())
    lines = [
        f"## Landscape sweep `{result.name}`: {display_name(parametrization)}, K = {modes}",
        "",
        f"{grid} x {len(result.seeds)} seed(s), {result.config['epochs']} epoch(s) per run, "
        f"K_base = {result.base_modes}, width {result.config['width']}, "
        f"{result.config['n_layers']} layers, problem `{result.config['problem'].get('name')}`. "
        f"This study: {len(rows)}/{expected} runs finished, {diverged} diverged. "
        "Trial value: final test loss; intermediate values: validation loss per epoch.",
        "",
    ]
    if proxies:
        lines[1:1] = ["", workflow_link(proxies, ids)]
    try:
        o = analysis.optimum(parametrization, modes)
        pct = round(100 * analysis.confidence)
        lines += [
            f"**Optimum {analysis.param}: {_fmt(o.value)}** ({pct}% interval {_fmt(o.low)} .. "
            f"{_fmt(o.high)}; grid minimum {_fmt(o.grid_value)}), shift vs K = "
            f"{analysis.reference_modes}: {o.shift:+.2f} {analysis.scale} "
            f"(one grid step = {analysis.grid_step:.2f})"
            + (" — at the edge of the grid: widen it." if o.at_edge else ""),
            "",
        ]
    except TransferTuneError:
        pass
    lines += [
        f"### All curves of the sweep ({analysis.loss})",
        "",
        analysis.markdown(),
        "",
        "Figures: *landscape* and *optimum vs K* below; HTML/PNG files are artifacts of "
        f"`{anchor_name(result)}`.",
    ]
    return "\n".join(lines)


#: How every target and landscape note starts its link back to the workflow's proxy study.
WORKFLOW_LINK = "The whole workflow (tuning, transfer, target): proxy study "


def workflow_link(proxies: Sequence[str], ids: dict[str, int] | None = None) -> str:
    """The line that links a note back to the proxy studies telling its workflow, by name."""
    return WORKFLOW_LINK + ", ".join(_link(p, ids) for p in proxies) + "."


def with_workflow_link(note: str, proxies: Sequence[str], ids: dict[str, int] | None) -> str:
    """``note`` with its workflow link (the line under its title) set to ``proxies``."""
    line = workflow_link(proxies, ids)
    head, _, rest = note.partition("\n")
    kept = [x for x in rest.split("\n") if not x.startswith(WORKFLOW_LINK)]  # one link only
    return f"{head}\n\n{line}\n\n" + "\n".join(kept).lstrip("\n")


def anchor_name(result: Any) -> str:
    """The study of a sweep that holds its files: the first parametrization at K_base."""
    from transfer_tune.analysis.landscape import study_name

    kind = result.parametrizations[0]
    k = result.base_modes if result.base_modes in result.modes else result.modes[0]
    return study_name(result.name, kind, k)


@dataclass
class Workflow:
    """What a proxy study's note tells besides the study itself (read by the annotator).

    Attributes
    ----------
    ids : dict
        Study name -> dashboard id (for links).
    sweeps : list of (name, anchor study, problem name, verdict lines)
        The landscape sweeps of the storage.
    coord_check : (path, summary lines) or None
        The newest coord check next to the storage.
    """

    ids: dict[str, int] = field(default_factory=dict)
    sweeps: list[tuple[str, str, str, list[str]]] = field(default_factory=list)
    coord_check: tuple[str, list[str]] | None = None


def _space_text(space: dict) -> str:
    """The searched ranges in one line (``lr [0.0001, 0.3] log, batch_size {8, 16}, ...``)."""
    parts = []
    for name, spec in space.items():
        if isinstance(spec, dict):
            parts.append(
                f"{name} [{_fmt(spec['low'])}, {_fmt(spec['high'])}]"
                + (" log" if spec.get("log") else "")
            )
        elif isinstance(spec, list):
            parts.append(f"{name} {{{', '.join(_fmt(v) for v in spec)}}}")
        else:
            parts.append(f"{name} = {_fmt(spec)} (fixed)")
    return ", ".join(parts)


def _multipliers_text(plan: dict) -> str:
    """The plan's multipliers in words: the scaled roles, then the rest (x1)."""
    scaled, unit = [], []
    for g in plan.get("groups", []):
        init, lr = g.get("init_multiplier", 1.0), g.get("lr_multiplier", 1.0)
        if math.isclose(init, 1.0) and math.isclose(lr, 1.0):
            unit.append(g.get("name") or g.get("role"))
        else:
            scaled.append(
                f"{g.get('name') or g.get('role')}: init x{init:.4f}, lr x{lr:.4f} "
                f"(lr {g.get('lr', math.nan):.4g})"
            )
    text = "; ".join(scaled) or "no group rescaled"
    return text + (f"; {', '.join(unit)}: x1" if unit else "")


def _loss_text(plan: dict) -> str | None:
    """The plan's PINO loss line (:meth:`TargetPlan.loss_text`), ``None`` for the data loss."""
    from transfer_tune.search.transfer import TargetPlan

    try:
        return TargetPlan.from_dict(plan).loss_text()
    except (TypeError, KeyError):  # a plan stored by an older version: no loss settings
        return None


def _workflow_lines(history: ProxyHistory, workflow: Workflow) -> list[str]:
    """The few lines that tell the whole workflow (the top of the proxy study's note)."""
    attrs = history.user_attrs
    model = attrs.get("model", {}) or {}
    problem = attrs.get("problem", {}) or {}
    counts, best, target = history.counts, history.best, history.target
    metric = "val rel-L2 (normalised)"
    tuned = (
        f"1. **Tuned** {_space_text(attrs.get('search_space') or {})} on the proxy FNO "
        f"(K = {model.get('modes', '?')}, width {model.get('width', '?')}, "
        f"{model.get('n_layers', '?')} layers; problem `{problem.get('name', '?')}`): "
        f"{len(history.trials)} trials ({counts['COMPLETE']} complete, {counts['PRUNED']} pruned)"
    )
    if best is not None:
        params = dict(best.params)
        if "one_minus_beta2" in params:  # the space samples 1 - beta2; say beta2
            params["beta2"] = 1.0 - params.pop("one_minus_beta2")
        values = ", ".join(f"{k} {_fmt(v)}" for k, v in params.items())
        tuned += f"; best {metric} {_fmt(best.value)} (trial {best.number}) with {values}"
    lines = [tuned + "."]
    if target is not None:
        plan, m = target.plan, target.metrics
        lines.append(
            f"2. **Transferred** to K = {plan.get('modes', '?')} with µP (K_base = "
            f"{plan.get('base_modes', '?')}, d = {plan.get('dim', '?')}): "
            f"{_multipliers_text(plan)}; batch size {plan.get('batch_size')} and betas unchanged."
        )
        if plan.get("proxy") and plan.get("target"):  # per axis, what the proxy saved
            axes = describe(plan["proxy"], plan["target"], plan.get("step_flop_ratio"))
            lines.append("   Proxy -> target: " + "; ".join(axes.splitlines()) + ".")
        loss = _loss_text(plan)
        if loss:
            lines.append(f"   {loss[0].upper()}{loss[1:]}.")
        reached = f"3. **Target** {_link(target.name, workflow.ids)} reached"
        if "test_l2" in m:
            reached += f" test rel-L2 (physical units) {_fmt(m['test_l2'])}"
        if m.get("test_l2_fine") is not None:
            reached += f" ({_fmt(m['test_l2_fine'])} at {m.get('fine_resolution')} points)"
        if m.get("test_residual") is not None:
            reached += f", test residual {_fmt(m['test_residual'])}"
        if target.val_loss is not None:
            reached += f", val rel-L2 (normalised) {_fmt(target.val_loss)}"
        if "seconds" in m:
            reached += f", in {m['seconds']:.1f} s"
        lines.append(reached + ".")
    else:
        lines.append("2. **Not transferred yet**: `transfer-tune transfer` runs the target.")
    for name, anchor, prob, verdicts in workflow.sweeps:
        where = "" if prob == problem.get("name") else f" (problem `{prob}`)"
        said = "; ".join(v.split(" — ")[0] for v in verdicts) or "no verdict (one K only)"
        link = _link(anchor, workflow.ids)
        lines.append(f"- **Landscape** sweep `{name}`{where}, {link}: {said}")
    if workflow.coord_check is not None:
        path, summary = workflow.coord_check
        lines.append(f"- **Coord check** (`{path}`): " + " ".join(summary))
    lines += [
        "",
        "Figures on this page: tuning history, the target's curve and µP plan"
        + (", the landscapes" if workflow.sweeps else "")
        + (", the coord check" if workflow.coord_check else "")
        + "; HTML files are artifacts.",
        "",
    ]
    return lines


def _plan_lines(target: TargetRun) -> list[str]:
    plan = target.plan
    par = plan.get("parametrization") or {}
    rule = display_name(par.get("kind", "mup"))
    if par.get("kind") == "calibrated":  # the exponent fitted by `transfer-tune calibrate`
        rule = f"calibrated (R's lr x (ln K_base / ln K)^{par.get('lr_exponent', math.nan):.3g})"
    lines = [
        f"### {rule} rescale table: K = {plan.get('base_modes', '?')} (proxy) -> "
        f"{plan.get('modes', '?')} (target)",
        "",
        f"Base learning rate {_fmt(plan.get('lr'))}, batch size {plan.get('batch_size')}, "
        f"betas ({_fmt(plan.get('beta1'))}, {_fmt(plan.get('beta2'))}); batch size and "
        "betas transfer unchanged.",
        "",
        "| role | init multiplier | lr multiplier | learning rate |",
        "|---|---|---|---|",
    ]
    for g in plan.get("groups", []):
        lines.append(
            f"| {g.get('name') or g.get('role')} | {g.get('init_multiplier', math.nan):.6f} | "
            f"{g.get('lr_multiplier', math.nan):.6f} | {g.get('lr', math.nan):.4e} |"
        )
    lines += [
        "",
        f"### Target run `{target.name}` (K = {target.modes})",
        "",
        f"Objective: {target.metric_name or 'test_l2'} (`test_l2`).",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [
        f"| {k} | {_fmt(v)} |"
        for k, v in target.metrics.items()
        if isinstance(v, (int, float, str)) or v is None
    ]
    if target.checkpoint:
        lines += ["", f"Checkpoint: `{target.checkpoint}` (also an artifact of the target)"]
    lines.append("")
    return lines


def _horizon_lines(horizon: Any) -> list[str]:
    """The epochs per trial and, for ``horizon="auto"``, the pilot's evidence, per epoch."""
    if not isinstance(horizon, dict) or "epochs" not in horizon:
        return []
    lines = [
        "### Training horizon",
        "",
        f"Each trial trained {horizon['epochs']} of {horizon.get('of', '?')} epochs "
        f"({horizon.get('mode', '?')}).",
    ]
    if horizon.get("mode") == "auto":
        lines[-1] += (
            f" Chosen by a pilot of random trials at full length (`{horizon.get('pilot_study')}`)"
            ": the shortest epoch from which the rank correlation with the final loss and the "
            "regret of the early leader hold their thresholds."
            + (f" ({horizon['reason']})" if horizon.get("reason") else "")
        )
        stats = horizon.get("stats") or []
        if stats:
            lines += ["", "| epoch | Spearman | Kendall | regret |", "|---|---|---|---|"]
            lines += [
                f"| {st['epoch']} | {_fmt(st['spearman'])} | {_fmt(st['kendall'])} | "
                f"{100 * st['regret']:.1f} % |"
                for st in stats
            ]
    return [*lines, ""]


def proxy_note(history: ProxyHistory, workflow: Workflow | None = None) -> str:
    """The Markdown note of a proxy study: the whole workflow in a few lines, then details.

    Parameters
    ----------
    history : ProxyHistory
        From :func:`transfer_tune.report.read_proxy_history`.
    workflow : Workflow, optional
        Links, sweeps and coord check of the storage (:func:`annotate_proxy_study` reads them).
    """
    workflow = workflow or Workflow()
    attrs = history.user_attrs
    counts = history.counts
    model = attrs.get("model", {}) or {}
    par = attrs.get("parametrization", {}) or {}
    problem = attrs.get("problem", {}) or {}
    lines = [
        f"## Proxy study `{history.study_name}`: the whole workflow",
        "",
        *_workflow_lines(history, workflow),
        "### Proxy search",
        "",
        f"Problem `{problem.get('name', '?')}`"
        + (f" at resolution {problem['resolution']}" if "resolution" in problem else "")
        + (f", {problem['n_train']} training samples" if "n_train" in problem else "")
        + f"; FNO K = {model.get('modes', '?')}, width {model.get('width', '?')}, "
        f"{model.get('n_layers', '?')} layers; parametrization "
        f"{display_name(par.get('kind', '?'))} with K_base = "
        f"{par.get('base_modes', '?')}; {attrs.get('epochs', '?')} epochs per trial.",
        "",
        f"Trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed, {counts['RUNNING']} running.",
        "",
    ]
    lines += _horizon_lines(attrs.get("horizon"))
    best = history.best
    target = history.target
    if best is not None:
        lines += [
            f"### Best proxy values (trial {best.number}, objective {_fmt(best.value)})",
            "",
            "| hyperparameter | value |",
            "|---|---|",
        ]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in best.params.items()]
        lines.append("")
    if target is not None:
        lines += _plan_lines(target)
    compute = dict(attrs.get("compute") or {})
    proxy_seconds = compute.get("proxy_seconds", history.seconds)
    target_seconds = compute.get(
        "target_seconds", target.metrics.get("seconds") if target else None
    )
    lines += ["### Compute", ""]
    text = f"Proxy search: {proxy_seconds:.1f} s (sum of trial durations)"
    if target_seconds:
        text += (
            f"; target run: {target_seconds:.1f} s; the search cost "
            f"{proxy_seconds / target_seconds:.2f}x the target run"
        )
    if "step_flop_ratio" in compute:
        text += (
            f"; one proxy training step costs {compute['step_flop_ratio']:.3f}x a target "
            "step (FLOP estimate)"
        )
    lines += [text + ".", ""]
    return "\n".join(lines)


def target_note(history: ProxyHistory, ids: dict[str, int] | None = None) -> str:
    """The Markdown note of the target study: its plan and result first, then the link back."""
    target = history.target
    if target is None:
        raise TransferTuneError(f"proxy study {history.study_name!r} has no target run")
    proxy = _link(history.study_name, ids)
    params = ", ".join(f"{k} {_fmt(v)}" for k, v in target.params.items())
    lines = [
        f"## Target run `{target.name}` (K = {target.modes}), transferred from proxy study {proxy}",
        "",
        f"Its trial ran with {params or 'the plan below'} (the trial's parameters; each "
        "group's rate is its user attribute `lr_<role>`). Figures: *target-curve* (validation "
        "loss per epoch beside the best proxy trial's), *plan*, *tuning-history*.",
        "",
        *_plan_lines(target),
        f"The whole workflow (what was tuned, the search, landscapes, coord check) is told on "
        f"proxy study {proxy}.",
        "",
    ]
    return "\n".join(lines)
