"""Small stream FIFOs whose input `ready` is a register compare, cutting the back-pressure path."""
from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.hdl import ShapeLike
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class StreamBuffer(wiring.Component):
    """A `depth`-entry register FIFO; `i.ready` = at least `headroom` free entries (registered level).

    `headroom` > 1 lets a producer with that many beats in flight check `ready` early. Full
    throughput as long as the consumer keeps up; `clear` empties it.
    """

    def __init__(self, shape: ShapeLike, depth: int = 2, headroom: int = 1) -> None:
        assert 1 <= headroom <= depth
        self.depth, self.headroom = depth, headroom
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "empty": Out(1),
            "clear": In(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        n = self.depth
        entries = [Signal.like(self.i.payload, name=f"e{j}") for j in range(n)]
        level = Signal(range(n + 1))
        push = Signal()
        pop = Signal()
        m.d.comb += [
            push.eq(self.i.valid & (level < n)),
            pop.eq(self.o.valid & self.o.ready),
            self.i.ready.eq(level <= n - self.headroom),
            self.o.valid.eq(level != 0), self.empty.eq(level == 0),
            self.o.payload.eq(entries[0]),
        ]
        slot = Signal(range(n + 1))
        m.d.comb += slot.eq(level - pop)
        for j in range(n):
            nxt = entries[j + 1] if j + 1 < n else entries[j]
            with m.If(push & (slot == j)):
                m.d.sync += entries[j].eq(self.i.payload)
            with m.Elif(pop):
                m.d.sync += entries[j].eq(nxt)
        m.d.sync += level.eq(level + push - pop)
        with m.If(self.clear):
            m.d.sync += level.eq(0)
        return m
