"""cocotb test: one coded tensor of a real model through the Verilated decoder core.

The tensor comes from the file named by TANS_LAYER_CASE (written by sim.layer_check);
the expected (lane, symbol) sequence comes from the software golden decoder run on the
same stream. The result (bit-exact or not, cycles) goes to TANS_LAYER_RESULT as JSON.
"""
from __future__ import annotations

import json
import os

import cocotb

from sim.decoder_driver import DecoderTB
from sim.decoder_vectors import Case, golden_outcome
from sim.layer_check import load_coded


@cocotb.test()
async def test_layer(dut):
    """Decode the tensor once with input always valid and output always ready; compare all steps.

    The verdict is returned in the result file (a damaged stream is a result, not a crash)."""
    coded = load_coded(os.environ["TANS_LAYER_CASE"])
    expected, golden_failed = golden_outcome(coded)
    case = Case(coded, coded.decode_table().entries(), expected)
    tb = DecoderTB(dut, seed=1)
    await tb.reset()
    await tb.load_table(case.entries)
    res = await tb.decode(case)
    mismatches = [i for i, (g, e) in enumerate(zip(res.got, expected)) if g != e]
    exact = (not golden_failed and res.status["error"] == 0 and len(res.got) == coded.n_symbols
             and not mismatches and res.lasts == [coded.n_symbols])
    out = {"bit_exact": exact, "symbols": coded.n_symbols, "received": len(res.got),
           "mismatches": len(mismatches) + abs(len(res.got) - len(expected)),
           "golden_failed": golden_failed, "hardware_error": bool(res.status["error"]),
           "error_code": int(res.status["error_code"]), "cycles": res.cycles,
           "symbols_per_cycle": len(res.got) / max(1, res.cycles)}
    with open(os.environ["TANS_LAYER_RESULT"], "w") as f:
        json.dump(out, f)
