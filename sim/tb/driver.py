"""A cocotb testbench class for the decoder: stream drivers with idle gaps, a back-pressuring sink."""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from hw.core.layouts import (command_layout, output_layout, pack, status_layout, table_load_layout,
                        unpack, word_layout)
from hw.core.params import DecoderParams

from sw.tans.vectors import Case


def params_from_env() -> DecoderParams:
    """The parameters the simulated model was built with (set by sim.tb.build_decoder.run)."""
    d = json.loads(os.environ["TANS_PARAMS"])
    d.pop("states", None)
    return DecoderParams(**d)


class Timeout(AssertionError):
    """The core did not do what was expected within a cycle budget (a hang)."""


@dataclass
class Result:
    """What one command produced: (lane, symbol) per output slot, final status, cycle counts."""

    got: list[tuple[int, int]] = field(default_factory=list)
    lasts: list[int] = field(default_factory=list)     # index in `got` after each beat with last
    status: dict = field(default_factory=dict)
    cycles: int = 0                                    # command accepted -> done
    first_to_last: int = 0                             # first output beat -> last output beat


class DecoderTB:
    """Drives one `tans_decoder` instance (verilog-axis style: idle / back-pressure knobs)."""

    def __init__(self, dut, seed: int = 1) -> None:
        self.dut = dut
        self.p = params_from_env()
        self.rng = random.Random(seed)
        self.idle = 0.0            # probability of a gap before each input beat
        self.backpressure = 0.0    # probability the sink is not ready in a cycle
        self.cycle = 0
        self.out_log: list[tuple[int, list[tuple[int, int]], int]] = []  # (cycle, slots, last)
        self.tl, self.cl = table_load_layout(self.p), command_layout(self.p)
        self.wl, self.ol, self.sl = word_layout(self.p), output_layout(self.p), status_layout(self.p)
        for name in ("table", "cmd", "words"):
            getattr(dut, f"{name}__valid").value = 0
            getattr(dut, f"{name}__payload").value = 0
        dut.out__ready.value = 0
        dut.rst.value = 0
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        cocotb.start_soon(self._count())
        cocotb.start_soon(self._sink())

    async def _count(self) -> None:
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    async def _sink(self) -> None:
        """Accept output beats with random back-pressure; record every slot and lane."""
        dut = self.dut
        while True:
            dut.out__ready.value = int(self.rng.random() >= self.backpressure)
            await FallingEdge(dut.clk)       # inputs and outputs are stable mid-cycle
            if int(dut.out__valid.value) and int(dut.out__ready.value):
                beat = unpack(self.ol, int(dut.out__payload.value))
                slots = [(beat["lanes"][i], beat["symbols"][i]) for i in range(beat["count"])]
                self.out_log.append((self.cycle + 1, slots, beat["last"]))
            await RisingEdge(dut.clk)

    async def reset(self, cycles: int = 3) -> None:
        """Synchronous reset, with every input idle."""
        for name in ("table", "cmd", "words"):
            getattr(self.dut, f"{name}__valid").value = 0
        self.dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def _send(self, port: str, beats: list[int], limit: int) -> None:
        """Send raw payloads on a stream port, honouring ready, with random idle gaps."""
        valid, payload, ready = (getattr(self.dut, f"{port}__{n}") for n in ("valid", "payload", "ready"))
        waited = 0
        for beat in beats:
            while self.idle and self.rng.random() < self.idle:
                valid.value = 0
                await RisingEdge(self.dut.clk)
            valid.value = 1
            payload.value = beat
            while True:
                await FallingEdge(self.dut.clk)
                taken = int(ready.value)
                await RisingEdge(self.dut.clk)
                waited += 1
                if taken:
                    break
                if waited > limit:
                    valid.value = 0
                    raise Timeout(f"{port}: not accepted within {limit} cycles")
        valid.value = 0

    async def load_table(self, entries: list[tuple[int, int, int]], limit: int = 100_000,
                         bank: int | list[int] = 0) -> None:
        """Stream the table entries into table bank `bank` (or one bank per entry), state 0
        first, last on the final one."""
        n = len(entries)
        banks = bank if isinstance(bank, list) else [bank] * n
        beats = [pack(self.tl, entry=pack(self.tl["entry"].shape, symbol=s, nb_bits=nb, base=b),
                      last=int(i == n - 1), bank=banks[i]) for i, (s, nb, b) in enumerate(entries)]
        await self._send("table", beats, limit)

    async def command(self, n_symbols: int, lanes: int, payload_bits: int, limit: int = 100_000,
                      bank: int = 0) -> None:
        await self._send("cmd", [pack(self.cl, n_symbols=n_symbols, lanes=lanes,
                                      payload_bits=payload_bits, bank=bank)], limit)

    async def send_words(self, words: list[int], limit: int = 1_000_000) -> None:
        """Send one packet of payload words, `last` on the final one."""
        beats = [pack(self.wl, data=w, last=int(i == len(words) - 1)) for i, w in enumerate(words)]
        await self._send("words", beats, limit)

    def status(self) -> dict:
        return unpack(self.sl, int(self.dut.status.value))

    async def wait_done(self, limit: int) -> dict:
        """Wait for status.done; raise Timeout after `limit` cycles."""
        for _ in range(limit):
            await FallingEdge(self.dut.clk)
            st = self.status()
            await RisingEdge(self.dut.clk)
            if st["done"] and not st["busy"]:
                return st
        raise Timeout(f"no done within {limit} cycles (status {self.status()})")

    async def decode(self, case: Case, *, words: list[int] | None = None, n_symbols: int | None = None,
                     lanes: int | None = None, payload_bits: int | None = None,
                     limit: int | None = None, bank: int = 0) -> Result:
        """Run one command with the case's payload (or overrides); collect output and status."""
        c = case.coded
        words = case.words(self.p.word_bits) if words is None else words
        n = c.n_symbols if n_symbols is None else n_symbols
        limit = limit or 50 * (n + len(words) + 100) * max(1, int(1 / max(1e-3, 1 - self.backpressure)))
        start_log = len(self.out_log)
        await self.command(n, c.lanes if lanes is None else lanes,
                           c.payload_bits if payload_bits is None else payload_bits, bank=bank)
        t0 = self.cycle
        sender = cocotb.start_soon(self.send_words(words, limit))
        st = await self.wait_done(limit)
        t1 = self.cycle
        if not sender.done():
            sender.cancel()
            raise Timeout("done was reported before the whole packet was taken")
        res = Result(status=st, cycles=t1 - t0)
        beats = self.out_log[start_log:]
        for _cyc, slots, last in beats:
            res.got.extend(slots)
            if last:
                res.lasts.append(len(res.got))
        if beats:
            res.first_to_last = beats[-1][0] - beats[0][0] + 1
        return res
