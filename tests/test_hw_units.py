"""Amaranth-simulator unit tests of the decoder's parts, the demo top and the build CLI."""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.core.bitbuffer import BitBuffer
from hw.boards.demo_top import DemoTop, checksum
from hw.core.params import DecoderParams, ParamError
from hw.core.schedule import GroupScheduler
from sim.tb.amaranth_sim import run_case, send_packet
from sw.tans.vectors import make_case
from sw.tans.lanes import lane_lengths
from sw.tans.reference import BitReader

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kw", [dict(log2_states=4), dict(log2_states=13), dict(word_bits=12),
                                dict(units=0), dict(lanes=0), dict(symbol_bits=0), dict(units=True)])
def test_params_rejected(kw):
    with pytest.raises(ParamError):
        DecoderParams(**kw)


@pytest.mark.parametrize("units,word_bits,k,nbytes", [(1, 32, 8, 64), (2, 8, 12, 64), (4, 64, 5, 64),
                                                     (3, 16, 7, 64), (2, 8, 8, 700)])
def test_bitbuffer_matches_golden_reader(units, word_bits, k, nbytes):
    """Random multi-field reads agree with the golden BitReader, with gaps on both sides.

    700 one-byte words take the payload word counter's low byte round more than twice.
    """
    p = DecoderParams(log2_states=k, units=units, word_bits=word_bits, lanes=4)
    dut = BitBuffer(p)
    rng = random.Random(units * 100 + word_bits + k)
    payload = bytes(rng.getrandbits(8) for _ in range(nbytes))
    payload_bits = 8 * len(payload) - rng.randint(0, 7)
    words = [int.from_bytes(payload[i:i + word_bits // 8], "little")
             for i in range(0, len(payload), word_bits // 8)]
    ref = BitReader(payload)
    got, want = [], []

    async def feed(ctx):
        await send_packet(ctx, dut.words, words, rng, 0.3)

    async def read(ctx):
        ctx.set(dut.payload_bits, payload_bits)
        await ctx.tick().repeat(3)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        consumed = 0
        for _ in range(4000):
            widths = [rng.randint(0, k) for _ in range(units)]
            if consumed + sum(widths) > payload_bits:
                break
            for i, w in enumerate(widths):
                ctx.set(dut.widths[i], w)
                ctx.set(dut.ends[i], sum(widths[:i + 1]))
            await ctx.delay(1e-9)
            reading = ctx.get(dut.can_read) and rng.random() < 0.8
            if reading:
                assert not ctx.get(dut.short)
                want.append([ref.read(w) for w in widths])
                consumed += sum(widths)
                ctx.set(dut.read, 1)
            await ctx.tick()
            ctx.set(dut.read, 0)
            if reading:     # the fields come out the cycle after the read
                got.append([ctx.get(dut.fields[i]) for i in range(units)])
        # one bit more than the payload holds is flagged short once everything is loaded
        for _ in range(200):
            if ctx.get(dut.can_read):
                break
            await ctx.tick()
        # the packet's `last` came exactly with the payload's final word
        assert ctx.get(dut.seen_last) and not ctx.get(dut.truncated)
        ctx.set(dut.widths[0], min(k, payload_bits - consumed + 1))
        for i in range(units):
            ctx.set(dut.ends[i], min(k, payload_bits - consumed + 1))
        for i in range(1, units):
            ctx.set(dut.widths[i], 0)
        ctx.set(dut.read, 1)
        await ctx.tick()            # `short` is registered: it answers for last cycle's read
        ctx.set(dut.read, 0)
        if payload_bits - consumed + 1 <= k:
            assert ctx.get(dut.short)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(read)
    sim.run()
    assert len(got) > 20 and got == want


async def load_scheduler(ctx, dut: GroupScheduler, n: int, lanes: int) -> None:
    """Give the scheduler a command and wait until it is ready to start."""
    ctx.set(dut.n_symbols, n)
    ctx.set(dut.lanes, lanes)
    ctx.set(dut.load, 1)
    await ctx.tick()
    ctx.set(dut.load, 0)
    await ctx.tick().until(dut.ready)


def expected_steps(n: int, lanes: int) -> list[tuple[int, bool, bool]]:
    """(lane, init round?, lane's last step?) in the consumption rule's order."""
    out = [(j, True, False) for j in range(lanes)]
    lengths = lane_lengths(n, lanes).tolist()
    for r in range(max(lengths)):
        for j in range(lanes):
            if r < lengths[j]:
                out.append((j, False, r == lengths[j] - 1))
    return out


@pytest.mark.parametrize("units,lanes,used,n", [(1, 8, 8, 30), (2, 8, 5, 23), (4, 16, 13, 100),
                                                (4, 3, 3, 7), (3, 7, 7, 50), (1, 1, 1, 5)])
def test_scheduler_follows_consumption_rule(units, lanes, used, n):
    p = DecoderParams(units=units, lanes=lanes)
    dut = GroupScheduler(p)
    got = []
    rng = random.Random(n)

    async def tb(ctx):
        await load_scheduler(ctx, dut, n, used)
        assert not ctx.get(dut.too_few)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        lasts = 0
        since = 99          # cycles since the last issue: a round's first group waits 6 (see docs)
        for _ in range(10 * n + 100):
            if not ctx.get(dut.valid):
                break
            go = rng.random() < 0.7 and (since >= 6 or ctx.get(dut.lane0) != 0)
            since = 0 if go else since + 1
            ctx.set(dut.next, go)
            if go:
                lane0, active, final = ctx.get(dut.lane0), ctx.get(dut.active), ctx.get(dut.final)
                init, last = ctx.get(dut.init), ctx.get(dut.last)
                assert ctx.get(dut.group) * units == lane0
                lasts += last
                for i in range(units):
                    if active >> i & 1:
                        got.append((lane0 + i, bool(init), bool(final >> i & 1)))
            await ctx.tick()
            ctx.set(dut.next, 0)
        assert lasts == 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == expected_steps(n, used)


@pytest.mark.parametrize("k,lanes,units,word_bits,dist", [
    (6, 8, 1, 32, "random"), (7, 5, 2, 8, "peaked"), (8, 16, 4, 64, "dominant"), (5, 1, 1, 16, "uniform")])
def test_decoder_amaranth_sim(k, lanes, units, word_bits, dist):
    """The whole core in the Amaranth simulator against the golden decoder (small, fast)."""
    p = DecoderParams(log2_states=8, symbol_bits=5, lanes=16, units=units, word_bits=word_bits)
    case = make_case(k + lanes, k, lanes, 120, 5, dist)
    got, res, _ = run_case(p, case, idle=0.2, backpressure=0.3, seed=k)
    assert res["error"] == 0 and got == case.expected


@pytest.mark.parametrize("lanes,units,seed", [(1, 1, 8), (2, 1, 9), (6, 4, 3), (20, 1, 5)])
def test_decoder_starved_input(lanes, units, seed):
    """Words far apart (95% idle), including before the first one: no read runs ahead of them."""
    p = DecoderParams(log2_states=8, symbol_bits=5, lanes=64, units=units, word_bits=32)
    case = make_case(100 + seed, 8, lanes, 40 * lanes + 7, 5, "random")
    got, res, _ = run_case(p, case, idle=0.95, seed=seed, max_cycles=400_000)
    assert res["error"] == 0 and got == case.expected, res


def test_demo_top_checks_itself():
    """The board demo's self-check passes on a good ROM and fails on a wrong expected checksum."""
    p = DecoderParams(log2_states=6, symbol_bits=5, lanes=8, units=2, word_bits=32)
    case = make_case(3, 6, 8, 200, 5, "peaked")
    results = []
    for expect in (checksum(case.expected), checksum(case.expected) ^ 1):
        dut = DemoTop(p, case.entries, case.words(32), case.n_symbols, case.coded.lanes,
                      case.coded.payload_bits, expect, len(case.expected))

        async def tb(ctx, dut=dut):
            for _ in range(3000):
                await ctx.tick()
                if ctx.get(dut.ok) or ctx.get(dut.fail):
                    break
            results.append((ctx.get(dut.ok), ctx.get(dut.fail)))

        sim = Simulator(dut)
        sim.add_clock(1e-8)
        sim.add_testbench(tb)
        sim.run()
    assert results == [(1, 0), (0, 1)]


def run_build(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hw.build", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_build_writes_verilog_and_json(tmp_path):
    r = run_build("--states", "64", "--symbol-bits", "4", "--lanes", "8", "--units", "2",
                  "--word-bits", "16", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    v = (tmp_path / "tans_decoder.v").read_text()
    assert "module tans_decoder" in v and "words__payload" in v
    meta = json.loads((tmp_path / "tans_decoder.json").read_text())
    assert meta["params"] == {"log2_states": 6, "symbol_bits": 4, "lanes": 8, "units": 2,
                              "word_bits": 16, "states": 64}
    assert meta["error_codes"]["FINAL_STATE"] == 5
    # entry fields and output slots, with offsets from the payload's bit 0 (what wrappers slice)
    entry = meta["ports"]["table"]["entry"]["fields"]
    assert entry == {"symbol": {"offset": 0, "width": 4}, "nb_bits": {"offset": 4, "width": 3},
                     "base": {"offset": 7, "width": 6}}
    out = meta["ports"]["out"]
    assert [s["offset"] for s in out["symbols"]["slots"]] == [0, 4]
    assert [s["offset"] for s in out["lanes"]["slots"]] == [8, 11] and out["lanes"]["slot_width"] == 3
    assert out["count"]["offset"] == 14


def test_build_prefix_renames_every_module(tmp_path):
    """`--prefix` renames the top and every submodule; no prefix keeps the historical names."""
    r = run_build("--states", "32", "--lanes", "4", "--prefix", "cfg_b_", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    v = (tmp_path / "cfg_b_tans_decoder.v").read_text()
    mods = re.findall(r"^module\s+\\?(\S+?)\s*\(", v, re.M)
    assert mods and all(m.startswith("cfg_b_tans_decoder") for m in mods), mods
    assert json.loads((tmp_path / "cfg_b_tans_decoder.json").read_text())["module"] == "cfg_b_tans_decoder"
    r = run_build("--prefix", "9bad", "--out", str(tmp_path))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["--states", "100"], ["--states", "8192"], ["--word-bits", "12"],
                                  ["--units", "0"], ["--lanes", "x"], ["--synth", "xilinx"],
                                  ["--board", "nope"], ["--symbol-bits", "17"]])
def test_build_rejects_bad_parameters(args, tmp_path):
    r = run_build(*args, "--out", str(tmp_path))
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in r.stderr, r.stderr


#: the synthesis runs (yosys / nextpnr take a core each), in the session's shared queue
SYNTH_RUNS = {
    "test_synth_ice40_report": ("--states", "32", "--symbol-bits", "4", "--lanes", "4", "--synth", "ice40"),
    "test_board_icebreaker_bitstream": ("--states", "64", "--lanes", "8", "--board", "icebreaker"),
}
_SYNTH_OUT: dict[str, Path] = {}


def start_early(session, items):
    """Called by conftest before the first test: the selected synthesis runs, each in the
    session's shared queue with its own output folder."""
    from conftest import shared_jobs
    wanted = [i.name for i in items if i.name in SYNTH_RUNS]
    if not wanted:
        return None
    pool = shared_jobs("hw_units:")
    for name in wanted:
        _SYNTH_OUT[name] = out = session.config._tmp_path_factory.mktemp(name[5:25])
        pool.submit(name, run_build, *SYNTH_RUNS[name], "--out", str(out), priority=2)
    return pool


def synth_run(request) -> tuple[subprocess.CompletedProcess, Path]:
    """This test's synthesis run (started early by conftest, or now) and its output folder."""
    import conftest
    name = request.node.name
    pool = conftest.EARLY.get(request.module.__name__)
    if pool is not None and name in pool:
        return pool.result(name), _SYNTH_OUT[name]
    out = request.getfixturevalue("tmp_path")
    return run_build(*SYNTH_RUNS[name], "--out", str(out)), out


def test_synth_ice40_report(request):
    """`--synth ice40` runs yosys and nextpnr and writes a report with real resource counts."""
    r, tmp_path = synth_run(request)
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "ice40" / "report.json").read_text())
    assert rep["part"] == "iCE40UP5K-SG48"
    assert rep["luts"] > 50 and rep["ffs"] > 50 and rep["brams"] >= 1 and rep["fmax_mhz"] > 1
    assert "LUT4" in r.stdout and "[hw.synth]" in r.stderr
    for tag in ("core", "harness"):         # the yosys transcripts are kept, not silenced
        log = (tmp_path / "ice40" / f"{tag}_yosys.log").read_text()
        assert "Executing SYNTH_ICE40 pass" in log and "End of script" in log, log[-500:]


def test_board_icebreaker_bitstream(request):
    """`--board icebreaker` places, routes and packs the self-checking demo into a bitstream."""
    r, tmp_path = synth_run(request)
    assert r.returncode == 0, r.stderr
    bit = tmp_path / "board_icebreaker" / "top.bin"
    assert bit.exists() and bit.stat().st_size > 50_000
    assert (tmp_path / "board_icebreaker" / "top.pcf").read_text() == \
        (ROOT / "constraints" / "icebreaker.pcf").read_text()


@pytest.mark.parametrize("n,used,too_few", [(7, 8, True), (8, 8, False), (0, 1, True), (2**32 - 1, 64, False)])
def test_scheduler_flags_fewer_symbols_than_lanes(n, used, too_few):
    """`too_few` (n_symbols < lanes) comes from the scheduler's pipelined subtraction."""
    dut = GroupScheduler(DecoderParams(lanes=64))

    async def tb(ctx):
        await load_scheduler(ctx, dut, n, used)
        assert bool(ctx.get(dut.too_few)) == too_few

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


def test_build_fetch_writes_verilog_and_json(tmp_path):
    """`--fetch` writes the whole fetch path with its descriptor/weight layouts and codes."""
    from hw.fetch.descriptor import DESCRIPTOR
    r = run_build("--fetch", "--units", "4", "--symbol-bits", "8", "--prefix", "f_", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    v = (tmp_path / "f_weight_fetch.v").read_text()
    assert re.search(r"^module f_weight_fetch\(", v, re.M) and "m_axi__araddr" in v
    assert "module \\f_weight_fetch.decoder" in v            # the core inside, under the prefix
    meta = json.loads((tmp_path / "f_weight_fetch.json").read_text())
    assert meta["core_params"]["word_bits"] == 64 and meta["core_params"]["units"] == 4
    assert meta["ports"]["desc_in"]["crc"] == {"offset": DESCRIPTOR["crc"].offset, "width": 32}
    assert meta["error_codes"]["CRC"] == 7 and meta["ports"]["status"]["crc_error_layer"]["width"] == 8
    r = run_build("--fetch", "--units", "3", "--out", str(tmp_path))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    r = run_build("--fetch", "--axil", "--out", str(tmp_path / "axil"))
    assert r.returncode == 0 and "UnusedElaboratable" not in r.stderr, r.stderr
    assert re.search(r"^module weight_fetch_axil\(", (tmp_path / "axil" / "weight_fetch_axil.v").read_text(), re.M)
    meta = json.loads((tmp_path / "axil" / "weight_fetch_axil.json").read_text())
    assert meta["registers"]["PUSH"]["addr"] == 0x28
    assert "#define TANS_REG_PUSH 0x28u" in (tmp_path / "axil" / "tans_fetch_regs.h").read_text()


def test_build_for_model_sizes_the_core(tmp_path):
    """`--for MODEL` picks parameters every coded tensor fits, says why, and explicit options win."""
    from sim.model.demo import cached_demo
    from sw import container as ctr
    from sw.tans import format as fmt
    model = cached_demo()
    coded = [t.coded for t in ctr.read(model).tensors if t.kind == fmt.KIND_TANS]
    r = run_build("--for", str(model), "--word-bits", "16", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "tans_decoder.json").read_text())["params"]
    assert meta["log2_states"] == max(c.log2_states for c in coded)
    assert meta["lanes"] == max(c.lanes for c in coded)
    assert 1 << meta["symbol_bits"] >= max(c.alphabet for c in coded) > 1 << (meta["symbol_bits"] - 1)
    big = max(coded, key=lambda c: c.n_symbols)           # 64 lanes: 7 groups of 8 fit, W = 16 feeds ~6
    assert meta["units"] == 4 and big.lanes >= 7 * 4 and meta["word_bits"] == 16
    for word in ("states", "symbol bits", "lanes", "units"):
        assert f"--for {model}: {word} " in r.stdout
    r = run_build("--for", str(model), "--lanes", "200", "--out", str(tmp_path))
    assert "lanes 200: given on the command line" in r.stdout
    assert json.loads((tmp_path / "tans_decoder.json").read_text())["params"]["lanes"] == 200
    bad = tmp_path / "bad.tans"
    bad.write_bytes(model.read_bytes()[:50])
    r = run_build("--for", str(bad), "--out", str(tmp_path))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
