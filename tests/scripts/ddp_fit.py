"""Train a tiny FNO with fit(); under torchrun the global batch is split across ranks.

Prints the loss curve as JSON on rank 0. Used by tests/test_recovery.py.
"""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from tests.synthetic import operator_task  # noqa: E402
from transfer_tune.core import distributed
from transfer_tune.core.hparams import HParams
from transfer_tune.core.model import FNO
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.core.train import TrainData, fit


def main() -> None:
    torch.set_num_threads(1)
    distributed.init_from_env(torch.device("cpu"))
    model = FNO(dim=1, modes=8, width=8, n_layers=2, projection_width=16)
    mup = get_parametrization("mup", base_modes=4)
    mup.initialize(model, generator=torch.Generator().manual_seed(0))
    data = TrainData(*operator_task(36, 32, 0), *operator_task(8, 32, 1))
    hp = HParams(lr=1e-2, batch_size=int(sys.argv[1]), clip="value", clip_value=0.01)
    result = fit(model, data, hp, epochs=3, parametrization=mup, device="cpu", seed=1)
    if distributed.is_main():
        curve = [[r.train_loss, r.val_loss] for r in result.history]
        print(json.dumps({"world": distributed.world_size(), "curve": curve}))


if __name__ == "__main__":
    main()
