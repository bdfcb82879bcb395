"""Train a tiny FNO with fit(); under torchrun the global batch is split across ranks.

Prints the loss curve as JSON on rank 0. Used by tests/test_recovery.py.
"""

import json
import math
import sys

import torch

from transfer_tune import distributed
from transfer_tune.model import FNO
from transfer_tune.parametrization import get_parametrization
from transfer_tune.train import HParams, TrainData, fit


def task(n: int, res: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    k = torch.arange(res // 2 + 1)
    coef = torch.randn(n, 1, res // 2 + 1, generator=g, dtype=torch.cfloat) / (1 + k) ** 1.5
    coef[..., 8:] = 0
    x = torch.fft.irfft(coef, n=res) * res
    y = torch.fft.irfft(coef * (2j * math.pi * k / (1 + (k / 4.0) ** 2)), n=res) * res / 10
    return x.float(), y.float()


def main() -> None:
    torch.set_num_threads(1)
    distributed.init_from_env(torch.device("cpu"))
    model = FNO(dim=1, modes=8, width=8, n_layers=2, projection_width=16)
    mup = get_parametrization("mup", base_modes=4)
    mup.initialize(model, generator=torch.Generator().manual_seed(0))
    data = TrainData(*task(36, 32, 0), *task(8, 32, 1))
    hp = HParams(lr=1e-2, batch_size=int(sys.argv[1]), clip="value", clip_value=0.01)
    result = fit(model, data, hp, epochs=3, parametrization=mup, device="cpu", seed=1)
    if distributed.is_main():
        curve = [[r.train_loss, r.val_loss] for r in result.history]
        print(json.dumps({"world": distributed.world_size(), "curve": curve}))


if __name__ == "__main__":
    main()
