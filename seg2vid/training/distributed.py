"""Multi-process training with PyTorch's own engine: DistributedDataParallel under ``torchrun``.

The same ``seg2vid train`` runs alone or as one of N processes::

    seg2vid train --preset tiny --steps 1000                                  # one process
    torchrun --nproc_per_node 8 -m seg2vid train --preset paper --amp bf16    # 8 GPUs
    torchrun --nproc_per_node 2 -m seg2vid train --device cpu --preset tiny   # 2 CPU processes

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in
every process; :func:`setup` reads them, joins the process group (NCCL on CUDA, gloo on the CPU)
and picks the process's device (``cuda:LOCAL_RANK``). The batch size is PER PROCESS (the
authors: 8 per GPU, 8 GPUs), so the effective batch is ``batch_size * WORLD_SIZE``; DDP averages
the gradients, so every process takes the same optimiser step and the parameters stay identical.
Only rank 0 writes checkpoints, logs, samples and the summary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from seg2vid.utils import pick_device

__all__ = ["ProcessInfo", "any_flag", "process_info", "setup", "teardown"]


@dataclass(frozen=True)
class ProcessInfo:
    """Where this process stands in a (possibly one-process) run.

    Attributes:
        rank: this process's index, 0 .. world_size - 1 (0 when alone).
        world_size: number of processes (1 when alone).
        local_rank: index on this machine (picks the GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """True under ``torchrun`` with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True for the process that writes files (rank 0)."""
        return self.rank == 0


def process_info(environ: dict[str, str] | None = None) -> ProcessInfo:
    """The rank, world size and local rank from ``torchrun``'s environment variables (1 process
    when they are absent)."""
    env = os.environ if environ is None else environ
    try:
        return ProcessInfo(
            int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))
        )
    except ValueError as err:
        raise ValueError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers: {err}") from None


def setup(device: str | None) -> tuple[torch.device, ProcessInfo]:
    """Join the process group when launched by ``torchrun`` and choose this process's device.

    Args:
        device: the requested device (``None`` = the best available). Under ``torchrun`` a CUDA
            request becomes ``cuda:LOCAL_RANK``.
    Returns:
        (device, process info). Alone, this only picks the device.
    """
    info = process_info()
    chosen = pick_device(device)
    if not info.distributed:
        return chosen, info
    if chosen.type == "cuda":
        chosen = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(chosen)
    elif chosen.type != "cpu":
        raise ValueError(f"multi-process training runs on CUDA (NCCL) or the CPU (gloo), not {chosen}")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return chosen, info


def teardown(wait: bool = True) -> None:
    """Leave the process group (a no-op when there is none).

    ``wait``: all ranks leave together (a barrier first). A rank that left while rank 0 was still
    writing its last checkpoint and samples could abort at exit under gloo ("terminate called
    without an active exception", seen in 3 of 4 runs of lesson 05's torchrun cell). Pass False
    when this rank is failing: the others are then inside another collective and would wait."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            try:
                dist.barrier()
            except RuntimeError:  # a peer is gone already (it failed): leave anyway
                pass
        dist.destroy_process_group()


def any_flag(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is True in ANY process (an all-reduce; alone, ``flag`` itself).

    Every process must call it at the same point: used so that all ranks stop together (a
    SIGTERM, a non-finite loss) instead of one waiting forever for the others' gradients.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)
