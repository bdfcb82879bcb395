"""Checks made before any training: the target's K, epochs and evaluation grid, the data,
and whether a training run can fit in memory at all.

Everything here runs before the proxy search starts (``tune_then_transfer``) and before a
target run opens its study (``run_target``), so a mistake costs seconds, not a search.

The memory estimate of one training run (:func:`training_parts`), in bytes, on top of the
dataset's (:func:`pdes.budget.problem_bytes`)::

    parameters   4 x P x 4         P real numbers (flops.parameter_count): weights, gradients
                                   and Adam's two moments, float32
    activations  4 x B x N x (ACTIVATIONS_PER_LAYER x m x L + 2 x projection_width)
                                   B = batch, N = grid points, m = width, L = n_layers
    spectra      8 x B x m x M x 2 x L   M kept modes (complex64 in and out of each layer)

An order of magnitude for refusing what cannot possibly fit, not a measurement.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from pdes.budget import check_memory, known_channels, problem_bytes
from pdes.checks import as_int
from pdes.spectrum import added_energy
from transfer_tune.core.flops import parameter_count
from transfer_tune.core.model import check_modes, mode_shape
from transfer_tune.errors import TransferTuneError


class TargetEnergyWarning(UserWarning):
    """The target's K keeps almost no energy of the target that the proxy's K does not."""


#: Below this added fraction of the target's energy the target's K has little to learn.
ADDED_ENERGY_MIN = 1e-3


def energy_warning(added: float | None, target_modes: int) -> str | None:
    """One line when ``added`` (see :func:`added_target_energy`) is below ``ADDED_ENERGY_MIN``."""
    if added is None or added >= ADDED_ENERGY_MIN:
        return None
    return (
        f"warning: K = {target_modes} adds only {added:.1e} of the target's energy beyond the "
        f"proxy's K (< {ADDED_ENERGY_MIN:g}): the larger model has little more to learn on this "
        "problem (transfer-tune data NAME --spectrum shows it)"
    )


def added_target_energy(problem: Any, proxy_modes: int, target_modes: int) -> float | None:
    """:func:`pdes.spectrum.added_energy` on the train split; ``None`` if it cannot be had."""
    try:
        return float(added_energy(problem, proxy_modes, target_modes))
    except (TransferTuneError, ValueError, TypeError, RuntimeError):
        return None


def _empty_split(problem: Any, split: str) -> str:
    return f"the {split} split of {problem.name!r} is empty; give n_{split} >= 1"


def check_split_sizes(problem: Any, splits: tuple[str, ...] = ("train", "val", "test")) -> None:
    """Refuse an empty split from the problem's sizes alone, before any data is read.

    The workflow needs every split (``transfer-tune data`` applies the same rule up front).

    Raises
    ------
    TransferTuneError
        Naming the split and the option to raise.
    """
    for split in splits:
        if getattr(problem, f"n_{split}") < 1:
            raise TransferTuneError(_empty_split(problem, split))


def check_data(problem: Any, splits: tuple[str, ...] = ("train", "val", "test")) -> None:
    """Refuse empty or non-finite splits before any training (a NaN would pass for divergence).

    Raises
    ------
    TransferTuneError
        Naming the split and what is wrong with it.
    """
    check_split_sizes(problem, splits)
    for split in splits:
        x, y = problem.dataset(split)
        if x.shape[0] == 0:
            raise TransferTuneError(_empty_split(problem, split))
        for label, tensor in (("inputs", x), ("targets", y)):
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise TransferTuneError(
                    f"the {split} split of {problem.name!r} holds {bad} NaN or inf value(s) in "
                    f"its {label}; clean the data (a NaN would look like a diverged training)"
                )


def check_target_args(target_modes: Any, epochs: Any = None, eval_resolution: Any = None) -> None:
    """The target's K (an integer >= 2), epochs (positive) and evaluation grid (>= 2 points).

    Cheap, and needs neither the problem nor the data: ``transfer --plan-only`` checks these
    before it prints the plan.

    Raises
    ------
    TransferTuneError
        Naming the argument and the rule.
    """
    as_int(target_modes, "target_modes (K of the target)", minimum=2)
    if epochs is not None:
        as_int(epochs, "target epochs")
    if eval_resolution is not None:
        as_int(eval_resolution, "eval_resolution", minimum=2)


def check_target_k(proxy_modes: int, target_modes: int, allow_smaller: bool = False) -> None:
    """Refuse a target K below the proxy's unless ``allow_smaller``.

    µP transfers the tuned values upward from ``K_base`` (the proxy's K); a smaller target
    is a different experiment (tune a proxy at that K instead), so it is an error unless the
    caller asks for it explicitly. The same K as the proxy's is allowed (µP is then SP).

    Raises
    ------
    TransferTuneError
        With both ways out.
    """
    if target_modes < proxy_modes and not allow_smaller:
        raise TransferTuneError(
            f"the target's K = {target_modes} is smaller than the proxy's K = {proxy_modes}: "
            "µP transfers the tuned values upward from the proxy's K; tune a proxy at "
            f"K <= {target_modes}, or pass allow_smaller=True (CLI: --allow-smaller) to train "
            "the smaller model with the transferred values anyway"
        )


def check_target(
    problem: Any,
    target_modes: Any,
    epochs: Any = None,
    eval_resolution: Any = None,
    *,
    model: dict | None = None,
    batch_size: int = 1,
) -> None:
    """Every check on the target run that can be made before the proxy search starts.

    ``target_modes`` must be an integer K >= 2 that the training grid (and the evaluation grid)
    allows, ``epochs`` a positive integer (or ``None``: the proxy's), ``eval_resolution`` a grid
    the problem can give; with ``model`` (the target's shape: ``dim``, ``width``,
    ``n_layers``, channels) its training at ``batch_size`` must fit in memory
    (:func:`check_training_memory`); the data of every split must be non-empty and finite.

    Raises
    ------
    TransferTuneError
        With the fix in the message.
    """
    check_target_args(target_modes, epochs, eval_resolution)
    check_modes(target_modes, problem.grid_shape)
    fine = problem.fine_test_problem(eval_resolution)
    if fine is not None:
        check_modes(target_modes, fine.grid_shape)
    if model is not None:
        config = {**model, "modes": target_modes}
        check_training_memory(problem, config, batch_size, "the target run")
    check_data(problem)
    if fine is not None and getattr(problem, "is_file", False):
        check_data(fine, ("test",))  # a user's fine test file: read and checked now


#: Float32 tensors of ``width`` channels kept per Fourier layer for the backward pass (input,
#: inverse FFT, pointwise branch, sum, GELU, and one transform buffer).
ACTIVATIONS_PER_LAYER = 6


def training_parts(config: dict, grid: Any, batch: int) -> dict[str, float]:
    """The memory of one training step of an FNO ``config`` on ``grid`` (module docstring)."""
    m, layers = int(config["width"]), int(config["n_layers"])
    points = float(math.prod(int(n) for n in grid))
    n_modes = float(math.prod(mode_shape(int(config["modes"]), int(config["dim"]))))
    proj = int(config.get("projection_width", 128))
    count = parameter_count(config)
    label = f"width {m}, n_layers {layers}, K {config['modes']}"
    return {
        f"{count:,} parameters ({label}) with gradients and Adam state": 16.0 * count,
        f"activations of a batch of {batch}": 4.0
        * batch
        * points
        * (ACTIVATIONS_PER_LAYER * m * layers + 2 * proj),
        "spectra": 16.0 * batch * m * n_modes * layers,
    }


def training_bytes(config: dict, grid: Any, batch: int) -> float:
    """:func:`training_parts` summed: bytes of one training step, data not included."""
    return sum(training_parts(config, grid, batch).values())


def estimated_shape(problem: Any, modes: Any, width: Any, n_layers: Any) -> dict[str, int]:
    """An FNO's shape for :func:`check_training_memory`, checked, without reading any data."""
    in_channels, out_channels = known_channels(problem)
    return dict(
        dim=problem.dim,
        modes=as_int(modes, "modes (K)", minimum=2),
        width=as_int(width, "width"),
        n_layers=as_int(n_layers, "n_layers"),
        in_channels=in_channels,
        out_channels=out_channels,
    )


def check_training_memory(problem: Any, config: dict, batch: int, what: str) -> None:
    """Refuse a training run whose data and model (:func:`training_parts`) cannot fit.

    Raises
    ------
    TransferTuneError
        Naming the estimate, its parts and what to lower (the larger of data and model).
    """
    data = problem_bytes(problem)
    model = training_parts(config, problem.grid_shape, batch)
    if sum(data.values()) > sum(model.values()):
        fix = "lower n_train / n_val / n_test or the resolution"
    else:
        fix = "lower width, n_layers, K or the batch size"
    check_memory(sum(data.values()) + sum(model.values()), what, {**data, **model}, fix)
