"""The tuned hyperparameters (learning rate, batch size, Adam betas, weight decay) and ranges.

Defaults: ``lr`` log-uniform on [1e-4, 3e-1]; ``batch_size`` categorical {8, 16, 32, 64};
``beta1`` uniform on [0.8, 0.99]; ``beta2`` on [0.9, 0.9999], sampled log-uniformly in
``1 - beta2`` (Optuna sees the parameter ``one_minus_beta2``). ``weight_decay`` is not
searched by default (the fixed training setting applies, 0 unless ``train`` says otherwise);
give it a range to search it, log-uniform by default, e.g.
``{"weight_decay": {"low": 1e-6, "high": 1e-2}}`` (with ``train={"optimizer": "adamw"}`` for
decoupled decay), or a number to fix it. ``physics_weight`` (the residual's weight of
``train={"loss": "pino"}``) is searched the same way, log-uniform by default:
``{"physics_weight": {"low": 0.01, "high": 10}}``.

Any entry can be fixed or re-ranged, from Python or from a study TOML's ``[search_space]``::

    {"lr": {"low": 1e-3, "high": 1e-1}, "beta1": 0.9, "batch_size": [16, 32]}

a number fixes the value, a list gives the categorical choices, a table re-ranges
(``low``, ``high``, optionally ``log``).

A batch can hold no more samples than the training set: when the batch sizes are the default
ones, those larger than the training set are dropped (the full set, when none fits) and the
search says so in one line; batch sizes the user gave that cannot fit are an error
(:meth:`SearchSpace.fit_batch_size`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import optuna

from transfer_tune.core.hparams import check_hparam
from transfer_tune.errors import TransferTuneError

NAMES = ("lr", "batch_size", "beta1", "beta2", "weight_decay", "physics_weight")
#: Entries searched only when the user gives them a range (unset by default).
OPTIONAL = ("weight_decay", "physics_weight")
_OPTUNA_NAME = {"beta2": "one_minus_beta2"}


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter: a float range, a set of choices, or a fixed value."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None
    value: Any = None

    @property
    def fixed(self) -> bool:
        """Whether the value is fixed (not searched)."""
        return self.value is not None

    @property
    def unset(self) -> bool:
        """Neither searched nor fixed: the training settings decide (``weight_decay``'s default)."""
        return self.value is None and self.choices is None and self.low is None

    def to_dict(self) -> dict | list | float | int:
        """The TOML/JSON form accepted by :meth:`SearchSpace.from_dict`."""
        if self.fixed:
            return self.value
        if self.choices is not None:
            return list(self.choices)
        return {"low": self.low, "high": self.high, "log": self.log}


def _default_dimensions() -> dict[str, Dimension]:
    return {
        "lr": Dimension("lr", 1e-4, 3e-1, log=True),
        "batch_size": Dimension("batch_size", choices=(8, 16, 32, 64)),
        "beta1": Dimension("beta1", 0.8, 0.99),
        "beta2": Dimension("beta2", 0.9, 0.9999, log=True),
        "weight_decay": Dimension("weight_decay", log=True),
        "physics_weight": Dimension("physics_weight", log=True),
    }


def _check_value(name: str, value: Any) -> Any:
    """The rules of :data:`transfer_tune.core.hparams.HPARAM_CHECKS`, in canonical type."""
    return check_hparam(name, value)


def _parse(name: str, spec: Any, default: Dimension) -> Dimension:
    if isinstance(spec, Dimension):
        return spec
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise TransferTuneError(f"{name}: the list of choices is empty")
        choices = tuple(_check_value(name, v) for v in spec)
        if len(choices) == 1:
            return Dimension(name, value=choices[0])
        return Dimension(name, choices=choices)
    if isinstance(spec, dict):
        unknown = set(spec) - {"low", "high", "log"}
        if unknown or not {"low", "high"} <= set(spec):
            raise TransferTuneError(
                f"{name}: a range is a table with 'low', 'high' and optionally 'log'; "
                f"got keys {sorted(spec)}"
            )
        if name == "batch_size":
            raise TransferTuneError("batch_size is categorical: give a list such as [16, 32]")
        low, high = _check_value(name, spec["low"]), _check_value(name, spec["high"])
        if not low < high:
            raise TransferTuneError(f"{name}: low must be < high, got low={low}, high={high}")
        log = spec.get("log", default.log)
        if not isinstance(log, bool):
            raise TransferTuneError(f"{name}: log must be true or false, got {log!r}")
        if log and low <= 0:
            raise TransferTuneError(
                f"{name}: a log range needs low > 0, got low={low}; use a positive low "
                "or log = false"
            )
        return Dimension(name, low, high, log=log)
    return Dimension(name, value=_check_value(name, spec))


@dataclass(frozen=True)
class SearchSpace:
    """The tuned hyperparameters; see the module docstring."""

    lr: Dimension
    batch_size: Dimension
    beta1: Dimension
    beta2: Dimension
    weight_decay: Dimension = Dimension("weight_decay", log=True)
    physics_weight: Dimension = Dimension("physics_weight", log=True)

    @classmethod
    def default(cls) -> SearchSpace:
        """The default ranges."""
        return cls(**_default_dimensions())

    @classmethod
    def from_dict(cls, overrides: dict | None) -> SearchSpace:
        """Defaults with ``overrides`` (name -> number | list | {low, high, log}) applied."""
        if overrides is None:
            return cls.default()
        if isinstance(overrides, SearchSpace):
            return overrides
        if not isinstance(overrides, dict):
            raise TransferTuneError(
                f"search_space must be a dict (name -> value, list or range), got {overrides!r}"
            )
        unknown = sorted(set(overrides) - set(NAMES))
        if unknown:
            raise TransferTuneError(
                f"unknown search-space entries {unknown}; valid: {', '.join(NAMES)}"
            )
        dims = _default_dimensions()
        for name, spec in overrides.items():
            dims[name] = _parse(name, spec, dims[name])
        return cls(**dims)

    def to_dict(self) -> dict:
        """Plain data, unset entries left out; ``from_dict(space.to_dict()) == space``."""
        return {
            name: getattr(self, name).to_dict() for name in NAMES if not getattr(self, name).unset
        }

    def max_batch_size(self) -> int:
        """The largest batch size the space can produce."""
        dim = self.batch_size
        return int(dim.value if dim.fixed else max(dim.choices))

    def fit_batch_size(self, n_train: int, explicit: bool) -> tuple[SearchSpace, str | None]:
        """This space with batch sizes that fit a training set of ``n_train`` samples.

        Parameters
        ----------
        n_train : int
            Samples in the training set.
        explicit : bool
            Whether the user chose ``batch_size`` (then nothing is changed: a size that cannot
            fit is an error) or it is the default (then the sizes above ``n_train`` are
            dropped, and ``n_train`` itself is used when none is left).

        Returns
        -------
        (SearchSpace, str or None)
            The space and, when it was restricted, the one line that says how.

        Raises
        ------
        TransferTuneError
            When an explicit batch size exceeds ``n_train``.
        """
        largest = self.max_batch_size()
        if largest <= n_train:
            return self, None
        if explicit:
            raise TransferTuneError(
                f"the search space allows batch_size {largest} but the training set has "
                f"{n_train} samples; raise n_train or restrict batch_size"
            )
        dim = self.batch_size
        before = [dim.value] if dim.fixed else list(dim.choices)
        fits = [b for b in before if b <= n_train] or [n_train]
        new = Dimension("batch_size", choices=tuple(fits)) if len(fits) > 1 else None
        new = new or Dimension("batch_size", value=fits[0])
        line = (
            f"batch_size: the training set has {n_train} samples, so the default choices "
            f"{before} are restricted to {fits} (give search_space batch_size to choose)"
        )
        return replace(self, batch_size=new), line

    def _set(self) -> list[tuple[str, Dimension]]:
        """``(name, dimension)`` of every entry that is searched or fixed (not unset)."""
        return [(n, getattr(self, n)) for n in NAMES if not getattr(self, n).unset]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample the values of one trial: ``{lr, batch_size, beta1, beta2}`` and every other
        entry that is not unset (``weight_decay`` when searched or fixed)."""
        values: dict[str, Any] = {}
        for name, dim in self._set():
            if dim.fixed:
                values[name] = dim.value
            elif dim.choices is not None:
                values[name] = trial.suggest_categorical(name, list(dim.choices))
            elif name == "beta2":
                gap = trial.suggest_float(
                    _OPTUNA_NAME[name], 1.0 - dim.high, 1.0 - dim.low, log=dim.log
                )
                values[name] = 1.0 - gap
            else:
                values[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
        return values

    def distributions_of(self, values: dict[str, Any]) -> dict[str, Any]:
        """Optuna distributions that record ``values`` (a run that used them) as trial params.

        Each value gets its searched range (``beta2`` as itself, not ``1 - beta2``) when it lies
        inside it, else a range of that one value; so a run made with these values (the
        transferred target) shows them as ordinary Optuna parameters.
        """
        dists: dict[str, Any] = {}
        for name, value in values.items():
            dim = getattr(self, name, None)
            if name == "batch_size" or isinstance(value, (bool, str)):
                inside = dim is not None and dim.choices is not None and value in dim.choices
                dists[name] = optuna.distributions.CategoricalDistribution(
                    list(dim.choices) if inside else [value]
                )
                continue
            value = float(value)
            inside = dim is not None and dim.low is not None and dim.low <= value <= dim.high
            low, high = (dim.low, dim.high) if inside else (value, value)
            log = inside and dim.log and name != "beta2" and low > 0
            dists[name] = optuna.distributions.FloatDistribution(low, high, log=log)
        return dists

    def values_from_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Hyperparameter values of a finished trial from its Optuna ``params``."""
        values: dict[str, Any] = {}
        for name, dim in self._set():
            if dim.fixed:
                values[name] = dim.value
            elif name == "beta2" and dim.choices is None:
                values[name] = 1.0 - params[_OPTUNA_NAME[name]]
            else:
                values[name] = params[name]
        return values
