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
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from transfer_tune.core.adapters import NEURALOP_EXTRA, model_roles, neuralop_n_modes
from transfer_tune.core.model import FNO
from transfer_tune.errors import TransferTuneError

KINDS = ("fno", "neuralop", "factory")
_SHAPE_KEYS = ("dim", "modes", "width", "n_layers", "in_channels", "out_channels")


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


def _import_factory(path: str) -> Callable:
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
    if isinstance(model, str) and model.lower() == "fno":
        config = FNO(**shape).config()
    elif isinstance(model, str) and model.lower() == "neuralop":
        config = {"kind": "neuralop", **shape}
    elif callable(model) or (isinstance(model, str) and ":" in model):
        path = model if isinstance(model, str) else _factory_path(model)
        config = {"kind": "factory", "factory": path, **shape}
    else:
        raise TransferTuneError(
            f"unknown model {model!r}: use 'fno', 'neuralop', a model factory (a module-level "
            "function taking dim, modes, width, n_layers, in_channels, out_channels) or its "
            "path 'package.module:name'"
        )
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
    other than transfer-tune's FNO) is drawn from ``torch.manual_seed(seed)`` without
    touching the global random state, so a trial or target run is reproducible.
    """
    kind = config.get("kind", "fno")
    shape = {k: config[k] for k in _SHAPE_KEYS}
    if kind == "fno":
        return FNO(**{k: v for k, v in config.items() if k != "kind"})
    if kind == "neuralop":
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
        factory = _import_factory(config["factory"])

        def make():
            return factory(**shape)

    else:
        raise TransferTuneError(f"unknown model kind {kind!r} in the stored config")
    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()
