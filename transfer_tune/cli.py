"""The ``transfer-tune`` command line.

Every user mistake raises :class:`transfer_tune.errors.TransferTuneError`; the command prints
it on one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from transfer_tune.errors import TransferTuneError


def _cmd_demo(args: argparse.Namespace) -> int:
    import math

    import torch

    from transfer_tune.model import FNO
    from transfer_tune.parametrization import get_parametrization
    from transfer_tune.train import HParams, TrainData, fit

    torch.manual_seed(0)
    res, n = (64, 64) if args.quick else (256, 256)
    g = torch.Generator().manual_seed(0)

    def sample(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = torch.arange(res // 2 + 1)
        coef = torch.randn(count, 1, res // 2 + 1, generator=g, dtype=torch.cfloat)
        coef = coef / (1 + k) ** 2
        x = torch.fft.irfft(coef, n=res) * res
        y = torch.fft.irfft(coef * torch.exp(-0.1 * (2 * math.pi * k) ** 2 / 50), n=res) * res
        return x.float(), y.float()

    data = TrainData(*sample(n), *sample(n // 4))
    mup = get_parametrization("mup", base_modes=4)
    hp = HParams(lr=3e-3, batch_size=16)
    epochs = 3 if args.quick else 20
    for modes in (4, 16):
        model = FNO(dim=1, modes=modes, width=32, n_layers=4)
        mup.initialize(model, generator=torch.Generator().manual_seed(0))
        result = fit(model, data, hp, epochs, parametrization=mup, device="cpu", progress=True)
        print(f"K = {modes:3d} (µP, K_base = 4): val rel-L2 {result.val_loss:.4f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``transfer-tune``."""
    parser = argparse.ArgumentParser(
        prog="transfer-tune",
        description="Tune a small-K proxy FNO with Optuna, transfer to a large-K FNO with µP.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the end-to-end demo on embedded defaults")
    demo.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``transfer-tune`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TransferTuneError as exc:
        print(f"transfer-tune: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("transfer-tune: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
