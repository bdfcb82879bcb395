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

from transfer_tune.search.storage import get_storage
from transfer_tune.search.studies import find_study, open_study

__all__ = [
    "ProxyHistory",
    "TargetRun",
    "TrialRecord",
    "read_curves",
    "read_proxy_history",
    "read_target",
    "study_ids",
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
    intermediate : dict
        Every reported value by step (the validation loss per epoch).
    """

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    last_intermediate: float | None
    seconds: float
    intermediate: dict[int, float] = field(default_factory=dict)

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
            intermediate=dict(sorted(iv.items())),
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
    params : dict
        The values its trial ran with (lr, batch_size, beta1, beta2), as Optuna params.
    curve : dict
        Validation loss per epoch (the trial's intermediate values).
    metric_name : str or None
        The name of the study's objective.
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
    params: dict[str, Any] = field(default_factory=dict)
    curve: dict[int, float] = field(default_factory=dict)
    metric_name: str | None = None


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


def _target_run(study: optuna.Study) -> TargetRun:
    attrs = study.user_attrs
    plan = attrs.get("plan", {}) or {}
    metrics = attrs.get("metrics", {}) or {}
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.value is not None]
    last = complete[-1] if complete else None
    shown = last or (trials[-1] if trials else None)  # a run still going: its curve so far
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
        params=dict(shown.params) if shown else {},
        curve=dict(sorted(shown.intermediate_values.items())) if shown else {},
        metric_name=_metric_name(study),
    )


def _metric_name(study: optuna.Study) -> str | None:
    names = study.metric_names
    return names[0] if names else None


def study_ids(storage: Any) -> dict[str, int]:
    """Study name -> the id the dashboard shows it under (``/dashboard/studies/<id>``)."""
    store = _store(storage)
    names = [s.study_name for s in store.get_all_studies()]
    return {name: store.get_study_id_from_name(name) for name in names}


def read_target(storage: Any, target_study_name: str) -> TargetRun | None:
    """The target run recorded in study ``target_study_name``, or ``None`` if there is none."""
    study = find_study(target_study_name, _store(storage))
    return None if study is None else _target_run(study)


def read_proxy_history(storage: Any, proxy_study_name: str) -> ProxyHistory:
    """Read proxy study ``proxy_study_name`` and its linked target run from ``storage``.

    The target is the study named by the proxy's ``target_study`` user attribute (written by
    :func:`transfer_tune.run_target`); ``None`` when missing.
    """
    store = _store(storage)
    study = open_study(proxy_study_name, store)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    linked = study.user_attrs.get("target_study")
    return ProxyHistory(
        study_name=study.study_name,
        user_attrs=dict(study.user_attrs),
        trials=tuple(TrialRecord.from_trial(t) for t in trials),
        target=read_target(store, linked) if linked else None,
    )


def _epoch_curve(trial: FrozenTrial) -> dict[int, float]:
    """``{epochs trained: loss}`` of a trial (Optuna's step s is epoch s + 1)."""
    return {int(s) + 1: float(v) for s, v in sorted(trial.intermediate_values.items())}


def read_curves(storage: Any, name: str) -> list[Any]:
    """Per-epoch validation losses of a landscape sweep or a proxy study, for the horizon.

    A sweep (``name`` is a sweep's name) gives one
    :class:`~transfer_tune.search.horizon_stats.CurveSet` per (parametrization, K) study, µP
    first; a configuration is a grid point, its curve the mean over its seeds, and a point
    with a pruned (diverged) seed is left out (its trials are counted in ``n_pruned``). A
    proxy study (any other ``name``) gives one curve set whose configurations are its
    complete trials; pruned trials are counted in ``n_pruned``. Failed, running and waiting
    trials are ignored. Nothing is trained.
    """
    from transfer_tune.analysis.landscape import sweep_studies
    from transfer_tune.search.horizon_stats import CurveSet

    store = _store(storage)
    studies = sweep_studies(store, name)
    if not studies:
        study = open_study(name, store)
        trials = study.get_trials(deepcopy=False)
        curves = {
            f"trial {t.number}": _epoch_curve(t)
            for t in sorted(trials, key=lambda t: t.number)
            if t.state == TrialState.COMPLETE
        }
        pruned = sum(t.state == TrialState.PRUNED for t in trials)
        modes = (study.user_attrs.get("model") or {}).get("modes")
        kind = (study.user_attrs.get("parametrization") or {}).get("kind")
        return [CurveSet(study.study_name, curves, kind, modes, pruned)]
    kinds = list(studies[0].user_attrs["sweep_config"]["parametrizations"])
    out = []
    for s in sorted(
        studies,
        key=lambda s: (
            kinds.index(s.user_attrs["parametrization"]["kind"])
            if s.user_attrs["parametrization"]["kind"] in kinds
            else len(kinds),
            int(s.user_attrs["modes"]),
        ),
    ):
        study = open_study(s.study_name, store)
        points: dict[str, list[FrozenTrial]] = {}
        bad: set[str] = set()
        pruned = 0
        for t in study.get_trials(deepcopy=False):
            if t.state not in (TrialState.COMPLETE, TrialState.PRUNED) or "seed" not in t.params:
                continue
            label = ", ".join(f"{k}={v:.4g}" for k, v in sorted(t.params.items()) if k != "seed")
            points.setdefault(label, []).append(t)
            if t.state == TrialState.PRUNED:
                pruned += 1
                bad.add(label)
        curves = {}
        for label, runs in points.items():
            if label in bad:
                continue
            per_run = [_epoch_curve(t) for t in runs]
            epochs = set.intersection(*(set(c) for c in per_run))
            curves[label] = {e: sum(c[e] for c in per_run) / len(per_run) for e in sorted(epochs)}
        out.append(
            CurveSet(
                s.study_name,
                curves,
                s.user_attrs["parametrization"]["kind"],
                int(s.user_attrs["modes"]),
                pruned,
            )
        )
    return out
