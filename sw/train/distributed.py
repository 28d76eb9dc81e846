"""Data-parallel training with torch.distributed, launched by `torchrun`: ranks, batch shards, DDP, reductions.

Every rank walks the same seeded global batches (`sw.train.loop.batches`) and takes its
share `idx[rank::world]`, so the global batch is the same for any number of processes (what
`DistributedSampler` does to one epoch's permutation, applied to each global batch, so a
short last batch is shared too). The loss of a shard is summed and divided by the global
batch size times `world`, so DistributedDataParallel's gradient average equals the
one-process gradient of the mean loss. Parameters (weights, clips, the Fracbits precisions
λ) are broadcast from rank 0 when DDP wraps the model and stay equal because every rank
applies the same averaged gradient; buffers (BatchNorm statistics, the quantizers' clip-set
flags) are broadcast from rank 0 before every evaluation and checkpoint. Only rank 0 writes
checkpoints, logs and shows progress bars. Accuracy is counted on shards and summed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Context:
    """This process's place in the job (world 1: not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's share of a global batch of indices."""
        return idx[self.rank::self.world] if self.active else idx

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The model inside DistributedDataParallel (the model itself when not distributed)."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [device.index if device.index is not None else self.local_rank] if device.type == "cuda" else None
        return DDP(model, device_ids=ids)

    def all_sum(self, value: float, device: torch.device) -> float:
        """The sum of `value` over the ranks (float64)."""
        if not self.active:
            return float(value)
        import torch.distributed as dist
        t = torch.tensor([float(value)], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return float(t.item())

    def sync_buffers(self, model: nn.Module) -> None:
        """Broadcast every buffer of `model` from rank 0 (BatchNorm statistics differ after local updates)."""
        if not self.active:
            return
        import torch.distributed as dist
        for b in model.buffers():
            dist.broadcast(b.data, 0)


_CONTEXT = Context()


def current() -> Context:
    """The context set by `init` (world 1 until then)."""
    return _CONTEXT


def launched() -> bool:
    """True when torchrun (or another launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: torch.device, backend: str | None = None) -> Context:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

    nccl for CUDA devices, gloo for the CPU (unless `backend`); a no-op when not launched so.
    Each rank uses cuda:LOCAL_RANK when the device is "cuda" without an index.
    """
    global _CONTEXT
    if not launched():
        _CONTEXT = Context()
        return _CONTEXT
    import torch.distributed as dist
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"), rank=rank, world_size=world)
    _CONTEXT = Context(rank, world, local)
    return _CONTEXT


def rank_device(device: torch.device) -> torch.device:
    """cuda:LOCAL_RANK for a plain "cuda" device in a distributed job; the device otherwise."""
    ctx = current()
    if device.type == "cuda" and device.index is None and ctx.active:
        torch.cuda.set_device(ctx.local_rank)
        return torch.device("cuda", ctx.local_rank)
    return device


def shutdown() -> None:
    """Leave the process group (if this process joined one)."""
    global _CONTEXT
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _CONTEXT = Context()


@torch.no_grad()
def sharded_accuracy(model: nn.Module, x, y: torch.Tensor, ctx: Context, device: torch.device,
                     batch: int = 500) -> float:
    """Top-1 accuracy in percent, each rank counting `rank::world` of the examples (sw.train.loop.accuracy when alone)."""
    from sw.train.loop import accuracy
    if not ctx.active:
        return accuracy(model, x, y, batch)
    was = model.training
    model.eval()
    mine = torch.arange(ctx.rank, len(y), ctx.world)
    correct = 0
    for i in range(0, len(mine), batch):
        idx = mine[i:i + batch]
        correct += int((model(x[idx].to(device)).argmax(1).cpu() == y[idx]).sum())
    model.train(was)
    return 100.0 * ctx.all_sum(correct, device) / max(1, len(y))
