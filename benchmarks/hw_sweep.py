"""Hardware decoder benchmark: resources and Fmax on iCE40/ECP5, symbols/cycle in cocotb simulation.

    python -m benchmarks.hw [--jobs 2] [--seeds 3] [--out build/bench] [--families ice40 ecp5] [--quick]

Sweeps l in {64, 256}, P in {1, 2, 4}, lanes in {1, 64} (5-bit symbols, 32-bit words), prints a
markdown table and writes hw.json and hw.md (the simulator's log also goes to stdout; the table
is the last thing printed). Fmax: best of `--seeds` place-and-route seeds, median alongside.
Msym/s = symbols/cycle x best Fmax; LUTs per Msym/s = LUTs / that.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hw.core.params import DecoderParams  # noqa: E402


def measure_throughput(p: DecoderParams, symbols: int) -> dict:
    """Symbols per cycle with input always valid and output always ready (cocotb + Verilator)."""
    from sim.tb.build_decoder import run
    with tempfile.TemporaryDirectory() as tmp:
        metrics = Path(tmp) / "metrics.json"
        xml = run(p, testcase="test_throughput", extra_env={
            "TANS_METRICS": str(metrics), "TANS_THROUGHPUT_SYMBOLS": str(symbols)})
        from cocotb_tools.runner import get_results
        _n, failed = get_results(xml)
        if failed or not metrics.exists():
            raise RuntimeError(f"throughput simulation failed for {p}")
        return json.loads(metrics.read_text())


def synth_one(args: tuple[DecoderParams, str, Path, int]) -> dict:
    from hw.synth import synthesize
    p, fam, out, seeds = args
    key = f"l{p.states}_p{p.units}_n{p.lanes}"
    return synthesize(p, fam, out / f"{fam}_{key}", seeds=seeds)


def render(rows: list[dict]) -> str:
    """The results as a markdown table."""
    head = ["family", "l", "P", "lanes", "LUT4", "FF", "BRAM", "Fmax MHz (best)", "median", "sym/cycle",
            "Msym/s", "LUTs per Msym/s", "LUTs per unit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append(f"| {r['family']} | {r['states']} | {r['units']} | {r['lanes']} | {r['luts']} | "
                     f"{r['ffs']} | {r['brams']} | {r['fmax_mhz']} | {r.get('fmax_median_mhz')} | "
                     f"{r['symbols_per_cycle']} | "
                     f"{r['msymbols_per_s']} | {r['luts_per_msym_s']} | {r['luts_per_unit']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    ap.add_argument("--jobs", type=int, default=2, help="parallel synthesis jobs")
    ap.add_argument("--families", nargs="+", default=["ice40", "ecp5"])
    ap.add_argument("--symbols", type=int, default=4000, help="symbols per throughput run")
    ap.add_argument("--quick", action="store_true", help="only l=256, P=1, lanes=64")
    ap.add_argument("--seeds", type=int, default=3, help="place-and-route seeds per build (best and median)")
    ap.add_argument("--render", type=Path, help="only print the table of an earlier hw.json")
    args = ap.parse_args()
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)

    grid = [(256, 1, 64)] if args.quick else list(itertools.product((64, 256), (1, 2, 4), (1, 64)))
    params = [DecoderParams.from_states(l, symbol_bits=5, lanes=n, units=u, word_bits=32)
              for l, u, n in grid]

    t0 = time.monotonic()
    jobs = [(p, fam, args.out, args.seeds) for p in params for fam in args.families]
    print(f"[bench] synthesizing {len(jobs)} builds with {args.jobs} jobs ...", file=sys.stderr, flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        synth = list(pool.map(synth_one, jobs))
    print(f"[bench] synthesis done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    sims = {}
    for p in params:
        print(f"[bench] simulating {p} ...", file=sys.stderr, flush=True)
        sims[p] = measure_throughput(p, args.symbols)

    rows = []
    for (p, fam, _, _), rep in zip(jobs, synth):
        sim = sims[p]
        spc = sim["symbols_per_cycle"]
        msps = spc * rep["fmax_mhz"] if rep["fmax_mhz"] else None
        rows.append({
            "family": fam, "part": rep["part"], "states": p.states, "units": p.units, "lanes": p.lanes,
            "symbol_bits": p.symbol_bits, "word_bits": p.word_bits,
            "luts": rep["luts"], "ffs": rep["ffs"], "brams": rep["brams"], "fmax_mhz": rep["fmax_mhz"],
            "fmax_median_mhz": rep["fmax_median_mhz"], "fmax_by_seed": rep["fmax_by_seed"],
            "symbols_per_cycle": round(spc, 4),
            "symbols_per_cycle_overall": round(sim["symbols_per_cycle_overall"], 4),
            "bits_per_symbol": round(sim["bits_per_symbol"], 3),
            "msymbols_per_s": round(msps, 2) if msps else None,
            "luts_per_msym_s": round(rep["luts"] / msps, 2) if msps else None,
            "luts_per_unit": round(rep["luts"] / p.units, 1),
        })
    (args.out / "hw.json").write_text(json.dumps(rows, indent=2))
    table = render(rows)
    (args.out / "hw.md").write_text(table)
    print(table)
    print(f"\nwrote {args.out / 'hw.json'} ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
