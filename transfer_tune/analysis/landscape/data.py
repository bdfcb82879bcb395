"""The data of a sweep: a problem (through :func:`pdes.load_problem`) or explicit tensors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from pdes import load_problem
from transfer_tune.core.train import TrainData
from transfer_tune.errors import TransferTuneError


@dataclass
class SweepData:
    """Training, validation and test tensors, with what the studies record about them."""

    train: TrainData
    x_test: torch.Tensor
    y_test: torch.Tensor
    dim: int
    in_channels: int
    out_channels: int
    problem: dict[str, Any]

    @property
    def grid(self) -> tuple[int, ...]:
        """The spatial grid of the training inputs."""
        return tuple(self.train.x_train.shape[2:])


def load_data(
    problem: Any,
    test_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    problem_overrides: Mapping[str, Any] | None = None,
) -> SweepData:
    """The data of a sweep.

    Parameters
    ----------
    problem : str, dict, pdes.Problem or TrainData
        Anything :func:`pdes.load_problem` takes (its train, val and test splits are used), or
        explicit tensors.
    test_data : pair of tensors, optional
        ``(x_test, y_test)`` with a :class:`TrainData`; without it the validation split is
        the test split.
    problem_overrides : mapping, optional
        Laid over a problem (see :func:`pdes.load_problem`); not with tensors.
    """
    if isinstance(problem, TrainData):
        return _from_tensors(problem, test_data, problem_overrides)
    if test_data is not None:
        raise TransferTuneError("test_data goes with TrainData; a Problem has its own test split")
    if not isinstance(problem, (str, Mapping)) and not (
        hasattr(problem, "dataset") and hasattr(problem, "config")
    ):
        raise TransferTuneError(
            f"problem must be a problem name, a pdes.Problem or a TrainData, got "
            f"{type(problem).__name__}"
        )
    prob = load_problem(problem, problem_overrides)
    xt, yt = prob.dataset("test")
    return SweepData(
        train=TrainData.from_problem(prob),  # with the residual, for loss="pino" sweeps
        x_test=xt,
        y_test=yt,
        dim=int(prob.dim),
        in_channels=int(prob.in_channels),
        out_channels=int(prob.out_channels),
        problem=dict(prob.config()),
    )


def _from_tensors(
    data: TrainData,
    test_data: tuple[torch.Tensor, torch.Tensor] | None,
    problem_overrides: Mapping[str, Any] | None,
) -> SweepData:
    if problem_overrides:
        raise TransferTuneError("problem_overrides apply to a problem name, not to tensors")
    if test_data is None:
        if data.x_val is None:
            raise TransferTuneError(
                "give test_data=(x_test, y_test) or validation tensors in the TrainData: "
                "a sweep reports a final test loss"
            )
        x_test, y_test = data.x_val, data.y_val
    else:
        x_test, y_test = test_data
    x = data.x_train
    TrainData(x, data.y_train, x_test, y_test)  # validates the test tensors
    return SweepData(
        train=data,
        x_test=x_test,
        y_test=y_test,
        dim=x.dim() - 2,
        in_channels=int(x.shape[1]),
        out_channels=int(data.y_train.shape[1]),
        problem={
            "name": "tensors",
            "n_train": int(x.shape[0]),
            "n_val": int(data.x_val.shape[0]) if data.x_val is not None else 0,
            "n_test": int(x_test.shape[0]),
            "grid": list(x.shape[2:]),
        },
    )
