"""Checks made before any training: the target's K, epochs and evaluation grid, the data.

Everything here runs before the proxy search starts (``tune_then_transfer``) and before a
target run opens its study (``run_target``), so a mistake costs seconds, not a search.
"""

from __future__ import annotations

from typing import Any

import torch

from pdes.checks import as_int
from pdes.spectrum import added_energy
from transfer_tune.core.model import check_modes
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


def check_data(problem: Any, splits: tuple[str, ...] = ("train", "val", "test")) -> None:
    """Refuse empty or non-finite splits before any training (a NaN would pass for divergence).

    Raises
    ------
    TransferTuneError
        Naming the split and what is wrong with it.
    """
    for split in splits:
        x, y = problem.dataset(split)
        if x.shape[0] == 0:
            raise TransferTuneError(
                f"the {split} split of {problem.name!r} is empty; give n_{split} >= 1"
            )
        for label, tensor in (("inputs", x), ("targets", y)):
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise TransferTuneError(
                    f"the {split} split of {problem.name!r} holds {bad} NaN or inf value(s) in "
                    f"its {label}; clean the data (a NaN would look like a diverged training)"
                )


def check_target(
    problem: Any,
    target_modes: Any,
    epochs: Any = None,
    eval_resolution: Any = None,
) -> None:
    """Every check on the target run that can be made before the proxy search starts.

    ``target_modes`` must be an integer K >= 2 that the training grid (and the evaluation grid)
    allows, ``epochs`` a positive integer (or ``None``: the proxy's), ``eval_resolution`` a grid
    the problem can give; the data of every split must be non-empty and finite.

    Raises
    ------
    TransferTuneError
        With the fix in the message.
    """
    as_int(target_modes, "target_modes (K of the target)", minimum=2)
    check_modes(target_modes, problem.grid_shape)
    if epochs is not None:
        as_int(epochs, "target epochs")
    if eval_resolution is not None:
        as_int(eval_resolution, "eval_resolution", minimum=2)
    fine = problem.fine_test_problem(eval_resolution)
    if fine is not None:
        check_modes(target_modes, fine.grid_shape)
    check_data(problem)
    if fine is not None and getattr(problem, "is_file", False):
        check_data(fine, ("test",))  # a user's fine test file: read and checked now
