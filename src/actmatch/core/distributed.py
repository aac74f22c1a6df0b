"""Data-parallel amortized training with ``torch.distributed`` (issue 6, item 4).

Launch with torchrun, the engine PyTorch ships (no home-made launcher): set
``launcher.train_explainer`` in params.yaml to ``torchrun --standalone --nproc_per_node=N`` and
``dvc repro`` runs ``train_explainer`` as N processes, one per GPU (NCCL), or on the CPU with gloo.

Equivalence with one process (tested with gloo and 2 processes): every rank walks the same
seeded permutation, takes a contiguous shard of each global batch, scales its loss sum by
``world / global_batch`` so that DDP's gradient *average* equals one process's batch mean, and
draws the rob backgrounds of the whole global batch from the shared generator before keeping its
rows (:class:`actmatch.explainer.losses.ShardedGenerator`), so the noise matches too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init_from_env", "current", "shard", "all_reduce_sum", "finish"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_from_env(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun describes in the environment (``WORLD_SIZE`` > 1); a plain
    ``python`` launch is one process and changes nothing. On CUDA each rank takes GPU
    ``LOCAL_RANK`` and NCCL; elsewhere gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size()), device


def current() -> DistInfo:
    """This process's rank and the world size (0 and 1 without a process group)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size())
    return DistInfo()


def shard(n: int, info: DistInfo) -> slice:
    """Rank ``info.rank``'s contiguous rows of a global batch of ``n`` (as ``torch.tensor_split``)."""
    q, r = divmod(n, info.world)
    start = info.rank * q + min(info.rank, r)
    return slice(start, start + q + (1 if info.rank < r else 0))


def all_reduce_sum(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Sum per-rank sums over ranks (every rank has the same keys, in sorted order)."""
    if info.world == 1:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return dict(zip(keys, t.cpu().tolist()))


def finish(info: DistInfo) -> None:
    """Wait for every rank, then leave the process group (no-op for one process)."""
    if info.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
