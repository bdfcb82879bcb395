"""Reading sweeps back from the storage alone: :func:`list_sweeps` and :func:`load_sweep`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from optuna.storages import BaseStorage

from transfer_tune.analysis.landscape.config import KIND
from transfer_tune.analysis.landscape.results import (
    LandscapeRow,
    SweepResult,
    rows_from_study,
    sort_rows,
)
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.storage import get_storage, normalize_url, redact_url
from transfer_tune.search.studies import open_study


def sweep_studies(storage: BaseStorage, name: str | None = None) -> list[Any]:
    """The landscape studies (``FrozenStudy``) of sweep ``name`` (of every sweep), oldest first."""
    studies = [
        s
        for s in storage.get_all_studies()
        if s.user_attrs.get("kind") == KIND and (name is None or s.user_attrs.get("sweep") == name)
    ]
    return sorted(studies, key=lambda s: storage.get_study_id_from_name(s.study_name))


def list_sweeps(storage: str | os.PathLike | None = None) -> list[str]:
    """Names of the sweeps held in ``storage``, in order of creation."""
    names: list[str] = []
    for s in sweep_studies(get_storage(storage)):
        if s.user_attrs["sweep"] not in names:
            names.append(s.user_attrs["sweep"])
    return names


def load_sweep(
    storage: str | os.PathLike | None,
    sweep_name: str,
    parametrizations: Sequence[str] | None = None,
    modes: Sequence[int] | None = None,
) -> SweepResult:
    """Rebuild the tidy result of a sweep from the storage alone.

    Parameters
    ----------
    storage : str or path
        Storage URL (see :mod:`transfer_tune.search.storage`).
    sweep_name : str
        Name of the sweep (see :func:`list_sweeps`).
    parametrizations, modes : sequence, optional
        Keep only these; every study of the sweep by default.

    Returns
    -------
    SweepResult
        Unfinished grid points are absent (see :attr:`SweepResult.complete`).
    """
    url = normalize_url(storage)
    store = get_storage(url)
    studies = sweep_studies(store, sweep_name)
    if not studies:
        known = list_sweeps(url)
        raise TransferTuneError(
            f"no sweep named {sweep_name!r} in {redact_url(url)}; "
            + (f"sweeps there: {', '.join(known)}" if known else "it holds no sweep")
        )
    config = dict(studies[0].user_attrs["sweep_config"])
    selected = []
    for s in studies:
        kind = s.user_attrs["parametrization"]["kind"]
        k = int(s.user_attrs["modes"])
        if parametrizations is not None and kind not in parametrizations:
            continue
        if modes is not None and k not in modes:
            continue
        selected.append((s, kind, k))
    order = list(parametrizations) if parametrizations is not None else []
    for s in studies:
        for kind in s.user_attrs["sweep_config"]["parametrizations"]:
            if kind not in order:
                order.append(kind)
    present = {kind for _, kind, _ in selected}
    config["parametrizations"] = [k for k in order if k in present]
    config["modes"] = sorted({k for _, _, k in selected})
    params = list(config["params"])
    rows: list[LandscapeRow] = []
    for s, kind, k in selected:
        study = open_study(s.study_name, store)
        rows.extend(rows_from_study(study, kind, k, params).values())
    return SweepResult(name=sweep_name, config=config, rows=sort_rows(rows, config), storage=url)
