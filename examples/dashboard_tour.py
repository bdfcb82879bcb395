"""What optuna-dashboard shows of a transfer-tune storage, and how to open it.

    python examples/dashboard_tour.py                    # make a tiny storage, annotate, serve
    python examples/dashboard_tour.py --storage studies/transfer_tune.db   # your own studies
    python examples/dashboard_tour.py --no-serve         # annotate and print, do not serve

One storage holds every record, linked by user attributes:

* the proxy study (``kind = "proxy"``): one trial per tried configuration, pruned and
  diverged trials included; its note has the best values, the µP rescale table, the target
  result and the compute fraction; the tuning-history figure renders on its page;
* the target study (``kind = "target"``, ``proxy_study``): one trial whose intermediate
  values are the per-epoch validation losses; the checkpoint and plan are artifacts;
* landscape studies (``kind = "landscape"``, one per parametrization and K): the landscape
  and optimum-vs-K figures, and notes with the optimum shifts and verdicts.
"""

from __future__ import annotations

import argparse

import optuna
from optuna_dashboard import get_note

from transfer_tune import dashboard_command, get_storage
from transfer_tune.report import annotate_all, serve


def make_tiny_storage(url: str, device: str) -> None:
    """A quick tune-then-transfer and a quick landscape sweep on a small Burgers problem."""
    from transfer_tune import sweep, tune_then_transfer

    sizes = {"resolution": 64, "n_train": 96, "n_val": 32, "n_test": 32}
    tune_then_transfer(
        problem="burgers",
        proxy_modes=4,
        target_modes=16,
        width=16,
        n_layers=2,
        n_trials=6,
        proxy_epochs=2,
        target_epochs=4,
        storage=url,
        study_name="tour-proxy",
        device=device,
        problem_overrides=sizes,
    )
    sweep(
        "burgers",
        modes=[4, 8, 16],
        values=[2.0**k for k in range(-12, -4)],
        seeds=[0],
        epochs=2,
        storage=url,
        width=16,
        n_layers=2,
        hparams={"batch_size": 16},
        sweep_name="tour-lr",
        problem_overrides=sizes,
        device=device,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="studies/tour.db")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--no-serve", action="store_true")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    url = args.storage  # a file path, sqlite:///, journal: or postgresql:// URL

    if not get_storage(url).get_all_studies():
        print(f"{url} is empty: making a tiny tune-then-transfer and a landscape sweep first")
        make_tiny_storage(url, args.device)

    done = annotate_all(url)
    print(f"annotated proxy studies {done['proxy']} and sweeps {done['landscape']}\n")
    store = get_storage(url)
    for summary in store.get_all_studies():
        study = optuna.load_study(study_name=summary.study_name, storage=store)
        kind = study.user_attrs.get("kind", "?")
        note = get_note(study).strip().splitlines()
        print(
            f"[{kind:9}] {study.study_name}: {len(study.trials)} trials; "
            f"note: {note[0] if note else '(none)'}"
        )
    print(
        f"\nopen it yourself (figures, checkpoints: its --artifact-dir): {dashboard_command(url)}"
    )
    if not args.no_serve:
        serve(url, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
