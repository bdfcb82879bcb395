"""Sweeps described by a study spec's ``[landscape]`` table (``transfer-tune landscape SPEC``).

The spec is parsed and its keys checked by :mod:`transfer_tune.search.spec` (the one parser,
shared with ``transfer-tune run``); this module only expands the value grids.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from transfer_tune.analysis.landscape.config import as_params, values_from_spec
from transfer_tune.analysis.landscape.results import SweepResult
from transfer_tune.analysis.landscape.runner import sweep
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.spec import StudySpec, parse_spec


def sweep_kwargs_from_spec(
    spec: StudySpec | Mapping[str, Any],
    storage: str | os.PathLike | None = None,
    n_jobs: int = 1,
) -> dict[str, Any]:
    """Validate a spec and return the keyword arguments of :func:`sweep` it describes.

    Nothing runs and no data is generated; see :func:`sweep_from_spec` for the format.

    Raises
    ------
    TransferTuneError
        On a malformed spec, with the fix in the message.
    """
    if not isinstance(spec, StudySpec):
        if not isinstance(spec, Mapping):
            raise TransferTuneError(
                f"a spec must be a table of tables ([problem], [landscape], ...), got {spec!r}"
            )
        if "landscape" not in spec:
            raise TransferTuneError(
                "the spec has no [landscape] table; it needs at least [landscape] "
                "modes = [...] and a [problem] name"
            )
        spec = parse_spec(dict(spec))
    kwargs = spec.sweep_kwargs(storage, n_jobs)
    params = as_params(kwargs["param"])
    raw = kwargs["values"]
    if raw is None:
        values: Any = None
    elif len(params) == 1:
        if isinstance(raw, Mapping) and params[0] in raw:
            raw = raw[params[0]]
        values = values_from_spec(params[0], raw)
    else:
        if not isinstance(raw, Mapping):
            raise TransferTuneError(
                f"a two-parameter sweep needs [landscape.values] with an entry per parameter "
                f"({', '.join(params)})"
            )
        values = {p: values_from_spec(p, v) for p, v in raw.items()}
    kwargs["param"] = params if len(params) > 1 else params[0]
    kwargs["values"] = values
    return kwargs


def sweep_from_spec(
    spec: StudySpec | Mapping[str, Any],
    storage: str | os.PathLike | None = None,
    n_jobs: int = 1,
    progress: bool = True,
) -> SweepResult:
    """Run the sweep described by a study spec (``transfer-tune landscape SPEC``).

    The spec::

        [problem]                 # get_problem(name, **the other keys)
        name = "burgers"
        n_train = 200
        resolution = 128

        [model]                   # width, n_layers (projection_width, grid_features);
        width = 32                # proxy_modes, if given, is the default K_base
        n_layers = 4

        [train]                   # optional: fixed training settings (schedule, clip, ...)

        [landscape]
        modes = [4, 8, 16, 32]
        param = "lr"              # or ["lr", "batch_size"]
        values = { low = 1e-4, high = 1e-1, num = 13 }   # or a list
        # two parameters: [landscape.values] with one entry (list or table) per parameter
        parametrizations = ["mup", "sp"]
        seeds = [0, 1, 2]
        epochs = 20
        # optional: base_modes, name, device, storage, n_jobs,
        # [landscape.hparams] (fixed hyperparameters, e.g. batch_size = 20; over [train])

    Other tables of a study spec (``[tune]``, ``[target]``, ``[search_space]``) are checked
    but not used, except ``[tune] storage``, the storage when neither ``storage`` nor
    ``[landscape] storage`` is given.

    Parameters
    ----------
    spec : StudySpec or mapping
        A spec from :func:`transfer_tune.load_spec`, or the parsed TOML document.
    storage : str or path, optional
        Overrides ``[landscape] storage`` (and ``[tune] storage``); the default storage if
        none is given.
    n_jobs : int
        Worker processes (overrides ``landscape.n_jobs`` when not 1).
    progress : bool
        Show a progress bar.

    Returns
    -------
    SweepResult
    """
    return sweep(**sweep_kwargs_from_spec(spec, storage, n_jobs), progress=progress)
