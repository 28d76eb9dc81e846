"""Lloyd-max (non-uniform) reconstruction levels for one layer: odd count, zero kept, on a fine integer grid.

The container stores such a codebook as signed integers times one step (sw.container codebook
tensors): level i is levels[i] * fine_step. The fit alternates nearest-level assignment and
moving every non-zero level to the mean of its cell (the zero level stays at 0, so pruned
weights stay exactly representable), then rounds to the grid, keeping the levels distinct and
on their side of zero.
"""
from __future__ import annotations

import torch

MAX_LEVEL = 32767          #: largest |integer level| a codebook record holds


def fit_levels(w: torch.Tensor, bins: int, fine_step: float, iters: int = 30,
               init: torch.Tensor | None = None) -> torch.Tensor:
    """Lloyd-max levels (sorted int64, `bins` of them, the middle one 0) for weights `w` on grid `fine_step`.

    `init` (float values, sorted, the middle one 0) starts the iteration; default: the uniform
    grid over +-max|w|. Empty cells keep their level.
    """
    if bins < 3 or bins % 2 == 0:
        raise ValueError(f"a Lloyd-max grid has an odd number of levels >= 3, got {bins}")
    if not fine_step > 0:
        raise ValueError(f"the grid step must be positive, got {fine_step}")
    x = w.detach().reshape(-1).to(torch.float64)
    half = (bins - 1) // 2
    top = float(x.abs().max()) if x.numel() else 0.0
    if init is None:
        lv = torch.linspace(-1.0, 1.0, bins, dtype=torch.float64) * max(top, half * fine_step)
    else:
        lv = init.detach().to(torch.float64).clone()
        if lv.numel() != bins:
            raise ValueError(f"init has {lv.numel()} levels, not {bins}")
    lv[half] = 0.0
    for _ in range(iters):
        mids = (lv[1:] + lv[:-1]) / 2
        cell = torch.searchsorted(mids, x.contiguous())
        sums = torch.zeros(bins, dtype=torch.float64).index_add(0, cell, x)
        counts = torch.zeros(bins, dtype=torch.float64).index_add(0, cell, torch.ones_like(x))
        new = torch.where(counts > 0, sums / counts.clamp(min=1), lv)
        new[half] = 0.0
        if torch.allclose(new, lv, rtol=0, atol=1e-3 * fine_step):
            lv = new
            break
        lv = new
    return to_grid(lv, fine_step)


def to_grid(values: torch.Tensor, fine_step: float) -> torch.Tensor:
    """Round sorted levels (middle one 0) to integers on `fine_step`, strictly increasing, sides kept."""
    bins = values.numel()
    half = (bins - 1) // 2
    ints = torch.round(values.to(torch.float64) / fine_step).to(torch.int64).tolist()
    ints[half] = 0
    for i in range(half + 1, bins):                 # positive side: 1, 2, ... at least
        ints[i] = max(ints[i], ints[i - 1] + 1)
    for i in range(half - 1, -1, -1):               # negative side, mirrored
        ints[i] = min(ints[i], ints[i + 1] - 1)
    if max(abs(v) for v in ints) > MAX_LEVEL:
        raise ValueError(f"levels beyond +-{MAX_LEVEL} grid steps: use a coarser grid")
    return torch.tensor(ints, dtype=torch.int64)


def distortion(w: torch.Tensor, values: torch.Tensor) -> float:
    """Mean squared error of nearest-level quantization of `w` to the sorted `values`."""
    x = w.detach().reshape(-1).to(torch.float64)
    v = values.to(torch.float64)
    cell = torch.searchsorted((v[1:] + v[:-1]) / 2, x.contiguous())
    return float(((x - v[cell]) ** 2).mean()) if x.numel() else 0.0
