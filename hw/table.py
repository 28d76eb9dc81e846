"""The decode table: l entries in block RAM, loaded by a stream, replicated once per decode unit."""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from sw.tans import format as fmt

from .layouts import entry_layout, table_load_layout
from .params import DecoderParams


class DecodeTable(wiring.Component):
    """Holds the table (state -> symbol, nb_bits, base); one synchronous read port per unit.

    Entries arrive on `load` at addresses 0, 1, 2, ...; the beat with `last` ends the table,
    whose size must be a power of two from 32 to l (else `bad`). Loads are accepted only while
    `load_enable` is high (the decoder is idle), so a table never changes under a decode.
    Read ports: address `addr[i]` sampled when `en` is high, entry on `data[i]` next cycle.
    """

    def __init__(self, p: DecoderParams) -> None:
        self.p = p
        ent = entry_layout(p)
        super().__init__({
            "load": In(stream.Signature(table_load_layout(p))),
            "load_enable": In(1),
            "ready": Out(1),                          # a valid table is loaded
            "bad": Out(1),                            # the last load had an invalid size
            "log2_states": Out(range(p.log2_states + 1)),
            "en": In(1),
            "addr": In(p.log2_states).array(p.units),
            "data": Out(ent).array(p.units),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.p
        ent = entry_layout(p)
        count = Signal(range(p.states + 1))           # entries written by the current load
        overflow = Signal()
        m.d.comb += self.load.ready.eq(self.load_enable)
        beat = self.load.valid & self.load.ready
        size = Signal(range(p.states + 2))
        m.d.comb += size.eq(count + 1)

        for i in range(p.units):
            mem = memory.Memory(shape=ent, depth=p.states, init=[])
            m.submodules[f"mem{i}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            m.d.comb += [
                wp.addr.eq(count[:p.log2_states]), wp.data.eq(self.load.payload.entry),
                wp.en.eq(beat & (count < p.states)),
                rp.addr.eq(self.addr[i]), rp.en.eq(self.en), self.data[i].eq(rp.data),
            ]

        with m.If(beat):
            m.d.sync += self.ready.eq(0)
            with m.If(self.load.payload.last):
                m.d.sync += [count.eq(0), overflow.eq(0)]
                ok = Signal()
                for k in range(fmt.MIN_LOG2_STATES, p.log2_states + 1):
                    with m.If(size == (1 << k)):
                        m.d.comb += ok.eq(1)
                        m.d.sync += self.log2_states.eq(k)
                m.d.sync += [self.ready.eq(ok & ~overflow), self.bad.eq(~ok | overflow)]
            with m.Else():
                with m.If(count == p.states):
                    m.d.sync += overflow.eq(1)
                with m.Else():
                    m.d.sync += count.eq(count + 1)
        return m
