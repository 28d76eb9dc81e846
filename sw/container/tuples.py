"""n-tuple coding (FORMAT.md 2.3c): N consecutive weight indices of a lane form one tANS symbol.

The weights of a tensor (in coded order) split into L lanes as Part 1 splits symbols (lane j
holds the contiguous weights [start_j, start_j + len_j)). Each lane's run is cut into tuples of
N; a lane whose length is not a multiple of N ends in a short tuple, padded with index 0 and
dropped on decode. Tuple (d_0, ..., d_{N-1}) is the symbol d_0 + B·d_1 + ... + B^(N-1)·d_{N-1}
(B = bins, the first weight the lowest digit). The tuple counts of the lanes are again
near-equal with the longer lanes first, so the symbol stream is an ordinary Part 1 stream of
`tuple_count` symbols over the same L lanes: the decoder core is unchanged.
"""
from __future__ import annotations

import numpy as np

from sw.tans import format as fmt
from sw.tans.errors import FormatError, InputError
from sw.tans.lanes import lane_lengths, lane_starts


def check_tuple(tuple_size: int, bins: int) -> None:
    """InputError unless N is 1..MAX_TUPLE and bins^N symbols fit the table's alphabet."""
    if not isinstance(tuple_size, (int, np.integer)) or not 1 <= tuple_size <= fmt.MAX_TUPLE:
        raise InputError(f"tuple size must be 1..{fmt.MAX_TUPLE}, got {tuple_size!r}")
    if tuple_size > 1 and bins ** int(tuple_size) > fmt.MAX_ALPHABET:
        raise InputError(f"tuples of {tuple_size} weights over {bins} bins need {bins}^{tuple_size} = "
                         f"{bins ** int(tuple_size)} symbols, more than the table's {fmt.MAX_ALPHABET}: use a "
                         f"smaller tuple size or fewer bins")


def tuple_count(n: int, lanes: int, tuple_size: int) -> int:
    """Symbols of an n-weight tensor over `lanes` lanes in tuples of `tuple_size` (0 when n = 0)."""
    if n == 0:
        return 0
    q, r = divmod(n, lanes)
    return r * -(-(q + 1) // tuple_size) + (lanes - r) * -(-q // tuple_size)


def _slots(n: int, lanes: int, tuple_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight index, valid) of every digit slot, shape (S, N): symbol g in Part 1 flat order."""
    lens = lane_lengths(n, lanes)
    starts = lane_starts(n, lanes)
    per_lane = -(-lens // tuple_size)
    s = int(per_lane.sum())
    lane = np.repeat(np.arange(lanes, dtype=np.int64), per_lane)
    sym_start = lane_starts(s, lanes)
    assert np.array_equal(np.concatenate(([0], np.cumsum(per_lane)[:-1])), sym_start)  # Part 1 layout
    t = np.arange(s, dtype=np.int64) - sym_start[lane]
    offs = t[:, None] * tuple_size + np.arange(tuple_size, dtype=np.int64)[None, :]
    valid = offs < lens[lane][:, None]
    return np.where(valid, starts[lane][:, None] + offs, 0), valid


def pack_tuples(indices: np.ndarray, lanes: int, tuple_size: int, bins: int) -> np.ndarray:
    """The tuple symbols (int64, Part 1 flat order) of flat coded-order weight indices 0..bins-1."""
    idx = np.asarray(indices, np.int64).reshape(-1)
    if tuple_size == 1 or idx.size == 0:
        return idx
    where, valid = _slots(idx.size, lanes, tuple_size)
    digits = np.where(valid, idx[where], 0)
    radix = np.int64(bins) ** np.arange(tuple_size, dtype=np.int64)
    return (digits * radix[None, :]).sum(axis=1)


#: symbols unpacked at a time: the working arrays stay small next to the output (untrusted files)
UNPACK_BLOCK = 1 << 16


def unpack_tuples(symbols: np.ndarray, n: int, lanes: int, tuple_size: int, bins: int) -> np.ndarray:
    """Flat coded-order weight indices (int64) of n weights from decoded tuple symbols.

    Lane by lane, in blocks of UNPACK_BLOCK symbols, so a crafted file cannot make the working
    memory grow beyond the output array. FormatError when a padding digit of a short tuple is
    not 0 or a symbol is past bins^N (a damaged or crafted stream).
    """
    sym = np.asarray(symbols).reshape(-1)
    if tuple_size == 1 or n == 0:
        return sym.astype(np.int64)
    bad = FormatError("a tuple symbol has a non-zero padding digit or is past bins^N (damaged stream)")
    if sym.size and int(sym.max()) >= bins ** tuple_size:
        raise bad
    lens = lane_lengths(n, lanes)
    starts = lane_starts(n, lanes)
    per_lane = -(-lens // tuple_size)
    total = int(per_lane.sum())
    sym_start = lane_starts(total, lanes)
    if sym.size != total:
        raise FormatError(f"{sym.size} tuple symbols for {n} weights in tuples of {tuple_size} (expected {total})")
    out = np.empty(n, np.int64)
    for j in range(lanes):
        base, length = int(sym_start[j]), int(lens[j])
        for a in range(0, int(per_lane[j]), UNPACK_BLOCK):
            rest = sym[base + a: base + min(int(per_lane[j]), a + UNPACK_BLOCK)].astype(np.int64)
            digits = np.empty((rest.size, tuple_size), np.int64)
            for d in range(tuple_size):
                digits[:, d] = rest % bins
                rest = rest // bins
            flat = digits.reshape(-1)
            take = min(flat.size, length - a * tuple_size)
            if (flat[take:] != 0).any():
                raise bad
            lo = int(starts[j]) + a * tuple_size
            out[lo: lo + take] = flat[:take]
    return out


def tuple_weight_order(n: int, lanes: int, tuple_size: int) -> np.ndarray:
    """Flat coded-order index of each weight in delivery order: decode step by decode step (Part 1:
    round t gives tuple t of lanes 0..L-1), each tuple's weights in order, padding dropped."""
    from sw.tans.lanes import decode_order

    if n == 0:
        return np.zeros(0, np.int64)
    if tuple_size == 1:
        return decode_order(n, lanes)
    where, valid = _slots(n, lanes, tuple_size)
    steps = decode_order(where.shape[0], lanes)
    return where[steps][valid[steps]]


def tail_counts(n: int, lanes: int, tuple_size: int) -> dict[str, int]:
    """What a dequantizer needs to drop the padding (hw/fetch): lanes below `long_lanes` hold
    `q + 1` weights, the others `q`; a lane's last tuple (at round `last_round_long` / `_short`)
    has `tail_long` / `tail_short` valid weights, every other tuple `tuple_size`."""
    q, r = divmod(n, lanes)

    def last(length: int) -> tuple[int, int]:
        if length == 0:
            return 0, tuple_size
        t = -(-length // tuple_size) - 1
        return t, length - t * tuple_size
    (rl, tl), (rs, ts) = last(q + 1), last(q)
    return {"long_lanes": r, "last_round_long": rl, "tail_long": tl, "last_round_short": rs, "tail_short": ts}
