"""torch.distributed for the target run: set-up under ``torchrun``, rank queries, batch split.

``torchrun --nproc_per_node N -m transfer_tune.cli transfer STUDY --modes K`` runs the target on
N processes (gloo on CPU, nccl on GPU). The global batch size is the transferred one, split
across ranks; only rank 0 writes to the storage and the checkpoint.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """Whether a process group is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Whether this process writes results (rank 0)."""
    return rank() == 0


def init_from_env(device: torch.device | None = None) -> bool:
    """Initialise the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1).

    Uses nccl when ``device`` is CUDA, gloo otherwise. Returns whether it is distributed.
    """
    if is_distributed() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return is_distributed()
    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return True


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (no-op when not distributed)."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def local_part(indices: torch.Tensor) -> tuple[torch.Tensor, float]:
    """This rank's contiguous share of a global batch of indices, and its weight.

    A batch smaller than the number of ranks leaves some ranks without samples; they run one
    sample with weight 0 so that every rank takes part in DDP's gradient all-reduce.
    """
    if not is_distributed():
        return indices, 1.0
    local = indices.tensor_split(world_size())[rank()]
    if local.numel() == 0:
        return indices[:1], 0.0
    return local, 1.0
