"""cocotb test: coded tensors of a real model through one Verilated decoder core, back to back.

The tensors come from the files listed (os.pathsep-separated) in TANS_LAYER_CASES, written
by sim.layer_check; the expected (lane, symbol) sequence of each comes from the software
golden decoder run on the same stream. Per-tensor verdicts and cycle counts go to
TANS_LAYER_RESULT as a JSON list (a damaged stream is a result, not a crash).
"""
from __future__ import annotations

import json
import os

import cocotb

from sim.tb.driver import DecoderTB
from sw.tans.vectors import Case, golden_outcome
from sim.layer_check import load_coded


@cocotb.test()
async def test_layers(dut):
    """Load each tensor's table, decode it with input always valid and output always ready."""
    tb = DecoderTB(dut, seed=1)
    await tb.reset()
    results = []
    for path in os.environ["TANS_LAYER_CASES"].split(os.pathsep):
        coded = load_coded(path)
        expected, golden_failed = golden_outcome(coded)
        case = Case(coded, coded.decode_table().entries(), expected)
        await tb.load_table(case.entries)
        res = await tb.decode(case)
        mismatches = sum(g != e for g, e in zip(res.got, expected)) + abs(len(res.got) - len(expected))
        exact = (not golden_failed and res.status["error"] == 0 and len(res.got) == coded.n_symbols
                 and not mismatches and res.lasts == [coded.n_symbols])
        results.append({"bit_exact": exact, "symbols": coded.n_symbols, "received": len(res.got),
                        "mismatches": mismatches, "golden_failed": golden_failed,
                        "hardware_error": bool(res.status["error"]),
                        "error_code": int(res.status["error_code"]), "cycles": res.cycles,
                        "symbols_per_cycle": len(res.got) / max(1, res.cycles)})
    with open(os.environ["TANS_LAYER_RESULT"], "w") as f:
        json.dump(results, f)
