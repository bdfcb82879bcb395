"""The proxy search's training horizon: fixed, or measured by a pilot (``horizon="auto"``).

:func:`transfer_tune.tune` calls :func:`set_horizon` before the search; the
statistics are :mod:`transfer_tune.search.horizon_stats`'s.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from transfer_tune.errors import TransferTuneError
from transfer_tune.search.horizon_stats import CurveSet, analyse
from transfer_tune.search.proxy import FINISHED, ProxySetup, create_proxy_study, run_worker

#: Trials of the ``horizon="auto"`` pilot (TPE's random start-up trials, run to full length).
PILOT_TRIALS = 5


def set_horizon(
    study: optuna.Study,
    horizon: int | str,
    setup: ProxySetup,
    url: str,
    n_trials: int,
    *,
    device: str = "auto",
    progress: bool = False,
) -> int:
    """Fix the study's epochs per trial (``horizon`` int) or measure them (``"auto"``).

    Stores ``{"mode", "epochs", ...}`` as the study's ``horizon`` user attribute (its workers
    read it); a study resumed with another fixed horizon is an error. Returns the horizon.
    """
    stored = study.user_attrs.get("horizon")
    if horizon == "auto":
        if stored is not None and stored.get("mode") == "auto":
            return int(stored["epochs"])
        evidence = pilot_horizon(study, setup, url, n_trials, device=device, progress=progress)
    elif isinstance(horizon, int) and not isinstance(horizon, bool):
        if not 1 <= horizon <= setup.epochs:
            raise TransferTuneError(
                f"horizon must be between 1 and epochs ({setup.epochs}), got {horizon}"
            )
        evidence = {"mode": "fixed", "epochs": horizon, "of": setup.epochs}
    else:
        raise TransferTuneError(f"horizon must be None, an int or 'auto', got {horizon!r}")
    if stored is not None and stored.get("epochs") != evidence["epochs"]:
        raise TransferTuneError(
            f"study {study.study_name!r} already runs {stored.get('epochs')} epochs per trial "
            f"(horizon {stored.get('mode')}); resume it with that horizon or another study_name"
        )
    study.set_user_attr("horizon", evidence)
    return int(evidence["epochs"])


def pilot_horizon(
    study: optuna.Study,
    setup: ProxySetup,
    url: str,
    n_trials: int,
    *,
    device: str = "auto",
    progress: bool = False,
) -> dict[str, Any]:
    """The ``horizon="auto"`` pilot: measure how early the ranking settles, then reuse it.

    1. Run ``min(PILOT_TRIALS, n_trials)`` trials with the random sampler and no pruner, at
       the full ``setup.epochs``, in the study ``"{name}-pilot"`` (same setup; resumable).
    2. :func:`transfer_tune.analyse_horizon` their per-epoch validation losses: the
       horizon h is the shortest epoch from which Spearman >= 0.9 and regret <= 2 % hold at
       every later epoch (``setup.epochs`` when the pilot cannot tell: fewer than two
       complete trials, or no earlier epoch qualifies).
    3. Copy the pilot's trials into ``study`` (they count toward ``n_trials``): a complete
       one with its value *after h epochs* (what a trial of the search returns) and all its
       per-epoch values, so the compute of the pilot is counted; pruned (diverged) ones as
       pruned.

    Returns the evidence stored as the study's ``horizon`` attribute.
    """
    pilot = create_proxy_study(setup, url, f"{study.study_name}-pilot", "random", "none")
    pilot.set_user_attr("pilot_of", study.study_name)
    n_pilot = min(PILOT_TRIALS, n_trials)
    run_worker(
        pilot.study_name,
        url,
        n_pilot,
        seed=setup.seed,
        sampler="random",
        pruner="none",
        device=device,
        progress=progress,
    )
    trials = [t for t in pilot.get_trials(deepcopy=False) if t.state in FINISHED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    curves = {t.number: {s + 1: v for s, v in t.intermediate_values.items()} for t in complete}
    evidence: dict[str, Any] = {"mode": "auto", "of": setup.epochs, "pilot_study": pilot.study_name}
    try:
        result = analyse(CurveSet(pilot.study_name, curves, n_pruned=len(trials) - len(complete)))
        h = result.horizon if result.final_epoch == setup.epochs else setup.epochs
        evidence.update(result.to_dict(), epochs=h, name=pilot.study_name)
    except TransferTuneError as exc:
        h = setup.epochs
        evidence.update(epochs=h, reason=str(exc))
    copied = {t.user_attrs.get("pilot_trial") for t in study.get_trials(deepcopy=False)}
    for t in trials:
        if t.number in copied:
            continue
        state, value = t.state, None
        if state == TrialState.COMPLETE:
            value = t.intermediate_values.get(h - 1, t.value)
        ft = optuna.trial.create_trial(
            state=state,
            value=value,
            params=t.params,
            distributions=t.distributions,
            user_attrs={**t.user_attrs, "pilot_trial": t.number},
            intermediate_values=t.intermediate_values,
        )
        ft.datetime_start, ft.datetime_complete = t.datetime_start, t.datetime_complete
        study.add_trial(ft)
    return evidence
