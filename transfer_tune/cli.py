"""The ``transfer-tune`` command line.

Subcommands: ``data``, ``tune``, ``transfer``, ``calibrate``, ``run``, ``worker``, ``landscape``,
``horizon``, ``coord-check``, ``dashboard``, ``demo``. Options left out are not passed on, so
every default lives in the function the command calls. Imports are made inside each command so that
``transfer-tune data`` starts without loading Optuna; figures, saving and the dashboard come
from their public home :mod:`transfer_tune.report`, ``allow_models`` from
:mod:`transfer_tune.model`, and the workflow from the modules that define it (the lazy
``transfer_tune`` package sits above this layer). Every user mistake raises
:class:`transfer_tune.errors.TransferTuneError`; the command prints it on one line and exits
with status 2.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence
from typing import Any

from transfer_tune.errors import TransferTuneError
from transfer_tune.faults import quiet_failures, storage_error

#: The demo: Burgers end to end (proxy search, µP transfer, target run) in minutes on 2 cores.
#: The demo: Burgers end to end (proxy search, µP transfer, target run) in about a minute on 2
#: cores. nu = 5e-3 keeps 4 % of the target's energy beyond K = 2 and little beyond K = 8, so
#: a K = 8 target has more to learn than the K = 2 proxy and 256 samples suffice to learn it.
DEMO = {
    "problem": dict(name="burgers", resolution=128, n_train=256, n_val=64, n_test=64,
                    nu=0.005, n_fine=512, dt=0.002),
    "model": {"n_layers": 4},
    "proxy": {"modes": 2, "width": 8, "resolution": 64, "epochs": 6},  # narrow and coarse
    "target": {"modes": 8, "width": 32, "epochs": 20},  # on the problem's 128-point grid
    "tune": {"n_trials": 8, "study_name": "demo-burgers-proxy-K2-w8"},
    "search_space": {"batch_size": [16, 32]},
}  # fmt: skip
#: Tiny sizes (seconds): the demo's code path for the test suite (``demo --quick``).
DEMO_QUICK = {
    "problem": dict(name="burgers", resolution=64, n_train=32, n_val=8, n_test=8, n_fine=256,
                    dt=0.002),
    "model": {"n_layers": 2},
    "proxy": {"modes": 4, "width": 4, "resolution": 32, "epochs": 2},
    "target": {"modes": 8, "width": 8, "epochs": 2},
    "tune": {"n_trials": 3, "study_name": "demo-quick-burgers-proxy-K4-w4"},
    "search_space": {"batch_size": [8, 16]},
}  # fmt: skip


_DATA_OPTIONS = (
    "n_train", "n_val", "n_test", "resolution", "seed", "cache_dir", "path", "test_path",
    "fine_test_path", "x_key", "y_key", "format", "dim", "subsample", "x_time", "y_time",
)  # fmt: skip


def _cmd_data(args: argparse.Namespace) -> int:
    import warnings

    from pdes import get_problem
    from pdes.cache import CacheWriteWarning
    from transfer_tune.search.preflight import check_split_sizes

    overrides = _given(**{key: getattr(args, key) for key in _DATA_OPTIONS})
    if "subsample" in overrides and len(overrides["subsample"]) == 1:
        overrides["subsample"] = overrides["subsample"][0]
    problem = get_problem(args.name, progress=True, **overrides)
    check_split_sizes(problem)  # the workflow's rule, before any data is generated or read
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CacheWriteWarning)
        for split in ("train", "val", "test"):
            problem.dataset(split)
        fine = problem.fine_test_problem() if problem.is_file else None
        if fine is not None:  # read the super-resolution test file too: a bad one fails here
            fine.dataset("test")
    for warning in caught:
        if issubclass(warning.category, CacheWriteWarning):  # caching is this command's job
            raise TransferTuneError(str(warning.message).split(";")[0] + "; nothing was cached")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    print(problem.summary())
    if args.spectrum:
        _print_spectrum(problem, args.spectrum)
    return 0


def _print_spectrum(problem: Any, out: str) -> None:
    """The energy beyond each K (table) and its figure (HTML) for ``data --spectrum``."""
    from pathlib import Path

    from pdes.spectrum import spectrum_table
    from transfer_tune.report import save_figure, spectrum_figure

    report = spectrum_table(problem)
    print(report.text())
    stem = Path(out) if out != "-" else Path("studies") / f"spectrum-{problem.name}"
    saved = save_figure(spectrum_figure(report), stem.with_suffix(""), formats=())
    print(f"figure: {saved.html}")


def _given(**options: Any) -> dict[str, Any]:
    """The options the user gave (not ``None``): the defaults live in the functions called."""
    return {key: value for key, value in options.items() if value is not None}


def _check_study_args(args: argparse.Namespace) -> None:
    """Check the study names given, then allow the model factories of ``--allow-model``."""
    from transfer_tune.model import allow_models
    from transfer_tune.search.storage import check_study_name

    for key, what in (("study", "study name"), ("target_study", "target study name")):
        if getattr(args, key, None) is not None:
            check_study_name(getattr(args, key), what)
    allow_models(getattr(args, "allow_model", None) or ())


def _cmd_tune(args: argparse.Namespace) -> int:
    from transfer_tune.search.proxy import best_values
    from transfer_tune.search.spec import load_spec
    from transfer_tune.search.storage import dashboard_command, normalize_url, redact_url
    from transfer_tune.search.tune import tune

    kw = load_spec(args.spec).tune_kwargs()
    kw.update(_given(n_trials=args.n_trials, n_jobs=args.n_jobs, study_name=args.study_name))
    kw.update(_given(storage=args.storage, device=args.device, horizon=args.horizon))
    kw = _with_loss(kw, args)
    url = normalize_url(kw.pop("storage", None))
    study = tune(storage=url, **kw)
    values = best_values(study)  # a clear error when every trial was pruned or diverged
    print(f"study {study.study_name!r}: best val rel-L2 {study.best_value:.4f}")
    print("best values:", values)
    print(f"next: transfer-tune transfer {study.study_name} --modes K --storage {redact_url(url)}")
    print(f"inspect: {dashboard_command(url)}")
    return 0


def _cmd_transfer(args: argparse.Namespace) -> int:
    from transfer_tune.search.storage import (
        dashboard_command,
        get_storage,
        normalize_url,
    )
    from transfer_tune.search.studies import open_study
    from transfer_tune.search.transfer import plan_transfer, run_target

    _check_study_args(args)
    url = normalize_url(args.storage)
    store = get_storage(url, must_exist=True, read_only=args.plan_only)  # a plan only reads
    study = open_study(args.study, store)
    plan = plan_transfer(  # checks epochs, K and the evaluation grid before anything prints
        study,
        args.modes,
        args.epochs,
        **_given(rule=args.rule, eval_resolution=args.eval_resolution),
        allow_smaller=args.allow_smaller,
        **_given(width=args.width, resolution=args.resolution),
    )
    print(plan.table())
    if plan.energy_warning():
        print(plan.energy_warning(), file=sys.stderr)
    if args.plan_only:
        return 0
    result = run_target(
        plan,
        url,
        **_given(
            study_name=args.target_study,
            eval_resolution=args.eval_resolution,
            device=args.device,
        ),
        take_over=args.take_over,
    )
    print(result)
    print(f"checkpoint: {result.checkpoint}")
    print(f"inspect: {dashboard_command(url)}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from transfer_tune.analysis.calibrate import calibrate
    from transfer_tune.report import calibration_figure, save_figure
    from transfer_tune.search.storage import safe_filename

    study, storage = args.study, args.storage
    if study.endswith(".toml"):  # the spec that tuned the proxy: its study name and storage
        from transfer_tune.search.spec import load_spec

        kw = load_spec(study).tune_kwargs()
        if "study_name" not in kw:
            raise TransferTuneError(f"{study} names no [tune] study_name; give the study's name")
        study, storage = kw["study_name"], storage or kw.get("storage")
    seeds = None if args.seeds is None else list(range(args.seeds))
    options = _given(modes=args.modes, seeds=seeds, span=args.span, step=args.step)
    options.update(_given(epochs=args.epochs, n_jobs=args.n_jobs, device=args.device))
    cal = calibrate(study, storage, progress=True, **options)
    print(cal.markdown())
    out = Path(args.out or Path("studies") / safe_filename(f"calibrate-{cal.study}"))
    saved = save_figure(calibration_figure(cal), out, formats=())
    print(f"figure: {saved.html}")
    print(f"stored on the proxy study {cal.study!r} (user attribute 'calibration')")
    if cal.rule == "calibrated":
        print(f"next: transfer-tune transfer {cal.study} --modes K --rule calibrated")
    return 0


def _loss_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--loss``/``--data-weight``/``--physics-weight``/``--physics-resolution`` given."""
    return _given(
        loss=getattr(args, "loss", None),
        data_weight=getattr(args, "data_weight", None),
        physics_weight=getattr(args, "physics_weight", None),
        physics_resolution=getattr(args, "physics_resolution", None),
    )


def _with_loss(kw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``kw`` with the loss options of the command line over the spec's ``[train]``."""
    options = _loss_options(args)
    if options:
        kw["train"] = {**(kw.get("train") or {}), **options}
    return kw


def _run_workflow(
    spec: dict,
    storage: str | None,
    device: str | None,
    args: argparse.Namespace | None = None,
) -> Any:
    from transfer_tune.api import tune_then_transfer
    from transfer_tune.search.spec import parse_spec

    kw = parse_spec(spec).workflow_kwargs()
    kw.update(_given(storage=storage, device=device))
    if args is not None:
        kw = _with_loss(kw, args)
    result = tune_then_transfer(**kw)
    print()
    print(result)
    return result


def _cmd_run(args: argparse.Namespace) -> int:
    from transfer_tune.search.spec import load_spec

    _run_workflow(load_spec(args.spec).raw, args.storage, args.device, args)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from transfer_tune.search.transfer import transfer

    spec = DEMO_QUICK if args.quick else DEMO
    p, t = spec["proxy"], spec["target"]
    grid = spec["problem"]["resolution"]
    print(
        f"transfer-tune demo: Burgers 1-D, tune a cheap proxy FNO (K={p['modes']}, width "
        f"{p['width']}, {p['resolution']} points) with Optuna, transfer with µP to K={t['modes']}, "
        f"width {t['width']}, {grid} points, and train it once; then train K={p['modes']} at the "
        "target's width and grid with the same values and budget, to show what the larger K gains."
    )
    result = _run_workflow(spec, args.storage, args.device)
    _, same = transfer(
        result.study,
        p["modes"],
        result.storage,
        epochs=t["epochs"],
        width=t["width"],
        study_name=f"{result.study.study_name}-same-budget-K{p['modes']}-w{t['width']}",
        progress=False,
        **_given(device=args.device),
    )
    big, small = result.target.metrics["test_l2"], same.metrics["test_l2"]
    c = result.compute
    print(
        f"cost: the proxy search took {c['proxy_seconds']:.1f} s "
        f"({c['search_to_target_flop_ratio']:.2f}x the target run's FLOPs), the target run "
        f"{c['target_seconds']:.1f} s; one proxy step costs {c['step_flop_ratio']:.3f} of a "
        "target step"
    )
    print(
        f"test rel-L2 with the tuned values and {t['epochs']} epochs: K={p['modes']} {small:.4f}, "
        f"K={t['modes']} {big:.4f} ({small / big:.2f}x lower with the larger K)"
    )
    return 0


_WORKER_OPTIONS = ("seed", "sampler", "pruner", "device", "heartbeat_interval", "grace_period")


def _cmd_worker(args: argparse.Namespace) -> int:
    from transfer_tune.search import proxy
    from transfer_tune.search.storage import get_storage, normalize_url
    from transfer_tune.search.studies import open_study
    from transfer_tune.search.workers import open_study_storage

    _check_study_args(args)
    url = normalize_url(args.storage)
    get_storage(url, must_exist=True)  # a worker joins a study: never create an empty file
    done = proxy.run_worker(
        args.study,
        url,
        args.n_trials,
        progress=True,
        **_given(**{key: getattr(args, key) for key in _WORKER_OPTIONS}),
    )
    study = open_study(args.study, open_study_storage(url))
    print(f"worker ran {done} trial(s); the study holds {proxy.count_finished(study)} finished")
    proxy.best_values(study)  # a clear error when no trial completed
    print(f"best value {study.best_value:.4f} (trial {study.best_trial.number})")
    return 0


def _cmd_landscape(args: argparse.Namespace) -> int:
    from transfer_tune.analysis.landscape import sweep, sweep_kwargs_from_spec
    from transfer_tune.report import annotate_sweep
    from transfer_tune.search.spec import load_spec
    from transfer_tune.search.storage import dashboard_command

    spec = load_spec(args.spec)  # the one spec parser, as for `run` and the Python API
    kwargs = sweep_kwargs_from_spec(spec, storage=args.storage, **_given(n_jobs=args.n_jobs))
    result = sweep(**kwargs, progress=True)
    print(result.summary())
    print(annotate_sweep(result.storage, result.name).markdown())
    print(f"inspect: {dashboard_command(result.storage)}")
    return 0


def _cmd_coord_check(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from transfer_tune.analysis.coord_check import coord_check_from_spec
    from transfer_tune.report import coord_check_figure, save_figure

    seeds = None if args.seeds is None else list(range(args.seeds))
    result = coord_check_from_spec(
        args.spec,
        modes=args.modes,
        widths=args.widths,
        steps=args.steps,
        lr=args.lr,
        seeds=seeds,
        batch_size=args.batch_size,
        device=args.device,
    )
    out = Path(args.out or Path("studies") / "coord_check" / Path(args.spec).stem)
    out.mkdir(parents=True, exist_ok=True)
    (out / "coord_check.json").write_text(json.dumps(result.to_dict(), indent=1))
    saved = save_figure(coord_check_figure(result), out / "coord_check", formats=())
    print(result.summary())
    print(f"records: {out / 'coord_check.json'}")
    print(f"figure: {saved.html}")
    return 0


def _horizon_arg(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected 'auto' or an integer, got {text!r}") from exc


def _cmd_horizon(args: argparse.Namespace) -> int:
    from pathlib import Path

    from transfer_tune.report import horizon_figure, read_curves, save_figure
    from transfer_tune.search.horizon_stats import analyse_all, markdown_table
    from transfer_tune.search.storage import get_storage, normalize_url, safe_filename

    store = get_storage(normalize_url(args.storage), read_only=True)
    thresholds = _given(min_correlation=args.min_correlation, max_regret=args.max_regret)
    results = analyse_all(read_curves(store, args.name), **thresholds)
    print(markdown_table(results))
    for r in results:
        print(r.summary())
    out = Path(args.out or Path("studies") / safe_filename(f"horizon-{args.name}"))
    saved = save_figure(horizon_figure(results), out, formats=())
    print(f"figure: {saved.html}")
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from transfer_tune.report import serve

    serve(args.storage, **_given(host=args.host, port=args.port))
    return 0


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, got {text!r}"
        ) from exc


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``transfer-tune``."""
    parser = argparse.ArgumentParser(
        prog="transfer-tune",
        description="Tune a small-K proxy FNO with Optuna, transfer to a large-K FNO with µP.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    def storage_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--storage",
            default=None,
            help="sqlite:///FILE.db, FILE.db, journal:FILE, postgresql://... "
            "(default $TRANSFER_TUNE_STORAGE or studies/transfer_tune.db)",
        )

    def device_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", help="auto (default: CUDA when available), cpu or cuda")

    def loss_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--loss",
            choices=("data", "pino"),
            help="data (default: relative L2 against the labels) or pino (data + the PDE "
            "residual; darcy and burgers_time); over the spec's [train] loss",
        )
        p.add_argument("--data-weight", type=float, help="pino: weight of the data loss (0: none)")
        p.add_argument("--physics-weight", type=float, help="pino: weight of the residual")
        p.add_argument(
            "--physics-resolution", type=int, help="pino: grid of the residual (finer: PINO)"
        )

    def allow_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--allow-model",
            action="append",
            metavar="PACKAGE.MODULE:NAME",
            help="import this model factory when the study names it (repeatable; also "
            "$TRANSFER_TUNE_ALLOW_MODELS, comma-separated); 'fno' and 'neuralop' need no "
            "allowance, any other factory named by a study is refused",
        )

    p = add("data", _cmd_data, "generate (or load) a PDE dataset and print where it is")
    p.add_argument("name", help="burgers, darcy, navier_stokes, or file (with --path)")
    p.add_argument("--n-train", type=int, help="default: 80 %% of a file (90 %% with --test-path)")
    p.add_argument("--n-val", type=int, help="default: 10 %% of a file")
    p.add_argument("--n-test", type=int, help="default: 10 %% of a file, or all of --test-path")
    p.add_argument("--resolution", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--cache-dir")
    p.add_argument("--path", help="a data file (.mat, .h5/.hdf5, .pt, .npz) for NAME = file")
    p.add_argument(
        "--test-path", help="a test file: on the training grid, or finer (super-resolution)"
    )
    p.add_argument("--fine-test-path", help="a test file on a finer grid (super-resolution)")
    p.add_argument("--x-key", help="name of the input array in the file")
    p.add_argument("--y-key", help="name of the output array in the file")
    p.add_argument("--format", help="mat, hdf5, pt or npz (default: from the extension)")
    p.add_argument("--dim", type=int, help="spatial dimension (default: from the array ranks)")
    p.add_argument(
        "--subsample", type=int, nargs="+", metavar="S", help="stride (one, or one per axis)"
    )
    p.add_argument("--x-time", help="input time step: an int, first (default), last or channels")
    p.add_argument("--y-time", help="output time step: an int, last (default), first or channels")
    p.add_argument(
        "--spectrum",
        nargs="?",
        const="-",
        metavar="FILE",
        help="print the fraction of input and target energy beyond each K and write its "
        "figure (default studies/spectrum-NAME.html)",
    )

    p = add("tune", _cmd_tune, "tune the proxy FNO of a study spec (resumable)")
    p.add_argument("spec", help="a study spec TOML, e.g. studies/burgers.toml")
    loss_args(p)
    p.add_argument("--n-trials", type=int)
    p.add_argument("--n-jobs", type=int)
    p.add_argument("--study-name")
    p.add_argument(
        "--horizon",
        type=_horizon_arg,
        help="epochs each trial trains: an int, or auto (a pilot measures when the ranking "
        "settles); default all",
    )
    storage_arg(p)
    device_arg(p)

    p = add("transfer", _cmd_transfer, "transfer a tuned proxy study to the target and train it")
    p.add_argument("study", help="name of the proxy study")
    p.add_argument("--modes", type=int, required=True, help="K of the target")
    p.add_argument("--width", type=int, help="width of the target (default: the proxy's)")
    p.add_argument(
        "--resolution",
        type=int,
        help="training grid of the target (default: the grid the proxy's was coarsened from)",
    )
    p.add_argument("--epochs", type=int, help="target epochs (default: the proxy's)")
    p.add_argument("--eval-resolution", type=int, help="finer grid for the test error")
    p.add_argument("--target-study", help="name of the target study")
    p.add_argument("--plan-only", action="store_true", help="print the plan, do not train")
    p.add_argument(
        "--rule",
        choices=("mup", "sp", "calibrated"),
        help="transfer rule for R: mup (default), sp, or calibrated (the exponent stored by "
        "`transfer-tune calibrate`)",
    )
    p.add_argument(
        "--take-over",
        action="store_true",
        help="resume a RUNNING run of this target left by a dead process on another machine",
    )
    p.add_argument(
        "--allow-smaller",
        action="store_true",
        help="train a K below the proxy's anyway (µP transfers upward: an error by default)",
    )
    storage_arg(p)
    device_arg(p)
    allow_arg(p)

    about = "measure how R's best rate moves with K around a tuned proxy and fit its exponent"
    p = add("calibrate", _cmd_calibrate, about)
    p.add_argument("study", help="name of the proxy study, or the spec TOML that tuned it")
    p.add_argument("--modes", type=_int_list, help="K values (default K_base, 2 and 4 K_base)")
    p.add_argument("--seeds", type=int, help="number of seeds (default 5)")
    p.add_argument("--span", type=float, help="grid half-width around the best lr, log2 (2)")
    p.add_argument("--step", type=float, help="grid step, log2 (default 0.5)")
    p.add_argument("--epochs", type=int, help="epochs per run (default: the proxy's)")
    p.add_argument("--n-jobs", type=int, help="sweep worker processes (default 1)")
    p.add_argument("--out", help="figure path without extension (default studies/calibrate-STUDY)")
    storage_arg(p)
    device_arg(p)

    p = add("run", _cmd_run, "tune, transfer and train the target of a study spec")
    p.add_argument("spec")
    loss_args(p)
    storage_arg(p)
    device_arg(p)

    p = add("worker", _cmd_worker, "join an existing proxy study and run trials")
    p.add_argument("study")
    p.add_argument("--n-trials", type=int, required=True, help="finished trials to reach")
    p.add_argument("--seed", type=int, help="sampler seed (default 0; trial n uses seed + n)")
    p.add_argument("--sampler", help="tpe (default), random, cmaes, qmc, gp")
    p.add_argument("--pruner", help="median (default), percentile, hyperband, ...")
    p.add_argument("--heartbeat-interval", type=int, help="seconds between heartbeats (RDB)")
    p.add_argument("--grace-period", type=int, help="seconds before a silent trial is stale")
    storage_arg(p)
    device_arg(p)
    allow_arg(p)

    p = add("landscape", _cmd_landscape, "loss-vs-hyperparameter sweeps of a study spec")
    p.add_argument("spec")
    p.add_argument("--n-jobs", type=int, help="sweep worker processes (default: the spec's or 1)")
    storage_arg(p)

    about = "how early the ranking of a sweep's or proxy study's configurations settles"
    p = add("horizon", _cmd_horizon, about)
    p.add_argument("name", help="a landscape sweep or a proxy study in the storage")
    p.add_argument("--min-correlation", type=float, help="Spearman threshold (default 0.9)")
    p.add_argument("--max-regret", type=float, help="regret threshold (default 0.02)")
    p.add_argument("--out", help="figure path without extension (default studies/horizon-NAME)")
    storage_arg(p)

    p = add("dashboard", _cmd_dashboard, "start optuna-dashboard on the storage")
    p.add_argument("storage", nargs="?", default=None)
    p.add_argument("--host", help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="TCP port (default 8080)")

    p = add(
        "coord-check",
        _cmd_coord_check,
        "layer output and Adam-update sizes over K under µP and SP (a spec's problem and model)",
    )
    p.add_argument("spec")
    p.add_argument("--modes", type=_int_list, help="K values, e.g. 4,8,16,32 (default: spec)")
    p.add_argument(
        "--widths",
        type=_int_list,
        help="sweep width instead of K, e.g. 8,16,32,64 (then --modes gives one K)",
    )
    p.add_argument("--steps", type=int, help="Adam steps recorded (default 3)")
    p.add_argument("--lr", type=float, help="base learning rate (default 1e-2)")
    p.add_argument("--seeds", type=int, help="number of seeds (default: the spec's or 3)")
    p.add_argument("--batch-size", type=int, help="batch size (default 16)")
    p.add_argument("--out", help="folder for the JSON and the HTML figure")
    device_arg(p)

    p = add("demo", _cmd_demo, "Burgers end to end: proxy search, µP transfer, target run")
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    storage_arg(p)
    device_arg(p)
    return parser


_DISK_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EDQUOT: "the disk quota is exceeded",
}
_DISK_WORDS = ("database or disk is full", "readonly database", "disk i/o error")


def _disk_problem(exc: BaseException) -> str | None:
    """One line for a full, read-only or unwritable disk met while writing; else ``None``."""
    for err in (exc, exc.__cause__, exc.__context__):
        if isinstance(err, OSError) and err.errno in _DISK_ERRNOS:
            where = f" ({err.filename})" if err.filename else ""
            return (
                f"cannot write{where}: {_DISK_ERRNOS[err.errno]}; free space or choose "
                "another --storage / cache folder, then run the same command again to resume"
            )
        text = str(err).lower() if err is not None else ""
        for words in _DISK_WORDS:
            if words in text:
                return (
                    f"the storage could not be written ({words}); free space or choose another "
                    "--storage, then run the same command again to resume"
                )
    return None


def _storage_lost(exc: BaseException) -> str | None:
    """One line for a database that stopped answering mid-command; else ``None``."""
    error = storage_error(exc)
    if error is None:
        return None
    from transfer_tune.search.storage import redact_url

    first = (str(error).splitlines() or [type(error).__name__])[0]
    return (
        f"the storage stopped answering ({redact_url(first)}); when it is back, run the same "
        "command again to resume"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``transfer-tune`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with quiet_failures():  # Optuna's tracebacks of a Ctrl-C or a lost storage
            return int(args.func(args) or 0)
    except TransferTuneError as exc:
        print(f"transfer-tune: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        reason = _disk_problem(exc) or _storage_lost(exc)
        if reason is None:
            raise
        print(f"transfer-tune: error: {reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("transfer-tune: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
