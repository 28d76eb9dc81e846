"""Build the weight-fetch path to Verilog, compile it with Verilator once, run sim/tb/fetch.py.

`run_fetch_tb(container, params, **cfg)` returns the testbench's JSON result (see sim/tb/fetch.py).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog

from hw.fetch.top import WeightFetch
from hw.core.params import DecoderParams
from sim.tb.verilator_env import ensure_verilator_on_path, pch_fix

TOPLEVEL = "weight_fetch"


def params_for(units: int, log2_states: int = 8, lanes: int = 256, symbol_bits: int = 8) -> DecoderParams:
    """Core parameters of the fetch path built for tests and benchmarks."""
    return DecoderParams(log2_states=log2_states, symbol_bits=symbol_bits, lanes=lanes,
                         units=units, word_bits=64)


def build(params: DecoderParams, build_dir: Path, max_burst: int = 16, fifo_depth: int = 64):
    """Write the Verilog and compile it (skipped when the same sources were built before)."""
    from cocotb_tools.runner import get_runner

    ensure_verilator_on_path()
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / f"{TOPLEVEL}.v"
    text = verilog.convert(WeightFetch(params, max_burst, fifo_depth), name=TOPLEVEL)
    if not src.exists() or src.read_text() != text:
        src.write_text(text)
    runner = get_runner("verilator")
    with pch_fix():
        runner.build(sources=[src], hdl_toplevel=TOPLEVEL, build_dir=build_dir, always=False,
                     build_args=["-Wno-fatal", "-O2"], timescale=("1ns", "1ps"),
                     log_file=build_dir / "build.log")
    return runner


def run_fetch_tb(container: str | Path, params: DecoderParams, build_dir: Path, **cfg) -> dict:
    """Run the cocotb testbench once; raise AssertionError if it failed; return its result."""
    runner = build(params, build_dir)
    with tempfile.TemporaryDirectory(dir=build_dir) as tmp:
        result = Path(tmp) / "result.json"
        # the testbench runs in its own directory: hand it an absolute path
        conf = {"container": str(Path(container).resolve()), "units": params.units,
                "result": str(result), **cfg}
        xml = runner.test(test_module="sim.tb.fetch", hdl_toplevel=TOPLEVEL, build_dir=build_dir,
                          test_dir=tmp, extra_env={"FETCH_TB_CONFIG": json.dumps(conf),
                                                   "PYTHONPATH": os.pathsep.join(sys.path)},
                          results_xml=str(Path(tmp) / "results.xml"))
        from cocotb_tools.runner import get_results
        n_tests, n_fail = get_results(xml)
        if n_fail or not result.exists():
            raise AssertionError(f"fetch testbench failed ({n_fail} of {n_tests} tests), see log above")
        return json.loads(result.read_text())
