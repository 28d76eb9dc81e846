"""cocotb test of hw.core.ecp5_ram.Ecp5Ram simulated with the behavioural DP16KD model (sim/models/DP16KD.v).

A Python model of the documented semantics runs alongside: on a rising edge with `w_en` the entry
is written; on a rising edge with `r_en` the output register takes the previous array read and the
array reads `r_addr`, so `r_data` is compared with the model after every clock edge (latency 2 when
`r_en` is always high, held while it is low). Run through tests/test_ecp5_ram.py; the RAM's width
and depth come from ECP5RAM_WIDTH / ECP5RAM_DEPTH.
"""
from __future__ import annotations

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge


class RamModel:
    """The RAM as Ecp5Ram documents it, advanced one rising edge at a time."""

    def __init__(self, depth: int) -> None:
        self.mem: list[int | None] = [None] * depth
        self.array_out: int | None = None    # the block RAM's array read (before the output register)
        self.r_data: int | None = None       # what r_data must show

    def edge(self, w_en: int, w_addr: int, w_data: int, r_en: int, r_addr: int) -> None:
        if r_en:
            self.r_data = self.array_out
            self.array_out = self.mem[r_addr]
        if w_en:
            self.mem[w_addr] = w_data


class RamTB:
    """Drives the ports between rising edges (on the falling edge) and checks r_data every cycle."""

    def __init__(self, dut) -> None:
        self.dut = dut
        self.width = int(os.environ["ECP5RAM_WIDTH"])
        self.depth = int(os.environ["ECP5RAM_DEPTH"])
        self.model = RamModel(self.depth)
        self.rng = random.Random(int(os.environ.get("ECP5RAM_SEED", "1")))
        self.checked = 0

    async def start(self) -> None:
        Clock(self.dut.clk, 10, unit="ns").start()
        self.dut.rst.value = 1
        for name in ("w_en", "w_addr", "w_data", "r_en", "r_addr"):
            getattr(self.dut, name).value = 0
        await FallingEdge(self.dut.clk)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def cycle(self, w_en: int = 0, w_addr: int = 0, w_data: int = 0, r_en: int = 0,
                    r_addr: int = 0) -> None:
        """Apply one cycle's inputs before the next rising edge; check r_data after it."""
        d = self.dut
        d.w_en.value, d.w_addr.value, d.w_data.value = w_en, w_addr, w_data
        d.r_en.value, d.r_addr.value = r_en, r_addr
        self.model.edge(w_en, w_addr, w_data, r_en, r_addr)
        await FallingEdge(d.clk)
        want = self.model.r_data
        if want is not None:
            got = d.r_data.value
            assert got.is_resolvable, f"r_data is {got}, want {want:#x} (w{self.width} d{self.depth})"
            assert got.to_unsigned() == want, \
                f"r_data {got.to_unsigned():#x}, want {want:#x} (w{self.width} d{self.depth})"
            self.checked += 1

    def word(self) -> int:
        return self.rng.getrandbits(self.width)

    def addr(self) -> int:
        return self.rng.randrange(self.depth)


@cocotb.test()
async def test_write_then_read(dut):
    """Fill every entry, then read random entries with r_en always high and with random gaps."""
    tb = RamTB(dut)
    await tb.start()
    for a in tb.rng.sample(range(tb.depth), tb.depth):          # every address, random order
        await tb.cycle(w_en=1, w_addr=a, w_data=tb.word())
    for _ in range(1500):                                       # back to back: latency 2
        await tb.cycle(r_en=1, r_addr=tb.addr())
    for _ in range(1500):                                       # random r_en gaps: held output
        await tb.cycle(r_en=int(tb.rng.random() < 0.5), r_addr=tb.addr())
    for _ in range(4):                                          # drain the pipeline
        await tb.cycle(r_en=1, r_addr=tb.addr())
    assert tb.checked > 1500, f"only {tb.checked} reads checked"


@cocotb.test()
async def test_mixed(dut):
    """Writes and reads in the same cycles (never of the same entry), random enables."""
    tb = RamTB(dut)
    await tb.start()
    for a in range(tb.depth):
        await tb.cycle(w_en=1, w_addr=a, w_data=tb.word())
    for _ in range(2000):
        r_addr, w_addr = tb.addr(), tb.addr()
        w_en = int(tb.rng.random() < 0.4 and w_addr != r_addr)
        await tb.cycle(w_en=w_en, w_addr=w_addr, w_data=tb.word(),
                       r_en=int(tb.rng.random() < 0.7), r_addr=r_addr)
    assert tb.checked > 1000, f"only {tb.checked} reads checked"
