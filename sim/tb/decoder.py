"""cocotb tests of the decoder core against the software golden decoder (sw.tans.reference.steps).

Every expected symbol and lane comes from the golden model run on the same coded stream and table.
Run through tests/test_hw_cocotb.py (cocotb_tools.runner), one build per parameter set.
"""
from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from hw.core.layouts import ErrorCode
from sim.tb.driver import DecoderTB, Timeout
from sw.tans.vectors import (DISTRIBUTIONS, Case, corrupt_bits, golden_outcome, make_case,
                                 swapped_table)


def case_for(tb: DecoderTB, seed: int, dist: str, n: int | None = None, lanes: int | None = None,
             log2_states: int | None = None) -> Case:
    """A random tensor that fits the core: table size <= l, symbols < 2**symbol_bits."""
    p, rng = tb.p, random.Random(seed)
    k = log2_states or rng.randint(max(5, p.log2_states - 2), p.log2_states)
    k = max(k, min(12, (p.symbol_bits if dist == "uniform" else 5)))
    k = min(k, p.log2_states)
    lanes = lanes or rng.randint(1, p.lanes)
    n = n or rng.randint(lanes, lanes * 6 + 40)
    return make_case(seed, k, lanes, n, p.symbol_bits, dist)


def check_exact(res, case: Case, what: str) -> None:
    """Every symbol and lane equal to the golden decoder's, one `last`, no error."""
    assert res.status["error"] == 0, f"{what}: error code {res.status['error_code']}"
    assert len(res.got) == len(case.expected), f"{what}: {len(res.got)} symbols, golden {len(case.expected)}"
    for i, (g, e) in enumerate(zip(res.got, case.expected)):
        assert g == e, f"{what}: step {i}: (lane, symbol) {g}, golden {e}"
    assert res.lasts == [len(case.expected)], f"{what}: last flags after {res.lasts}"


@cocotb.test()
async def test_golden_sweep(dut):
    """Random tables, lanes and distributions (incl. p > 1/2) under idle/back-pressure sweeps."""
    tb = DecoderTB(dut, seed=11)
    await tb.reset()
    seed = 100
    for idle, bp in [(0.0, 0.0), (0.5, 0.0), (0.0, 0.6), (0.3, 0.3)]:
        tb.idle, tb.backpressure = idle, bp
        for dist in DISTRIBUTIONS:
            seed += 1
            case = case_for(tb, seed, dist)
            await tb.load_table(case.entries)
            res = await tb.decode(case)
            check_exact(res, case, f"{dist} idle={idle} bp={bp} lanes={case.coded.lanes} "
                                   f"l={1 << case.coded.log2_states}")


@cocotb.test()
async def test_back_to_back(dut):
    """Several tensors on one table, different lane counts, no reload in between."""
    tb = DecoderTB(dut, seed=5)
    await tb.reset()
    tb.idle, tb.backpressure = 0.1, 0.2
    base = case_for(tb, 7, "peaked", n=3000, lanes=tb.p.lanes, log2_states=tb.p.log2_states)
    await tb.load_table(base.entries)
    from sw.tans import encode
    from sw.tans.vectors import golden
    import numpy as np
    rng = np.random.default_rng(3)
    for lanes in sorted({1, max(1, tb.p.lanes // 2), tb.p.lanes}):
        syms = rng.choice(np.flatnonzero(base.coded.norm), size=lanes * 5 + 3)
        coded = encode(syms, log2_states=base.coded.log2_states, lanes=lanes, norm=base.coded.norm)
        entries, expected = golden(coded)
        assert entries == base.entries
        res = await tb.decode(Case(coded, entries, expected))
        check_exact(res, Case(coded, entries, expected), f"back-to-back lanes={lanes}")


@cocotb.test()
async def test_throughput(dut):
    """Input always valid, output always ready: symbols per cycle in steady state."""
    tb = DecoderTB(dut, seed=2)
    await tb.reset()
    p = tb.p
    n = int(os.environ.get("TANS_THROUGHPUT_SYMBOLS", "4000"))
    case = case_for(tb, 99, "peaked", n=max(n, p.lanes * 4), lanes=p.lanes, log2_states=p.log2_states)
    await tb.load_table(case.entries)
    res = await tb.decode(case)
    check_exact(res, case, "throughput")
    steady = len(res.got) / res.first_to_last
    overall = len(res.got) / res.cycles
    bits_per_symbol = case.coded.payload_bits / case.n_symbols
    metrics = {"symbols": len(res.got), "cycles": res.cycles, "first_to_last": res.first_to_last,
               "symbols_per_cycle": steady, "symbols_per_cycle_overall": overall,
               "bits_per_symbol": bits_per_symbol, "lanes_used": case.coded.lanes}
    dut._log.info("throughput %s", metrics)
    if os.environ.get("TANS_METRICS"):
        with open(os.environ["TANS_METRICS"], "w") as f:
            json.dump(metrics, f)
    # full rate is promised when the lane vector covers the pipeline and the input keeps up
    if p.groups >= 5 and p.units * bits_per_symbol < 0.75 * p.word_bits:
        assert steady >= 0.95 * p.units, f"steady {steady:.3f} symbols/cycle, want {p.units}"


@cocotb.test()
async def test_corrupt_stream(dut):
    """Flipped payload bits: the error flag and every symbol agree with the golden decoder."""
    tb = DecoderTB(dut, seed=3)
    await tb.reset()
    tb.idle, tb.backpressure = 0.2, 0.2
    rng = random.Random(17)
    errors = 0
    for trial in range(12):
        case = case_for(tb, 300 + trial, DISTRIBUTIONS[trial % 4])
        flips = rng.sample(range(case.coded.payload_bits), rng.choice([1, 1, 2, 5]))
        bad = corrupt_bits(case.coded, flips)
        want, want_err = golden_outcome(bad)
        await tb.load_table(case.entries)
        res = await tb.decode(Case(bad, case.entries, want))
        errors += want_err
        assert bool(res.status["error"]) == want_err, \
            f"trial {trial}: hardware error={res.status}, golden error={want_err}"
        assert res.got == want[:len(res.got)], f"trial {trial}: symbols differ from the golden prefix"
        if not want_err:
            assert res.got == want
        # the core stays usable: decode the clean stream right after
        res = await tb.decode(case)
        check_exact(res, case, f"clean decode after corrupt trial {trial}")
    assert errors > 0, "no corruption was detected at all: the check is not exercised"


@cocotb.test()
async def test_truncated_input(dut):
    """A packet that ends early raises TRUNCATED without hanging; the next tensor decodes."""
    tb = DecoderTB(dut, seed=4)
    await tb.reset()
    tb.idle, tb.backpressure = 0.3, 0.3
    case = case_for(tb, 41, "random", n=400)
    await tb.load_table(case.entries)
    words = case.words(tb.p.word_bits)
    for keep in (1, len(words) // 2, len(words) - (64 // tb.p.word_bits) - 1):
        keep = max(1, keep)
        res = await tb.decode(case, words=words[:keep])
        assert res.status["error"] and res.status["error_code"] == ErrorCode.TRUNCATED, res.status
        assert res.got == case.expected[:len(res.got)]
        res = await tb.decode(case)
        check_exact(res, case, f"after truncation to {keep} words")
    # payload_bits larger than the stream: reads run past the real data
    res = await tb.decode(case, payload_bits=case.coded.payload_bits + 3 * tb.p.word_bits)
    assert res.status["error"], res.status
    # extra words after the payload are drained, not decoded
    res = await tb.decode(case, words=words + [0] * 3)
    check_exact(res, case, "with trailing padding words")


@cocotb.test()
async def test_corrupt_table(dut):
    """Swapped table entries, a bad table size, and no table at all."""
    tb = DecoderTB(dut, seed=6)
    await tb.reset()
    rng = random.Random(23)
    detected = 0
    for trial in range(6):
        case = case_for(tb, 500 + trial, DISTRIBUTIONS[trial % 4], n=300)
        l = len(case.entries)
        a, b = rng.sample(range(l), 2)
        while case.entries[a] == case.entries[b]:
            a, b = rng.sample(range(l), 2)
        table = swapped_table(case.coded, a, b)
        want, want_err = golden_outcome(case.coded, table)
        detected += want_err
        await tb.load_table(table.entries())
        res = await tb.decode(Case(case.coded, table.entries(), want))
        assert bool(res.status["error"]) == want_err, f"trial {trial}: {res.status} vs golden {want_err}"
        assert res.got == want[:len(res.got)]
    assert detected > 0
    # a table whose size is not a power of two is refused at the next command
    case = case_for(tb, 77, "random", n=200)
    await tb.load_table(case.entries[:-1])
    res = await tb.decode(case)
    assert res.status["error_code"] == ErrorCode.BAD_TABLE and res.got == [], res.status
    await tb.load_table(case.entries)
    check_exact(await tb.decode(case), case, "after a bad table")
    # entries no tANS table can hold are refused: a base off its 2**nb_bits grid, nb_bits above
    # the table's log2 size, a next state beyond the table
    k, big_k = len(case.entries).bit_length() - 1, tb.p.log2_states
    j = next(i for i, e in enumerate(case.entries) if e[1] >= 1)
    sym, nb, base = case.entries[j]
    bad_entries = {"base off grid": (sym, nb, base + 1)}
    if k + 1 < 1 << tb.p.nb_width:
        bad_entries["nb_bits > log2 size"] = (sym, k + 1, 0)
    if k < big_k:
        bad_entries["next state beyond the table"] = (sym, nb, base + (1 << k))
    for what, entry in bad_entries.items():
        entries = list(case.entries)
        entries[j] = entry
        await tb.load_table(entries)
        res = await tb.decode(case)
        assert res.status["error_code"] == ErrorCode.BAD_TABLE and res.got == [], (what, res.status)
    await tb.load_table(case.entries)
    check_exact(await tb.decode(case), case, "after a table with a bad entry")
    # after reset there is no table
    await tb.reset()
    res = await tb.decode(case)
    assert res.status["error_code"] == ErrorCode.NO_TABLE and res.got == [], res.status
    await tb.load_table(case.entries)
    check_exact(await tb.decode(case), case, "after reloading")


@cocotb.test()
async def test_bad_command(dut):
    """Zero lanes, too many lanes, fewer symbols than lanes: BAD_COMMAND, packet drained."""
    tb = DecoderTB(dut, seed=8)
    await tb.reset()
    case = case_for(tb, 61, "peaked", n=100)
    await tb.load_table(case.entries)
    p = tb.p
    bad = [dict(lanes=0), dict(n_symbols=case.coded.lanes - 1 if case.coded.lanes > 1 else 0)]
    if p.lanes + 1 < (1 << p.lane_count_bits):
        bad.append(dict(lanes=p.lanes + 1))
    for kw in bad:
        res = await tb.decode(case, **kw)
        assert res.status["error_code"] == ErrorCode.BAD_COMMAND and res.got == [], (kw, res.status)
    check_exact(await tb.decode(case), case, "after bad commands")


@cocotb.test()
async def test_reset_mid_tensor(dut):
    """Reset while symbols stream out; the core comes back clean and decodes the next tensor."""
    tb = DecoderTB(dut, seed=9)
    await tb.reset()
    tb.backpressure = 0.3
    case = case_for(tb, 71, "random", n=2000, lanes=tb.p.lanes)
    await tb.load_table(case.entries)
    await tb.command(case.n_symbols, case.coded.lanes, case.coded.payload_bits)
    sender = cocotb.start_soon(tb.send_words(case.words(tb.p.word_bits)))
    for _ in range(150):
        await RisingEdge(dut.clk)
    sender.cancel()
    await tb.reset()
    st = tb.status()
    assert not st["busy"] and not st["done"] and not st["table_ready"], st
    other = case_for(tb, 72, "dominant", n=700)
    await tb.load_table(other.entries)
    check_exact(await tb.decode(other), other, "after reset mid-tensor")


@cocotb.test()
async def test_starved_input(dut):
    """Input far slower than the decoder (long gaps between words), few and many lanes: exact."""
    tb = DecoderTB(dut, seed=21)
    await tb.reset()
    for trial, lanes in enumerate(sorted({1, 2, min(6, tb.p.lanes), min(3 * tb.p.units, tb.p.lanes),
                                          tb.p.lanes})):
        case = case_for(tb, 900 + trial, DISTRIBUTIONS[trial % 4], n=40 * lanes + 7, lanes=lanes)
        tb.idle = 0.0                      # the table at full speed: the payload is what starves
        await tb.load_table(case.entries)
        tb.idle = 0.95
        check_exact(await tb.decode(case), case, f"starved input, {lanes} lanes")


@cocotb.test()
async def test_table_banks(dut):
    """Two table banks: the next table loads while a decode runs on the other bank; a load into
    the running decode's bank waits until it ends; a command on a missing, bad or mixed-bank
    table ends in NO_TABLE / BAD_TABLE while the other bank keeps decoding."""
    tb = DecoderTB(dut, seed=31)
    await tb.reset()
    p = tb.p
    lanes = min(p.lanes, 8 * p.units)
    k = min(p.log2_states, 8)
    rate = p.units if lanes >= 7 * p.units else lanes / 7       # symbols per cycle (CORE.md)
    n = max(60 * lanes, int(3 * rate * (1 << k)))               # a decode outlasts a table load
    a, b, c = (case_for(tb, 1200 + i, dist, n=n, lanes=lanes,
                        log2_states=k) for i, dist in enumerate(("peaked", "random", "dominant")))
    st = tb.status()
    assert not st["table_ready"] and not st["table_ready1"], st
    # an empty bank 1 with a good bank 0: NO_TABLE on bank 1 only
    await tb.load_table(a.entries, bank=0)
    res = await tb.decode(a, bank=1)
    assert res.status["error_code"] == ErrorCode.NO_TABLE and res.got == [], res.status
    check_exact(await tb.decode(a, bank=0), a, "bank 0 after NO_TABLE on bank 1")

    async def timed_load(entries, bank):
        await tb.load_table(entries, bank=bank)
        return tb.cycle

    # the table of the next tensor loads into bank 1 while bank 0 decodes: done before the decode
    loader = cocotb.start_soon(timed_load(b.entries, 1))
    t0 = tb.cycle
    res = await tb.decode(a, bank=0)
    check_exact(res, a, "bank 0 with a load into bank 1 under way")
    assert loader.done(), "the load into the idle bank did not finish during the decode"
    loaded = await loader
    assert loaded < t0 + res.cycles, (loaded, t0, res.cycles)
    assert tb.status()["table_ready1"] and tb.status()["table_ready"]
    check_exact(await tb.decode(b, bank=1), b, "bank 1 loaded during a decode")
    check_exact(await tb.decode(a, bank=0), a, "bank 0 kept its table")
    # a load into the bank of the running decode waits: one beat enters the core's input register,
    # no further beat is taken until the decode ends
    await tb.load_table(c.entries, bank=1)
    start = len(tb.out_log)
    await tb.command(c.n_symbols, c.coded.lanes, c.coded.payload_bits, bank=1)
    sender = cocotb.start_soon(tb.send_words(c.words(p.word_bits)))
    loader = cocotb.start_soon(timed_load(a.entries, 1))
    taken_busy = 0
    for _ in range(40 * c.n_symbols):
        await FallingEdge(dut.clk)
        st = tb.status()
        if st["busy"] and int(dut.table__valid.value) and int(dut.table__ready.value):
            taken_busy += 1
        await RisingEdge(dut.clk)
        if st["done"] and not st["busy"]:
            break
    assert st["done"] and not st["error"], st
    assert taken_busy <= 1, f"{taken_busy} beats taken for the busy bank"
    await sender
    await loader
    got = [slot for _cyc, slots, _last in tb.out_log[start:] for slot in slots]
    assert got == c.expected, "bank 1 decode changed by the waiting load"
    check_exact(await tb.decode(a, bank=1), a, "bank 1 after the delayed load")
    # a bad table in bank 1 does not touch bank 0; a load whose beats change bank is bad
    await tb.load_table(b.entries[:-1], bank=1)
    res = await tb.decode(b, bank=1)
    assert res.status["error_code"] == ErrorCode.BAD_TABLE and res.got == [], res.status
    check_exact(await tb.decode(a, bank=0), a, "bank 0 next to a bad bank 1")
    n = len(b.entries)
    await tb.load_table(b.entries, bank=[0] * (n // 2) + [1] * (n - n // 2))
    for bank in (0, 1):
        res = await tb.decode(b, bank=bank)
        assert res.status["error_code"] in (ErrorCode.BAD_TABLE, ErrorCode.NO_TABLE) and res.got == [], \
            (bank, res.status)
    await tb.load_table(b.entries, bank=1)
    check_exact(await tb.decode(b, bank=1), b, "bank 1 after a mixed-bank load")
