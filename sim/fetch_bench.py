"""Benchmark the weight-fetch RTL (Verilator + cocotb) against the system model.

    python -m sim.fetch_bench [--model M.tans] [--units P] [--lanes N] [--log2-states K]
                              [-B 8 2 1 0.5]

For each DRAM rate B (bytes/cycle; 8 = the unthrottled 64-bit AXI4 bus) the whole network
goes through the RTL (every weight checked against the golden decode by the testbench)
and through `sim.system`'s model with the same B and W = P; prints per-layer weights per
cycle, bus utilization while the layer streams, bytes read per weight, and RTL vs model.
A model with codebook or tuple-coded tensors gets the dequantizer it needs (hw.build.dequant_for).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hw.build import dequant_for
from hw.fetch.dequant import PLAIN, DequantParams
from sim.tb.build_fetch import params_for, run_fetch_tb
from sim.system import analyse
from sim.model.demo import cached_demo


def utilization(lay: dict, beat_bytes: int, supply: float) -> float:
    """Bytes moved / bytes the bus could supply between a layer's first and last beat."""
    if lay["beats"] < 2:
        return 1.0
    return (lay["beats"] - 1) * beat_bytes / ((lay["bus_last"] - lay["bus_first"]) * supply)


def as_int8(src: Path, out: Path) -> Path:
    """The same quantized weights stored as raw 8-bit tensors (the uncompressed baseline)."""
    from sw import container as ctr
    from sw.tans import format as fmt

    c = ctr.read(src)
    tensors = []
    for t in c.tensors:
        if t.kind == fmt.KIND_TANS:
            t = ctr.int8_tensor(t.name, t.integers(), t.steps, t.step_axis)
        tensors.append(t)
    ctr.write(out, ctr.Container(tensors, dict(c.metadata, stored="int8")))
    return out


def main() -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help=".tans container (default: the demo MLP)")
    ap.add_argument("--units", type=int, default=4)
    ap.add_argument("--lanes", type=int, default=256)
    ap.add_argument("--log2-states", type=int, default=8)
    ap.add_argument("-B", type=float, nargs="+", default=[8, 2, 1, 0.5])
    ap.add_argument("--as-int8", metavar="OUT.tans",
                    help="store every weight tensor uncompressed (8-bit) in OUT.tans and use it")
    args = ap.parse_args()
    model = Path(args.model) if args.model else cached_demo()
    if not model.is_file():
        sys.exit(f"fetch_bench: no such model file: {model}")
    if args.as_int8:
        model = as_int8(model, Path(args.as_int8))
    p = params_for(args.units, log2_states=args.log2_states, lanes=args.lanes)
    need, why = dequant_for(model)        # a plain build unless the model has codebook / tuple tensors
    dq = DequantParams(**need) if need["codebook_depth"] else PLAIN
    root = Path(os.environ.get("TANS_SIM_BUILD", Path(__file__).resolve().parent.parent / "build" / "sim"))
    build = root / (f"fetch_p{p.units}_l{p.log2_states}_n{p.lanes}"
                    + ("" if dq.plain else f"_t{dq.max_tuple}_c{dq.codebook_depth}_b{dq.level_bits}"))
    print(f"model {model}, P = {p.units}, 64-bit AXI4, bursts of 16 beats, 512-byte read FIFO"
          + ("" if dq.plain else f"; {why}"))
    for b in args.B:
        try:
            res = run_fetch_tb(model, p, build, dq, **({} if b >= 8 else {"bytes_per_cycle": b}))
        except AssertionError as e:         # the testbench's own report is in the log above
            sys.exit(f"fetch_bench: B = {b:g}: {e}")
        rep = analyse(model, min(b, 8.0), p.units)
        supply = min(b, 8.0)
        print(f"\nB = {b:g} bytes/cycle: RTL {res['cycles']} cycles, model "
              f"{rep['total']['compressed']['cycles']} cycles "
              f"({100 * (rep['total']['compressed']['cycles'] / res['cycles'] - 1):+.1f}%), "
              f"{res['total_weights'] / res['cycles']:.3f} weights/cycle overall, "
              f"{res['total_bytes'] / res['total_weights']:.3f} bytes read per weight, "
              f"bursts {res['status']['bursts']}, errors {res['status']['layers_failed']}")
        print(f"  {'layer':<14}{'weights':>8}{'bytes':>7}{'B/weight':>9}{'need B/c':>9}"
              f"{'RTL w/c':>9}{'bus util':>9}{'RTL cyc':>9}{'model cyc':>10}")
        prev_end = 0
        for lay, row in zip(res["layers"], rep["layers"]):
            span = lay["last_cycle"] - prev_end
            rate = lay["weights"] / (lay["last_cycle"] - lay["first_cycle"] + 1)
            util = utilization(lay, res["beat_bytes"], supply)
            print(f"  {lay['name'][:14]:<14}{lay['weights']:>8}{lay['bytes']:>7}"
                  f"{lay['bytes'] / lay['weights']:>9.3f}{row['compressed']['peak_bandwidth']:>9.2f}"
                  f"{rate:>9.2f}{util:>9.1%}{span:>9}{row['compressed']['cycles']:>10}")
            prev_end = lay["last_cycle"]


if __name__ == "__main__":
    main()
