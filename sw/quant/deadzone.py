"""The dead-zone weight quantizer of the Pareto paper (its Eq. 1) and the codebook that stores it.

With step Δ and dead-zone parameter β (here in units of Δ): |x| < (1 + β)/2 steps is 0,
otherwise index j = sign(x)·max(1, round(|x|/Δ - β/2)), clipped to ±k, reconstructed as
sign(j)·(β/2 + |j|)·Δ. The decoder sees the zero-point bin indices j + k (0..2k); the
reconstruction rule goes into the record as codebook levels (FORMAT.md 2.3c,
sw.container.codebook.dead_zone_levels): sign(j)·(G·|j| + d) times the step Δ/G, with G a
power of two and d = β·G/2 an integer, so β must be a multiple of 2/MAX_GRID steps and the
values decode exactly. The records themselves are built by sw/methods/deadzone.py.
"""
from __future__ import annotations

import numpy as np
import torch

MAX_GRID = 256      #: finest step Δ/G of the codebook; β is a multiple of 2/MAX_GRID


def grid_of(beta: float) -> tuple[int, int]:
    """(G, d): the coarsest power-of-two grid with β = 2·d/G exactly; ValueError otherwise."""
    if not (beta >= 0 and np.isfinite(beta)):
        raise ValueError(f"the dead zone beta must be a finite number >= 0, got {beta}")
    g = 1
    while g <= MAX_GRID:
        d = beta * g / 2
        if d == round(d):
            return g, int(round(d))
        g *= 2
    raise ValueError(f"dead zone beta = {beta:g} steps is not a multiple of {2 / MAX_GRID:g} steps "
                     f"(the container's codebook stores it on a grid of step/{MAX_GRID})")


def indices(x: torch.Tensor, beta: float, half: int) -> torch.Tensor:
    """Signed indices j in -half..half of x (in units of the step), Eq. 1's decision rule (int64)."""
    a = x.abs()
    mag = torch.clamp(torch.round(a - beta / 2), min=1, max=half)
    return torch.where(a < (1 + beta) / 2, torch.zeros_like(mag), torch.sign(x) * mag).to(torch.int64)


def reconstruct(j: torch.Tensor, beta: float) -> torch.Tensor:
    """Reconstruction in units of the step: sign(j)·(β/2 + |j|), 0 at j = 0 (float64)."""
    j = j.to(torch.float64)
    return j + torch.sign(j) * (beta / 2)


def codebook(beta: float, half: int) -> tuple[np.ndarray, int]:
    """(levels, G): the 2·half+1 integer levels sign(j)·(G·|j| + d) on the grid Δ/G (j = -half..half)."""
    g, d = grid_of(beta)
    j = np.arange(-half, half + 1, dtype=np.int64)
    levels = np.sign(j) * (g * np.abs(j) + d)
    if np.abs(levels).max() > (1 << 15) - 1:
        raise ValueError(f"a dead zone of {beta:g} steps with {2 * half + 1} bins needs levels beyond 16 bits")
    return levels, g


def export_entry(e: dict, beta: float) -> dict:
    """A FracQuantizer export (signed indices j, steps Δ) turned into its codebook form for the container.

    integers become the codebook levels of the indices (what `Tensor.integers` returns), indices
    the bin indices 0..2k, steps Δ/G; values are unchanged (they already follow Eq. 1).
    """
    j = np.asarray(e["integers"], np.int64)
    half = (int(e["bins"]) - 1) // 2
    levels, g = codebook(beta, half)
    out = dict(e)
    out.update(indices=j + half, levels=levels, integers=levels[j + half],
               steps=(np.asarray(e["steps"], np.float32) / np.float32(g)).astype(np.float32), dead_zone=beta, grid=g)
    return out
