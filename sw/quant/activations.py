"""Uniform activation quantizers (the Pareto paper's Eq. 2): q(x) = i·Δ, 0 <= i <= t-1, after ReLU.

One quantizer per layer input (the activation a layer reads). Evaluation is fake-quantized:
forward pre-hooks replace a module's input by its quantized value, so any model (whatever
method quantized its weights) can run with quantized activations. Rates are counted two
ways: the entropy of the indices per activation (what an entropy coder needs, the paper's
rate) and the fixed width ceil(log2 t) bits of a plain store.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import nn

from sw.quant.observe import observe_inputs


@dataclass(frozen=True)
class ActivationQuantizer:
    """t levels 0, Δ, ..., (t-1)·Δ; inputs below 0 go to 0, above (t-1)·Δ to the top level."""

    step: float
    levels: int

    def __post_init__(self) -> None:
        if self.levels < 2:
            raise ValueError(f"an activation quantizer needs at least 2 levels, got {self.levels}")
        if not self.step > 0 or not math.isfinite(self.step):
            raise ValueError(f"the step must be positive and finite, got {self.step}")

    def indices(self, x: torch.Tensor) -> torch.Tensor:
        """Integer indices round(x/Δ) clipped to 0..t-1 (int64)."""
        return torch.clamp(torch.round(x / self.step), 0, self.levels - 1).to(torch.int64)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The quantized value i·Δ in x's dtype."""
        return (self.indices(x).to(x.dtype) * self.step).to(x.dtype)

    @property
    def fixed_bits(self) -> int:
        """Bits per activation of a fixed-width store: ceil(log2 t)."""
        return int(math.ceil(math.log2(self.levels)))

    def to_dict(self) -> dict:
        return {"step": float(self.step), "levels": int(self.levels), "fixed_bits": self.fixed_bits}


def index_entropy(idx: torch.Tensor | np.ndarray, levels: int) -> float:
    """Empirical entropy in bits per symbol of integer indices 0..levels-1."""
    a = np.asarray(idx.detach().cpu().numpy() if isinstance(idx, torch.Tensor) else idx).reshape(-1)
    if a.size == 0:
        return 0.0
    counts = np.bincount(a.astype(np.int64), minlength=levels).astype(np.float64)
    p = counts[counts > 0] / a.size
    return float(-(p * np.log2(p)).sum())


@contextmanager
def fake_quantized(model: nn.Module, quantizers: dict[str, ActivationQuantizer]) -> Iterator[None]:
    """Within the block, every named module's (first) input is replaced by its quantized value."""
    handles = []
    try:
        for name, q in quantizers.items():
            mod = model.get_submodule(name)

            def hook(m: nn.Module, args: tuple, q: ActivationQuantizer = q) -> tuple:
                return (q(args[0]),) + tuple(args[1:])
            handles.append(mod.register_forward_pre_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def capture_inputs(model: nn.Module, names: list[str], x: torch.Tensor, batch_size: int = 256
                   ) -> dict[str, torch.Tensor]:
    """The first input each named module sees on `x` (concatenated over batches), model in eval mode."""
    seen: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    observe_inputs(model, {n: model.get_submodule(n) for n in names}, x,
                   lambda n, inp: seen[n].append(inp.detach()), batch_size)
    return {n: torch.cat(v) for n, v in seen.items()}
