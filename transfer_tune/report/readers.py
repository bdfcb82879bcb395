"""Storage -> results: what the figures and the dashboard read about proxy and target studies.

The figures never touch a storage and the dashboard never re-derives what a study means: both
take the plain dataclasses built here (:class:`ProxyHistory`, :class:`TrialRecord`,
:class:`TargetRun`). Only Optuna's public API is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from transfer_tune.errors import TransferTuneError
from transfer_tune.search.storage import get_storage

__all__ = [
    "ProxyHistory",
    "TargetRun",
    "TrialRecord",
    "open_study",
    "read_proxy_history",
    "read_target",
]


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a study, as the report layer needs it.

    Attributes
    ----------
    number : int
        Optuna's trial number.
    state : str
        ``"COMPLETE"``, ``"PRUNED"``, ``"FAIL"``, ``"RUNNING"`` or ``"WAITING"``.
    value : float or None
        The objective (complete trials).
    params : dict
        The sampled values.
    last_intermediate : float or None
        The value reported at the last step (the validation loss of the last epoch).
    seconds : float
        Wall time of the trial (0 when it has not finished).
    """

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    last_intermediate: float | None
    seconds: float

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> TrialRecord:
        iv = trial.intermediate_values
        return cls(
            number=trial.number,
            state=trial.state.name,
            value=trial.value,
            params=dict(trial.params),
            last_intermediate=iv[max(iv)] if iv else None,
            seconds=trial.duration.total_seconds() if trial.duration is not None else 0.0,
        )


@dataclass(frozen=True)
class TargetRun:
    """The transferred large-K run linked from a proxy study (its ``target_study`` attribute).

    Attributes
    ----------
    name : str
        The target study.
    modes : int or None
        Its K.
    lr : float or None
        The transferred base learning rate (the plan's).
    val_loss, test_loss : float or None
        Final validation and test loss (rel. L2, normalised units).
    value : float or None
        The target study's objective (the physical test error ``test_l2``).
    metrics, plan : dict
        The study's ``metrics`` and ``plan`` user attributes.
    checkpoint : str or None
        Path of the saved model.
    """

    name: str
    modes: int | None
    lr: float | None
    val_loss: float | None
    test_loss: float | None
    value: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None


@dataclass(frozen=True)
class ProxyHistory:
    """A proxy study, its trials in order and its target run (if it was transferred).

    Attributes
    ----------
    study_name : str
    user_attrs : dict
        The study's user attributes (problem, model, parametrization, epochs, compute...).
    trials : tuple of TrialRecord
        Every trial, by number.
    target : TargetRun or None
    """

    study_name: str
    user_attrs: dict[str, Any]
    trials: tuple[TrialRecord, ...]
    target: TargetRun | None = None

    @property
    def complete(self) -> list[TrialRecord]:
        """Complete trials with a value."""
        return [t for t in self.trials if t.state == "COMPLETE" and t.value is not None]

    @property
    def pruned(self) -> list[TrialRecord]:
        """Pruned trials that reported at least one value."""
        return [t for t in self.trials if t.state == "PRUNED" and t.last_intermediate is not None]

    @property
    def best(self) -> TrialRecord | None:
        """The complete trial with the lowest objective (the study minimises)."""
        done = self.complete
        return min(done, key=lambda t: t.value) if done else None

    @property
    def counts(self) -> dict[str, int]:
        """Number of trials per state name (every state, zeros included)."""
        return {s.name: sum(t.state == s.name for t in self.trials) for s in TrialState}

    @property
    def modes(self) -> int | None:
        """K of the proxy."""
        return (self.user_attrs.get("model") or {}).get("modes")

    @property
    def seconds(self) -> float:
        """Sum of the trials' wall times."""
        return sum(t.seconds for t in self.trials)


def _store(storage: Any) -> Any:
    if storage is None or isinstance(storage, str | os.PathLike):
        return get_storage(storage)
    return storage


def open_study(storage: Any, name: str) -> optuna.Study:
    """Load study ``name`` from a storage (URL, path or storage object) or say what is there."""
    store = _store(storage)
    try:
        return optuna.load_study(study_name=name, storage=store)
    except KeyError:
        names = [s.study_name for s in store.get_all_studies()]
        raise TransferTuneError(
            f"no study named {name!r} in the storage; it holds: {', '.join(names) or 'none'}"
        ) from None


def _target_run(study: optuna.Study) -> TargetRun:
    attrs = study.user_attrs
    plan = attrs.get("plan", {}) or {}
    metrics = attrs.get("metrics", {}) or {}
    complete = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
    last = complete[-1] if complete else None
    val = metrics.get("val_loss")
    if val is None and last is not None and last.intermediate_values:
        val = last.intermediate_values[max(last.intermediate_values)]
    return TargetRun(
        name=study.study_name,
        modes=plan.get("modes", metrics.get("modes")),
        lr=plan.get("lr"),
        val_loss=val,
        test_loss=metrics.get("test_loss", last.value if last else None),
        value=last.value if last else None,
        metrics=dict(metrics),
        plan=dict(plan),
        checkpoint=attrs.get("checkpoint"),
    )


def read_target(storage: Any, target_study_name: str) -> TargetRun | None:
    """The target run recorded in study ``target_study_name``, or ``None`` if there is none."""
    store = _store(storage)
    try:
        study = optuna.load_study(study_name=target_study_name, storage=store)
    except KeyError:
        return None
    return _target_run(study)


def read_proxy_history(storage: Any, proxy_study_name: str) -> ProxyHistory:
    """Read proxy study ``proxy_study_name`` and its linked target run from ``storage``.

    The target is the study named by the proxy's ``target_study`` user attribute (written by
    :func:`transfer_tune.search.transfer.run_target`); ``None`` when missing.
    """
    store = _store(storage)
    study = open_study(store, proxy_study_name)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    linked = study.user_attrs.get("target_study")
    return ProxyHistory(
        study_name=study.study_name,
        user_attrs=dict(study.user_attrs),
        trials=tuple(TrialRecord.from_trial(t) for t in trials),
        target=read_target(store, linked) if linked else None,
    )
