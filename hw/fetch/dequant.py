"""Dequantizer: symbol beats -> signed integer weight beats for the compute array.

weight = symbol - zero_point (8-bit two's complement; raw 8-bit layers use zero point 0,
so their bytes pass through unchanged). Each output beat carries P weights, how many of
them are valid, first/last-of-tensor flags, the layer tag, the layer's quantizer step
(float32 bits: the compute side multiplies accumulated sums by it) and, on the last beat,
the tensor's integrity verdict (`error`: any failure; `crc_error`: its bytes failed the CRC).
"""
from __future__ import annotations

from amaranth import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


def symbol_beat(p: int, sym_bits: int = 8) -> data.StructLayout:
    """P symbols (or raw bytes) in stream order and how many are valid."""
    return data.StructLayout({"data": data.ArrayLayout(unsigned(sym_bits), p), "count": range(p + 1)})


def weight_beat(p: int) -> data.StructLayout:
    """One output beat of the weight stream."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(8), p),  # weights, element 0 first in stream order
        "count": range(p + 1),                   # valid weights in this beat (P except the last)
        "first": 1,                              # first beat of a tensor
        "last": 1,                               # last beat of a tensor
        "error": 1,                              # on the last beat: the tensor failed its check
        "layer": 8,                              # descriptor tag
        "step": 32,                              # float32 bits of the layer's step
        "crc_error": 1,                          # on the last beat: the tensor's bytes failed their CRC
    })


class Dequantizer(wiring.Component):
    """Subtracts the zero point from each symbol and tags the beat with the layer's quantizer."""

    def __init__(self, p: int, sym_bits: int = 8) -> None:
        self.p = p
        super().__init__({
            "i": In(stream.Signature(symbol_beat(p, sym_bits))),
            "o": Out(stream.Signature(weight_beat(p))),
            "zero_point": In(8),
            "step": In(32),
            "layer": In(8),
            "first": In(1),       # the incoming beat is the tensor's first
            "last": In(1),        # the incoming beat is the tensor's last
            "error": In(1),       # verdict, sampled with the last beat
            "crc_error": In(1),   # CRC verdict, sampled with the last beat
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        o = self.o.payload
        with m.If(self.o.ready | ~self.o.valid):
            m.d.sync += self.o.valid.eq(self.i.valid)
            with m.If(self.i.valid):
                for k in range(self.p):
                    m.d.sync += o.data[k].eq(self.i.payload.data[k][:8] - self.zero_point)
                m.d.sync += [o.count.eq(self.i.payload.count), o.first.eq(self.first),
                             o.last.eq(self.last), o.error.eq(self.last & self.error),
                             o.layer.eq(self.layer), o.step.eq(self.step),
                             o.crc_error.eq(self.last & self.crc_error)]
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        return m
