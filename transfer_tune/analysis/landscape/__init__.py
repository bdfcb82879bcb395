"""Loss landscapes: sweeps over one or two hyperparameters for several K, under µP and SP.

A sweep trains the same FNO (width and depth fixed) for every combination of

* parametrization (``"mup"``, ``"sp"``, both relative to the same ``K_base``),
* K (``modes``),
* value(s) of the swept hyperparameter(s) (``lr``, ``batch_size``, ``beta1``, ``beta2``,
  ``weight_decay``), and
* seed (model initialisation and batch order),

and records the final training, validation and test losses. Every (parametrization, K) is
one Optuna study named ``"{sweep_name}/{parametrization}/K{modes}"`` driven by a
:class:`optuna.samplers.GridSampler` over ``{values x seeds}``, all in the same storage, so a
sweep is

* **visible** in optuna-dashboard (one study per curve; per-epoch validation losses are the
  trials' intermediate values, the final test loss their value);
* **resumable**: re-running the same call skips the grid points already finished. Trials left
  RUNNING by a killed run (their ``worker`` user attribute names the host and process id) are
  failed when the process is gone (:mod:`transfer_tune.search.workers`, shared with the
  proxy search), and every failed grid point is queued again;
* **parallel**: ``n_jobs`` worker processes (joblib) share the storage; use a journal file
  (``journal:PATH``) or PostgreSQL for many workers, SQLite for a few.

A diverged run (NaN/inf or exploding loss) is a result, not an error: its trial is PRUNED
with ``diverged=True`` and the reason in its user attributes, and its losses are ``inf``.

The tidy result (:class:`SweepResult`, one :class:`LandscapeRow` per parametrization, K,
value(s) and seed) is rebuilt from the storage alone by :func:`load_sweep`.

This package is the one home of the names in ``__all__``: code outside it imports them from
``transfer_tune.analysis.landscape``, never from a submodule (users import ``sweep``,
``sweep_from_spec``, ``list_sweeps`` and ``load_sweep`` from :mod:`transfer_tune`). The
submodules are private detail, in data-flow order: ``config`` (what a sweep is: checks,
:class:`SweepConfig`), ``data`` (problem or tensors), ``results`` (rows and the tidy result),
``objective`` (one run), ``runner`` (:func:`sweep`), ``readback`` (:func:`list_sweeps`,
:func:`load_sweep`), ``from_spec`` (a study spec's ``[landscape]``); they import each other
directly.
"""

from transfer_tune.analysis.landscape.config import (
    DEFAULT_VALUES,
    SWEEPABLE,
    RunOptions,
    SweepConfig,
    study_name,
    values_from_spec,
)
from transfer_tune.analysis.landscape.from_spec import sweep_from_spec, sweep_kwargs_from_spec
from transfer_tune.analysis.landscape.readback import list_sweeps, load_sweep, sweep_studies
from transfer_tune.analysis.landscape.results import LandscapeRow, SweepResult
from transfer_tune.analysis.landscape.runner import sweep

__all__ = [
    "DEFAULT_VALUES",
    "SWEEPABLE",
    "LandscapeRow",
    "RunOptions",
    "SweepConfig",
    "SweepResult",
    "list_sweeps",
    "load_sweep",
    "study_name",
    "sweep",
    "sweep_from_spec",
    "sweep_kwargs_from_spec",
    "sweep_studies",
    "values_from_spec",
]
