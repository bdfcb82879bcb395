"""Problem registry: named PDE problems, and the one place that builds a :class:`Problem`.

``get_problem(name, **overrides)`` returns a :class:`~pdes.problem.Problem`. Generated
problems ("burgers", "darcy", "navier_stokes") call their solver module once per split and
cache the result on disk (:mod:`pdes.cache`); "file" reads pairs from a file the user already
has (:mod:`pdes.file_problem`). ``load_problem`` turns a name, a stored config dict or a
Problem (plus overrides) into a Problem. See :mod:`pdes.problem` for seeds and normalisation.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from pdes.budget import check_problem_memory
from pdes.cache import canonical_json
from pdes.checks import as_int
from pdes.errors import TransferTuneError
from pdes.file_problem import check_sizes, eval_grid, file_params, inspect_files
from pdes.problem import Problem
from pdes.spec import ProblemSpec

__all__ = [
    "canonical_name",
    "get_problem",
    "list_problems",
    "load_problem",
    "register_problem",
]

#: Default split sizes of every problem.
DEFAULT_SIZES: dict[str, int] = {"n_train": 1000, "n_val": 100, "n_test": 200}

_COMMON = ("resolution", "n_train", "n_val", "n_test", "seed", "cache_dir", "n_jobs", "progress")
_RESERVED = frozenset(("name", "normalizer_from", *_COMMON))


@dataclass
class _Entry:
    target: ProblemSpec | ModuleType | str
    default_resolution: int | None
    spec: ProblemSpec | None = field(default=None)


_REGISTRY: dict[str, _Entry] = {}
_ALIASES: dict[str, str] = {}
_LOCK = threading.Lock()


def _normalize_name(name: str) -> str:
    return name.strip().lower()


def register_problem(
    name: str,
    module_or_spec: ProblemSpec | ModuleType | str,
    *,
    default_resolution: int | None = None,
    aliases: Iterable[str] = (),
    replace: bool = False,
) -> None:
    """Register a generated PDE problem under ``name``.

    Parameters
    ----------
    name : str
        Canonical name (case-insensitive).
    module_or_spec : ProblemSpec, module or str
        A :class:`ProblemSpec`, a solver module (see :meth:`ProblemSpec.from_module`), or the
        dotted import path of one (imported on first use).
    default_resolution : int, optional
        Preferred resolution for modules (overrides their ``DEFAULT_RESOLUTION``).
    aliases : iterable of str
        Other accepted names.
    replace : bool, default False
        Allow replacing an existing registration of ``name``.

    Raises
    ------
    TransferTuneError
        If the name (or an alias) is taken and ``replace`` is false, or is ``"file"``.
    """
    key = _normalize_name(name)
    names = [key, *(_normalize_name(a) for a in aliases)]
    with _LOCK:
        for n in names:
            if n == "file":
                raise TransferTuneError('"file" is reserved for user files; pick another name.')
            taken = n in _REGISTRY or n in _ALIASES
            owner = _ALIASES.get(n, n)
            if taken and not (replace and owner == key):
                raise TransferTuneError(
                    f"problem name {n!r} is already registered; pass replace=True to "
                    "register_problem to replace it, or choose another name."
                )
        if isinstance(module_or_spec, ProblemSpec):
            bad = _RESERVED & set(module_or_spec.defaults)
            if bad:
                raise TransferTuneError(
                    f"problem {name!r}: solver parameter names {sorted(bad)} clash with "
                    f"Problem options {sorted(_RESERVED)}; rename them."
                )
        _REGISTRY[key] = _Entry(module_or_spec, default_resolution)
        for a in names[1:]:
            _ALIASES[a] = key


def list_problems() -> list[str]:
    """Return the canonical names of all problems (generated ones and ``"file"``), sorted."""
    with _LOCK:
        return sorted([*_REGISTRY, "file"])


def canonical_name(name: str) -> str:
    """The canonical registered name of ``name`` (case-insensitive, aliases resolved).

    Raises
    ------
    TransferTuneError
        For an unknown name; the message lists the problems and aliases.
    """
    if not isinstance(name, str):
        raise TransferTuneError(f"problem name must be a string, got {name!r}.")
    key = _normalize_name(name)
    key = _ALIASES.get(key, key)
    if key != "file" and key not in _REGISTRY:
        aliases = ", ".join(f"{a} -> {t}" for a, t in sorted(_ALIASES.items()))
        raise TransferTuneError(
            f"unknown problem {name!r}; available problems: {', '.join(list_problems())}"
            + (f" (aliases: {aliases})" if aliases else "")
            + ". Register others with pdes.register_problem."
        )
    return key


def _spec(key: str) -> ProblemSpec:
    entry = _REGISTRY[key]
    if entry.spec is None:
        target = entry.target
        if isinstance(target, str):
            target = importlib.import_module(target)
        if isinstance(target, ProblemSpec):
            spec = target
        else:
            spec = ProblemSpec.from_module(key, target, entry.default_resolution)
        bad = _RESERVED & set(spec.defaults)
        if bad:
            raise TransferTuneError(
                f"problem {key!r}: solver parameter names {sorted(bad)} clash with Problem "
                f"options {sorted(_RESERVED)}; rename them."
            )
        entry.spec = spec
    return entry.spec


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def _coerce_param(name: str, value: Any, default: Any, problem: str) -> Any:
    """Coerce an override to the type of its default (int -> float etc.); JSON-able result."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, tuple):
        value = list(value)
    bad = TransferTuneError(
        f"{problem} parameter {name}={value!r} has type {type(value).__name__}, but its "
        f"default {default!r} is a {type(default).__name__}; pass a value of that type."
    )
    if default is None:
        pass
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad
    elif isinstance(default, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise bad
    elif isinstance(default, (list, tuple)) and not isinstance(value, list):
        raise bad
    canonical_json({name: value})  # raises TransferTuneError if not JSON-able / not finite
    return json.loads(json.dumps(value))


def _default_resolution(spec: ProblemSpec, params: Mapping[str, Any]) -> int:
    """The resolution ``check_resolution`` accepts that is nearest the preferred one."""
    pref = spec.default_resolution
    for delta in range(0, 4 * pref):
        for res in (pref,) if delta == 0 else (pref - delta, pref + delta):
            if res < 2:
                continue
            try:
                spec.check_resolution(res, **params)
            except (TransferTuneError, ValueError):
                continue
            return res
    raise TransferTuneError(
        f"{spec.name}: no resolution near {pref} is allowed for these parameters; pass "
        "resolution= explicitly."
    )


# --------------------------------------------------------------------------------------------
# get_problem, load_problem
# --------------------------------------------------------------------------------------------


def _common_options(overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(DEFAULT_SIZES)
    out.update(seed=0, cache_dir=None, n_jobs=-1, progress=False)
    for key in ("n_train", "n_val", "n_test", "seed", "cache_dir", "n_jobs", "progress"):
        if key in overrides:
            out[key] = overrides.pop(key)
    out["n_train"] = as_int(out["n_train"], "n_train", minimum=1)
    out["n_val"] = as_int(out["n_val"], "n_val", minimum=0)
    out["n_test"] = as_int(out["n_test"], "n_test", minimum=0)
    out["seed"] = as_int(out["seed"], "seed", minimum=0)
    n_jobs = out["n_jobs"]
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise TransferTuneError(f"n_jobs must be a nonzero int (-1: all cores), got {n_jobs!r}.")
    out["n_jobs"] = int(n_jobs)
    if not isinstance(out["progress"], bool):
        raise TransferTuneError(f"progress must be True or False, got {out['progress']!r}.")
    cd = out["cache_dir"]
    if cd is not None and not isinstance(cd, (str, os.PathLike)):
        raise TransferTuneError(f"cache_dir must be a path or None, got {cd!r}.")
    out["cache_dir"] = None if cd is None else os.fspath(cd)
    return out


def _normalizer_from(overrides: dict[str, Any], key: str) -> dict[str, Any] | None:
    nf = overrides.pop("normalizer_from", None)
    if nf is None:
        return None
    if not isinstance(nf, Mapping) or "name" not in nf:
        raise TransferTuneError(
            "normalizer_from must be a problem config dict (Problem.config()) with a 'name'."
        )
    if canonical_name(nf["name"]) != key:
        raise TransferTuneError(
            f"normalizer_from names problem {nf['name']!r} but this problem is {key!r}; the "
            "statistics must come from the same problem."
        )
    return json.loads(canonical_json(nf))


def _file_problem(overrides: dict[str, Any]) -> Problem:
    """A file problem: options checked and every file's header read here, before training."""
    nf = _normalizer_from(overrides, "file")
    resolution = overrides.pop("resolution", None)
    metadata = overrides.pop("metadata", None)
    given = check_sizes({k: overrides.pop(k, None) for k in ("n_train", "n_val", "n_test")})
    common = _common_options(overrides)
    params = file_params(overrides, (*_COMMON[1:], "metadata"))
    layout = inspect_files(params, given)
    common.update({f"n_{split}": n for split, n in layout.sizes.items()})
    if resolution is not None:
        resolution = eval_grid(layout, resolution, "resolution")
        resolution = None if resolution == layout.grid[0] else int(resolution)
    if metadata is not None and json.loads(canonical_json({"m": metadata}))["m"] != (
        layout.main.scalars
    ):
        raise TransferTuneError(
            f"{layout.main.path} now holds the metadata {layout.main.scalars}, not the "
            f"{metadata} recorded with this problem: the file changed since; restore it or "
            "start a new study."
        )
    return Problem(
        "file",
        spec=None,
        params=params,
        resolution=resolution,
        normalizer_from=nf,
        layout=layout,
        **common,
        **_BUILDERS,
    )


def _fit_fine_grid(spec: ProblemSpec, resolution: int, params: dict, given: set[str]) -> None:
    """Check ``resolution``; if the default solver grid cannot give it, choose one that can.

    Only parameters the user did not set are chosen (the solver module's ``fine_grid_for``);
    they show in the problem's description. A grid the user set keeps the explicit error.
    """
    try:
        spec.check_resolution(resolution, **params)
    except TransferTuneError:
        if spec.fine_grid_for is None:
            raise
        chosen = spec.fine_grid_for(resolution, params)
        if not chosen or set(chosen) & given:
            raise
        spec.check_resolution(resolution, **{**params, **chosen})
        params.update(chosen)


def get_problem(name: str, **overrides: Any) -> Problem:
    """Return a :class:`Problem` by name, with options and solver parameters overridden.

    Parameters
    ----------
    name : str
        ``"burgers"``, ``"darcy"``, ``"navier_stokes"`` (also ``"navier-stokes"``, ``"ns"``),
        any registered problem, or ``"file"`` for a user file.
    **overrides
        Options: ``n_train`` (default 1000), ``n_val`` (100), ``n_test`` (200), ``seed`` (0),
        ``resolution`` (per problem: burgers 1024, darcy the allowed value nearest 64,
        navier_stokes 64), ``cache_dir`` (see :func:`pdes.cache.resolve_cache_dir`),
        ``n_jobs`` (-1: all cores), ``progress`` (False), ``normalizer_from`` (a problem
        config whose train split gives the normaliser statistics; set by
        :meth:`Problem.with_overrides`).
        Any solver parameter (its module's ``DEFAULTS``). For ``"file"``: ``path``
        (required), ``test_path`` (a test file on the training grid, or a finer one),
        ``fine_test_path`` (a test file on a finer grid: the super-resolution test set),
        ``x_key``, ``y_key``, ``format``, ``dim``, ``subsample``, ``x_time``, ``y_time``
        (an int step, ``"first"``, ``"last"`` or ``"channels"``; see
        :func:`pdes.loaders.load_pairs`), ``label`` (a name shown in the summary). Its
        samples are split in order: train first, then val, then test; sizes not given are
        fractions of the file (train 80 %, val 10 %, test 10 %; with a training-grid test
        file train 90 %, val 10 % and the whole test file), see :mod:`pdes.file_problem`.
        ``resolution`` only selects the finer test file (its first-axis size) as the test
        split. The files are inspected here, so bad keys, shapes or sizes fail at once.

    Returns
    -------
    Problem
        Nothing is generated or loaded until a dataset (or a data-derived attribute) is used.

    Raises
    ------
    TransferTuneError
        For an unknown problem (the message lists them), an unknown option or parameter (the
        message lists the valid ones), a value of the wrong type, or a resolution the solver
        does not allow.
    """
    key = canonical_name(name)
    overrides = dict(overrides)
    if key == "file":
        return _file_problem(overrides)
    spec = _spec(key)
    nf = _normalizer_from(overrides, key)
    resolution = overrides.pop("resolution", None)
    common = _common_options(overrides)
    unknown = sorted(set(overrides) - set(spec.defaults))
    if unknown:
        raise TransferTuneError(
            f"unknown option(s) {unknown} for problem {key!r}; valid options: "
            f"{', '.join(_COMMON)}; solver parameters: "
            f"{', '.join(sorted(spec.defaults)) or '(none)'}."
        )
    params = json.loads(json.dumps(dict(spec.defaults)))
    for k, v in overrides.items():
        params[k] = _coerce_param(k, v, spec.defaults[k], key)
    if resolution is None:
        resolution = _default_resolution(spec, params)
    else:
        resolution = as_int(resolution, "resolution", minimum=2)
        _fit_fine_grid(spec, resolution, params, given=set(overrides))
    problem = Problem(
        key,
        spec=spec,
        params=params,
        resolution=resolution,
        normalizer_from=nf,
        **common,
        **_BUILDERS,
    )
    check_problem_memory(problem)  # before anything is generated: no 8 TiB traceback
    return problem


register_problem("burgers", "pdes.burgers", default_resolution=1024)
register_problem(
    "burgers_time",
    "pdes.burgers_time",
    default_resolution=64,
    aliases=("burgers-time", "burgers_spacetime"),
)
register_problem("darcy", "pdes.darcy", default_resolution=64)
register_problem(
    "navier_stokes", "pdes.navier_stokes", default_resolution=64, aliases=("navier-stokes", "ns")
)


def load_problem(problem: Any, overrides: Mapping[str, Any] | None = None) -> Problem:
    """A :class:`Problem` from a name, a ``Problem.config()`` dict or a Problem, plus overrides.

    The one place that turns what a user or a stored study says about a problem into a
    :class:`Problem`; the search, transfer and landscape code all call it.

    Parameters
    ----------
    problem : str, dict or Problem
        A name for :func:`get_problem`, a config dict with a ``"name"`` key (as stored in a
        study's user attributes), or a Problem.
    overrides : mapping, optional
        Options and solver parameters laid over it (see :func:`get_problem`).

    Raises
    ------
    TransferTuneError
        For anything else, a dict without ``"name"`` or overrides that are not a mapping.
    """
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TransferTuneError(
            f"problem overrides must be a mapping of option -> value, got {overrides!r}"
        )
    overrides = dict(overrides or {})
    if isinstance(problem, Problem):
        return problem.with_overrides(**overrides) if overrides else problem
    if isinstance(problem, Mapping):
        if "name" not in problem:
            raise TransferTuneError(
                f"a problem dict needs a 'name' key (e.g. {{'name': 'burgers', ...}}), got "
                f"keys {sorted(map(str, problem))}"
            )
        return get_problem(**{**problem, **overrides})
    if not isinstance(problem, str):
        raise TransferTuneError(
            f"problem must be a name such as 'burgers', a problem config dict or a "
            f"pdes.Problem, got {type(problem).__name__}"
        )
    return get_problem(problem, **overrides)


#: What a :class:`Problem` rebuilds problems with (``with_overrides``, ``normalizer_from``,
#: unpickling): the registry hands these to every Problem it builds, so :mod:`pdes.problem`
#: does not import this module.
_BUILDERS: dict[str, Callable[..., Any]] = {
    "rebuild": load_problem,
    "canonical_name": canonical_name,
}
