"""`python -m sim.layer_check MODEL.tans [--json]`: decode every tANS-coded tensor of a model back to
back in one Verilated decoder core and compare it, symbol by symbol and lane by lane, with the golden
decoder. The entry point `python -m sw run` calls for its hardware check (sw never imports sim)."""
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


def coded_tensors(c: ct.Container) -> list[ct.Tensor]:
    """The container's tANS-coded tensors (what the hardware decoder decodes)."""
    coded = [t for t in c.tensors if t.kind == fmt.KIND_TANS and t.size]
    if not coded:
        raise ValueError("the container holds no tANS-coded tensor to check in hardware")
    return coded


def core_for(tensors: list[ct.Tensor], units: int = 1, word_bits: int = 32):
    """The smallest decoder core that decodes every one of these tensors."""
    from hw.core.params import DecoderParams
    return DecoderParams(log2_states=max(t.coded.log2_states for t in tensors),
                         symbol_bits=max(max(1, (t.coded.alphabet - 1).bit_length()) for t in tensors),
                         lanes=max(t.coded.lanes for t in tensors), units=units, word_bits=word_bits)


def check_tensors(tensors: list[ct.Tensor], units: int = 1, word_bits: int = 32) -> list[dict]:
    """Decode the tensors back to back in one Verilated core; per tensor, the comparison
    with the golden decoder (bit_exact, mismatches, error flags, cycles)."""
    from sim.tb.build_decoder import run
    p = core_for(tensors, units, word_bits)
    with tempfile.TemporaryDirectory(prefix="tans-layer-") as tmp:
        cases = []
        for i, t in enumerate(tensors):
            cases.append(Path(tmp) / f"case{i}.npz")
            save_coded(t.coded, cases[-1])
        result = Path(tmp) / "result.json"
        run(p, testcase="test_layers", test_module="sim.tb.layers",
            extra_env={"TANS_LAYER_CASES": os.pathsep.join(map(str, cases)), "TANS_LAYER_RESULT": str(result)})
        if not result.exists():
            raise RuntimeError("the Verilator simulation ended without a result")
        out = json.loads(result.read_text())
    for r, t in zip(out, tensors):
        r.update(tensor=t.name, lanes=t.coded.lanes, states=t.coded.states)
    return out


def core_summary(tensors: list[ct.Tensor], units: int = 1, word_bits: int = 32) -> dict:
    """The parameters of the core `check_tensors` builds, for reports."""
    p = core_for(tensors, units, word_bits)
    return {"states": 1 << p.log2_states, "symbol_bits": p.symbol_bits, "lanes": p.lanes, "units": p.units,
            "word_bits": p.word_bits}


def check_model(path: str | os.PathLike, units: int = 1, word_bits: int = 32) -> dict:
    """The whole check of one `.tans` file: the core used, one row per coded tensor, and the verdict."""
    layers = coded_tensors(ct.read(path))
    out = {"core": core_summary(layers, units, word_bits), "layers": check_tensors(layers, units, word_bits)}
    out["bit_exact"] = all(r["bit_exact"] for r in out["layers"])
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    from sw.tans.errors import TansError
    ap = argparse.ArgumentParser(prog="python -m sim.layer_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a .tans file")
    ap.add_argument("--units", type=int, default=1, help="decode units P of the core")
    ap.add_argument("--word-bits", type=int, default=32, help="input word width of the core")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    stdout = os.dup(1)
    os.dup2(2, 1)           # the simulator's log goes to stderr; stdout carries only the result
    try:
        r = check_model(args.model, args.units, args.word_bits)
    except (TansError, ValueError, OSError, RuntimeError) as e:
        print(f"sim.layer_check: error: {e}", file=sys.stderr)
        return 1
    finally:
        sys.stdout.flush()
        os.dup2(stdout, 1)
        os.close(stdout)
    try:
        if args.json:
            print(json.dumps(r, indent=2))
        else:
            for row in r["layers"]:
                print(f"{row['tensor']}: {row['symbols']} symbols "
                      f"{'bit-exact' if row['bit_exact'] else 'DIFFERS'} ({row['cycles']} cycles, "
                      f"{row['symbols'] / max(1, row['cycles']):.2f} symbols/cycle)")
        sys.stdout.flush()
    except BrokenPipeError:          # `... | head -1`: stop quietly
        from sw.cli.main import quiet_broken_stdout
        quiet_broken_stdout()
        return 1
    return 0 if r["bit_exact"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
