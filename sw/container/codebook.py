"""Codebook levels for QUANT_CODEBOOK tensors (FORMAT.md 2.3c): value = level[index] · step.

Levels are small signed integers (at most MAX_LEVEL_BITS bits) so that the reconstruction is
exact in float64 and a hardware dequantizer holds them in a narrow memory. Non-uniform grids
are integers on a fine grid: the tensor's step is the grid's spacing.
"""
from __future__ import annotations

import numpy as np

from sw.tans import format as fmt

LEVEL_MIN, LEVEL_MAX = -(1 << (fmt.MAX_LEVEL_BITS - 1)), (1 << (fmt.MAX_LEVEL_BITS - 1)) - 1


def check_levels(levels) -> np.ndarray:
    """Levels as a 1-d int64 array; ValueError unless 1..MAX_BINS integers of at most 16 bits."""
    arr = np.asarray(levels)
    if arr.ndim != 1 or not 1 <= arr.size <= fmt.MAX_BINS:
        raise ValueError(f"a codebook has 1..{fmt.MAX_BINS} levels in a 1-d array, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or (np.issubdtype(arr.dtype, np.floating)
                                                     and np.isfinite(arr).all() and (arr == np.round(arr)).all())):
        raise ValueError("codebook levels must be integers")
    lv = arr.astype(np.int64)
    if lv.min() < LEVEL_MIN or lv.max() > LEVEL_MAX:
        raise ValueError(f"codebook levels must lie in {LEVEL_MIN}..{LEVEL_MAX} ({fmt.MAX_LEVEL_BITS}-bit)")
    return lv


def uniform_levels(bins: int) -> np.ndarray:
    """The zero-point grid as a codebook: level[i] = i - (bins - 1) // 2."""
    return np.arange(bins, dtype=np.int64) - (bins - 1) // 2


def dead_zone_levels(bins: int, dead: int, grid: int = 2) -> np.ndarray:
    """The dead-zone grid (Pareto paper Eq. 1) on a step of Delta / grid: for j = i - (bins-1)//2,
    level 0 at j = 0 and sign(j)·(grid·|j| + dead) otherwise, i.e. beta = 2·dead·Delta / grid
    (grid 2: levels ±(2|j| + dead) with step Delta / 2)."""
    if bins < 1 or bins % 2 == 0 or grid < 1 or dead < -grid + 1:
        raise ValueError(f"dead-zone grid needs odd bins, grid >= 1 and dead > -grid, got {bins}, {grid}, {dead}")
    j = uniform_levels(bins)
    return check_levels(np.sign(j) * (grid * np.abs(j) + dead))


def grid_levels(values, fine_step: float) -> np.ndarray:
    """Real reconstruction values (Lloyd-max centroids, say) rounded to integers on a grid of
    `fine_step`: use `fine_step` as the tensor's step. ValueError when they need more than 16 bits."""
    v = np.asarray(values, np.float64)
    if not fine_step > 0 or not np.isfinite(v).all():
        raise ValueError("grid levels need finite values and a positive fine step")
    return check_levels(np.rint(v / fine_step).astype(np.int64))
