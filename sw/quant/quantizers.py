"""Uniform weight quantizers: zero point with an odd number of bins, dead zone, and mid-rise.

All quantizers are fake-quantizers for training (straight-through estimator for the
rounding, a learned clip whose gradient flows as in LSQ/SAT) that also return the
integer indices the container codes, so the trained and the decoded weights agree bit for bit.
"""
from __future__ import annotations

import torch


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass (STE)."""
    return x + (torch.round(x) - x).detach()


def bins_of(half: int | torch.Tensor) -> int | torch.Tensor:
    """Number of bins 2k+1 of a zero-point quantizer with levels -k..k: always odd."""
    return 2 * half + 1


def zero_point_indices(w: torch.Tensor, step: torch.Tensor, half: torch.Tensor | int,
                       dead_zone: float = 0.0) -> torch.Tensor:
    """Signed integer indices in -half..half (float tensor, STE-rounded, differentiable in w and step).

    `dead_zone` is the Pareto paper's beta in units of the step: |x| < (1 + beta)/2 steps
    maps to zero and the other indices are round(|x| - beta/2), at least 1.
    """
    half = torch.as_tensor(half, dtype=w.dtype, device=w.device)
    x = w / step
    if dead_zone > 0:
        mag = torch.clamp(ste_round(x.abs() - dead_zone / 2), min=1.0)
        inside = (x.abs() < (1.0 + dead_zone) / 2).to(w.dtype)
        q = torch.sign(x) * mag * (1 - inside)
    else:
        q = ste_round(x)
    half = half.expand_as(q) if half.dim() else half
    return torch.where(q > half, half, torch.where(q < -half, -half, q))


def round_step_bits(step: torch.Tensor, bits: int) -> torch.Tensor:
    """Steps rounded to `bits`-bit integers times one shared power of two (set by the largest step),
    with a straight-through gradient: such steps cost `bits` bits each in a version-2 record
    (FORMAT.md 2.3) and are exact float32 values. `bits` = 0 leaves the steps as they are."""
    if bits <= 0:
        return step
    with torch.no_grad():
        e = torch.frexp(step.detach().max())[1] - bits
        scale = torch.pow(torch.tensor(2.0, dtype=step.dtype, device=step.device), e.to(step.dtype))
        rounded = torch.clamp(torch.round(step.detach() / scale), 1, (1 << bits) - 1) * scale
    return step + (rounded - step).detach()


def zero_point_quantize(w: torch.Tensor, clip: torch.Tensor, half: torch.Tensor | int,
                        dead_zone: float = 0.0, step_bits: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantize w to 2*half+1 bins on [-clip, clip]: (w_q, indices, step), w_q = indices * step.

    The step is clip/half (rounded to `step_bits`-bit mantissas when given), so zero is always a
    reconstruction level (the zero point). With a dead zone beta > 0, w_q follows the Pareto paper's
    Eq. 1 instead: sign(i)·(beta/2 + |i|)·step.
    """
    half_t = torch.as_tensor(half, dtype=w.dtype, device=w.device)
    step = round_step_bits(clip / torch.clamp(half_t, min=1.0), step_bits)
    q = zero_point_indices(w, step, half_t, dead_zone)
    if dead_zone > 0:     # Eq. 1: sign(i)·(beta/2 + |i|)·step (stored as a codebook, sw.quant.deadzone)
        return (q + torch.sign(q) * (dead_zone / 2)) * step, q, step
    return q * step, q, step


def midrise_quantize(w: torch.Tensor, clip: torch.Tensor, levels: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A b-bit quantizer without zero point: `levels` (even) points (i + 1/2) * step on [-clip, clip].

    Returns (w_q, symbols 0..levels-1, step); used for the zero-point ablation (Table I).
    """
    if levels < 2 or levels % 2:
        raise ValueError(f"a mid-rise quantizer has an even number of levels >= 2, got {levels}")
    step = 2 * clip / levels
    x = w / step - 0.5
    q = torch.clamp(ste_round(x), -levels // 2, levels // 2 - 1)
    return (q + 0.5) * step, q + levels // 2, step


def clip_init(w: torch.Tensor, half: int, per_channel: bool) -> torch.Tensor:
    """Initial clip: LSQ's 2*mean|w|*sqrt(half) (per output channel or per tensor), at most max|w|."""
    dims = tuple(range(1, w.dim())) if per_channel and w.dim() > 1 else tuple(range(w.dim()))
    mean = w.detach().abs().mean(dim=dims, keepdim=per_channel and w.dim() > 1)
    peak = w.detach().abs().amax(dim=dims, keepdim=per_channel and w.dim() > 1)
    return torch.clamp(torch.minimum(2 * mean * max(1, half) ** 0.5, peak), min=1e-8)


def grad_scale(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by `scale` (LSQ step-size gradient scaling)."""
    return (x - x * scale).detach() + x * scale
