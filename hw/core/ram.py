"""One simple dual-port RAM for the decoder's tables and state banks, built for a target."""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hw.core.ecp5_ram import Ecp5Ram

ECP5_MAX_DEPTH = 4096    #: deepest DP16KD mode Ecp5Ram builds (x4); deeper RAMs are inferred
from hw.core.ice40_ram import MAX_DEPTH as ICE40_MAX_DEPTH, Ice40Ram

RAM_TARGETS = ("generic", "ice40", "ecp5")


def check_ram_target(target: str) -> None:
    """Raise ValueError unless `target` is one of RAM_TARGETS."""
    if target not in RAM_TARGETS:
        raise ValueError(f"unknown RAM target {target!r}; choose one of {', '.join(RAM_TARGETS)}")


class SimpleRam(wiring.Component):
    """depth x width, one write and one always-enabled read port; `latency` cycles to read.

    "generic": an Amaranth memory (latency 1). "ice40": SB_RAM40_4K instances up to 256 deep
    (latency 1, no read-during-write logic; deeper ones stay generic). "ecp5": DP16KD with the
    output register (latency 2), up to 4096 deep (deeper ones stay generic). Callers never read an entry in the cycle it is written.
    """

    def __init__(self, width: int, depth: int, target: str = "generic") -> None:
        check_ram_target(target)
        if (target == "ice40" and depth > ICE40_MAX_DEPTH) or (target == "ecp5" and depth > ECP5_MAX_DEPTH):
            target = "generic"
        self.width, self.depth, self.target = width, depth, target
        self.latency = 2 if target == "ecp5" else 1
        super().__init__({
            "w_addr": In(range(depth)), "w_data": In(width), "w_en": In(1),
            "r_addr": In(range(depth)), "r_data": Out(width),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.target == "generic":
            m.submodules.mem = mem = memory.Memory(shape=self.width, depth=self.depth, init=[])
            wp, rp = mem.write_port(), mem.read_port()
            m.d.comb += [wp.addr.eq(self.w_addr), wp.data.eq(self.w_data), wp.en.eq(self.w_en),
                         rp.addr.eq(self.r_addr), self.r_data.eq(rp.data)]
            return m
        ram = Ecp5Ram(self.width, self.depth) if self.target == "ecp5" else Ice40Ram(self.width, self.depth)
        m.submodules.ram = ram
        m.d.comb += [ram.w_addr.eq(self.w_addr), ram.w_data.eq(self.w_data), ram.w_en.eq(self.w_en),
                     ram.r_addr.eq(self.r_addr), ram.r_en.eq(1), self.r_data.eq(ram.r_data)]
        return m
