"""Fracbits fractional precision with odd bin counts: one learned lambda per layer (or channel).

A group with precision lambda uses round(lambda) -> 2*round(lambda)+1 bins once trained (the
paper's round(2*lambda+1), taken to the nearest odd count so the middle bin is the zero point);
during training the forward pass mixes the quantizers with 2*floor(lambda)+1 and
2*(floor(lambda)+1)+1 bins, weighted by the fractional part, as Fracbits does.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from sw.quant.entropy import row_entropies, soft_bin_entropies
from sw.quant.quantizers import clip_init, grad_scale, zero_point_quantize


class FracQuantizer(nn.Module):
    """Zero-point weight quantizer with a learned clip (per output channel) and learned precision."""

    def __init__(self, shape: tuple[int, ...], bins: int = 15, learn_bins: bool = True,
                 per_channel_bins: bool = False, per_channel_scale: bool = True,
                 dead_zone: float = 0.0, min_bins: int = 3, max_bins: int = 255, step_bits: int = 0) -> None:
        super().__init__()
        for b, what in ((bins, "bins"), (min_bins, "min_bins"), (max_bins, "max_bins")):
            if b < 3 or b % 2 == 0:
                raise ValueError(f"{what} must be odd and at least 3, got {b}")
        if not min_bins <= bins <= max_bins:
            raise ValueError(f"bins={bins} is outside {min_bins}..{max_bins}")
        self.shape = tuple(shape)
        channels = self.shape[0] if len(self.shape) > 1 else 1
        groups = channels if per_channel_bins else 1
        self.lam = nn.Parameter(torch.full((groups,), (bins - 1) / 2.0), requires_grad=learn_bins)
        self.clip = nn.Parameter(torch.ones(channels if per_channel_scale else 1))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.dead_zone = float(dead_zone)
        if self.dead_zone:
            from sw.quant.deadzone import grid_of
            grid_of(self.dead_zone)          # a beta the container's codebook can store, or ValueError now
        self.step_bits = int(step_bits)       #: steps rounded to this many mantissa bits (0: float32 as is)
        self.min_half, self.max_half = (min_bins - 1) // 2, (max_bins - 1) // 2
        self.mixing = learn_bins
        self.grad_factor = 1.0 / math.sqrt(max(1, math.prod(self.shape) // max(1, channels)) * max(1, (bins - 1) // 2))

    def _col(self, t: torch.Tensor) -> torch.Tensor:
        """Broadcast a per-channel (or scalar) vector against the weight tensor."""
        if t.numel() == 1:
            return t.reshape(())
        return t.reshape((-1,) + (1,) * (len(self.shape) - 1))

    def init_clip(self, w: torch.Tensor) -> None:
        """Set the clip from the weights on first use (LSQ-style initialisation)."""
        if not bool(self.initialized):
            half = int(self.hard_half().max())
            with torch.no_grad():
                self.clip.copy_(clip_init(w, half, self.clip.numel() > 1).reshape(-1))
                self.initialized.fill_(True)

    def clamp_(self) -> None:
        """Keep lambda in the allowed precision range and the clip positive (call after each step)."""
        with torch.no_grad():
            self.lam.clamp_(self.min_half, self.max_half)
            self.clip.clamp_(min=1e-8)

    def clip_value(self) -> torch.Tensor:
        """The clip, with LSQ's gradient scaling, broadcast against the weights."""
        return self._col(grad_scale(self.clip, self.grad_factor))

    def hard_half(self) -> torch.Tensor:
        """Half widths k (bins 2k+1) used after training: lambda rounded (half up), per group."""
        lam = self.lam.detach().clamp(self.min_half, self.max_half)
        return torch.floor(lam + 0.5).to(torch.int64)

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(floor k, floor k + 1, fractional part) of lambda; the part keeps lambda's gradient."""
        lam = self.lam.clamp(self.min_half, self.max_half)
        lo = torch.floor(lam.detach())
        return lo, lo + 1, lam - lo

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """Fake-quantized weights: mixed floor/ceil precisions while training, hard bins otherwise."""
        self.init_clip(w)
        if self.training and self.mixing:
            lo, hi, frac = self.bounds()
            clip = self.clip_value()
            w_lo = zero_point_quantize(w, clip, self._col(lo), self.dead_zone, self.step_bits)[0]
            w_hi = zero_point_quantize(w, clip, self._col(hi), self.dead_zone, self.step_bits)[0]
            f = self._col(frac)
            return (1 - f) * w_lo + f * w_hi
        return self.quantize(w)[0]

    def quantize(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Hard quantization (w_q, signed indices, step) with the rounded precision."""
        self.init_clip(w)
        half = self._col(self.hard_half().to(w.dtype))
        return zero_point_quantize(w, self.clip_value(), half, self.dead_zone, self.step_bits)

    def group_entropies(self, w: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
        """H_W(k): entropy (bits/weight) of each lambda group's weights quantized with half widths `half`."""
        with torch.no_grad():
            q = zero_point_quantize(w, self._col(self.clip.detach()), self._col(half.to(w.dtype)),
                                    self.dead_zone)[1]
            if self.lam.numel() == 1:
                return row_entropies(q.reshape(1, -1))
            return row_entropies(q)

    def soft_group_entropies(self, w: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
        """Smooth stand-in for H_W(k), differentiable in the weights and the clip."""
        step = self._col(self.clip) / self._col(half.to(w.dtype))
        x = w / step
        if self.lam.numel() == 1:
            return soft_bin_entropies(x.reshape(1, -1), half.reshape(1), self.dead_zone)
        return soft_bin_entropies(x, half, self.dead_zone)

    def group_sizes(self) -> torch.Tensor:
        """Number of weights in each lambda group."""
        n = math.prod(self.shape)
        return torch.full((self.lam.numel(),), n / self.lam.numel(), dtype=torch.float64, device=self.lam.device)

    @torch.no_grad()
    def export(self, w: torch.Tensor) -> dict:
        """Integers and steps for the container: indices (int64), steps per channel, bins (max over groups)."""
        was = self.training
        self.eval()
        w_q, q, step = self.quantize(w)
        self.train(was)
        ints = torch.round(q).to(torch.int64)
        steps = torch.broadcast_to(step, w.shape).reshape(w.shape[0], -1)[:, 0] if w.dim() > 1 else step.reshape(-1)
        if steps.numel() > 1 and bool((steps == steps[0]).all()) and self.clip.numel() == 1:
            steps = steps[:1]
        half = int(self.hard_half().max())
        out = {"integers": ints.numpy(), "steps": steps.to(torch.float32).numpy().copy(),
               "per_channel": steps.numel() > 1, "bins": 2 * half + 1,
               "group_bins": (2 * self.hard_half() + 1).tolist(), "values": w_q.numpy()}
        if self.dead_zone > 0:       # Eq. 1's reconstruction as codebook levels on a step/G grid
            from sw.quant.deadzone import export_entry
            out = export_entry(out, self.dead_zone)
        return out
