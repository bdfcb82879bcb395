"""optuna-dashboard integration: notes, figures and artifacts on our studies; launching it.

After a tuning run, a transfer, or a sweep, the functions here write what happened where
``optuna-dashboard`` shows it:

* a Markdown **note** on each study (:func:`optuna_dashboard.save_note`): best proxy values,
  the µP rescale table, the target result and the compute fraction for a proxy study; the
  optima, their shifts and the verdicts for a landscape sweep;
* **figures** that render inside the dashboard
  (:func:`optuna_dashboard.save_plotly_graph_object`): the tuning history, the landscape and
  the optimum-vs-K figure;
* **artifacts** in the file-system artifact store next to the storage
  (:func:`transfer_tune.search.storage.artifact_dir`): the figures as HTML (and PNG when a Chromium
  is available) and the target checkpoint.

:func:`serve` starts the dashboard on a storage with that artifact store, bound to
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta, upload_artifact

from pdes.checks import as_int
from transfer_tune.core.parametrization import display_name
from transfer_tune.errors import TransferTuneError
from transfer_tune.report.readers import ProxyHistory, open_study, read_proxy_history
from transfer_tune.search.storage import (
    artifact_dir,
    get_storage,
    normalize_url,
    redact_url,
    storage_file,
)

__all__ = [
    "annotate_all",
    "annotate_proxy_study",
    "annotate_sweep",
    "artifact_store",
    "dashboard_url",
    "proxy_note",
    "serve",
    "sweep_note",
    "upload_file",
]


def artifact_store(storage: str | os.PathLike | None) -> FileSystemArtifactStore:
    """The file-system artifact store next to ``storage`` (created if missing)."""
    folder = artifact_dir(normalize_url(storage))
    folder.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(folder))


def upload_file(
    study: optuna.Study,
    path: str | os.PathLike,
    store: FileSystemArtifactStore,
    replace: bool = True,
) -> str:
    """Upload ``path`` as an artifact of ``study``; return the artifact id.

    With ``replace``, a file uploaded earlier under the same name on the study is
    overwritten in place (same artifact id), so annotating twice does not pile up copies.
    """
    path = Path(path)
    if not path.is_file():
        raise TransferTuneError(f"cannot upload {path}: no such file")
    if replace:
        for meta in get_all_artifact_meta(study):
            if meta.filename == path.name:
                with path.open("rb") as f:
                    store.write(meta.artifact_id, f)
                return meta.artifact_id
    return upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study)


def _save_note(study: optuna.Study, body: str) -> None:
    from optuna_dashboard import save_note

    save_note(study, body)


def _save_graph(study: optuna.Study, fig: Any, graph_id: str) -> None:
    from optuna_dashboard import save_plotly_graph_object

    save_plotly_graph_object(study, fig, graph_object_id=graph_id)


def _export(
    figs: dict[str, Any], folder: Path, formats: Sequence[str]
) -> tuple[list[Path], list[str]]:
    from transfer_tune.report.export import save_figures

    saved = save_figures({folder / stem: fig for stem, fig in figs.items()}, formats=formats)
    files = [p for s in saved for p in s.files]
    warnings_ = list(dict.fromkeys(s.warning for s in saved if s.warning))
    return files, warnings_


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


# ---------------------------------------------------------------------------------------------
# Landscape sweeps
# ---------------------------------------------------------------------------------------------
def sweep_note(result: Any, analysis: Any, parametrization: str, modes: int) -> str:
    """The Markdown note of one study of a sweep: its own optimum, then the whole sweep."""
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
        f"`{_anchor_name(result)}`.",
    ]
    return "\n".join(lines)


def _anchor_name(result: Any) -> str:
    from transfer_tune.analysis.landscape import study_name

    kind = result.parametrizations[0]
    k = result.base_modes if result.base_modes in result.modes else result.modes[0]
    return study_name(result.name, kind, k)


def annotate_sweep(
    storage: str | os.PathLike | None,
    sweep_name: str,
    *,
    loss: str = "test_loss",
    param: str | None = None,
    figures: bool = True,
    artifacts: bool = True,
    image_formats: Sequence[str] = ("png",),
) -> Any:
    """Write notes, figures and artifacts on every study of a landscape sweep.

    Parameters
    ----------
    storage : str or path
        Storage URL.
    sweep_name : str
        The sweep (see :func:`transfer_tune.analysis.landscape.list_sweeps`).
    loss : str
        Loss of the optimum analysis (``"test_loss"``, ``"train_loss"``, ``"val_loss"``).
    param : str, optional
        For two-parameter sweeps, the parameter to analyse (the first by default).
    figures : bool
        Save the landscape (or heatmap) and optimum figures into every study of the sweep.
    artifacts : bool
        Upload the figures as HTML (and ``image_formats`` when a Chromium is available) to the
        sweep's first study at K_base.
    image_formats : sequence of str
        Static formats to try for the artifacts.

    Returns
    -------
    OptimumAnalysis
        The analysis written into the notes.
    """
    from transfer_tune.analysis.landscape import load_sweep, study_name
    from transfer_tune.analysis.optimum import analyze_optimum

    url = normalize_url(storage)
    result = load_sweep(url, sweep_name)
    analysis = analyze_optimum(result, param=param, loss=loss)
    store = get_storage(url)
    figs: dict[str, Any] = {}
    if figures or artifacts:
        from transfer_tune.report.figures import heatmap_figure, landscape_figure, optimum_figure

        figs["landscape"] = landscape_figure(result, loss=loss, param=param, analysis=analysis)
        figs["optimum"] = optimum_figure(analysis)
        if len(result.params) == 2:
            figs["heatmap"] = heatmap_figure(result, loss=loss)
    for kind in result.parametrizations:
        for k in result.modes:
            study = open_study(store, study_name(sweep_name, kind, k))
            _save_note(study, sweep_note(result, analysis, kind, k))
            if figures:
                for graph_id, fig in figs.items():
                    _save_graph(study, fig, graph_id)
    if artifacts:
        anchor = open_study(store, _anchor_name(result))
        files_store = artifact_store(url)
        with tempfile.TemporaryDirectory() as tmp:
            stems = {f"{sweep_name.replace('/', '_')}_{k}": f for k, f in figs.items()}
            files, warns = _export(stems, Path(tmp), image_formats)
            for path in files:
                upload_file(anchor, path, files_store)
        if warns:
            anchor.set_user_attr("figure_export", warns[0])
    return analysis


# ---------------------------------------------------------------------------------------------
# Proxy and target studies
# ---------------------------------------------------------------------------------------------
def proxy_note(history: ProxyHistory) -> str:
    """The Markdown note of a proxy study (and its transferred target, when there is one).

    Parameters
    ----------
    history : ProxyHistory
        From :func:`transfer_tune.report.readers.read_proxy_history`.
    """
    attrs = history.user_attrs
    counts = history.counts
    model = attrs.get("model", {}) or {}
    par = attrs.get("parametrization", {}) or {}
    problem = attrs.get("problem", {}) or {}
    lines = [
        f"## Proxy study `{history.study_name}`",
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
        plan = target.plan
        metrics = target.metrics
        lines += [
            f"### µP rescale table: K = {plan.get('base_modes', '?')} (proxy) -> "
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
                f"| {g.get('role')} | {g.get('init_multiplier', math.nan):.6f} | "
                f"{g.get('lr_multiplier', math.nan):.6f} | {g.get('lr', math.nan):.4e} |"
            )
        lines += [
            "",
            f"### Target run `{target.name}` (K = {target.modes})",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        lines += [
            f"| {k} | {_fmt(v)} |"
            for k, v in metrics.items()
            if isinstance(v, (int, float, str)) or v is None
        ]
        if target.checkpoint:
            lines += ["", f"Checkpoint: `{target.checkpoint}` (also an artifact of the target)"]
        lines.append("")
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


def annotate_proxy_study(
    storage: str | os.PathLike | None,
    proxy_study_name: str,
    *,
    figures: bool = True,
    artifacts: bool = True,
    image_formats: Sequence[str] = ("png",),
) -> str:
    """Write the note, the tuning-history figure and artifacts on a proxy study and its target.

    The proxy study gets a note (best values, µP rescale table, target result, compute) and
    the tuning-history figure; the target study (``target_study`` user attribute) gets the
    same note and figure, and its checkpoint and plan as artifacts.

    Returns
    -------
    str
        The Markdown note.
    """
    from transfer_tune.report.history import tuning_history_figure

    url = normalize_url(storage)
    store = get_storage(url)
    study = open_study(store, proxy_study_name)
    history = read_proxy_history(store, proxy_study_name)
    if history.user_attrs.get("kind") != "proxy":
        raise TransferTuneError(
            f"study {proxy_study_name!r} is not a proxy study (kind = "
            f"{history.user_attrs.get('kind')!r}); for sweeps use annotate_sweep"
        )
    target = history.target
    note = proxy_note(history)
    _save_note(study, note)
    target_study = open_study(store, target.name) if target else None
    if target_study is not None:
        _save_note(target_study, note.replace("## Proxy study", "## Target of proxy study", 1))
    fig = tuning_history_figure(history) if (figures or artifacts) else None
    if figures:
        _save_graph(study, fig, "tuning-history")
        if target_study is not None:
            _save_graph(target_study, fig, "tuning-history")
    if artifacts:
        files_store = artifact_store(url)
        with tempfile.TemporaryDirectory() as tmp:
            files, warns = _export({f"{proxy_study_name}_history": fig}, Path(tmp), image_formats)
            for path in files:
                upload_file(study, path, files_store)
            if target_study is not None:
                plan_path = Path(tmp) / f"{target.name}_plan.json"
                plan_path.write_text(json.dumps(target.plan, indent=2))
                upload_file(target_study, plan_path, files_store)
        if warns:
            study.set_user_attr("figure_export", warns[0])
        checkpoint = target.checkpoint if target else None
        if checkpoint:
            if Path(checkpoint).is_file():
                upload_file(target_study, checkpoint, files_store)
            else:
                target_study.set_user_attr(
                    "checkpoint_missing", f"{checkpoint} not found when annotating"
                )
    return note


def annotate_all(storage: str | os.PathLike | None, **kwargs: Any) -> dict[str, list[str]]:
    """Annotate every proxy study and every landscape sweep of ``storage``.

    Returns
    -------
    dict
        ``{"proxy": [study names], "landscape": [sweep names]}``.
    """
    from transfer_tune.analysis.landscape import list_sweeps

    url = normalize_url(storage)
    store = get_storage(url)
    proxies = [s.study_name for s in store.get_all_studies() if s.user_attrs.get("kind") == "proxy"]
    for name in proxies:
        annotate_proxy_study(url, name, **kwargs)
    sweeps = list_sweeps(url)
    for name in sweeps:
        annotate_sweep(url, name, **kwargs)
    return {"proxy": proxies, "landscape": sweeps}


# ---------------------------------------------------------------------------------------------
# Serving
# ---------------------------------------------------------------------------------------------
def dashboard_url(host: str = "127.0.0.1", port: int = 8080) -> str:
    """The URL the dashboard answers on."""
    shown = "127.0.0.1" if host == "0.0.0.0" else host  # the address to open it at
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/dashboard/"


def _check_bindable(host: Any, port: int) -> None:
    """Refuse an empty host (it would bind every interface) and a port that cannot be bound."""
    if not isinstance(host, str) or not host.strip():
        raise TransferTuneError(
            f"host must name an interface, got {host!r}: use 127.0.0.1 (this machine only, the "
            "default) or, knowing the dashboard has no authentication, 0.0.0.0"
        )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TransferTuneError(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise TransferTuneError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port "
                "(or stop what uses it)"
            ) from exc


def serve(
    storage: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int = 8080
) -> None:
    """Run optuna-dashboard on ``storage`` with its artifact store; blocks until stopped.

    Parameters
    ----------
    storage : str or path, optional
        Storage URL; the default storage if ``None``.
    host : str
        Interface to bind: 127.0.0.1 (this machine only) unless told otherwise. The
        dashboard has no authentication: binding another interface exposes every study.
    port : int
        TCP port.

    Raises
    ------
    TransferTuneError
        When the storage file does not exist, the host is empty or cannot be resolved, or
        the port is invalid or already in use.
    """
    from optuna_dashboard import run_server

    url = normalize_url(storage)
    path = storage_file(url)
    if path is not None and not path.exists():
        raise TransferTuneError(
            f"no storage at {path}; run a study first (transfer-tune tune / landscape) or "
            "pass the storage that holds your studies"
        )
    port = as_int(port, "port", minimum=1, maximum=65535)
    _check_bindable(host, port)
    store = artifact_store(url)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: binding {host}: the dashboard has no authentication and anyone who "
            "can reach this port sees (and can edit) every study",
            flush=True,
        )
    print(
        f"optuna-dashboard listening on {host}:{port}, open {dashboard_url(host, port)} "
        f"(storage {redact_url(url)}, artifacts {artifact_dir(url)}); Ctrl-C stops it",
        flush=True,
    )
    run_server(get_storage(url), host=host, port=port, artifact_store=store)
