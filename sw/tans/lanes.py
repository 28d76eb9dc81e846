"""Lane layout: how a tensor's flattened symbols split into parallel streams.

Lane j holds the contiguous slice [start_j, start_j + n_j) of the flattened symbols,
n_j = q + (1 if j < r else 0) with q, r = divmod(N, L). The decoder steps lanes
round-robin, so the d-th transition of the decode is lane d % L, symbol d // L of
that lane (the short lanes simply drop out of the last round).
"""
from __future__ import annotations

import numpy as np

from sw.tans.errors import InputError
from sw.tans import format as fmt


def check_lanes(n_symbols: int, lanes: int) -> None:
    """Raise InputError unless `lanes` streams can split `n_symbols` symbols."""
    if not isinstance(lanes, (int, np.integer)) or lanes < 1:
        raise InputError(f"lanes must be a positive integer, got {lanes!r}")
    if lanes > fmt.MAX_LANES:
        raise InputError(f"at most {fmt.MAX_LANES} lanes are supported, got {lanes}")
    if lanes > n_symbols:
        raise InputError(f"{lanes} lanes for {n_symbols} symbols: every lane needs at least one symbol")


def lane_lengths(n_symbols: int, lanes: int) -> np.ndarray:
    """Number of symbols in each lane (the first N % L lanes get one more)."""
    q, r = divmod(n_symbols, lanes)
    return np.full(lanes, q, dtype=np.int64) + (np.arange(lanes) < r)


def lane_starts(n_symbols: int, lanes: int) -> np.ndarray:
    """Flat index of each lane's first symbol."""
    q, r = divmod(n_symbols, lanes)
    j = np.arange(lanes, dtype=np.int64)
    return j * q + np.minimum(j, r)


def decode_order(n_symbols: int, lanes: int) -> np.ndarray:
    """Flat index of the symbol produced by each decode step, in step order."""
    lengths = lane_lengths(n_symbols, lanes)
    starts = lane_starts(n_symbols, lanes)
    rounds = int(lengths.max()) if lanes else 0
    r = np.arange(rounds, dtype=np.int64)[:, None]
    idx = starts[None, :] + r
    valid = r < lengths[None, :]
    return idx[valid]
