"""Test tensors for the hardware decoder: encoded by `sw.tans`, expected output from its golden model."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sw.tans import Coded, encode
from sw.tans.reference import steps

DISTRIBUTIONS = ("uniform", "random", "peaked", "dominant")


@dataclass(frozen=True)
class Case:
    """One tensor as the hardware sees it, and what the golden decoder says it decodes to."""

    coded: Coded
    entries: list[tuple[int, int, int]]   #: decode table, state 0 first
    expected: list[tuple[int, int]]       #: (lane, symbol) per decode step, in decode order

    @property
    def n_symbols(self) -> int:
        return self.coded.n_symbols

    def words(self, word_bits: int) -> list[int]:
        """The payload as little-endian words of `word_bits` bits (the hardware input stream)."""
        dtype = np.dtype(f"<u{word_bits // 8}")
        return [int(w) for w in np.frombuffer(self.coded.payload, dtype=dtype)]


def symbols(rng: np.random.Generator, n: int, alphabet: int, dist: str) -> np.ndarray:
    """Draw n symbols below `alphabet` from one of DISTRIBUTIONS."""
    if dist == "uniform":
        return rng.integers(0, alphabet, n)
    if dist == "random":           # random skewed probabilities
        p = rng.dirichlet(np.full(alphabet, 0.5))
        return rng.choice(alphabet, size=n, p=p)
    if dist == "peaked":           # quantized weights: two-sided geometric around a zero point
        zp = alphabet // 2
        mag = rng.geometric(0.35, n) - 1
        sign = rng.choice([-1, 1], n)
        return np.clip(zp + sign * mag, 0, alphabet - 1)
    if dist == "dominant":         # one symbol with p > 1/2 (nb_bits = 0 states)
        other = rng.integers(0, alphabet, n)
        return np.where(rng.random(n) < 0.8, alphabet // 3, other)
    raise ValueError(f"unknown distribution {dist!r}")


def golden(coded: Coded) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]]]:
    """Decode table entries and (lane, symbol) per decode step from the scalar golden decoder."""
    table = coded.decode_table()
    expected = [(lane, sym) for lane, _r, _state, sym in steps(coded, table)]
    return table.entries(), expected


def make_case(seed: int, log2_states: int, lanes: int, n_symbols: int, symbol_bits: int,
              dist: str = "random") -> Case:
    """Encode a random tensor with the software encoder and record the golden decode."""
    rng = np.random.default_rng(seed)
    alphabet = min(1 << symbol_bits, 1 << log2_states)
    syms = symbols(rng, n_symbols, alphabet, dist)
    coded = encode(syms, log2_states=log2_states, lanes=lanes)
    entries, expected = golden(coded)
    return Case(coded, entries, expected)


def corrupt_bits(coded: Coded, flips: list[int]) -> Coded:
    """The same stream with the given payload bits (all < payload_bits) inverted."""
    data = bytearray(coded.payload)
    for bit in flips:
        data[bit >> 3] ^= 1 << (bit & 7)
    return Coded(coded.log2_states, coded.lanes, coded.n_symbols, coded.norm, bytes(data),
                 coded.payload_bits)


def golden_outcome(coded: Coded, table=None) -> tuple[list[tuple[int, int]], bool]:
    """(lane, symbol) steps the golden decoder yields before it stops, and whether it failed."""
    from sw.tans import FormatError
    table = coded.decode_table() if table is None else table
    out: list[tuple[int, int]] = []
    try:
        for lane, _r, _state, sym in steps(coded, table):
            out.append((lane, sym))
    except FormatError:
        return out, True
    return out, False


def swapped_table(coded: Coded, a: int, b: int):
    """The case's decode table with entries a and b exchanged (still well formed, now wrong)."""
    from sw.tans import DecodeTable
    t = coded.decode_table()
    sym, nb, base = t.symbol.copy(), t.nb_bits.copy(), t.base.copy()
    for arr in (sym, nb, base):
        arr[a], arr[b] = arr[b], arr[a]
    return DecodeTable(t.log2_states, sym, nb, base)
