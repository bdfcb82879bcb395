"""FLOP estimates against counts worked out by hand for tiny configurations."""

import math

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from transfer_tune.core.flops import (
    ADAM_FLOPS_PER_PARAMETER,
    TrialEpochs,
    forward_flops,
    optimizer_step_flops,
    parameter_count,
    run_flops,
    search_flops,
    train_step_flops,
)
from transfer_tune.core.model import FNO
from transfer_tune.search.compute import trial_epochs

# Sizes of their own (not tests/sizes.py): the FLOPs and parameters below are counted by hand.
# 1-D, K = 2, width 2, one layer, no grid features, projection width 2, on a 4-point grid.
COUNTED_1D = dict(
    dim=1,
    modes=2,
    width=2,
    n_layers=1,
    in_channels=1,
    out_channels=1,
    projection_width=2,
    grid_features=False,
)
# By hand: rfft of 4 points 2.5 * 4 * log2 4 = 20; one layer = pointwise 2*2*2*4 = 32 +
# transforms 2 * 2 * 20 = 80 + contraction 8*2*2*2 = 64 + bias/GELU 8*2*4 = 64 = 240; lifting
# 2*1*2*4 = 16; projection 2*4*(2*2 + 2*1) = 48: 304 per sample.
FORWARD_1D = 304
# Parameters: lifting 1*2 + 2, layer 2*(2 modes)*2*2 (complex) + 2*2 + 2, projection 2*2 + 2
# and 2*1 + 1: 35 real numbers.
PARAMS_1D = 35

# 2-D, K = 2, width 1, one layer, grid features on (lift_in = 1 + 2), projection width 1, 4 x 4.
COUNTED_2D = dict(
    dim=2, modes=2, width=1, n_layers=1, in_channels=1, out_channels=1, projection_width=1
)
# By hand: rfft along the last axis 2.5*16*2 = 80, then 4 rows x 2 kept columns = 8 complex
# FFTs' worth 5*8*2 = 80: 160. Modes kept (2K-1) x K = 6. Layer 2*16 + 2*160 + 8*6 + 8*16 = 528;
# lifting 2*3*1*16 = 96; projection 2*16*(1 + 1) = 64: 688 per sample.
FORWARD_2D = 688


def test_forward_flops_by_hand():
    assert forward_flops(COUNTED_1D, (4,)) == FORWARD_1D
    assert forward_flops(COUNTED_1D, (4,), batch=3) == 3 * FORWARD_1D
    assert forward_flops(COUNTED_2D, (4, 4)) == FORWARD_2D
    assert train_step_flops(COUNTED_2D, (4, 4), 5) == 3 * 5 * FORWARD_2D


@pytest.mark.parametrize(
    "config",
    [
        COUNTED_1D,
        COUNTED_2D,
        dict(dim=2, modes=16, width=32, n_layers=4, in_channels=1, out_channels=1),
    ],
)
def test_parameter_count_matches_the_model(config):
    model = FNO(**config)
    real = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    assert parameter_count(model.config()) == real


def test_parameter_count_and_adam_by_hand():
    assert parameter_count(COUNTED_1D) == PARAMS_1D
    assert optimizer_step_flops(COUNTED_1D) == ADAM_FLOPS_PER_PARAMETER * PARAMS_1D == 420


def test_run_flops_by_hand():
    # 5 training samples in batches of 2 -> 3 steps per epoch; 3 epochs trained, 2 validated
    # over 3 samples, then a test pass over 4 samples.
    run = TrialEpochs(batch_size=2, train_epochs=3, val_epochs=2)
    per_epoch = 3 * FORWARD_1D * 5 + 3 * 420  # 4560 + 1260
    expected = 3 * per_epoch + 2 * FORWARD_1D * 3 + FORWARD_1D * 4
    assert expected == 20500
    assert run_flops(COUNTED_1D, (4,), 5, 3, run, n_test=4) == 20500
    # the batch size changes only the number of Adam updates
    one_batch = TrialEpochs(batch_size=5, train_epochs=3, val_epochs=2)
    assert run_flops(COUNTED_1D, (4,), 5, 3, run) - run_flops(
        COUNTED_1D, (4,), 5, 3, one_batch
    ) == (3 * (3 - 1) * 420)


def test_search_flops_sums_every_trial_by_hand():
    trials = [TrialEpochs(2, 3, 2), TrialEpochs(5, 1)]  # a pruned-looking and a 1-epoch trial
    # first: 3 * 5820 + 2 * 912 = 19284; second: (4560 + 420) + 912 = 5892
    assert search_flops(trials, COUNTED_1D, (4,), 5, 3) == 19284 + 5892 == 25176
    assert search_flops([], COUNTED_1D, (4,), 5, 3) == 0


def test_trial_epochs_rejects_impossible_records():
    with pytest.raises(ValueError, match="val_epochs"):
        TrialEpochs(8, 2, 3)
    with pytest.raises(ValueError, match="batch_size"):
        TrialEpochs(0, 2)


def test_trial_epochs_read_from_a_study():
    dist = {"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)}

    def trial(state, n_values, **attrs):
        return create_trial(
            state=state,
            value=0.5 if state == TrialState.COMPLETE else None,
            params={"lr": 1e-3},
            distributions=dist,
            intermediate_values={e: 1.0 for e in range(n_values)},
            user_attrs={"hparams": {"batch_size": 16}, **attrs},
        )

    study = optuna.create_study()
    study.add_trial(trial(TrialState.COMPLETE, 4))
    study.add_trial(trial(TrialState.PRUNED, 2))  # stopped after its second epoch
    div = "training loss became nan in epoch 1 at lr=0.1"
    study.add_trial(trial(TrialState.PRUNED, 1, diverged=div))  # trained 2, validated 1
    val_div = "validation loss became inf in epoch 0 at lr=0.3"
    study.add_trial(trial(TrialState.PRUNED, 0, diverged=val_div))  # trained 1, validated 1
    study.add_trial(trial(TrialState.FAIL, 0, surplus="full"))  # ran nothing
    assert trial_epochs(study) == [
        TrialEpochs(16, 4, 4),
        TrialEpochs(16, 2, 2),
        TrialEpochs(16, 2, 1),
        TrialEpochs(16, 1, 1),
    ]
    assert math.isclose(
        search_flops(trial_epochs(study), COUNTED_1D, (4,), 32, 8),
        sum(run_flops(COUNTED_1D, (4,), 32, 8, r) for r in trial_epochs(study)),
    )
