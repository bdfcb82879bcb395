"""The figure of the µTransfer-FNO paper's kind: loss against learning rate for several K.

Under SP the loss-minimising learning rate drifts as K grows; under µP it stays put. This
script runs (or reads back) a landscape sweep, prints the optimum analysis, and writes the
figures (HTML always; PNG when a Chromium is installed) and the dashboard notes.

    python examples/plot_landscapes.py --quick          # a tiny Burgers sweep (a few minutes)
    python examples/plot_landscapes.py                  # a real one (2^(1/2) grid, 3 seeds)
    python examples/plot_landscapes.py --spec studies/burgers.toml   # the spec's [landscape]
    python examples/plot_landscapes.py --storage studies/transfer_tune.db --sweep NAME

A sweep is resumable: interrupt it and run the same command again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transfer_tune import (
    analyze_optimum,
    dashboard_command,
    list_sweeps,
    load_spec,
    load_sweep,
    spectral_norm_check,
    sweep,
    sweep_from_spec,
)
from transfer_tune.report import (
    annotate_sweep,
    heatmap_figure,
    landscape_figure,
    optimum_figure,
    save_figures,
    spectral_norm_figure,
)


def run_default_sweep(storage: str, quick: bool, n_jobs: int, device: str):
    """A Burgers sweep of the learning rate at K = 4 .. 32 (µP and SP, K_base = 4)."""
    if quick:
        sizes = {"resolution": 64, "n_train": 128, "n_val": 32, "n_test": 64}
        lrs = [2.0**k for k in range(-12, -3)]  # one octave apart
        modes, seeds, epochs, width, layers = [4, 8, 16], [0], 4, 16, 2
    else:
        sizes = {"resolution": 128, "n_train": 256, "n_val": 64, "n_test": 128}
        lrs = [2.0 ** (k / 2) for k in range(-26, -5)]  # 2^(1/2) apart, 2^-13 .. 2^-3
        modes, seeds, epochs, width, layers = [4, 8, 16, 32], [0, 1, 2], 10, 32, 4
    return sweep(
        "burgers",
        modes=modes,
        param="lr",
        values=lrs,
        parametrizations=("mup", "sp"),
        seeds=seeds,
        epochs=epochs,
        storage=storage,
        n_jobs=n_jobs,
        base_modes=4,
        width=width,
        n_layers=layers,
        hparams={"batch_size": 16},
        sweep_name="burgers-lr-quick" if quick else "burgers-lr",
        problem_overrides=sizes,
        device=device,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="studies/landscapes.db", help="Optuna storage")
    parser.add_argument("--sweep", help="plot this existing sweep instead of running one")
    parser.add_argument("--spec", type=Path, help="run the [landscape] of this study spec")
    parser.add_argument("--quick", action="store_true", help="a tiny sweep")
    parser.add_argument("--n-jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--loss", default="test_loss", choices=["test_loss", "train_loss"])
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output folder")
    args = parser.parse_args()

    url = args.storage  # a file path, sqlite:///, journal: or postgresql:// URL
    if args.sweep:
        if args.sweep not in list_sweeps(url):
            parser.error(f"no sweep {args.sweep!r} in {url}; there: {list_sweeps(url)}")
        result = load_sweep(url, args.sweep)
    elif args.spec:
        result = sweep_from_spec(load_spec(args.spec).raw, storage=url, n_jobs=args.n_jobs)
    else:
        result = run_default_sweep(url, args.quick, args.n_jobs, args.device)
    print(result.summary())

    analysis = analyze_optimum(result, loss=args.loss)
    print(analysis.markdown())

    figures = {
        args.out / f"{result.name}_landscape": landscape_figure(
            result, loss=args.loss, analysis=analysis
        ),
        args.out / f"{result.name}_optimum": optimum_figure(analysis),
        args.out / "spectral_norm_check": spectral_norm_figure(
            spectral_norm_check(modes=(4, 8, 16, 32, 64, 128, 256), widths=(1, 32), seeds=range(8))
        ),
    }
    if len(result.params) == 2:
        figures[args.out / f"{result.name}_heatmap"] = heatmap_figure(result, loss=args.loss)
    for saved in save_figures(figures, formats=("png",)):
        print("wrote", ", ".join(str(p) for p in saved.files))

    annotate_sweep(url, result.name, loss=args.loss)
    print(f"notes and figures are in the dashboard: {dashboard_command(url)}")


if __name__ == "__main__":
    main()
