"""A simple dual-port RAM of iCE40 SB_RAM40_4K block RAMs, instantiated directly.

Yosys maps a memory with a synchronous read port to SB_RAM40_4K too, but it keeps Amaranth's
read-during-write rule (read-first) with an address comparator and a bypass multiplexer in
front of the data output. The decoder never reads an entry in the cycle it is written (a table
changes only while the core is idle; a lane's state is read only after its write), so the
primitive's own behaviour is enough and those LUT levels go away.
Simulate with yosys' share/ice40/cells_sim.v (define NO_ICE40_DEFAULT_ASSIGNMENTS for Icarus).
"""
from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Ice40Ram", "MAX_DEPTH"]

MAX_DEPTH = 512      #: the 256 x 16 mode (READ_MODE = WRITE_MODE = 0) and the 512 x 8 mode (1)
_DATA = 16
_ADDR = 11


class Ice40Ram(wiring.Component):
    """A depth x width RAM in SB_RAM40_4K primitives side by side: 256 x 16 mode up to 256 deep,
    512 x 8 mode (data on the even pins, RADDR/WADDR[8:0]) up to 512.

    On a rising edge with `w_en`, entry `w_addr` becomes `w_data`. On a rising edge with
    `r_en`, `r_addr` is sampled and its entry shows on `r_data` after that edge (latency 1).
    Reading an entry in the cycle it is written gives an undefined value.
    """

    def __init__(self, width: int, depth: int) -> None:
        if width < 1:
            raise ValueError(f"Ice40Ram width must be positive, not {width}")
        if not 1 <= depth <= MAX_DEPTH:
            raise ValueError(f"Ice40Ram depth must be 1..{MAX_DEPTH}, not {depth}")
        self.width, self.depth = width, depth
        self.mode = 0 if depth <= 256 else 1
        self.bits = _DATA >> self.mode             # data bits per primitive
        self.primitives = -(-width // self.bits)
        super().__init__({
            "w_addr": In(range(depth)), "w_data": In(width), "w_en": In(1),
            "r_addr": In(range(depth)), "r_en": In(1), "r_data": Out(width),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        waddr = Cat(self.w_addr, Const(0, _ADDR - len(self.w_addr)))
        raddr = Cat(self.r_addr, Const(0, _ADDR - len(self.r_addr)))
        outs = []
        step = 1 << self.mode                      # mode 1: data bit j on pin 2j
        for k in range(self.primitives):
            lo, hi = k * self.bits, min((k + 1) * self.bits, self.width)
            rdata = Signal(_DATA, name=f"rdata{k}")
            outs += [rdata[step * j] for j in range(hi - lo)]
            wdata = [Const(0, 1)] * _DATA
            for j in range(hi - lo):
                wdata[step * j] = self.w_data[lo + j]
            m.submodules[f"bram{k}"] = Instance(
                "SB_RAM40_4K",
                p_READ_MODE=self.mode, p_WRITE_MODE=self.mode,
                i_RCLK=ClockSignal(), i_RCLKE=Const(1), i_RE=self.r_en, i_RADDR=raddr,
                i_WCLK=ClockSignal(), i_WCLKE=Const(1), i_WE=self.w_en, i_WADDR=waddr,
                i_MASK=Const(0, _DATA),
                i_WDATA=Cat(*wdata),
                o_RDATA=rdata,
            )
        m.d.comb += self.r_data.eq(Cat(*outs))
        return m
