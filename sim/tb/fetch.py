"""cocotb testbench of the weight-fetch path (hw/fetch/top.py) against an AXI4 RAM model.

Configuration comes as JSON in the environment variable FETCH_TB_CONFIG:
  container   path of the `.tans` file loaded into the simulated DRAM
  units       P of the built core (weights per output beat)
  bytes_per_cycle  B: the RAM supplies at most B bytes per cycle (a fixed R-channel duty
              pattern, 8-byte beats); null = no throttle
  ar_pause, r_pause  probabilities of random AR-ready / R-valid gaps (latency, back-pressure)
  out_stall   probability that the compute side refuses a weight beat
  corrupt     descriptor indices whose payload gets bits flipped in memory
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
from cocotbext.axi import AxiRamRead
from cocotbext.axi.axi_channels import AxiReadBus

import numpy as np

from hw.fetch.dequant import weight_beat
from hw.fetch.image import build_image, expected_stream
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

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.desc_in__valid.value = 0
    dut.weights__ready.value = 0
    dut.clear.value = 0
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
    wf = _fields(weight_beat(P))
    cycle = 0
    got: dict[int, list[int]] = {i: [] for i in range(len(descs))}
    flags: dict[int, dict] = {}
    first_cycle: dict[int, int] = {}
    beat_cycles: list[int] = []            # cycles with an R beat
    bursts: list[tuple[int, int, int, int]] = []  # (araddr, beats, arsize, arburst) per AR
    out_stall = cfg.get("out_stall", 0.0)
    done = 0
    t0 = None

    async def push_descriptors() -> None:
        nonlocal t0
        for d in descs:
            dut.desc_in__payload.value = d.pack()
            dut.desc_in__valid.value = 1
            while True:
                await RisingEdge(dut.clk)
                if t0 is None:
                    t0 = cycle
                if int(dut.desc_in__ready.value):
                    break
        dut.desc_in__valid.value = 0

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
            vals = [((raw >> (wf["data"][0] + 8 * k)) & 0xFF) for k in range(f["count"])]
            got[layer].extend(v - 256 if v >= 128 else v for v in vals)
            if f["first"]:
                assert len(got[layer]) == len(vals), f"layer {layer}: first flag on a later beat"
            if f["last"]:
                flags[layer] = {"error": f["error"], "step": f["step"], "cycle": cycle}
                done += 1
        dut.weights__ready.value = int(rnd.random() >= out_stall)
    assert done == len(descs), f"only {done} of {len(descs)} tensors finished in {cycle} cycles"
    for _ in range(3):
        await RisingEdge(dut.clk)

    layers = []
    for i, d in enumerate(descs):
        t = tensors[image.names[i]]
        want = expected_stream(t)
        entry = {"name": image.names[i], "kind": d.kind, "weights": int(want.size),
                 "bytes": d.total_bytes, "error": flags[i]["error"],
                 "first_cycle": first_cycle[i] - t0, "last_cycle": flags[i]["cycle"] - t0}
        step = np.asarray(t.steps[:1], dtype="<f4").view("<u4")
        assert flags[i]["step"] == int(step[0]), f"{t.name}: wrong step exported"
        if i in corrupt:
            assert flags[i]["error"] == 1, f"{t.name}: corrupted tensor not flagged"
        else:
            assert flags[i]["error"] == 0, f"{t.name}: intact tensor flagged as damaged"
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
    status = {k: int(getattr(dut, k).value) for k in
              ("layers_done", "layers_failed", "error", "error_layer", "error_code",
               "bus_error", "bursts", "beats", "weights_out", "busy")}
    result = {"cycles": max(e["last_cycle"] for e in layers), "layers": layers,
              "status": status, "beat_bytes": beat_bytes, "units": P, "bursts": bursts,
              "descriptors": [[d.addr, d.total_bytes] for d in descs],
              "total_bytes": sum(d.total_bytes for d in descs),
              "total_weights": sum(d.n_symbols for d in descs)}
    with open(cfg["result"], "w") as fh:
        json.dump(result, fh, indent=1)
