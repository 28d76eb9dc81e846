"""Encode symbol arrays into lane-interleaved tANS payloads, and decode them fast.

`encode` is the only encoder; `decode` is the fast (compiled) decoder and
`sw.tans.reference.decode_reference` the scalar golden model that reads like the hardware.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from sw.tans import format as fmt
from sw.tans import kernels
from sw.tans.errors import FormatError, InputError
from sw.tans.lanes import check_lanes
from sw.tans.errors import StoredTableError, TableError
from sw.tans.table import (DecodeTable, build_tables, check_normalized, longest_zero_run, normalize_counts,
                           zero_run_bound)


@dataclass(frozen=True)
class Coded:
    """One coded symbol stream: everything the decoder needs besides the shape."""

    log2_states: int
    lanes: int
    n_symbols: int
    norm: np.ndarray        #: normalized counts, one per symbol value 0..A-1, summing to l
    payload: bytes          #: initial states then chunks, LSB-first, zero-padded to 8 bytes
    payload_bits: int       #: bits of `payload` the decoder consumes

    @property
    def alphabet(self) -> int:
        return int(self.norm.size)

    @property
    def states(self) -> int:
        return fmt.states_of(self.log2_states)

    def decode_table(self) -> DecodeTable:
        """Rebuild the decode table from the normalized counts."""
        check_normalized(self.norm, self.log2_states)
        return build_tables(self.norm, self.log2_states)[0]


def as_symbols(values: np.ndarray) -> np.ndarray:
    """Check the dtype of integer symbols; return them flattened (int64 unless narrower)."""
    arr = np.asarray(values)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"symbols must be integers, got an array of dtype {arr.dtype}")
    if not arr.dtype.isnative:   # big-endian input: the compiled kernels take native integers only
        arr = arr.astype(arr.dtype.newbyteorder("="))
    flat = arr.reshape(-1)
    if flat.dtype.itemsize > 4 or flat.dtype == np.uint32:
        if flat.dtype == np.uint64 and flat.size and flat.max() > np.iinfo(np.int64).max:
            raise InputError("symbols above 2**63-1 cannot be coded")
        return flat.astype(np.int64, copy=False)
    return flat  # small integer types go to the compiled kernels as they are


def histogram(flat: np.ndarray) -> np.ndarray:
    """Symbol counts of validated symbols; InputError for negative or too large values."""
    counts, lo, hi = kernels.histogram_kernel(flat, fmt.MAX_ALPHABET)
    if lo < 0:
        raise InputError(f"symbols must be non-negative, found {int(lo)}")
    if hi >= fmt.MAX_ALPHABET:
        raise InputError(f"symbol value {int(hi)} is too large: values must be below {fmt.MAX_ALPHABET}")
    return counts


def encode(symbols: np.ndarray, log2_states: int = fmt.DEFAULT_LOG2_STATES,
           lanes: int = 1, norm: np.ndarray | None = None) -> Coded:
    """Encode non-negative integer symbols (any shape, flattened in C order) into `lanes` streams.

    `norm` overrides the normalized counts (they must give every present symbol a slot).
    An empty input gives an empty stream with zero lanes.
    """
    flat = as_symbols(symbols)
    if flat.size == 0:
        return Coded(int(log2_states), 0, 0, np.zeros(0, np.int64), b"", 0)
    check_lanes(flat.size, lanes)
    counts = histogram(flat)
    alphabet = counts.size
    if norm is None:
        norm = normalize_counts(counts, log2_states)
    else:
        norm = np.asarray(norm, dtype=np.int64)
        check_normalized(norm, log2_states)
        if norm.size < alphabet or np.any((counts > 0) & (norm[:alphabet] == 0)):
            raise InputError("the given table has no slot for some symbol of the input")
    _, enc = build_tables(norm, log2_states)
    words, bits = kernels.encode_kernel(flat, int(lanes), int(log2_states), enc.norm, enc.start,
                                          enc.next_state, fmt.FINAL_STATE, fmt.PAYLOAD_ALIGN_BYTES)
    if sys.byteorder != "little":  # the kernel writes host-order 32-bit words
        words = words.view(np.uint32).byteswap().view(np.uint8)
    return Coded(int(log2_states), int(lanes), int(flat.size), norm, words.tobytes(), int(bits))


def max_symbols(lanes: int, log2_states: int, payload_bits: int, zero_run: int | None) -> int | None:
    """Most symbols `lanes` lanes can decode from `payload_bits` bits (None: no bound; docs/FORMAT.md 1.5).

    Every step reads nb_bits bits, at least 1 except in runs of at most `zero_run` 0-bit
    steps, so a lane with b bit-reading steps has at most b + (b + 1) * zero_run symbols;
    the bit-reading steps of all lanes share the payload_bits - lanes * k bits after the
    initial states: N <= (payload_bits - L k)(Z + 1) + L Z.
    """
    chunk_bits = payload_bits - lanes * log2_states
    if chunk_bits < 0:
        return -1
    if zero_run is None:
        return None if chunk_bits == 0 else -1
    return chunk_bits * (zero_run + 1) + lanes * zero_run


def check_capacity(coded: Coded, zero_run: int | None) -> None:
    """FormatError unless the payload can carry the declared number of symbols (before allocating)."""
    cap = max_symbols(coded.lanes, coded.log2_states, coded.payload_bits, zero_run)
    if cap is None:
        return
    if cap < 0:
        raise FormatError(f"a {coded.payload_bits}-bit payload cannot hold the initial states and steps of "
                          f"{coded.lanes} lanes (damaged or crafted stream)")
    if coded.n_symbols > cap:
        raise FormatError(f"{coded.n_symbols} symbols declared, but a {coded.payload_bits}-bit payload with "
                          f"this table decodes at most {cap} (damaged or crafted stream)")


def checked_table(coded: Coded) -> DecodeTable:
    """The decode table of a stream read from a file, every problem reported as FormatError."""
    try:
        check_lanes(coded.n_symbols, coded.lanes)
    except InputError as e:
        raise FormatError(f"{e} (damaged or crafted stream)") from None
    try:
        table = coded.decode_table()
    except TableError as e:
        raise StoredTableError(f"{e} (damaged or crafted table)") from None
    check_capacity(coded, zero_run_bound(coded.norm, coded.log2_states))
    check_capacity(coded, longest_zero_run(table))
    return table


def check_payload_size(coded: Coded) -> np.ndarray:
    """Return the payload as uint8, after checking its size agrees with the bit count."""
    payload = np.frombuffer(coded.payload, dtype=np.uint8)
    expect = fmt.payload_bytes(coded.payload_bits)
    if payload.size != expect:
        raise FormatError(f"payload holds {payload.size} bytes, but {coded.payload_bits} bits "
                          f"need {expect} (truncated or damaged)")
    return payload


def check_end(coded: Coded, consumed: int, bad_lanes: int, payload: np.ndarray) -> None:
    """Raise FormatError unless a decode ended exactly as the encoder left it."""
    if consumed != coded.payload_bits:
        raise FormatError(f"decoding used {consumed} bits of a {coded.payload_bits}-bit payload "
                          "(damaged stream or table)")
    if bad_lanes:
        raise FormatError(f"{bad_lanes} of {coded.lanes} lanes did not end in the final state "
                          "(damaged stream or table)")
    tail = consumed % 8
    if tail and payload[consumed // 8] >> tail:
        raise FormatError("non-zero padding after the last coded bit (damaged payload)")
    if np.any(payload[(consumed + 7) // 8:]):
        raise FormatError("non-zero padding after the last coded bit (damaged payload)")


def check_empty(coded: Coded) -> None:
    """FormatError unless an N = 0 stream has no lanes, no table and no payload."""
    if coded.lanes or coded.payload_bits or coded.payload or coded.alphabet:
        raise FormatError("an empty tensor must have no lanes, no table and no payload")


def decode(coded: Coded, order: str = "flat") -> np.ndarray:
    """Decode all symbols (uint16): in flat (C) order, or in decode-step order ("steps")."""
    if coded.n_symbols == 0:
        check_empty(coded)
        return np.zeros(0, dtype=np.uint16)
    table = checked_table(coded)
    payload = check_payload_size(coded)
    out = np.empty(coded.n_symbols, dtype=np.uint16)
    err, consumed, bad = kernels.decode_kernel(
        payload, coded.payload_bits, coded.n_symbols, coded.lanes, coded.log2_states,
        table.symbol.astype(np.int64), table.nb_bits.astype(np.int64), table.base.astype(np.int64),
        out, order == "flat", fmt.FINAL_STATE)
    if err == kernels.ERR_TRUNCATED:
        raise FormatError(f"the payload ends before all {coded.n_symbols} symbols are decoded "
                          "(truncated or damaged stream)")
    check_end(coded, consumed, bad, payload)
    return out
