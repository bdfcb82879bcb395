"""Check the transfer rule on your own problem: how does R's best learning rate move with K?

µP (DESIGN.md §2) multiplies the spectral weights' (R's) Adam rate by
``(ln K_base / ln K)^alpha`` with ``alpha = 1/2``; SP is ``alpha = 0``. The argument behind
1/2 is asymptotic, so :func:`calibrate` measures alpha on the user's problem and width:

1. **sweep** R's rate alone (``spectral_lr``, :mod:`transfer_tune.analysis.landscape`; every
   other group at the proxy's best values) at K_base, 2 K_base and 4 K_base (or given K), for a
   few seeds, each run as long as a proxy trial, judged by the validation loss (what the
   proxy search minimised);
2. **per seed and K**, the loss-minimising rate refined below the grid spacing
   (:func:`~transfer_tune.analysis.curves.refine_minimum`), turned into R's actual rate
   ``log2 lr_R* = log2 spectral_lr* + log2 m(K)`` with ``m(K)`` R's multiplier read from the
   sweep's parametrization table;
3. **fit**: per seed, the least-squares slope ``b`` of ``log2 lr_R*`` against ``log2 ln K``
   over the K values (``alpha = -b``), then a Student-t interval of alpha over seeds
   (:mod:`transfer_tune.analysis.stats`; paired: a seed's level cancels in its slope). The
   mean of the per-seed slopes is the slope of the seed-averaged optima;
4. a **verdict** (:func:`classify`) with the numbers, and the rule to transfer with.

Verdict rules (``[lo, hi]`` the interval of alpha, ``max_width`` default 1.0):

* ``"inconclusive"`` when the optimum sits at a grid edge for any K (seed average or any
  seed: the true optimum may lie outside; widen the grid), when fewer than two seeds give a
  slope, or when ``hi - lo > max_width`` (more seeds or a wider K range);
* else ``"over-corrects"`` when ``hi < 1/2`` (R's best rate falls more slowly with K than µP
  says) and ``"under-corrects"`` when ``lo > 1/2``: transfer with ``--rule calibrated``;
* else ``"fits"`` when the interval holds 1/2 and excludes SP's 0 (``lo > 0``): keep µP;
* else ``"inconclusive"``: the interval holds both 1/2 and 0, so the data cannot tell µP
  from SP (more seeds or a wider K range).

R's init scale is not swept: the calibrated rule keeps µP's exponent 1/2 for it
(``init_exponent``). ``benchmarks/calibrate.py`` measures once whether R's init matters at
its width (µP's against SP's init at the largest K, same rates).

The fit and the evidence are stored on the proxy study (user attribute ``calibration``) and
read back by :func:`load_calibration`; ``plan_transfer(..., rule="calibrated")`` uses them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pdes.budget import check_run_count
from pdes.checks import as_float
from transfer_tune.analysis.curves import Curves, landscape_curves
from transfer_tune.analysis.optimum import analyze_optimum
from transfer_tune.analysis.stats import METHOD_LABELS, interval, t_interval
from transfer_tune.core.parametrization import RULE_EXPONENTS, get_parametrization
from transfer_tune.errors import TransferTuneError

__all__ = [
    "MUP_ALPHA",
    "SP_ALPHA",
    "VERDICTS",
    "Calibration",
    "calibrate",
    "calibration_from_curves",
    "classify",
    "fit_exponent",
    "grid_half_count",
    "load_calibration",
    "rate_grid",
]

MUP_ALPHA = RULE_EXPONENTS["mup"]
SP_ALPHA = RULE_EXPONENTS["sp"]
VERDICTS = ("fits", "over-corrects", "under-corrects", "inconclusive")
#: Study user attribute of the calibration (the name plan_transfer reads).
ATTR = "calibration"
METHOD = "per-seed least-squares slope of log2 lr_R* on log2 ln K, then {label} over seeds"


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _none_to_nan(values: Any) -> Any:
    if isinstance(values, list):
        return [_none_to_nan(v) for v in values]
    return math.nan if values is None else values


@dataclass
class Calibration:
    """The fitted exponent of R's optimal rate, its interval, the evidence and the verdict.

    Attributes
    ----------
    alpha, low, high : float
        lr_R* ∝ (ln K)^(-alpha): the estimate and its interval (``method``).
    verdict : str
        One of :data:`VERDICTS`; ``line`` says it with the numbers, ``rule`` is the rule to
        transfer with (``"mup"`` or ``"calibrated"``).
    modes : list of int
        The K values swept; ``base_modes`` is K_base, ``dim`` d.
    positions : list of list of float
        ``log2 lr_R*`` per K (rows) and seed (columns), NaN where a seed has none.
    k_mean, k_low, k_high : list of float
        Per K: the seed mean of ``log2 lr_R*`` and its t interval.
    at_edge : list of bool
        Per K: the optimum is at a grid edge (seed average or any seed).
    seed_alphas : list of float
        The per-seed exponents the interval is taken over.
    intercept : float
        ``log2 lr_R* = intercept - alpha * log2 ln K`` (the fitted line).
    """

    alpha: float
    low: float
    high: float
    verdict: str
    line: str
    rule: str
    modes: list[int]
    base_modes: int
    dim: int
    positions: list[list[float]]
    k_mean: list[float]
    k_low: list[float]
    k_high: list[float]
    at_edge: list[bool]
    seed_alphas: list[float]
    intercept: float
    n_seeds: int
    method: str
    confidence: float
    max_width: float
    loss: str = "val_loss"
    param: str = "spectral_lr"
    grid: list[float] = field(default_factory=list)
    grid_step: float = math.nan
    sweep: str = ""
    study: str = ""
    seconds: float = 0.0
    runs: int = 0
    flops: float = 0.0
    init_exponent: float = MUP_ALPHA
    init_note: str = "R's init scale not calibrated: µP's exponent 1/2"

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low

    def fitted(self, modes: int) -> float:
        """``log2 lr_R*`` of the fitted line at K."""
        return self.intercept - self.alpha * math.log2(math.log(modes))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (NaN stored as ``None``), as the study's user attribute holds it."""
        data = asdict(self)
        for key in ("alpha", "low", "high", "intercept", "grid_step"):
            data[key] = _finite_or_none(data[key])
        for key in ("k_mean", "k_low", "k_high", "seed_alphas"):
            data[key] = [_finite_or_none(v) for v in data[key]]
        data["positions"] = [[_finite_or_none(v) for v in row] for row in data["positions"]]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`."""
        data = {k: _none_to_nan(v) for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**data)

    def markdown(self) -> str:
        """A table of the optimum per K, then the fit and the verdict."""
        head = (
            f"| K | ln K | log2 lr_R* [{round(100 * self.confidence)}% over seeds] | "
            "lr_R* | grid edge |\n|---|---|---|---|---|\n"
        )
        rows = "".join(
            f"| {k} | {math.log(k):.3f} | {m:+.2f} [{lo:+.2f}, {hi:+.2f}] | {2.0**m:.3g} | "
            f"{'yes' if e else 'no'} |\n"
            for k, m, lo, hi, e in zip(
                self.modes, self.k_mean, self.k_low, self.k_high, self.at_edge, strict=True
            )
        )
        fit = (
            f"Fit ({self.method}, {self.n_seeds} seeds): alpha = {self.alpha:.2f} "
            f"[{self.low:.2f}, {self.high:.2f}] (µP {MUP_ALPHA:g}, SP {SP_ALPHA:g}). "
            f"{self.init_note}. Cost: {self.runs} runs, {self.seconds:.0f} s."
        )
        return head + rows + "\n" + fit + "\n\n" + self.line

    def __str__(self) -> str:
        return self.line


def rate_grid(center: float, span: float = 2.0, step: float = 0.5) -> list[float]:
    """``center * 2^(j * step)`` for ``|j * step| <= span``: a log2 grid around ``center``."""
    if not (math.isfinite(center) and center > 0):
        raise TransferTuneError(f"the grid centre must be a rate > 0, got {center!r}")
    n = grid_half_count(span, step)
    return [center * 2.0 ** (j * step) for j in range(-n, n + 1)]


def grid_half_count(span: Any, step: Any, repeats: int = 1) -> int:
    """``n`` of :func:`rate_grid` (``2 n + 1`` rates), checked before any grid is built.

    ``span`` and ``step`` must be finite, ``step > 0`` and ``span >= step``; the grid's runs
    (``(2 n + 1) x repeats``: K values times seeds) at most :data:`pdes.budget.MAX_RUNS`.

    Raises
    ------
    TransferTuneError
        Naming the argument, or the run count.
    """
    span = as_float(span, "span (the grid's log2 half-width)")
    step = as_float(step, "step (the grid's log2 step)", positive=True)
    if span < step:
        raise TransferTuneError(f"need span >= step, got span {span}, step {step}")
    check_run_count(
        (2 * span / step + 1) * repeats,
        f"a grid of R's rate with span {span:g} and step {step:g}",
        "use a larger --step or a smaller --span (or fewer K values and seeds)",
    )
    return int(math.floor(span / step + 1e-9))


def fit_exponent(
    modes: Sequence[int],
    positions: np.ndarray,
    *,
    confidence: float = 0.95,
    method: str = "student-t",
) -> tuple[Any, np.ndarray, float]:
    """Per-seed slope of ``positions`` (log2 lr_R*, shape (n_K, n_seeds)) on ``log2 ln K``.

    Returns the interval of alpha over seeds (:func:`~transfer_tune.analysis.stats.interval`),
    the per-seed alphas (NaN for a seed lacking a K) and the intercept of the mean line.
    """
    x = np.log2(np.log(np.asarray(modes, dtype=float)))
    if x.size < 2 or np.ptp(x) == 0:
        raise TransferTuneError(f"fitting an exponent needs two or more distinct K, got {modes}")
    y = np.asarray(positions, dtype=float).reshape(x.size, -1)
    xc = x - x.mean()
    ok = np.all(np.isfinite(y), axis=0)
    slopes = np.full(y.shape[1], math.nan)
    slopes[ok] = (xc @ (y[:, ok] - y[:, ok].mean(axis=0))) / (xc @ xc)
    alphas = -slopes
    where = interval(alphas, method, confidence)
    intercept = float(y[:, ok].mean() + where.estimate * x.mean()) if ok.any() else math.nan
    return where, alphas, intercept


def classify(
    alpha: float, low: float, high: float, n: int, edges: Sequence[int], max_width: float = 1.0
) -> tuple[str, str, str]:
    """Verdict, its line and the recommended rule (the rules of the module docstring)."""
    nums = f"alpha = {alpha:.2f} [{low:.2f}, {high:.2f}]"
    if edges:
        ks = ", ".join(map(str, edges))
        why = f"the optimum is at a grid edge for K = {ks}: widen the grid (--span)"
    elif n < 2 or not (math.isfinite(low) and math.isfinite(high)):
        why = "fewer than two seeds give a slope: more seeds"
    elif high - low > max_width:
        why = (
            f"the interval is wider than {max_width:g}: more seeds or a wider K range "
            "(--seeds, --modes)"
        )
    elif high < MUP_ALPHA:
        return (
            "over-corrects",
            f"the µP rule over-corrects here ({nums}, below µP's {MUP_ALPHA:g}: R's best rate "
            "falls more slowly with K than µP assumes); use --rule calibrated",
            "calibrated",
        )
    elif low > MUP_ALPHA:
        return (
            "under-corrects",
            f"the µP rule under-corrects here ({nums}, above µP's {MUP_ALPHA:g}: R's best "
            "rate falls faster with K than µP assumes); use --rule calibrated",
            "calibrated",
        )
    elif low > SP_ALPHA:
        return (
            "fits",
            f"the µP rule fits your problem ({nums}: holds µP's {MUP_ALPHA:g}, excludes "
            f"SP's {SP_ALPHA:g}); keep --rule mup",
            "mup",
        )
    else:
        why = (
            f"the interval holds both µP's {MUP_ALPHA:g} and SP's {SP_ALPHA:g}: more seeds "
            "or a wider K range (--seeds, --modes)"
        )
    return "inconclusive", f"inconclusive ({nums}): {why}; µP stays the default", "mup"


def calibration_from_curves(
    curves: Curves,
    dim: int,
    *,
    parametrization: str | None = None,
    confidence: float = 0.95,
    method: str = "student-t",
    max_width: float = 1.0,
) -> Calibration:
    """The fit and verdict from curves of R's rate (``spectral_lr``) under one parametrization.

    R's actual rate at K is ``spectral_lr * m(K)``, ``m`` read from the parametrization's
    table (``"mup"`` or ``"sp"``, relative to ``curves.base_modes``).
    """
    if curves.param != "spectral_lr":
        raise TransferTuneError(f"calibration needs a spectral_lr sweep, got {curves.param!r}")
    kind = parametrization or curves.parametrizations[0]
    modes = curves.modes(kind)
    if len(modes) < 2:
        raise TransferTuneError(f"calibration needs two or more K, the sweep has {modes}")
    sub = Curves(
        curves.param,
        curves.values,
        {key: v for key, v in curves.losses.items() if key[0] == kind},
        curves.base_modes,
        curves.seeds,
        curves.loss,
        curves.note,
    )
    analysis = analyze_optimum(sub, confidence=confidence, method="student-t")
    par = get_parametrization(kind, base_modes=curves.base_modes)
    rows, edges, k_stats = [], [], []
    for k in modes:
        o = analysis.optimum(kind, k)
        shift = math.log2(par.role_scales(k, dim)["spectral"].lr)
        pos = np.asarray(o.seed_positions, dtype=float) + shift
        rows.append(pos)
        if o.at_edge:
            edges.append(k)
        k_stats.append(t_interval(pos, confidence))
    n = max(len(r) for r in rows)
    positions = np.full((len(modes), n), math.nan)
    for i, r in enumerate(rows):
        positions[i, : len(r)] = r
    where, alphas, intercept = fit_exponent(modes, positions, confidence=confidence, method=method)
    verdict, line, rule = classify(where.estimate, where.low, where.high, where.n, edges, max_width)
    label = f"{round(100 * confidence)}% {METHOD_LABELS[method]}"
    return Calibration(
        alpha=where.estimate,
        low=where.low,
        high=where.high,
        verdict=verdict,
        line=line,
        rule=rule,
        modes=list(modes),
        base_modes=curves.base_modes,
        dim=dim,
        positions=positions.tolist(),
        k_mean=[s.estimate for s in k_stats],
        k_low=[s.low for s in k_stats],
        k_high=[s.high for s in k_stats],
        at_edge=[k in edges for k in modes],
        seed_alphas=alphas.tolist(),
        intercept=intercept,
        n_seeds=where.n,
        method=METHOD.format(label=label),
        confidence=confidence,
        max_width=max_width,
        loss=curves.loss,
        grid=[float(v) for v in curves.values],
        grid_step=analysis.grid_step,
    )


def _open_study(study: Any, storage: Any) -> tuple[Any, str]:
    import optuna

    from transfer_tune.search.storage import check_study_name, get_storage, normalize_url
    from transfer_tune.search.studies import open_study

    url = normalize_url(storage)
    if isinstance(study, optuna.Study):
        return study, url
    check_study_name(study)
    return open_study(study, get_storage(url, must_exist=True)), url


def calibrate(
    study: Any,
    storage: Any = None,
    *,
    modes: Sequence[int] | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    span: float = 2.0,
    step: float = 0.5,
    values: Sequence[float] | None = None,
    epochs: int | None = None,
    loss: str = "val_loss",
    confidence: float = 0.95,
    method: str = "student-t",
    max_width: float = 1.0,
    n_jobs: int = 1,
    device: str = "auto",
    sweep_name: str | None = None,
    progress: bool = True,
    store: bool = True,
) -> Calibration:
    """Measure how R's best rate moves with K around a tuned proxy study; store the fit on it.

    Parameters
    ----------
    study : str or optuna.Study
        A finished proxy study (made by ``tune``), by name in ``storage`` or as a Study.
    modes : sequence of int, optional
        The K values; default ``(K_base, 2 K_base, 4 K_base)``.
    seeds : sequence of int
        Seeds of every grid point (5 by default; the interval is a t interval over them).
    span, step : float
        The grid of R's rate: the proxy's best lr times ``2^(j step)``, ``|j step| <= span``
        (log2 units); ``values`` gives it explicitly instead.
    epochs : int, optional
        Epochs per run (default the proxy's).
    loss : {"val_loss", "train_loss", "test_loss"}
        What is minimised (the validation loss, as in the proxy search, by default).
    method, confidence, max_width
        Interval of alpha over seeds and the verdict's width bound (:func:`classify`).
    n_jobs, device, progress
        As for :func:`~transfer_tune.sweep`.
    sweep_name : str, optional
        Default ``"{study}-calibrate"``; re-running resumes it.
    store : bool
        Write the calibration to the study's user attribute ``calibration``.
    """
    from pdes import load_problem
    from transfer_tune.analysis.landscape import sweep
    from transfer_tune.core.flops import TrialEpochs, run_flops
    from transfer_tune.search.proxy import ProxySetup, best_values

    n_modes = 3 if modes is None else len(modes)
    if values is None:  # the runs are counted before the study is opened
        grid_half_count(span, step, n_modes * len(seeds))
    study, url = _open_study(study, storage)
    setup = ProxySetup.from_study(study)
    model = dict(setup.model)
    if model.get("kind", "fno") != "fno":
        raise TransferTuneError(
            f"calibrate trains transfer-tune's FNO; study {study.study_name!r} uses a "
            f"{model.get('kind')!r} model"
        )
    base = int(setup.parametrization["base_modes"])
    proxy_k = int(model["modes"])
    ks = sorted(modes) if modes is not None else [proxy_k, 2 * proxy_k, 4 * proxy_k]
    best = best_values(study)
    grid = list(values) if values is not None else rate_grid(float(best["lr"]), span, step)
    shape_keys = ("dim", "modes", "width", "n_layers", "in_channels", "out_channels", "kind")
    options = {k: v for k, v in model.items() if k not in shape_keys}
    run_epochs = setup.epochs if epochs is None else epochs
    result = sweep(
        setup.problem,
        ks,
        "spectral_lr",
        grid,
        ("mup",),
        seeds,
        run_epochs,
        url,
        n_jobs,
        base_modes=base,
        width=model["width"],
        n_layers=model["n_layers"],
        hparams={**setup.train, **best},
        sweep_name=sweep_name or f"{study.study_name}-calibrate",
        model_options=options,
        device=device,
        progress=progress,
    )
    curves = landscape_curves(result, "spectral_lr", loss)
    cal = calibration_from_curves(
        curves,
        int(model["dim"]),
        parametrization="mup",
        confidence=confidence,
        method=method,
        max_width=max_width,
    )
    problem = load_problem(setup.problem)
    batch = int(result.config["hparams"]["batch_size"])
    flops = sum(
        run_flops(
            {**model, "modes": row.modes},
            problem.grid_shape,
            problem.n_train,
            problem.n_val,
            TrialEpochs(batch, run_epochs),
        )
        for row in result.rows
    )
    cal.sweep, cal.study = result.name, study.study_name
    cal.seconds = float(sum(r.seconds for r in result.rows))
    cal.runs, cal.flops = len(result.rows), float(flops)
    if store:
        study.set_user_attr(ATTR, cal.to_dict())
    return cal


def load_calibration(study: Any, storage: Any = None) -> Calibration:
    """The calibration stored on a proxy study (a clear error naming the command if none)."""
    study, _ = _open_study(study, storage)
    data = study.user_attrs.get(ATTR)
    if not data:
        raise TransferTuneError(
            f"proxy study {study.study_name!r} has no calibration: run `transfer-tune "
            f"calibrate {study.study_name}` first"
        )
    return Calibration.from_dict(data)
