"""CRC-32 (zlib's: reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF) over a word
stream, one whole bus word per cycle.

The parallel update is generated from the polynomial: `update_masks` runs the bit-serial
reflected CRC symbolically over the 32 state bits and the word's data bits (byte 0 first,
each byte LSB first, which is the little-endian word's bit order), so each bit of the next
state is the XOR of a fixed set of state and data bits. `Crc32` is that XOR network
with a state register; `crc32_words` is the same update in software (tests check it against
`zlib.crc32`).
"""
from __future__ import annotations

from functools import lru_cache

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

POLY = 0xEDB88320          #: CRC-32 (IEEE 802.3, zlib) polynomial, bit-reflected
INIT = 0xFFFFFFFF
XOR_OUT = 0xFFFFFFFF
WIDTH = 32


@lru_cache(maxsize=None)
def update_masks(data_bits: int, poly: int = POLY, width: int = WIDTH) -> tuple[tuple[int, int], ...]:
    """For each next-state bit i: (state mask, data mask) whose XOR is that bit after one word.

    Bit j of the state mask selects state bit j; bit j of the data mask selects data bit j.
    """
    # symbolic state: each bit is a mask over (state bits | data bits << width)
    state = [1 << j for j in range(width)]
    for b in range(data_bits):
        fb = state[0] ^ (1 << (width + b))
        state = state[1:] + [0]
        state = [s ^ fb if poly >> j & 1 else s for j, s in enumerate(state)]
    full = (1 << width) - 1
    return tuple((s & full, s >> width) for s in state)


def crc32_words(words: list[int], data_bits: int, crc: int = INIT) -> int:
    """Raw CRC state after `words` through the parallel update (no final XOR)."""
    masks = update_masks(data_bits)
    for w in words:
        crc = sum(((bin(crc & sm).count("1") + bin(w & dm).count("1")) & 1) << i
                  for i, (sm, dm) in enumerate(masks))
    return crc


def crc32_bytes(blob: bytes) -> int:
    """zlib.crc32 of `blob` (the value a descriptor carries)."""
    import zlib
    return zlib.crc32(blob) & 0xFFFFFFFF


class Crc32(wiring.Component):
    """Running CRC-32 of the words given with `en`; `clear` restarts it (clear wins over en).

    `crc` is the finished CRC (final XOR applied) of the words so far, one cycle after the last.
    """

    def __init__(self, data_bits: int = 64) -> None:
        if data_bits % 8:
            raise ValueError("the CRC word must be whole bytes")
        self.data_bits = data_bits
        super().__init__({
            "data": In(data_bits),
            "en": In(1),
            "clear": In(1),
            "crc": Out(WIDTH),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        state = Signal(WIDTH, init=INIT)
        nxt = []
        for sm, dm in update_masks(self.data_bits):
            terms = [state[j] for j in range(WIDTH) if sm >> j & 1] + \
                    [self.data[j] for j in range(self.data_bits) if dm >> j & 1]
            nxt.append(Cat(*terms).xor() if terms else Const(0))
        with m.If(self.clear):
            m.d.sync += state.eq(INIT)
        with m.Elif(self.en):
            m.d.sync += state.eq(Cat(*nxt))
        m.d.comb += self.crc.eq(state ^ XOR_OUT)
        return m
