"""Dequantizer: symbol beats -> signed integer weight beats for the compute array.

weight = symbol - zero_point (8-bit two's complement; raw 8-bit layers use zero point 0,
so their bytes pass through unchanged). Each output beat carries P weights, how many of
them are valid, first/last-of-tensor flags, the layer tag, the layer's quantizer step
(float32 bits: the compute side multiplies accumulated sums by it) and, on the last beat,
the tensor's integrity verdict (`error`: any failure; `crc_error`: its bytes failed the CRC).

Built with codebook / tuple support (`DequantParams` not plain), each symbol is instead looked
up in a small per-tensor codebook memory (depth `codebook_depth`, entries of `max_tuple` levels
of `level_bits`, loaded from the tensor's codebook section before its payload) when the tensor
has one, so one symbol yields up to N weights (`nw` of them valid: fewer in a short lane tail,
FORMAT.md 2.3c); the valid weights of the P symbols are packed in order into a beat of
P·max_tuple slots of `level_bits`-bit weights.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from sw.tans import format as fmt


@dataclass(frozen=True)
class DequantParams:
    """What the dequantizer supports beyond zero points: tuple size, codebook memory, weight width."""

    max_tuple: int = 1         #: N: weights per decoded symbol at most (1..4)
    codebook_depth: int = 0    #: entries of the codebook memory (a power of two; 0: no codebook)
    level_bits: int = 8        #: width of an output weight / codebook level (8 or 16)

    def __post_init__(self) -> None:
        if not 1 <= self.max_tuple <= fmt.MAX_TUPLE:
            raise ValueError(f"max tuple must be 1..{fmt.MAX_TUPLE}, got {self.max_tuple}")
        if self.codebook_depth and (self.codebook_depth & (self.codebook_depth - 1)
                                    or self.codebook_depth > fmt.MAX_ALPHABET):
            raise ValueError(f"codebook depth must be a power of two up to {fmt.MAX_ALPHABET}, got "
                             f"{self.codebook_depth}")
        if self.max_tuple > 1 and not self.codebook_depth:
            raise ValueError("tuples are dequantized through the codebook memory: give a codebook depth")
        if self.level_bits not in (8, 16):
            raise ValueError(f"level bits must be 8 or 16, got {self.level_bits}")

    @property
    def plain(self) -> bool:
        """Zero-point only: the original dequantizer (and weight beat) with nothing added."""
        return self.max_tuple == 1 and self.codebook_depth == 0 and self.level_bits == 8

    @property
    def slots(self) -> int:
        return self.max_tuple

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


PLAIN = DequantParams()


def symbol_beat(p: int, sym_bits: int = 8, dq: DequantParams = PLAIN) -> data.StructLayout:
    """P symbols (or raw bytes) in stream order and how many are valid (and, unless plain, how many
    weights each gives)."""
    fields = {"data": data.ArrayLayout(unsigned(sym_bits), p), "count": range(p + 1)}
    if not dq.plain:
        fields["nw"] = data.ArrayLayout(range(dq.max_tuple + 1), p)
    return data.StructLayout(fields)


def weight_beat(p: int, dq: DequantParams = PLAIN) -> data.StructLayout:
    """One output beat of the weight stream: P weights (P·max_tuple with tuples)."""
    n = p * dq.max_tuple
    return data.StructLayout({
        "data": data.ArrayLayout(signed(dq.level_bits), n),  # weights, element 0 first in stream order
        "count": range(n + 1),                   # valid weights in this beat (all but at a round's or tensor's end)
        "first": 1,                              # first beat of a tensor
        "last": 1,                               # last beat of a tensor
        "error": 1,                              # on the last beat: the tensor failed its check
        "layer": 8,                              # descriptor tag
        "step": 32,                              # float32 bits of the layer's step
        "crc_error": 1,                          # on the last beat: the tensor's bytes failed their CRC
    })


class Dequantizer(wiring.Component):
    """Subtracts the zero point from each symbol and tags the beat with the layer's quantizer."""

    def __init__(self, p: int, sym_bits: int = 8, dq: DequantParams = PLAIN) -> None:
        self.p, self.dq, self.sym_bits = p, dq, sym_bits
        extra = {} if dq.plain else {
            "use_cb": In(1),                       # the tensor's symbols go through the codebook
            "cb_we": In(1), "cb_waddr": In(max(1, (max(dq.codebook_depth, 2) - 1).bit_length())),
            "cb_wdata": In(dq.max_tuple * dq.level_bits),
        }
        super().__init__({
            "i": In(stream.Signature(symbol_beat(p, sym_bits, dq))),
            "o": Out(stream.Signature(weight_beat(p, dq))),
            **extra,
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
        if not self.dq.plain:
            return self._elaborate_codebook(m)
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

    def _elaborate_codebook(self, m: Module) -> Module:
        """Codebook lookup (one comb read port per unit), then the valid weights packed in order."""
        dq, P, N, lb = self.dq, self.p, self.dq.max_tuple, self.dq.level_bits
        o, i = self.o.payload, self.i.payload
        levels = []                                   # levels[k][t]: weight t of symbol k
        if dq.codebook_depth:
            m.submodules.cb = cb = memory.Memory(shape=unsigned(N * lb), depth=dq.codebook_depth, init=[])
            wp = cb.write_port()
            m.d.comb += [wp.en.eq(self.cb_we), wp.addr.eq(self.cb_waddr), wp.data.eq(self.cb_wdata)]
        for k in range(P):
            plain = Signal(signed(lb), name=f"zp_{k}")
            m.d.comb += plain.eq((i.data[k][:8] - self.zero_point)[:8].as_signed())
            if dq.codebook_depth:
                rp = cb.read_port(domain="comb")
                m.d.comb += rp.addr.eq(i.data[k])
                row = [Mux(self.use_cb, rp.data[t * lb:(t + 1) * lb].as_signed(), plain if t == 0 else 0)
                       for t in range(N)]
            else:
                row = [plain] + [Const(0, signed(lb))] * (N - 1)
            levels.append(row)
        # prefix sums of the weights each symbol gives: slot s takes symbol k's weight t when pre_k + t = s
        pre = [Const(0, range(P * N + 1))]
        for k in range(P):
            acc = Signal(range(P * N + 1), name=f"pre_{k + 1}")
            m.d.comb += acc.eq(pre[-1] + i.nw[k])
            pre.append(acc)
        with m.If(self.o.ready | ~self.o.valid):
            m.d.sync += self.o.valid.eq(self.i.valid)
            with m.If(self.i.valid):
                for s in range(P * N):
                    v = Const(0, signed(lb))
                    for k in range(P):
                        for t in range(min(N, s + 1)):
                            v = Mux((pre[k] == s - t) & (t < i.nw[k]), levels[k][t], v)
                    m.d.sync += o.data[s].eq(v)
                m.d.sync += [o.count.eq(pre[-1]), o.first.eq(self.first),
                             o.last.eq(self.last), o.error.eq(self.last & self.error),
                             o.layer.eq(self.layer), o.step.eq(self.step),
                             o.crc_error.eq(self.last & self.crc_error)]
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        return m
