"""Training-loop helpers shared by every method: thread cap, seeded minibatches, top-1 accuracy."""
from __future__ import annotations

import os

import torch
from torch import nn


def set_threads(n: int | None = None) -> None:
    """Cap torch's threads (default 1, or $SW_THREADS): on a shared 2-core machine one thread is fastest."""
    n = n or int(os.environ.get("SW_THREADS", "1"))
    torch.set_num_threads(max(1, min(n, 2, os.cpu_count() or 1)))


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """Top-1 accuracy in percent (eval mode)."""
    was = model.training
    model.eval()
    correct = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
                  for i in range(0, len(x), batch))
    model.train(was)
    return 100.0 * correct / max(1, len(x))


def batches(n: int, size: int, seed: int):
    """Seeded shuffled minibatch indices."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    for i in range(0, n, size):
        yield perm[i:i + size]
