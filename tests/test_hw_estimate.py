"""`hw.build --estimate`: the resource model against the measured sweep it was fitted to."""
from __future__ import annotations

import subprocess
import sys


from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.core.params import DecoderParams
from hw.estimate import MEASURED, estimate, fit_error, outside_sweep


class Wide(wiring.Component):
    """A 40-bit-in, 40-bit-out component for the harness test."""

    def __init__(self) -> None:
        super().__init__({"a": In(40), "y": Out(40)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.sync += self.y.eq(self.a + 1)
        return m


def test_estimate_close_to_every_measured_row():
    """Within 25% of every measured row (the sweep's own points), per resource."""
    for fam, l, units, lanes, luts, ffs, brams in MEASURED:
        p = DecoderParams.from_states(l, symbol_bits=5, lanes=lanes, units=units, word_bits=32)
        e = estimate(p, fam)
        for got, want in ((e["luts"], luts), (e["ffs"], ffs), (e["brams"], brams)):
            assert abs(got - want) <= max(1, 0.25 * want), (fam, l, units, lanes, e)


def test_fit_error_is_stated_and_small():
    err = fit_error()
    assert set(err) == {f"{f}.{r}" for f in ("ice40", "ecp5") for r in ("luts", "ffs", "brams")}
    assert all(0 <= v["mean"] <= v["max"] < 0.3 for v in err.values())


def test_extrapolation_is_flagged():
    p = DecoderParams.from_states(1024, symbol_bits=8, lanes=16, units=2, word_bits=64)
    far = outside_sweep(p)
    assert any(s.startswith("states=1024") for s in far) and any(s.startswith("word_bits=64") for s in far)
    assert not outside_sweep(DecoderParams.from_states(256, symbol_bits=5, lanes=64, units=1, word_bits=32))


def test_cli_estimate_prints_both_families(tmp_path):
    r = subprocess.run([sys.executable, "-m", "hw.build", "--estimate", "--word-bits", "32", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ice40: about" in r.stdout and "ecp5: about" in r.stdout
    assert not any(tmp_path.iterdir()), "--estimate must not build anything"


def test_narrow_harness_keeps_every_port_and_shares_the_chain():
    """SerialHarness(narrow=n): a chain of n flip-flops feeds every input, outputs XOR-fold into
    about n bits; the wrapped component keeps all its ports (nothing left unconnected)."""
    from amaranth.back import rtlil

    from hw.boards.harness import SerialHarness

    narrow = rtlil.convert(SerialHarness(make=Wide, narrow=8))
    assert "wire width 8 \\chain" in narrow
    assert all(f"assign \\a [{i}] \\chain [{i % 8}]" in narrow for i in range(40))
    assert "wire width 40 \\chain" in rtlil.convert(SerialHarness(make=Wide))
