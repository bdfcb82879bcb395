"""A tour of the public API: the model, the µP rule, the data, tune-then-transfer, the dashboard.

    python examples/quickstart.py --quick     # tiny sizes: a few minutes on a laptop CPU
    python examples/quickstart.py             # Burgers, K = 4 proxy -> K = 32 target

Everything lands in one Optuna storage (``--storage``); open it afterwards with the command
the script prints (``transfer-tune dashboard STORAGE``).
"""

from __future__ import annotations

import argparse

import torch

from pdes import get_problem
from transfer_tune import dashboard_command, tune_then_transfer
from transfer_tune.model import FNO
from transfer_tune.parametrization import get_parametrization
from transfer_tune.report import (
    annotate_proxy_study,
    read_proxy_history,
    save_figure,
    tuning_history_figure,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes")
    parser.add_argument("--storage", default="studies/quickstart.db")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    url = args.storage  # a file path, sqlite:///, journal: or postgresql:// URL

    # 1. The model knows nothing of µP; the parametrization initialises it and sets the rates.
    model = FNO(dim=1, modes=32, width=32, n_layers=4, in_channels=1, out_channels=1)
    mup = get_parametrization("mup", base_modes=4)
    mup.initialize(model, generator=torch.Generator().manual_seed(0))
    print("µP relative to K_base = 4, for a K = 32 model (init std and lr multipliers):")
    for row in mup.table(model):
        if row.name.startswith(("layers.0.", "lifting.")):
            print(
                f"  {row.name:<28} {row.role:<10} init std {row.init_std:.4f}  "
                f"lr x {row.lr_multiplier:.4f}"
            )
    groups = mup.param_groups(model, lr=1e-3, betas=(0.9, 0.999))
    print("  Adam groups:", {g["role"]: f"{g['lr']:.2e}" for g in groups})

    # 2. Data: normalised tensors (N, C, *grid), generated once and cached on disk.
    sizes = (
        {"resolution": 64, "n_train": 128, "n_val": 32, "n_test": 64}
        if args.quick
        else {"resolution": 256, "n_train": 512, "n_val": 100, "n_test": 200}
    )
    problem = get_problem("burgers", **sizes)
    x, y = problem.dataset("train")
    print(f"\nBurgers: x {tuple(x.shape)}, y {tuple(y.shape)} (normalised)")

    # 3. Tune the K = 4 proxy with Optuna, transfer with µP, train the large-K target once.
    result = tune_then_transfer(
        problem="burgers",
        proxy_modes=4,
        target_modes=16 if args.quick else 32,
        width=16 if args.quick else 32,
        n_layers=2 if args.quick else 4,
        n_trials=6 if args.quick else 30,
        proxy_epochs=3 if args.quick else 20,
        target_epochs=5 if args.quick else 60,
        storage=url,
        study_name="quickstart-proxy" + ("-quick" if args.quick else ""),
        device=args.device,
        problem_overrides=sizes,
    )
    print()
    print(result)
    print("best proxy values:", result.proxy_params)
    print("compute:", {k: round(v, 3) for k, v in result.compute.items()})

    # 4. Notes, figures and artifacts for optuna-dashboard; the tuning history as a file.
    annotate_proxy_study(url, result.study.study_name)
    history = read_proxy_history(url, result.study.study_name)
    saved = save_figure(tuning_history_figure(history), "figures/quickstart")
    print("\nwrote", ", ".join(map(str, saved.files)))
    print("open the dashboard:", dashboard_command(url))


if __name__ == "__main__":
    main()
