"""AXI4 burst reader: turns (address, byte count) runs into full INCR bursts and a word stream.

Bursts are `max_burst` beats long except where a run ends or a 4 KiB boundary cuts one.
A burst is issued only when the read-data FIFO has room for all of it (counting bursts
still in flight), so RREADY stays high and the data channel never back-pressures the
memory: several bursts can be outstanding and the bus stays saturated. The next burst's
length is computed a cycle ahead into a register (address and count change only when a
burst or a command is accepted), which keeps the compare-and-subtract chain off the
ARVALID path: bursts can issue every other cycle, far faster than their beats arrive.
"""
from __future__ import annotations

from amaranth import Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.fetch.bus import BOUNDARY_4K, BURST_INCR, RESP_OKAY, AxiReadSignature
from hw.fetch.descriptor import FETCH_CMD


class AxiBurstReader(wiring.Component):
    """Reads each command's bytes in order (addr and nbytes multiples of the beat size)."""

    def __init__(self, data_width: int = 64, max_burst: int = 16, fifo_depth: int = 64) -> None:
        if not 1 <= max_burst <= 256 or max_burst & (max_burst - 1):
            raise ValueError("max_burst must be a power of two in 1..256")
        if fifo_depth < max_burst:
            raise ValueError("the data FIFO must hold at least one burst")
        self.data_width, self.max_burst, self.fifo_depth = data_width, max_burst, fifo_depth
        self.beat_bytes = data_width // 8
        super().__init__({
            "cmd": In(stream.Signature(FETCH_CMD)),
            "m_axi": Out(AxiReadSignature(32, data_width)),
            "data": Out(stream.Signature(data_width)),
            "idle": Out(1),          # no run in progress and nothing in flight
            "bus_error": Out(1),     # sticky: some beat came back with RRESP != OKAY
            "clear": In(1),          # clears bus_error
            "bursts": Out(32),       # bursts issued (performance counter)
            "beats": Out(32),        # beats received (performance counter)
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        shift = (self.beat_bytes - 1).bit_length()
        m.submodules.q = q = fifo.SyncFIFOBuffered(width=self.data_width, depth=self.fifo_depth)

        addr = Signal(32)
        left = Signal(32 - shift)            # beats still to request in the current run
        reserved = Signal(range(self.fifo_depth + 1))  # FIFO slots promised to issued bursts
        to_4k = Signal(range(BOUNDARY_4K // self.beat_bytes + 1))
        want = Signal(range(self.max_burst + 1))
        nxt = Signal(range(self.max_burst + 1))   # the burst length for the current addr/left
        blen = Signal(range(self.max_burst + 1))  # nxt, registered
        fresh = Signal()                          # blen matches the current addr/left
        m.d.comb += to_4k.eq((BOUNDARY_4K - addr[:12]) >> shift)
        m.d.comb += want.eq(Mux(left < self.max_burst, left, self.max_burst))
        m.d.comb += nxt.eq(Mux(to_4k < want, to_4k, want))

        ax = self.m_axi
        room = Signal()
        m.d.comb += [
            room.eq(reserved + blen <= self.fifo_depth),
            ax.arid.eq(0),
            ax.araddr.eq(addr),
            ax.arlen.eq(blen - 1),
            ax.arsize.eq(Const(shift, 3)),
            ax.arburst.eq(BURST_INCR),
            ax.arvalid.eq((left != 0) & room & fresh),
            self.cmd.ready.eq(left == 0),
        ]
        ar_fire = ax.arvalid & ax.arready
        m.d.sync += [blen.eq(nxt), fresh.eq(1)]
        with m.If(ar_fire | (self.cmd.valid & self.cmd.ready)):
            m.d.sync += fresh.eq(0)
        with m.If(ar_fire):
            m.d.sync += [addr.eq(addr + (blen << shift)), left.eq(left - blen),
                         self.bursts.eq(self.bursts + 1)]
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [addr.eq(self.cmd.payload.addr),
                         left.eq(self.cmd.payload.nbytes >> shift)]

        # read data: always ready (space was reserved when the burst was issued)
        m.d.comb += [ax.rready.eq(1), q.w_en.eq(ax.rvalid), q.w_data.eq(ax.rdata)]
        with m.If(ax.rvalid):
            m.d.sync += self.beats.eq(self.beats + 1)
            with m.If(ax.rresp != RESP_OKAY):
                m.d.sync += self.bus_error.eq(1)
        with m.If(self.clear):
            m.d.sync += self.bus_error.eq(0)

        pop = Signal()
        m.d.comb += [self.data.valid.eq(q.r_rdy), self.data.payload.eq(q.r_data),
                     q.r_en.eq(self.data.ready), pop.eq(q.r_rdy & self.data.ready)]
        m.d.sync += reserved.eq(reserved + Mux(ar_fire, blen, 0) - pop)
        m.d.comb += self.idle.eq((left == 0) & (reserved == 0))
        return m
