"""Push one coded tensor of a `.tans` model through the Verilated decoder and compare it,
symbol by symbol and lane by lane, with the golden decoder (used by `python -m sw run`)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from sw import container as ct
from sw.tans import Coded
from sw.tans import format as fmt


def save_coded(coded: Coded, path: Path) -> None:
    """Store a coded stream for the testbench process."""
    np.savez(path, log2_states=coded.log2_states, lanes=coded.lanes, n_symbols=coded.n_symbols,
             norm=coded.norm, payload=np.frombuffer(coded.payload, np.uint8), payload_bits=coded.payload_bits)


def load_coded(path: str | os.PathLike) -> Coded:
    """Read back what save_coded wrote."""
    z = np.load(path)
    return Coded(int(z["log2_states"]), int(z["lanes"]), int(z["n_symbols"]), z["norm"].astype(np.int64),
                 z["payload"].tobytes(), int(z["payload_bits"]))


def smallest_coded_tensor(c: ct.Container) -> ct.Tensor:
    """The coded tensor with the fewest symbols (the quickest to simulate)."""
    coded = [t for t in c.tensors if t.kind == fmt.KIND_TANS and t.size]
    if not coded:
        raise ValueError("the container holds no tANS-coded tensor to check in hardware")
    return min(coded, key=lambda t: t.size)


def check_tensor(tensor: ct.Tensor, units: int = 1, word_bits: int = 32) -> dict:
    """Build a decoder core sized for the tensor, decode it in Verilator, return the comparison."""
    from hw.params import DecoderParams
    from sim.decoder_build import run

    coded = tensor.coded
    p = DecoderParams(log2_states=coded.log2_states, symbol_bits=max(1, (coded.alphabet - 1).bit_length()),
                      lanes=coded.lanes, units=units, word_bits=word_bits)
    with tempfile.TemporaryDirectory(prefix="tans-layer-") as tmp:
        case, result = Path(tmp) / "case.npz", Path(tmp) / "result.json"
        save_coded(coded, case)
        run(p, testcase="test_layer", test_module="sim.tb_layer",
            extra_env={"TANS_LAYER_CASE": str(case), "TANS_LAYER_RESULT": str(result)})
        if not result.exists():
            raise RuntimeError("the Verilator simulation ended without a result")
        out = json.loads(result.read_text())
    out.update(tensor=tensor.name, lanes=coded.lanes, states=coded.states, units=units, word_bits=word_bits)
    return out
