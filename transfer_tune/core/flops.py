"""FLOP estimates of FNO training, from the model's shapes and the epochs actually run.

Counts multiply-adds as 2 FLOPs, a length-n complex FFT as ``5 n log2 n`` and a real one as
half of that, a training step's forward + backward as 3x the forward pass, and an Adam update
as :data:`ADAM_FLOPS_PER_PARAMETER` FLOPs per real number of the parameters (a complex entry is
two). It is an estimate for comparing proxy and target cost, not a measurement.

The shapes are those of transfer-tune's FNO (a config from ``FNO.config()``). A config of
another model kind (``"neuralop"``, a factory) is counted as transfer-tune's FNO with the same
``dim``, ``modes``, ``width``, ``n_layers`` and channels: close for neuraloperator's FNO (its
mode convention and projection differ), unknown for a custom factory.

Storage-free: :func:`search_flops` takes plain :class:`TrialEpochs` records (what each trial
ran); the caller reads them from its study
(:func:`transfer_tune.search.compute.compute_summary` does).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from transfer_tune.core.model import mode_shape


def _fft_flops(grid: Sequence[int], modes: int) -> float:
    """Real FFT along the last axis, then complex FFTs of the kept columns along the others."""
    points = math.prod(grid)
    kept_shape = mode_shape(modes, len(grid))
    flops = 2.5 * points * math.log2(max(grid[-1], 2))
    kept = points // grid[-1] * kept_shape[-1]  # columns left after the last axis is cut to K
    for n, rows in zip(grid[:-1], kept_shape[:-1], strict=True):
        flops += 5.0 * kept * math.log2(max(n, 2))
        kept = kept // n * min(rows, n)
    return flops


def forward_flops(config: dict, grid: Sequence[int], batch: int = 1) -> float:
    """FLOPs of one forward pass of an FNO with constructor arguments ``config``."""
    dim, k, m = config["dim"], config["modes"], config["width"]
    points = math.prod(grid)
    lift_in = config["in_channels"] + (dim if config.get("grid_features", True) else 0)
    proj = config.get("projection_width", 128)
    n_modes = math.prod(mode_shape(k, dim))
    per_layer = (
        2.0 * m * m * points  # pointwise W
        + 2.0 * m * _fft_flops(grid, k)  # forward and inverse transforms of m channels
        + 8.0 * m * m * n_modes  # complex per-mode contraction
        + 8.0 * m * points  # bias, add, GELU
    )
    flops = 2.0 * lift_in * m * points + config["n_layers"] * per_layer
    flops += 2.0 * points * (m * proj + proj * config["out_channels"])
    return batch * flops


def train_step_flops(config: dict, grid: Sequence[int], batch: int) -> float:
    """FLOPs of one training step (forward + backward ~ 3x forward) on ``batch`` samples."""
    return 3.0 * forward_flops(config, grid, batch)


#: FLOPs of one Adam update per real parameter: two moment updates (3 + 4), the square root,
#: the epsilon, the division and the scaled step (5); element-wise clipping would add ~1.
ADAM_FLOPS_PER_PARAMETER = 12


def parameter_count(config: dict) -> int:
    """Real numbers in the parameters of an FNO with constructor arguments ``config``.

    A complex spectral weight counts twice (real and imaginary parts are what Adam updates).
    """
    dim, m = config["dim"], config["width"]
    lift_in = config["in_channels"] + (dim if config.get("grid_features", True) else 0)
    proj = config.get("projection_width", 128)
    n_modes = math.prod(mode_shape(config["modes"], dim))
    per_layer = 2 * n_modes * m * m + m * m + m  # spectral R (complex), pointwise W and bias
    return (
        lift_in * m
        + m
        + config["n_layers"] * per_layer
        + m * proj
        + proj
        + proj * config["out_channels"]
        + config["out_channels"]
    )


def optimizer_step_flops(config: dict) -> float:
    """FLOPs of one Adam update of every parameter."""
    return float(ADAM_FLOPS_PER_PARAMETER * parameter_count(config))


@dataclass(frozen=True)
class TrialEpochs:
    """What one training run (a search trial or the final run) actually ran.

    Parameters
    ----------
    batch_size : int
        Samples per step; the last step of an epoch takes the remainder.
    train_epochs : int
        Epochs trained, the epoch a pruned trial stopped after and a diverged trial's last one
        included.
    val_epochs : int, optional
        Validation passes run (default ``train_epochs``; one fewer when training diverged
        before the last epoch's validation).
    """

    batch_size: int
    train_epochs: int
    val_epochs: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.train_epochs < 0:
            raise ValueError(
                f"batch_size must be >= 1 and train_epochs >= 0, got {self.batch_size}, "
                f"{self.train_epochs}"
            )
        if self.val_epochs is not None and not 0 <= self.val_epochs <= self.train_epochs:
            raise ValueError(
                f"val_epochs must lie in [0, train_epochs = {self.train_epochs}], "
                f"got {self.val_epochs}"
            )


def run_flops(
    config: dict,
    grid: Sequence[int],
    n_train: int,
    n_val: int,
    run: TrialEpochs,
    n_test: int = 0,
) -> float:
    """FLOPs of one run: every training epoch (forward + backward of all ``n_train`` samples
    and one Adam update per batch), its validation passes over ``n_val`` samples, and an
    optional final forward pass over ``n_test`` test samples."""
    steps = -(-n_train // run.batch_size)
    val_epochs = run.train_epochs if run.val_epochs is None else run.val_epochs
    per_epoch = train_step_flops(config, grid, n_train) + steps * optimizer_step_flops(config)
    return (
        run.train_epochs * per_epoch
        + val_epochs * forward_flops(config, grid, n_val)
        + forward_flops(config, grid, n_test)
    )


def search_flops(
    trials: Iterable[TrialEpochs],
    config: dict,
    grid: Sequence[int],
    n_train: int,
    n_val: int,
) -> float:
    """Total training FLOPs of a search whose trials ran ``trials`` (pruned ones included).

    ``config`` is the searched model's constructor arguments (every trial trains the same
    shapes; only the hyperparameters change).
    """
    return sum(run_flops(config, grid, n_train, n_val, t) for t in trials)
