"""cocotb testbench of the weight-fetch path (hw/fetch/top.py) against an AXI4 RAM model.

The DUT is the path behind its AXI4-Lite register block (hw/fetch/regs.py), and the testbench
programs it the way the C driver (hw/fetch/driver/tans_fetch.c) does: check ID, clear, enable
the interrupt, write each descriptor's words to DESC0.. and PUSH, wait for STATUS.BUSY low,
read ERROR / LAYERS / the counters, check and acknowledge the interrupt.

Configuration comes as JSON in the environment variable FETCH_TB_CONFIG:
  container   path of the `.tans` file loaded into the simulated DRAM
  units       P of the built core (symbols per output beat)
  dequant     the build's DequantParams as a dict (max_tuple, codebook_depth, level_bits): a beat
              holds P·max_tuple weights of level_bits bits
  bytes_per_cycle  B: the RAM supplies at most B bytes per cycle (a fixed R-channel duty
              pattern, 8-byte beats); null = no throttle
  ar_pause, r_pause  probabilities of random AR-ready / R-valid gaps (latency, back-pressure)
  out_stall   probability that the compute side refuses a weight beat
  corrupt     descriptor indices whose payload gets bits flipped in memory
  crc_flips   [[i, bit], ...]: for each, a copy of descriptor i's region with region bit `bit`
              flipped is placed after the image and run as an extra descriptor (layer tag
              = its position); each must come out with `error` and `crc_error` on its last beat
  golden      true: expected weights from the scalar golden decoder (slow; default the fast one)
  seed, result  random seed and the path of the JSON result file
The test checks every delivered weight against the container's golden decode and writes
cycle counts, bus figures and status registers to `result`.
"""
from __future__ import annotations

import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiRamRead
from cocotbext.axi.axi_channels import AxiReadBus

import numpy as np

from hw.fetch.dequant import DequantParams, weight_beat
from hw.fetch.descriptor import Descriptor
from hw.fetch.export import DESC_WORDS
from hw.fetch.image import SECTION_ALIGN, build_image, expected_stream
from hw.fetch.regs import REG, REG_ID_VALUE
from sw import container as ctr


def _fields(layout) -> dict[str, tuple[int, int]]:
    return {name: (f.offset, f.width) for name, f in layout}


def throttle(bytes_per_cycle: float, beat_bytes: int):
    """Pause pattern (True = no data this cycle) giving on average B bytes per cycle."""
    c = 0
    while True:
        yield int((c + 1) * bytes_per_cycle / beat_bytes) == int(c * bytes_per_cycle / beat_bytes)
        c += 1


def random_pause(rnd: random.Random, prob: float):
    """Independent random gaps with probability `prob`."""
    while True:
        yield rnd.random() < prob


def flip_payload_bits(data: bytearray, offset: int, nbytes: int, rnd: random.Random) -> None:
    """Damage a region: flip one bit in each of a few bytes in its middle third."""
    for _ in range(4):
        pos = offset + nbytes // 3 + rnd.randrange(max(1, nbytes // 3))
        data[pos] ^= 1 << rnd.randrange(8)


@cocotb.test()
async def run_network(dut) -> None:
    """Stream every weight tensor of the container through the fetch path and check it."""
    cfg = json.loads(os.environ["FETCH_TB_CONFIG"])
    rnd = random.Random(cfg.get("seed", 0))
    c = ctr.read(cfg["container"])
    image = build_image(c)
    tensors = {t.name: t for t in c.tensors}
    descs = image.descriptors
    mem = bytearray(image.data)
    corrupt = set(cfg.get("corrupt", []))
    for i in corrupt:
        d = descs[i]
        flip_payload_bits(mem, d.addr - image.base + d.table_bytes, d.payload_bytes, rnd)
    descs = list(descs)
    flipped: dict[int, tuple[int, int]] = {}          # layer tag -> (descriptor, region bit)
    for i, bit in cfg.get("crc_flips", []):
        d = descs[i]
        region = bytearray(image.region(i))
        region[bit >> 3] ^= 1 << (bit & 7)
        mem.extend(bytes(-len(mem) % SECTION_ALIGN))
        copy = Descriptor(**{**d.__dict__, "addr": image.base + len(mem), "layer": len(descs)})
        mem.extend(region)
        flipped[len(descs)] = (i, bit)
        descs.append(copy)
    assert len(descs) <= 256, "the layer tag is 8 bits"

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.weights__ready.value = 0
    regs = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)
    regs.write_if.log.setLevel(logging.WARNING)
    regs.read_if.log.setLevel(logging.WARNING)
    ram = AxiRamRead(AxiReadBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, size=1 << 20)
    ram.log.setLevel(logging.WARNING)
    ram.write(image.base, bytes(mem))
    beat_bytes = len(dut.m_axi__rdata) // 8
    if cfg.get("bytes_per_cycle"):
        ram.r_channel.set_pause_generator(throttle(cfg["bytes_per_cycle"], beat_bytes))
    elif cfg.get("r_pause"):
        ram.r_channel.set_pause_generator(random_pause(rnd, cfg["r_pause"]))
    if cfg.get("ar_pause"):
        ram.ar_channel.set_pause_generator(random_pause(rnd, cfg["ar_pause"]))
    for _ in range(5):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    P = cfg["units"]
    dqp = DequantParams(**cfg.get("dequant", {}))
    wf = _fields(weight_beat(P, dqp))
    lb = dqp.level_bits
    cycle = 0
    got: dict[int, list[int]] = {i: [] for i in range(len(descs))}
    flags: dict[int, dict] = {}
    first_cycle: dict[int, int] = {}
    beat_cycles: list[int] = []            # cycles with an R beat
    bursts: list[tuple[int, int, int, int]] = []  # (araddr, beats, arsize, arburst) per AR
    out_stall = cfg.get("out_stall", 0.0)
    done = 0
    t0 = None

    def field(value: int, reg: str, name: str) -> int:
        fl = next(f for f in REG[reg].fields if f.name == name)
        return (value >> fl.offset) & ((1 << fl.width) - 1)

    async def rd(name: str) -> int:
        return await regs.read_dword(REG[name].addr)

    async def wr(name: str, value: int) -> None:
        await regs.write_dword(REG[name].addr, value)

    # tans_fetch_init(regs, irq=1)
    assert await rd("ID") == REG_ID_VALUE
    await wr("CTRL", 0b11)                     # CLEAR | IRQ_ENABLE
    await wr("IRQ_STATUS", 0b11)
    assert int(dut.irq.value) == 0

    async def push_descriptors() -> None:
        for d in descs:                        # tans_fetch_enqueue_model
            word = d.pack()
            for j in range(DESC_WORDS):
                await wr(f"DESC{j}", (word >> (32 * j)) & 0xFFFFFFFF)
            await wr("PUSH", 1)

    async def mark_start() -> None:
        nonlocal t0                            # cycle 0: the first descriptor enters the queue
        q = dut.fetch.desc_in__valid, dut.fetch.desc_in__ready
        while not (int(q[0].value) and int(q[1].value)):
            await RisingEdge(dut.clk)
        t0 = cycle

    cocotb.start_soon(mark_start())
    cocotb.start_soon(push_descriptors())
    limit = 40 * sum(d.total_bytes + d.n_symbols for d in descs) + 10_000
    while done < len(descs) and cycle < limit:
        await RisingEdge(dut.clk)
        cycle += 1
        if int(dut.m_axi__rvalid.value) and int(dut.m_axi__rready.value):
            beat_cycles.append(cycle)
        if int(dut.m_axi__arvalid.value) and int(dut.m_axi__arready.value):
            bursts.append((int(dut.m_axi__araddr.value), int(dut.m_axi__arlen.value) + 1,
                           int(dut.m_axi__arsize.value), int(dut.m_axi__arburst.value)))
        if int(dut.weights__valid.value) and int(dut.weights__ready.value):
            raw = int(dut.weights__payload.value)
            f = {k: (raw >> o) & ((1 << w) - 1) for k, (o, w) in wf.items()}
            layer = f["layer"]
            first_cycle.setdefault(layer, cycle)
            vals = [((raw >> (wf["data"][0] + lb * k)) & ((1 << lb) - 1)) for k in range(f["count"])]
            got[layer].extend(v - (1 << lb) if v >= 1 << (lb - 1) else v for v in vals)
            if f["first"]:
                assert len(got[layer]) == len(vals), f"layer {layer}: first flag on a later beat"
            if f["last"]:
                flags[layer] = {"error": f["error"], "crc_error": f["crc_error"], "step": f["step"],
                                "cycle": cycle}
                done += 1
        dut.weights__ready.value = int(rnd.random() >= out_stall)
    assert done == len(descs), f"only {done} of {len(descs)} tensors finished in {cycle} cycles"
    for _ in range(3):
        await RisingEdge(dut.clk)

    layers = []
    for i, d in enumerate(descs):
        if i in flipped:                      # a damaged copy: the CRC must catch every flip
            src, bit = flipped[i]
            assert flags[i]["crc_error"] == 1 and flags[i]["error"] == 1, \
                f"descriptor {src}: region bit {bit} flipped, no CRC error"
            layers.append({"name": f"{image.names[src]}^bit{bit}", "kind": d.kind,
                           "weights": len(got[i]), "bytes": d.total_bytes, "error": 1, "crc_error": 1,
                           "first_cycle": first_cycle.get(i, flags[i]["cycle"]) - t0,
                           "last_cycle": flags[i]["cycle"] - t0})
            continue
        t = tensors[image.names[i]]
        want = expected_stream(t, golden=bool(cfg.get("golden")))
        entry = {"name": image.names[i], "kind": d.kind, "weights": int(want.size),
                 "bytes": d.total_bytes, "error": flags[i]["error"], "crc_error": flags[i]["crc_error"],
                 "first_cycle": first_cycle[i] - t0, "last_cycle": flags[i]["cycle"] - t0}
        step = np.asarray(t.steps[:1], dtype="<f4").view("<u4")
        assert flags[i]["step"] == int(step[0]), f"{t.name}: wrong step exported"
        if i in corrupt:
            assert flags[i]["error"] == 1, f"{t.name}: corrupted tensor not flagged"
            assert flags[i]["crc_error"] == 1, f"{t.name}: corrupted tensor passed its CRC"
        else:
            assert flags[i]["error"] == 0, f"{t.name}: intact tensor flagged as damaged"
            assert flags[i]["crc_error"] == 0, f"{t.name}: intact tensor failed its CRC"
            arr = np.asarray(got[i], dtype=np.int64)
            assert arr.size == want.size, f"{t.name}: {arr.size} weights, expected {want.size}"
            bad = np.flatnonzero(arr != want)
            assert bad.size == 0, (f"{t.name}: {bad.size} wrong weights, first at {bad[0]}: "
                                   f"got {arr[bad[0]]}, want {want[bad[0]]}")
        layers.append(entry)

    # per-tensor bus figures: which R beats belong to which descriptor
    bounds = np.cumsum([d.total_bytes // beat_bytes for d in descs])
    beats = np.asarray(beat_cycles)
    start = 0
    for entry, end in zip(layers, bounds):
        b = beats[start:end] - t0
        entry.update(bus_first=int(b[0]), bus_last=int(b[-1]), beats=int(b.size))
        start = end
    # tans_fetch_wait + tans_fetch_result_read, then the interrupt
    for _ in range(1000):
        st = await rd("STATUS")
        if not field(st, "STATUS", "BUSY"):
            break
    err, lay = await rd("ERROR"), await rd("LAYERS")
    status = {"busy": field(st, "STATUS", "BUSY"), "error": field(st, "STATUS", "ERROR"),
              "crc_error": field(st, "STATUS", "CRC_ERROR"), "bus_error": field(st, "STATUS", "BUS_ERROR"),
              "error_layer": field(err, "ERROR", "LAYER"), "error_code": field(err, "ERROR", "CODE"),
              "crc_error_layer": field(err, "ERROR", "CRC_LAYER"),
              "layers_done": field(lay, "LAYERS", "DONE"), "layers_failed": field(lay, "LAYERS", "FAILED"),
              "crc_failed": await rd("CRC_FAILED"), "bursts": await rd("BURSTS"),
              "beats": await rd("BEATS"), "weights_out": await rd("WEIGHTS")}
    irq = await rd("IRQ_STATUS")
    assert field(irq, "IRQ_STATUS", "DONE") == 1 and int(dut.irq.value) == 1, "no done interrupt"
    assert field(irq, "IRQ_STATUS", "ERROR") == int(status["layers_failed"] > 0)
    await wr("IRQ_STATUS", 0b11)
    assert int(dut.irq.value) == 0 and await rd("IRQ_STATUS") == 0
    if status["error"]:                        # tans_fetch_clear: sticky errors go, counters stay
        await wr("CTRL", 0b11)
        st2, err2 = await rd("STATUS"), await rd("ERROR")
        assert field(st2, "STATUS", "ERROR") == field(st2, "STATUS", "CRC_ERROR") == 0 and err2 == 0
        assert field(await rd("LAYERS"), "LAYERS", "FAILED") == status["layers_failed"]
    result = {"cycles": max(e["last_cycle"] for e in layers), "layers": layers,
              "status": status, "beat_bytes": beat_bytes, "units": P, "bursts": bursts,
              "descriptors": [[d.addr, d.total_bytes] for d in descs],
              "total_bytes": sum(d.total_bytes for d in descs),
              "total_weights": sum(tensors[image.names[flipped[i][0] if i in flipped else i]].size
                                   for i in range(len(descs)))}
    with open(cfg["result"], "w") as fh:
        json.dump(result, fh, indent=1)
