"""Ecp5Ram (hw/core/ecp5_ram.py) simulated in Icarus with the DP16KD model (sim/models/DP16KD.v) via cocotb.

One build per (width, depth): all three DP16KD modes (x18 for depth <= 1024, x9, x4) and several
primitives side by side; the testbench is sim/tb/ecp5_ram.py.
"""
from __future__ import annotations

import os
import shutil
import sys

import pytest

from sim.tb.build_decoder import BUILD_ROOT, ROOT, ram_models, cocotb_results

MODEL = ram_models("ecp5")[0][0]
TOPLEVEL = "ecp5_ram"
TESTS = ["test_write_then_read", "test_mixed"]

# (width, depth): x18 with 1 and 2 primitives (and a depth below 1K), x9 and x4 with 3 and 6
CONFIGS = [(17, 256), (21, 1024), (21, 2048), (21, 4096), (36, 64), (8, 32)]


def run_config(width: int, depth: int) -> dict[str, str | None]:
    """Generate the Verilog, build it with the DP16KD model and run every testcase once."""
    from amaranth.back import verilog
    from cocotb_tools.runner import get_runner

    from hw.core.ecp5_ram import Ecp5Ram

    conf_dir = BUILD_ROOT / "icarus" / f"ecp5_ram_w{width}_d{depth}"
    build_dir = conf_dir / "obj"
    build_dir.mkdir(parents=True, exist_ok=True)
    src = conf_dir / f"{TOPLEVEL}.v"
    src.write_text(verilog.convert(Ecp5Ram(width, depth), name=TOPLEVEL))
    runner = get_runner("icarus")
    runner.build(sources=[src, MODEL], hdl_toplevel=TOPLEVEL, build_dir=build_dir,
                 timescale=("1ns", "1ps"), always=True, log_file=conf_dir / "build.log")
    env = {"ECP5RAM_WIDTH": str(width), "ECP5RAM_DEPTH": str(depth), "ECP5RAM_SEED": str(width * depth),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if str(ROOT) not in sys.path:       # the runner hands sys.path to the simulator's Python
        sys.path.insert(0, str(ROOT))
    results = build_dir / "results.xml"
    results.unlink(missing_ok=True)
    runner.test(test_module="sim.tb.ecp5_ram", hdl_toplevel=TOPLEVEL, build_dir=build_dir,
                test_dir=build_dir, extra_env=env, results_xml=str(results),
                timescale=("1ns", "1ps"))
    return cocotb_results(results)


_cache: dict[tuple[int, int], dict[str, str | None]] = {}


@pytest.mark.parametrize("width,depth", CONFIGS, ids=[f"w{w}-d{d}" for w, d in CONFIGS])
def test_ecp5_ram(width, depth):
    if shutil.which("iverilog") is None:
        pytest.fail("iverilog is not installed: run scripts/setup.sh (apt-get install -y iverilog)")
    results = run_config(width, depth)
    for name in TESTS:
        assert name in results, f"{name} did not run (simulator crashed?): {sorted(results)}"
        assert results[name] is None, f"{name}: {results[name]}"


@pytest.mark.parametrize("depth", [0, 16, 48, 8192])
def test_bad_depth(depth):
    """Ecp5Ram.__init__ validates the depth through dp16kd_mode (tested alone: an Ecp5Ram that fails
    to construct would still trigger Amaranth's unused-elaboratable warning)."""
    from hw.core.ecp5_ram import dp16kd_mode
    with pytest.raises(ValueError):
        dp16kd_mode(depth)


def test_modes():
    """The DP16KD mode and the number of primitives side by side for each depth."""
    from amaranth.hdl import Fragment

    from hw.core.ecp5_ram import Ecp5Ram
    for (w, d), (dw, n) in {(17, 256): (18, 1), (18, 1024): (18, 1), (19, 32): (18, 2),
                            (21, 2048): (9, 3), (21, 4096): (4, 6), (36, 64): (18, 2)}.items():
        ram = Ecp5Ram(w, d)
        assert (ram.data_width, ram.primitives) == (dw, n)
        Fragment.get(ram, None)         # elaborates (and keeps Amaranth's unused-elaboratable check quiet)
