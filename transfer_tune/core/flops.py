"""FLOP estimates of one FNO training step, from the model's shapes alone.

Counts multiply-adds as 2 FLOPs, a length-n complex FFT as ``5 n log2 n`` and a real one as
half of that, and a training step (forward + backward) as 3x the forward pass. It is an
estimate for comparing proxy and target cost, not a measurement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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
