"""Training-loop helpers shared by every method: thread cap, seeded minibatches, top-1 accuracy."""
from __future__ import annotations

import os

import torch
import torch.utils.data
from torch import nn


def set_threads(n: int | None = None) -> None:
    """Cap torch's threads (default 1, or $SW_THREADS): on a shared 2-core machine one thread is fastest."""
    n = n or int(os.environ.get("SW_THREADS", "1"))
    torch.set_num_threads(max(1, min(n, 2, os.cpu_count() or 1)))


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (cpu for a model with neither)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """Top-1 accuracy in percent (eval mode), each batch moved to the model's device."""
    was = model.training
    model.eval()
    dev = model_device(model)
    correct = sum(int((model(x[i:i + batch].to(dev)).argmax(1).cpu() == y[i:i + batch]).sum())
                  for i in range(0, len(x), batch))
    model.train(was)
    return 100.0 * correct / max(1, len(x))


def batches(n: int, size: int, seed: int):
    """Seeded shuffled minibatch indices."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    for i in range(0, n, size):
        yield perm[i:i + size]


class _Shards(torch.utils.data.Dataset):
    """Batch i of a list of (global batch size, this rank's indices): (size, inputs, labels), for DataLoader workers."""

    def __init__(self, x, y: torch.Tensor, shards: list[tuple[int, torch.Tensor]]) -> None:
        self.x, self.y, self.shards = x, y, shards

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, i: int):
        n, idx = self.shards[i]
        return n, self.x[idx], self.y[idx]


def shard_batches(x, y: torch.Tensor, size: int, seed: int, ctx=None, workers: int = 0):
    """(global batch size, inputs, labels) of this rank's share of each seeded minibatch (`batches`).

    `ctx` (sw.train.distributed.Context) takes the rank's `idx[rank::world]`; with `workers` > 0
    a DataLoader of that many processes builds the batches ahead (images decoded in parallel).
    """
    shards = [(len(idx), ctx.shard(idx) if ctx is not None else idx) for idx in batches(len(x), size, seed)]
    if workers <= 0:
        for n, idx in shards:
            yield n, x[idx], y[idx]
        return
    loader = torch.utils.data.DataLoader(_Shards(x, y, shards), batch_size=None, shuffle=False,
                                         num_workers=workers, pin_memory=torch.cuda.is_available())
    yield from loader
