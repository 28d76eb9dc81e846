"""Weights per cycle of the fetch path on codebook and tuple-coded tensors (docs/FETCH.md).

Runs the Verilated fetch path of tests/test_fetch_tuples.py (P = 2, tuples up to 4, 256-entry
codebook of 16-bit levels) at full bus speed on its test model and prints, per tensor, weights,
cycles and weights per cycle next to N·P, and the cycle model's total (sim.system) against the RTL.

    python benchmarks/fetch_tuples.py [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    import test_fetch_tuples as T
    from sim.system import analyse
    from sim.tb.build_fetch import run_fetch_tb
    from sw import container as ctr

    with tempfile.TemporaryDirectory() as tmp:
        path = T.model(Path(tmp) / "tuples.tans")
        res = run_fetch_tb(path, T.PARAMS, T.BUILD, T.DQ, seed=1)
        model = analyse(path, 8, T.PARAMS.units)["total"]["compressed"]["cycles"]
        tensors = {t.name: t for t in ctr.read(path).tensors}
    rows = []
    for lay in res["layers"]:
        t = tensors[lay["name"]]
        cyc = lay["last_cycle"] - lay["first_cycle"] + 1
        n = t.tuple_size if t.kind == 0 else 1
        rows.append({"name": lay["name"], "tuple": n, "weights": lay["weights"], "cycles": cyc,
                     "weights_per_cycle": lay["weights"] / cyc, "peak": n * T.PARAMS.units,
                     "lanes": t.coded.lanes if t.kind == 0 else 0})
        r = rows[-1]
        print(f"{r['name']:14} N={r['tuple']} lanes {r['lanes']:3d} {r['weights']:6d} weights {r['cycles']:5d} cycles "
              f"{r['weights_per_cycle']:.3f} weights/cycle (N*P = {r['peak']})")
    print(f"total: RTL {res['cycles']} cycles, cycle model {model} ({100 * (model / res['cycles'] - 1):+.1f}%)")
    if args.json:
        args.json.write_text(json.dumps({"layers": rows, "rtl_cycles": res["cycles"], "model_cycles": model}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
