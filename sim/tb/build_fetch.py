"""Build the weight-fetch path (behind its AXI4-Lite register block) to Verilog, compile it with
Verilator once, run sim/tb/fetch.py.

`run_fetch_tb(container, params, **cfg)` returns the testbench's JSON result (see sim/tb/fetch.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog

from hw.fetch.dequant import PLAIN, DequantParams
from hw.fetch.regs import WeightFetchAxiLite
from hw.core.params import DecoderParams
from sim.tb.verilator_env import (cocotb_waves, ensure_verilator_on_path, pch_fix, wave_build_args,
                                  waves_format)

TOPLEVEL = "weight_fetch"


def params_for(units: int, log2_states: int = 8, lanes: int = 256, symbol_bits: int = 8) -> DecoderParams:
    """Core parameters of the fetch path built for tests and benchmarks."""
    return DecoderParams(log2_states=log2_states, symbol_bits=symbol_bits, lanes=lanes,
                         units=units, word_bits=64)


def wave_dir(build_dir: Path) -> Path:
    """Where the model is built: a traced build (WAVES=1|vcd|fst) gets its own folder."""
    fmt = waves_format()
    return build_dir if fmt is None else build_dir / f"waves_{fmt}"


def build(params: DecoderParams, build_dir: Path, max_burst: int = 16, fifo_depth: int = 64,
          dq: DequantParams = PLAIN):
    """Write the Verilog and compile it (skipped when the same sources were built before).

    With WAVES set, the model is built with tracing in wave_dir(build_dir) and every run writes
    dump.vcd / dump.fst in its own test folder (kept: see run_fetch_tb).
    """
    from cocotb_tools.runner import get_runner

    ensure_verilator_on_path()
    waves = waves_format()
    build_dir = wave_dir(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / f"{TOPLEVEL}.v"
    text = verilog.convert(WeightFetchAxiLite(params, max_burst, fifo_depth, dq=dq), name=TOPLEVEL)
    if not src.exists() or src.read_text() != text:
        src.write_text(text)
    stamp = build_dir / "build.stamp"
    want = hashlib.sha256((text + str(waves)).encode()).hexdigest()
    fresh = not stamp.exists() or stamp.read_text() != want
    if fresh:     # a changed source gets a clean build: stale objects and headers break incremental ones
        for old in build_dir.iterdir():
            if old == src or old.name.startswith(("tmp", "run_", "waves_")) or old.suffix == ".lock":
                continue
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    runner = get_runner("verilator")
    with pch_fix(), cocotb_waves(waves):
        runner.build(sources=[src], hdl_toplevel=TOPLEVEL, build_dir=build_dir, always=fresh,
                     build_args=["-Wno-fatal", "-O2", *wave_build_args("verilator", waves)],
                     timescale=("1ns", "1ps"), waves=waves is not None, log_file=build_dir / "build.log")
    stamp.write_text(want)
    return runner


def run_fetch_tb(container: str | Path, params: DecoderParams, build_dir: Path, dq: DequantParams = PLAIN,
                 **cfg) -> dict:
    """Run the cocotb testbench once; raise AssertionError if it failed; return its result.

    With WAVES set the run's folder (and its waveform) is kept: wave_dir(build_dir)/run_<i>.
    """
    runner = build(params, build_dir, dq=dq)
    bdir = wave_dir(build_dir)
    waves = waves_format()
    with tempfile.TemporaryDirectory(dir=bdir) as scratch:
        if waves:
            tmp = Path(tempfile.mkdtemp(prefix="run_", dir=bdir))
            print(f"[sim.tb.build_fetch] waveform: {tmp / ('dump.' + waves)}", file=sys.stderr)
        else:
            tmp = Path(scratch)
        result = tmp / "result.json"
        # the testbench runs in its own directory: hand it an absolute path
        conf = {"container": str(Path(container).resolve()), "units": params.units,
                "dequant": dq.to_dict(), "result": str(result), **cfg}
        with cocotb_waves(waves):
            xml = runner.test(test_module="sim.tb.fetch", hdl_toplevel=TOPLEVEL, build_dir=bdir,
                              test_dir=tmp, extra_env={"FETCH_TB_CONFIG": json.dumps(conf),
                                                       "PYTHONPATH": os.pathsep.join(sys.path)},
                              waves=waves is not None, results_xml=str(tmp / "results.xml"))
        from cocotb_tools.runner import get_results
        n_tests, n_fail = get_results(xml)
        if n_fail or not result.exists():
            raise AssertionError(f"fetch testbench failed ({n_fail} of {n_tests} tests), see log above")
        return json.loads(result.read_text())
