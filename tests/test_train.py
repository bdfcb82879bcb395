"""fit(): it learns, it is deterministic, it detects divergence, it rejects bad input."""

import pytest
import torch

from tests.synthetic import operator_task
from transfer_tune.core.hparams import HParams
from transfer_tune.core.model import FNO
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.core.train import TrainData, clip_gradients, evaluate, fit, relative_l2
from transfer_tune.errors import DivergenceError, TransferTuneError


def data() -> TrainData:
    x, y = operator_task(64, 64, 0)
    xv, yv = operator_task(32, 64, 1)
    return TrainData(x, y, xv, yv)


def model(seed: int = 0) -> FNO:
    m = FNO(dim=1, modes=8, width=16, n_layers=3, projection_width=32)
    get_parametrization("mup", base_modes=8).initialize(m, torch.Generator().manual_seed(seed))
    return m


def test_relative_l2_is_a_batch_mean():
    y = torch.ones(4, 1, 10)
    pred = y.clone()
    pred[0] *= 2  # error 1 on one sample of four
    assert relative_l2(pred, y).item() == pytest.approx(0.25)
    assert relative_l2(pred, y, reduction="sum").item() == pytest.approx(1.0)


def test_fit_lowers_test_loss_tenfold_and_is_deterministic():
    d = data()
    m = model()
    before = evaluate(m, d.x_val, d.y_val)
    hp = HParams(lr=1e-2, batch_size=8)
    result = fit(m, d, hp, epochs=25, device="cpu", seed=3)
    after = result.val_loss
    print(f"val loss {before:.4f} -> {after:.4f}")
    assert after < before / 10
    again = fit(model(), d, hp, epochs=25, device="cpu", seed=3)
    assert [r.val_loss for r in again.history] == [r.val_loss for r in result.history]
    assert [r.train_loss for r in again.history] == [r.train_loss for r in result.history]
    assert result.steps == 25 * 8


def test_lr_10_diverges():
    with pytest.raises(DivergenceError, match="lr=10"):
        fit(model(), data(), HParams(lr=10.0, batch_size=8), epochs=5, device="cpu")


def test_callbacks_see_every_epoch_and_can_stop():
    seen = []

    def cb(record):
        seen.append(record.epoch)
        return record.epoch == 2

    result = fit(model(), data(), HParams(lr=1e-3, batch_size=16), 10, [cb], device="cpu")
    assert seen == [0, 1, 2]
    assert result.stopped_early and len(result.history) == 3
    # the cosine schedule's reported rate decays from lr
    assert result.history[0].lr < 1e-3 and result.history[1].lr < result.history[0].lr


def test_clipping_by_value_handles_complex_and_by_norm_bounds_the_norm():
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.cfloat))
    p.grad = torch.tensor([0.5 + 0.001j, -0.2 - 0.3j, 0.004 + 0j])
    clip_gradients([p], "value", 0.01)
    assert torch.equal(p.grad, torch.tensor([0.01 + 0.001j, -0.01 - 0.01j, 0.004 + 0j]))
    q = torch.nn.Parameter(torch.zeros(2))
    q.grad = torch.tensor([3.0, 4.0])
    clip_gradients([q], "norm", 1.0)
    assert q.grad.norm().item() == pytest.approx(1.0, rel=1e-4)


def test_bad_input_is_our_error():
    d = data()
    with pytest.raises(TransferTuneError, match="larger than the training set"):
        fit(model(), d, HParams(batch_size=65), epochs=1, device="cpu")
    with pytest.raises(TransferTuneError, match="lr must be"):
        HParams(lr=float("nan"))
    with pytest.raises(TransferTuneError, match="beta2"):
        HParams(beta2=1.0)
    with pytest.raises(TransferTuneError, match="schedule"):
        HParams(schedule="linear")
    with pytest.raises(TransferTuneError, match="unknown hyperparameter"):
        HParams.from_dict({"learning_rate": 1e-3})
    with pytest.raises(TransferTuneError, match="disagree"):
        TrainData(torch.zeros(4, 1, 8), torch.zeros(3, 1, 8))
    with pytest.raises(TransferTuneError, match="epochs"):
        fit(model(), d, HParams(batch_size=8), epochs=0, device="cpu")
