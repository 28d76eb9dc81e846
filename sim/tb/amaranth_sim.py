"""Drive the decoder in the Amaranth simulator (fast unit tests of the RTL, no Verilog tools)."""
from __future__ import annotations

import random

from amaranth.sim import Simulator

from hw.core.decoder import TansDecoder
from hw.core.params import DecoderParams

from sw.tans.vectors import Case


async def send_packet(ctx, port, words: list[int], rnd, idle: float) -> None:
    """Send words on a `{data, last}` stream port, `last` on the final one, with random idle gaps."""
    for i, w in enumerate(words):
        while rnd.random() < idle:
            await ctx.tick()
        ctx.set(port.payload.data, w)
        ctx.set(port.payload.last, i == len(words) - 1)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)


def run_case(p: DecoderParams, case: Case, *, idle: float = 0.0, backpressure: float = 0.0,
             seed: int = 0, max_cycles: int = 200_000) -> tuple[list[tuple[int, int]], dict, int]:
    """Load the table, send the command and payload; return (lane, symbol) list, status, cycles."""
    dut = TansDecoder(p)
    rnd = random.Random(seed)
    got: list[tuple[int, int]] = []
    result: dict = {}

    async def source(ctx):
        for i, (sym, nb, base) in enumerate(case.entries):
            ctx.set(dut.table.payload.entry.symbol, sym)
            ctx.set(dut.table.payload.entry.nb_bits, nb)
            ctx.set(dut.table.payload.entry.base, base)
            ctx.set(dut.table.payload.last, i == len(case.entries) - 1)
            ctx.set(dut.table.valid, 1)
            await ctx.tick().until(dut.table.ready)
        ctx.set(dut.table.valid, 0)
        ctx.set(dut.cmd.payload.n_symbols, case.n_symbols)
        ctx.set(dut.cmd.payload.lanes, case.coded.lanes)
        ctx.set(dut.cmd.payload.payload_bits, case.coded.payload_bits)
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick().until(dut.cmd.ready)
        ctx.set(dut.cmd.valid, 0)
        await send_packet(ctx, dut.words, case.words(p.word_bits), rnd, idle)

    async def sink(ctx):
        cycles = 0
        while cycles < max_cycles:
            ready = rnd.random() >= backpressure
            ctx.set(dut.out.ready, ready)
            await ctx.tick()
            cycles += 1
            status = ctx.get(dut.status)
            if status.done:
                result.update(error=int(status.error), error_code=int(status.error_code))
                break
        result.update(cycles=cycles)

    async def monitor(ctx):
        async for clk_edge, rst, valid, ready, payload in ctx.tick().sample(
                dut.out.valid, dut.out.ready, dut.out.payload):
            if valid and ready:
                for i in range(payload.count):
                    got.append((int(payload.lanes[i]), int(payload.symbols[i])))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source, background=True)
    sim.add_process(monitor)
    sim.add_testbench(sink)
    sim.run()
    return got, result, result.get("cycles", 0)


def timeline(p: DecoderParams, case: Case, *, extra_words: int = 0, truncate_to: int | None = None,
             reload: list[tuple[int, int, int]] | None = None) -> dict:
    """Cycle numbers (from the command's transfer) of one tensor with the input always valid and
    the output always ready: first word request, first / last output beat, `done`.

    `extra_words` zero words are appended to the packet (a trailing padding word); `truncate_to`
    sends only that many words (`last` on the final one). `reload`: a second table whose load
    starts (first half only) right after the first table, with the command raised alongside, to
    see what a command accepted during a table load does. The result also has the error code
    and whether any beat carried `last`, and how many words were taken.
    """
    dut = TansDecoder(p)
    words = case.words(p.word_bits) + [0] * extra_words
    if truncate_to is not None:
        words = words[:truncate_to]
    ev: dict = {"symbols": 0, "saw_last": False, "words": 0}

    async def tb(ctx):
        ctx.set(dut.out.ready, 1)

        async def load(entries, upto=None):
            n = len(entries) if upto is None else upto
            for i, (sym, nb, base) in enumerate(entries[:n]):
                ctx.set(dut.table.payload.entry.symbol, sym)
                ctx.set(dut.table.payload.entry.nb_bits, nb)
                ctx.set(dut.table.payload.entry.base, base)
                ctx.set(dut.table.payload.last, i == len(entries) - 1)
                ctx.set(dut.table.valid, 1)
                await ctx.tick().until(dut.table.ready)
            ctx.set(dut.table.valid, 0)

        await load(case.entries)
        while not ctx.get(dut.status.table_ready):
            await ctx.tick()
        ctx.set(dut.cmd.payload.n_symbols, case.n_symbols)
        ctx.set(dut.cmd.payload.lanes, case.coded.lanes)
        ctx.set(dut.cmd.payload.payload_bits, case.coded.payload_bits)
        if reload is not None:              # half a table is in, then the command comes
            await load(reload, len(reload) // 2)
        ctx.set(dut.cmd.valid, 1)
        cyc, wi, started = 0, 0, False
        while cyc < 200_000:
            live = started and wi < len(words)
            if live:
                ctx.set(dut.words.payload.data, words[wi])
                ctx.set(dut.words.payload.last, wi == len(words) - 1)
            ctx.set(dut.words.valid, live)
            await ctx.delay(1e-9)            # settle the combinational outputs of this cycle
            cmd_fire = ctx.get(dut.cmd.valid) and ctx.get(dut.cmd.ready)
            word_fire = live and ctx.get(dut.words.ready)
            if started and ctx.get(dut.words.ready):
                ev.setdefault("first_word_ready", cyc)
            if ctx.get(dut.out.valid):
                o = ctx.get(dut.out.payload)
                ev["symbols"] += int(o.count)
                ev.setdefault("first_out", cyc)
                if o.last:
                    ev["last_out"], ev["saw_last"] = cyc, True
            st = ctx.get(dut.status)
            if started and st.done:
                ev.update(done=cyc, error=int(st.error), error_code=int(st.error_code))
                return
            await ctx.tick()
            cyc += 1
            if cmd_fire:
                started, cyc = True, 1       # cycle 0 was the command's transfer
                ctx.set(dut.cmd.valid, 0)
            if word_fire:
                ev["last_word"] = cyc - 1
                wi += 1
                ev["words"] = wi

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return ev
