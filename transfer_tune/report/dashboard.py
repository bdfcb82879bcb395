"""optuna-dashboard integration: notes, figures and artifacts on our studies; launching it.

After a tuning run, a transfer, or a sweep, the functions here write what happened where
``optuna-dashboard`` shows it:

* a Markdown **note** on each study (:func:`optuna_dashboard.save_note`; the text is built by
  :mod:`transfer_tune.report.notes`). The proxy study's
  note tells the whole workflow in a few lines (what was tuned, what was transferred with
  which multipliers, what the target reached, the landscapes and the coord check of the
  storage), then the details; the target's note starts with its µP plan and result; every
  target and landscape note links back to the proxy study, by name;
* **figures** that render inside the dashboard
  (:func:`optuna_dashboard.save_plotly_graph_object`), sized for its cards
  (:func:`transfer_tune.report.style.for_card`): the tuning history, the target's curve and
  µP plan, the landscapes, the optimum-vs-K figures and the coord check;
* **artifacts** in the file-system artifact store next to the storage
  (:func:`transfer_tune.search.storage.artifact_dir`): the figures as HTML (and PNG when a Chromium
  is available) and the target checkpoint.

:func:`serve` starts the dashboard on a storage with that artifact store, bound to
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta, upload_artifact

from pdes.checks import as_int
from transfer_tune.errors import TransferTuneError
from transfer_tune.report.notes import (
    Workflow,
    anchor_name,
    proxy_note,
    sweep_note,
    target_note,
    with_workflow_link,
)
from transfer_tune.report.readers import (
    ProxyHistory,
    read_proxy_history,
    study_ids,
)
from transfer_tune.search.storage import (
    artifact_dir,
    get_storage,
    normalize_url,
    redact_url,
    safe_filename,
    storage_file,
)
from transfer_tune.search.studies import open_study

__all__ = [
    "annotate_all",
    "annotate_proxy_study",
    "annotate_sweep",
    "artifact_store",
    "dashboard_url",
    "serve",
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

    from transfer_tune.report.style import for_card

    graph_id = re.sub(r"[^A-Za-z0-9_.:-]", "_", graph_id)  # an HTML id, as the dashboard needs
    save_plotly_graph_object(study, for_card(fig), graph_object_id=graph_id)


def _export(
    figs: dict[str, Any], folder: Path, formats: Sequence[str]
) -> tuple[list[Path], list[str]]:
    from transfer_tune.report.export import save_figures

    saved = save_figures({folder / stem: fig for stem, fig in figs.items()}, formats=formats)
    files = [p for s in saved for p in s.files]
    warnings_ = list(dict.fromkeys(s.warning for s in saved if s.warning))
    return files, warnings_


# ---------------------------------------------------------------------------------------------
# Landscape sweeps
# ---------------------------------------------------------------------------------------------
def _proxies_of(store: Any, problem: str | None) -> list[str]:
    """The proxy studies of the storage: those on ``problem`` if any, else all of them."""
    found = [
        (s.study_name, (s.user_attrs.get("problem") or {}).get("name"))
        for s in store.get_all_studies()
        if s.user_attrs.get("kind") == "proxy"
    ]
    same = [name for name, prob in found if prob == problem]
    return same or [name for name, _ in found]


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
        The sweep (see :func:`transfer_tune.list_sweeps`).
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
    ids = study_ids(store)
    proxies = _proxies_of(store, (result.config.get("problem") or {}).get("name"))
    figs: dict[str, Any] = {}
    if figures or artifacts:
        from transfer_tune.report.figures import heatmap_figure, landscape_figure, optimum_figure

        figs["landscape"] = landscape_figure(result, loss=loss, param=param, analysis=analysis)
        figs["optimum"] = optimum_figure(analysis)
        if len(result.params) == 2:
            figs["heatmap"] = heatmap_figure(result, loss=loss)
    for kind in result.parametrizations:
        for k in result.modes:
            study = open_study(study_name(sweep_name, kind, k), store)
            _save_note(study, sweep_note(result, analysis, kind, k, proxies, ids))
            if figures:
                for graph_id, fig in figs.items():
                    _save_graph(study, fig, graph_id)
    if artifacts:
        anchor = open_study(anchor_name(result), store)
        files_store = artifact_store(url)
        with tempfile.TemporaryDirectory() as tmp:
            stems = {safe_filename(f"{sweep_name}_{k}"): f for k, f in figs.items()}
            files, warns = _export(stems, Path(tmp), image_formats)
            for path in files:
                upload_file(anchor, path, files_store)
        if warns:
            anchor.set_user_attr("figure_export", warns[0])
    return analysis


# ---------------------------------------------------------------------------------------------
# Proxy and target studies
# ---------------------------------------------------------------------------------------------
def _read_workflow(url: str, store: Any, history: ProxyHistory) -> tuple[Workflow, dict]:
    """The storage's sweeps and newest coord check, and their figures ``{graph id: fig}``."""
    from transfer_tune.analysis.landscape import list_sweeps, load_sweep
    from transfer_tune.analysis.optimum import analyze_optimum
    from transfer_tune.report.figures import landscape_figure, optimum_figure

    workflow = Workflow(ids=study_ids(store))
    figs: dict[str, Any] = {}
    problem = (history.user_attrs.get("problem") or {}).get("name")
    for name in list_sweeps(url):
        result = load_sweep(url, name)
        prob = (result.config.get("problem") or {}).get("name", "?")
        try:
            analysis = analyze_optimum(result)
        except TransferTuneError:  # e.g. one K only: no optimum to compare
            analysis = None
        workflow.sweeps.append(
            (name, anchor_name(result), prob, analysis.lines() if analysis else [])
        )
        if len(figs) < 6 and (prob == problem or len(workflow.sweeps) <= 3):
            try:
                figs[f"landscape-{name}"] = landscape_figure(result, analysis=analysis)
                if analysis is not None:
                    figs[f"optimum-{name}"] = optimum_figure(analysis)
            except TransferTuneError:  # a sweep its figures cannot draw: its note still tells
                pass
    folder = storage_file(url)
    found = sorted(
        (folder.parent / "coord_check").glob("*/coord_check.json") if folder else [],
        key=lambda p: p.stat().st_mtime,
    )
    if found:
        from transfer_tune.analysis.coord_result import CoordCheckResult
        from transfer_tune.report.coord_check_figure import coord_check_figure

        try:
            coord = CoordCheckResult.from_dict(json.loads(found[-1].read_text()))
        except (OSError, ValueError, KeyError, TypeError, TransferTuneError) as exc:
            workflow.coord_check = (str(found[-1]), [f"unreadable ({exc})"])
        else:
            verdict = coord.summary().splitlines()[-1]  # "verdict (spectral layers, ...): ..."
            workflow.coord_check = (str(found[-1]), [verdict])
            figs["coord-check"] = coord_check_figure(coord)
    return workflow, figs


def _link_sweeps_back(url: str, store: Any, proxy: str, ids: dict[str, int]) -> None:
    """Put the link back to ``proxy`` under the title of every sweep note that should have it.

    A sweep annotated before its proxy study existed has no link yet; the rest of its note
    (written with the loss its annotator chose) is kept as it is.
    """
    from optuna_dashboard import get_note

    from transfer_tune.analysis.landscape import list_sweeps, load_sweep, study_name

    for name in list_sweeps(url):
        result = load_sweep(url, name)
        proxies = _proxies_of(store, (result.config.get("problem") or {}).get("name"))
        if proxy not in proxies:
            continue
        for kind in result.parametrizations:
            for k in result.modes:
                study = open_study(study_name(name, kind, k), store)
                note = get_note(study)
                if note.strip():
                    linked = with_workflow_link(note, proxies, ids)
                    if linked != note:
                        _save_note(study, linked)


def annotate_proxy_study(
    storage: str | os.PathLike | None,
    proxy_study_name: str,
    *,
    figures: bool = True,
    artifacts: bool = True,
    image_formats: Sequence[str] = ("png",),
) -> str:
    """Write the notes, figures and artifacts of a proxy study and its target.

    The proxy study gets the workflow note (:func:`proxy_note`: what was tuned, the
    multipliers, what the target reached, the storage's landscapes and coord check, then the
    details) and the figures: tuning history, the target's curve and µP plan, the landscapes
    and optimum-vs-K figures of the storage's sweeps, the coord check. The target study
    (``target_study`` user attribute) gets its own note (:func:`target_note`: plan and result
    first, a link back), the curve, plan and history figures, and its checkpoint and plan as
    artifacts.

    Returns
    -------
    str
        The proxy study's Markdown note.
    """
    from transfer_tune.report.history import (
        plan_figure,
        target_curve_figure,
        tuning_history_figure,
    )

    url = normalize_url(storage)
    store = get_storage(url)
    study = open_study(proxy_study_name, store)
    history = read_proxy_history(store, proxy_study_name)
    if history.user_attrs.get("kind") != "proxy":
        raise TransferTuneError(
            f"study {proxy_study_name!r} is not a proxy study (kind = "
            f"{history.user_attrs.get('kind')!r}); for sweeps use annotate_sweep"
        )
    workflow, extra = _read_workflow(url, store, history)
    _link_sweeps_back(url, store, proxy_study_name, workflow.ids)
    target = history.target
    note = proxy_note(history, workflow)
    _save_note(study, note)
    target_study = open_study(target.name, store) if target else None
    if target_study is not None:
        _save_note(target_study, target_note(history, workflow.ids))
    own = {"tuning-history": tuning_history_figure(history)}
    if target is not None:
        own |= {"target-curve": target_curve_figure(history), "plan": plan_figure(history)}
    if figures:
        for graph_id, fig in {**own, **extra}.items():
            _save_graph(study, fig, graph_id)
        if target_study is not None:
            for graph_id, fig in own.items():
                _save_graph(target_study, fig, graph_id)
    if artifacts:
        files_store = artifact_store(url)
        with tempfile.TemporaryDirectory() as tmp:
            stems = {safe_filename(f"{proxy_study_name}_history"): own["tuning-history"]}
            if "coord-check" in extra:
                stems[safe_filename(f"{proxy_study_name}_coord_check")] = extra["coord-check"]
            files, warns = _export(stems, Path(tmp), image_formats)
            for path in files:
                upload_file(study, path, files_store)
            if target_study is not None:
                curve = {safe_filename(f"{target.name}_curve"): own["target-curve"]}
                for path in _export(curve, Path(tmp), ())[0]:
                    upload_file(target_study, path, files_store)
                plan_path = Path(tmp) / safe_filename(f"{target.name}_plan", ".json")
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
    folder = artifact_dir(url)
    # a read-only snapshot without artifacts is still shown (without them)
    store = artifact_store(url) if folder.is_dir() or _writable_parent(folder) else None
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
    run_server(get_storage(url, read_only=True), host=host, port=port, artifact_store=store)


def _writable_parent(folder: Path) -> bool:
    """Whether ``folder``'s parent exists and takes new entries."""
    return folder.parent.is_dir() and os.access(folder.parent, os.W_OK)
