"""Which model the workflow trains: ``"fno"``, ``"neuralop"`` or your factory, as plain data.

The proxy study stores the model as a config dict (its user attribute ``model``) so that a
worker or ``transfer`` in another process rebuilds the same model at any K:

* ``"fno"``: transfer-tune's FNO; the config is ``FNO.config()`` (no ``kind`` key, as in
  studies written before other kinds existed);
* ``"neuralop"``: neuraloperator 2.0's ``neuralop.models.FNO`` with its default options,
  ``hidden_channels = width`` and ``n_modes = (2K - 2,) * d``
  (:func:`transfer_tune.core.adapters.neuralop_n_modes`); the optional extra
  ``pip install "transfer-tune[neuralop]"`` installs it;
* a factory: a module-level function (or class) called with the keyword arguments ``dim``,
  ``modes`` (K in transfer-tune's convention), ``width``, ``n_layers``, ``in_channels`` and
  ``out_channels``, stored by its import path ``"package.module:name"`` (give the callable
  or that string). The model it returns must declare its roles:
  transfer-tune's FNO, neuraloperator's FNO, or a module with ``param_roles()`` (name ->
  role, at least the spectral weights) and ``modes`` / ``dim`` attributes.

Every config also holds ``dim``, ``modes``, ``width``, ``n_layers``, ``in_channels`` and
``out_channels``, so the transfer plan changes ``modes`` alone.

**Which factories run.** The study names the factory, and anyone who can write to a shared
study could name any importable code; so a process imports a factory only when this machine
allows it (:func:`check_factory_allowed`, before any import): the built-in kinds always; a
callable given to :func:`model_config` in this process (the user chose it here); a path in
:func:`allow_models` (the CLI's ``--allow-model package.module:name``) or in
``$TRANSFER_TUNE_ALLOW_MODELS`` (comma-separated). Everything else is refused with the fix.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from transfer_tune.core.adapters import NEURALOP_EXTRA, model_roles, neuralop_n_modes
from transfer_tune.core.model import FNO
from transfer_tune.errors import TransferTuneError

KINDS = ("fno", "neuralop", "factory")
_SHAPE_KEYS = ("dim", "modes", "width", "n_layers", "in_channels", "out_channels")
#: The environment variable of the operator's allowlist: ``package.module:name`` paths,
#: comma-separated.
ALLOW_ENV = "TRANSFER_TUNE_ALLOW_MODELS"
#: Factory paths every process may import: transfer-tune's own FNO.
BUILT_IN_FACTORIES = frozenset({"transfer_tune.core.model:FNO"})
_PATH = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")
#: Paths allowed in this process (:func:`allow_models`, callables given to :func:`model_config`).
_ALLOWED: set[str] = set()


def neuralop_fno_class() -> type:
    """neuraloperator's ``FNO`` class, or a clear error naming the extra to install."""
    try:
        from neuralop.models import FNO as NeuralopFNO
    except ImportError as exc:
        raise TransferTuneError(
            f"model='neuralop' needs neuraloperator 2.0, which is not installed: {NEURALOP_EXTRA}"
        ) from exc
    return NeuralopFNO


def _factory_path(factory: Callable) -> str:
    module = getattr(factory, "__module__", None)
    name = getattr(factory, "__qualname__", None)
    if not module or not name or module == "__main__" or "<" in name:
        raise TransferTuneError(
            f"model factory {factory!r} cannot be stored in the study: give a function or "
            "class defined at module level in an importable module (not a lambda, a local "
            "function or __main__), or its path 'package.module:name', so that workers and "
            "`transfer` in other processes can rebuild the model"
        )
    return f"{module}:{name}"


def _checked_path(path: Any, where: str) -> str:
    """``path`` if it reads ``package.module:name``; else an error saying where it came from."""
    if not isinstance(path, str) or not _PATH.fullmatch(path.strip()):
        shown = ascii(path) if isinstance(path, str) else f"a {type(path).__name__}"
        raise TransferTuneError(
            f"{where}: {shown} is not a model factory path of the form package.module:name"
        )
    return path.strip()


def allow_models(paths: Iterable[str]) -> None:
    """Allow the model factories ``paths`` (``package.module:name``) in this process.

    For the operator of a machine: a study whose ``model`` names one of them is then built
    by importing and calling it (the CLI's ``--allow-model`` calls this).

    Raises
    ------
    TransferTuneError
        For a path not of the form ``package.module:name``.
    """
    if isinstance(paths, str):
        paths = [paths]
    _ALLOWED.update(_checked_path(p, "--allow-model") for p in paths)


def allowed_models() -> frozenset[str]:
    """The factory paths this process may import.

    Those built in, those allowed in this process and those in ``$TRANSFER_TUNE_ALLOW_MODELS``.
    """
    env = [p for p in os.environ.get(ALLOW_ENV, "").split(",") if p.strip()]
    listed = {_checked_path(p, f"${ALLOW_ENV}") for p in env}
    return frozenset(BUILT_IN_FACTORIES | _ALLOWED | listed)


def check_factory_allowed(path: Any) -> str:
    """``path`` if this machine allows importing it as a model factory; else refuse, before import.

    Raises
    ------
    TransferTuneError
        Naming the fix: ``--allow-model PATH`` or ``$TRANSFER_TUNE_ALLOW_MODELS``.
    """
    path = _checked_path(path, "the model factory named by the study")
    if path not in allowed_models():
        raise TransferTuneError(
            f"the model factory {path} is not allowed on this machine (a study's model "
            "factory is code every worker imports and runs); if you trust it, allow "
            f"it with --allow-model {path} (transfer-tune transfer / worker) or "
            f"{ALLOW_ENV}={path} (comma-separated), or pass the callable itself to the Python "
            "API; 'fno' and 'neuralop' need no allowance"
        )
    return path


def check_model_allowed(config: dict) -> None:
    """Refuse, before any import, a stored model config whose factory is not allowed here."""
    if isinstance(config, dict) and config.get("kind") == "factory":
        check_factory_allowed(config.get("factory"))


def _import_factory(path: str) -> Callable:
    path = check_factory_allowed(path)
    module_name, _, name = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise TransferTuneError(
            f"cannot import the model factory {path!r} ({type(exc).__name__}: {exc}); give "
            "'package.module:name' of an importable function"
        ) from exc
    if not callable(obj):
        raise TransferTuneError(f"model factory {path!r} is not callable")
    return obj


def _check_signature(factory: Callable, path: str) -> None:
    """Refuse, before calling it, a factory that cannot take the model's keyword arguments."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some built-ins have none: the call itself tells
        return
    try:
        signature.bind(**dict.fromkeys(_SHAPE_KEYS, 1))
    except TypeError as exc:
        raise TransferTuneError(
            f"the model factory {path} does not take the keyword arguments "
            f"{', '.join(_SHAPE_KEYS)} ({exc}); a factory is f(dim, modes, width, n_layers, "
            "in_channels, out_channels) returning an nn.Module"
        ) from None


def _is_module(model: Any, path: str) -> nn.Module:
    """``model`` if it is a ``torch.nn.Module``; else a clear error about the factory."""
    if not isinstance(model, nn.Module):
        raise TransferTuneError(
            f"the model factory {path} returned a {type(model).__name__}, not a "
            "torch.nn.Module; it must build and return the model"
        )
    return model


def model_config(
    model: str | Callable = "fno",
    *,
    dim: int,
    modes: int,
    width: int,
    n_layers: int,
    in_channels: int,
    out_channels: int,
) -> dict:
    """The config of the workflow's model (plain data; :func:`build_model` reads it).

    Builds the model once, so a bad width, K, missing extra or a factory whose model has no
    roles fails here, before any study is created.
    """
    shape = {
        "dim": dim,
        "modes": modes,
        "width": width,
        "n_layers": n_layers,
        "in_channels": in_channels,
        "out_channels": out_channels,
    }
    built = None
    if isinstance(model, str) and model.lower() == "fno":
        built = FNO(**shape)  # one build checks the arguments (and draws the weights once)
        config = built.config()
    elif isinstance(model, str) and model.lower() == "neuralop":
        config = {"kind": "neuralop", **shape}
    elif callable(model) or (isinstance(model, str) and ":" in model):
        if isinstance(model, str):
            path = model
        else:  # the user gave this very callable: its path may be imported in this process
            path = _factory_path(model)
            allow_models([path])
        config = {"kind": "factory", "factory": path, **shape}
    else:
        raise TransferTuneError(
            f"unknown model {model!r}: use 'fno', 'neuralop', a model factory (a module-level "
            "function taking dim, modes, width, n_layers, in_channels, out_channels) or its "
            "path 'package.module:name'"
        )
    if built is None:
        built = build_model(config)
    spec = model_roles(built)
    if spec.modes != modes:
        raise TransferTuneError(
            f"the model built for K = {modes} says it keeps K = {spec.modes}; a factory must "
            "build the model with the modes it is given"
        )
    return config


def build_model(config: dict, seed: int | None = None) -> nn.Module:
    """The model of ``config`` (from :func:`model_config`, any K).

    With ``seed``, the model's own initialisation (kept for the unscaled parameters of models
    other than transfer-tune's FNO, and redrawn by ``initialize`` for it) is drawn from
    ``torch.manual_seed(seed)`` without touching the global random state, so a trial or
    target run is reproducible.
    """
    kind = config.get("kind", "fno")
    shape = {k: config[k] for k in _SHAPE_KEYS}
    if kind == "fno":

        def make():
            return FNO(**{k: v for k, v in config.items() if k != "kind"})

    elif kind == "neuralop":
        cls = neuralop_fno_class()

        def make():
            return cls(
                n_modes=neuralop_n_modes(shape["modes"], shape["dim"]),
                in_channels=shape["in_channels"],
                out_channels=shape["out_channels"],
                hidden_channels=shape["width"],
                n_layers=shape["n_layers"],
            )

    elif kind == "factory":
        path = config.get("factory")
        factory = _import_factory(path)
        _check_signature(factory, path)

        def make():
            return _is_module(factory(**shape), path)

    else:
        raise TransferTuneError(f"unknown model kind {kind!r} in the stored config")
    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def shapes_model(config: dict) -> nn.Module:
    """The model of ``config`` for its shapes only: built on the meta device (no memory, no
    draw), e.g. to read the base shapes of µP's width rule or a target's table."""
    with torch.device("meta"):
        return build_model(config)
