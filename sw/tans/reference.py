"""The scalar golden decoder: one state transition at a time, as the hardware works.

A bit FIFO, a vector of lane states and the l-entry table. Slow and plain on
purpose; the fast decoder and the hardware must agree with it bit for bit.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sw.tans import format as fmt
from sw.tans.codec import Coded, check_empty, check_end, check_payload_size, checked_table
from sw.tans.errors import FormatError
from sw.tans.lanes import check_lanes, lane_lengths, lane_starts
from sw.tans.table import DecodeTable


class BitReader:
    """Reads LSB-first bit fields from a byte string, refusing to run past its end."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0  # bit position

    def read(self, n: int) -> int:
        """Next n bits as an integer, first bit in the least significant place."""
        if self.pos + n > 8 * len(self.data):
            raise FormatError("the payload ends before all symbols are decoded (truncated stream)")
        value = 0
        for i in range(n):
            p = self.pos + i
            value |= ((self.data[p >> 3] >> (p & 7)) & 1) << i
        self.pos += n
        return value


def steps(coded: Coded, table: DecodeTable) -> Iterator[tuple[int, int, int, int]]:
    """Yield (lane, index within lane, state, symbol) for each decode step, in order.

    Raises FormatError on a truncated stream or a lane that ends in the wrong state.
    """
    check_lanes(coded.n_symbols, coded.lanes)
    reader = BitReader(coded.payload)
    k = coded.log2_states
    states = [reader.read(k) for _ in range(coded.lanes)]
    lengths = lane_lengths(coded.n_symbols, coded.lanes).tolist()
    for r in range(max(lengths)):
        for j in range(coded.lanes):
            if r >= lengths[j]:
                break                      # short lanes drop out of the last round
            x = states[j]
            sym = int(table.symbol[x])
            states[j] = int(table.base[x]) + reader.read(int(table.nb_bits[x]))
            yield j, r, x, sym
    payload = check_payload_size(coded)
    bad = sum(1 for s in states if s != fmt.FINAL_STATE)
    check_end(coded, reader.pos, bad, payload)


def decode_reference(coded: Coded) -> np.ndarray:
    """Decode every symbol (flat C order, int64) with the scalar state machine."""
    if coded.n_symbols == 0:
        check_empty(coded)
        return np.zeros(0, dtype=np.int64)
    table = checked_table(coded)
    starts = lane_starts(coded.n_symbols, coded.lanes)
    out = np.empty(coded.n_symbols, dtype=np.int64)
    for lane, r, _state, sym in steps(coded, table):
        out[starts[lane] + r] = sym
    return out
