"""A self-checking demo top: decoder + table and payload in ROM; a checksum of the output on LEDs."""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import memory, wiring, stream
from amaranth.lib.wiring import In, Out

from hw.core.decoder import TansDecoder
from hw.core.layouts import pack, table_load_layout
from hw.core.params import DecoderParams
from hw.core.ram import RAM_TARGETS

CHECKSUM_BITS = 32


def checksum(pairs: list[tuple[int, int]]) -> int:
    """The demo's running checksum of (lane, symbol) pairs, as the hardware computes it."""
    c = 0
    for lane, sym in pairs:
        c = (c * 31 + sym + (lane << 8)) & ((1 << CHECKSUM_BITS) - 1)
    return c


class RomStreamer(wiring.Component):
    """Streams a ROM's words in order, `last` on the final one (sync read, one word per cycle)."""

    def __init__(self, words: list[int], width: int) -> None:
        self.words, self.width = words, width
        super().__init__({"o": Out(stream.Signature(width + 1)), "start": In(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        n = len(self.words)
        m.submodules.rom = rom = memory.Memory(shape=self.width, depth=n, init=self.words)
        rp = rom.read_port()
        cur = Signal(range(n + 1), init=n)
        take = self.o.valid & self.o.ready
        m.d.comb += [
            rp.addr.eq(Mux(take, cur + 1, cur)),
            self.o.valid.eq(cur < n),
            self.o.payload.eq(Cat(rp.data, cur == n - 1)),
        ]
        with m.If(take):
            m.d.sync += cur.eq(cur + 1)
        with m.If(self.start):
            m.d.sync += cur.eq(0)
            m.d.comb += rp.addr.eq(0)
        return m


class DemoTop(wiring.Component):
    """Loads the table, decodes the tensor once after reset and checks the output checksum."""

    def __init__(self, p: DecoderParams, entries: list[tuple[int, int, int]], words: list[int],
                 n_symbols: int, lanes: int, payload_bits: int, expected_checksum: int,
                 expected_count: int) -> None:
        self.p = p
        self.entries, self.words = entries, words
        self.cmd_fields = dict(n_symbols=n_symbols, lanes=lanes, payload_bits=payload_bits)
        self.expected_checksum, self.expected_count = expected_checksum, expected_count
        super().__init__({"ok": Out(1), "fail": Out(1), "busy": Out(1), "checksum": Out(CHECKSUM_BITS)})

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.p
        # on a board the RAMs are the family's block RAM primitives (see hw.core.ram.SimpleRam)
        family = getattr(platform, "family", None)
        ram = family if family in RAM_TARGETS else "generic"
        m.submodules.core = core = TansDecoder(p, ram=ram)
        ent_layout = table_load_layout(p)["entry"].shape
        raw_entries = [pack(ent_layout, symbol=s, nb_bits=nb, base=b) for s, nb, b in self.entries]
        m.submodules.table_rom = trom = RomStreamer(raw_entries, ent_layout.size)
        m.submodules.word_rom = wrom = RomStreamer(self.words, p.word_bits)
        m.d.comb += [
            core.table.valid.eq(trom.o.valid), trom.o.ready.eq(core.table.ready),
            core.table.payload.eq(trom.o.payload),
            core.words.valid.eq(wrom.o.valid), wrom.o.ready.eq(core.words.ready),
            core.words.payload.eq(wrom.o.payload),
            core.out.ready.eq(1),
        ]
        count = Signal(32)
        chk = self.checksum
        with m.If(core.out.valid):
            c, n = chk, count
            for i in range(p.units):
                sel = core.out.payload.count > i
                nxt = (c << 5) - c + core.out.payload.symbols[i] + (core.out.payload.lanes[i] << 8)
                c = Mux(sel, nxt[:CHECKSUM_BITS], c)
            m.d.sync += [chk.eq(c), count.eq(count + core.out.payload.count)]

        with m.FSM():
            with m.State("BOOT"):
                m.d.comb += trom.start.eq(1)
                m.next = "TABLE"
            with m.State("TABLE"):
                with m.If(~trom.o.valid):
                    m.next = "CMD"
            with m.State("CMD"):
                for name, value in self.cmd_fields.items():
                    m.d.comb += getattr(core.cmd.payload, name).eq(value)
                m.d.comb += core.cmd.valid.eq(1)
                with m.If(core.cmd.ready):
                    m.d.comb += wrom.start.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                with m.If(core.status.done):
                    m.next = "CHECK"
            with m.State("CHECK"):
                good = ((chk == self.expected_checksum) & (count == self.expected_count) &
                        ~core.status.error)
                m.d.sync += [self.ok.eq(good), self.fail.eq(~good)]
                m.next = "HALT"
            with m.State("HALT"):
                pass
        return m
