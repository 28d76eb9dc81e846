"""System model of weight traffic: DRAM -> fetch path -> decoder -> compute, per layer.

    python -m sim.system MODEL.tans --dram-bytes-per-cycle B --weights-per-cycle W
                         [--plot out.png] [--json]

Every weight tensor of the container is streamed in container order under three storage
schemes: `compressed` (the tANS table + payload as in the memory image of hw/fetch/image.py;
raw 8-bit layers as they are), `quantized` (the same quantized weights stored
uncompressed, ceil(log2(bins)) bits each) and `int8` (8 bits per weight). The cycle model
(sim/model/cycles.py) mirrors the RTL in hw/fetch/top.py: a DRAM that supplies B bytes per
cycle in 64-byte chunks, a read FIFO the fetcher may run ahead into, and a consumer that
loads the decode table, decodes W weights per cycle (P = W decode units) or unpacks
uncompressed weights at W per cycle. Reported per layer: bytes, cycles, stall cycles (the
compute side waiting for weights), the bandwidth needed to never stall, and the
whole-network weight-fetch speed-up of compressed storage over the other two.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from sim.model.cycles import HwModel, Scheme, layer_traffic, simulate

SCHEMES: tuple[Scheme, ...] = ("compressed", "quantized", "int8")


def analyse(path: str | Path, bytes_per_cycle: float, weights_per_cycle: int,
            hw: HwModel | None = None) -> dict:
    """Per-layer and whole-network figures for the three storage schemes."""
    from sw import container

    c = container.read(path)
    hw = hw or HwModel(bytes_per_cycle=bytes_per_cycle, weights_per_cycle=weights_per_cycle)
    layers = layer_traffic(c)
    if not layers:
        raise ValueError("the container holds no weight tensors (tANS or raw 8-bit)")
    runs = {s: simulate(layers, s, hw) for s in SCHEMES}
    rows = []
    for i, lay in enumerate(layers):
        row = {"name": lay.name, "kind": lay.kind, "weights": lay.weights, "bins": lay.bins}
        for s in SCHEMES:
            r = runs[s][i]
            row[s] = {"bytes": r.bytes, "cycles": r.cycles, "stall_cycles": r.stall_cycles,
                      "bits_per_weight": 8 * r.bytes / lay.weights,
                      "peak_bandwidth": r.bytes * weights_per_cycle / lay.weights}
        rows.append(row)
    total = {s: {"bytes": sum(r[s]["bytes"] for r in rows),
                 "cycles": runs[s][-1].end,
                 "stall_cycles": sum(r[s]["stall_cycles"] for r in rows),
                 "peak_layer_bytes": max(r[s]["bytes"] for r in rows),
                 "peak_bandwidth": max(r[s]["peak_bandwidth"] for r in rows)} for s in SCHEMES}
    comp = total["compressed"]
    summary = {
        "speedup_vs_int8": total["int8"]["cycles"] / comp["cycles"],
        "speedup_vs_quantized": total["quantized"]["cycles"] / comp["cycles"],
        "compression_vs_int8": total["int8"]["bytes"] / comp["bytes"],
        "compression_vs_quantized": total["quantized"]["bytes"] / comp["bytes"],
    }
    return {"model": str(path), "dram_bytes_per_cycle": bytes_per_cycle,
            "weights_per_cycle": weights_per_cycle, "hw": hw.as_dict(), "layers": rows,
            "total": total, "summary": summary}


def format_table(rep: dict) -> str:
    """Human-readable per-layer report."""
    out = [f"model {rep['model']}: B = {rep['dram_bytes_per_cycle']:g} bytes/cycle, "
           f"W = {rep['weights_per_cycle']} weights/cycle"]
    head = f"{'layer':<16}{'weights':>9}"
    for s in SCHEMES:
        head += f" | {s + ' bytes':>16}{'cycles':>9}{'stall':>8}{'peakBW':>7}"
    out.append(head)
    for r in rep["layers"]:
        line = f"{r['name'][:16]:<16}{r['weights']:>9}"
        for s in SCHEMES:
            x = r[s]
            line += f" | {x['bytes']:>16}{x['cycles']:>9}{x['stall_cycles']:>8}{x['peak_bandwidth']:>7.2f}"
        out.append(line)
    line = f"{'total':<16}{sum(r['weights'] for r in rep['layers']):>9}"
    for s in SCHEMES:
        x = rep["total"][s]
        line += f" | {x['bytes']:>16}{x['cycles']:>9}{x['stall_cycles']:>8}{x['peak_bandwidth']:>7.2f}"
    out.append(line)
    s = rep["summary"]
    out.append(f"weight-fetch speed-up: {s['speedup_vs_int8']:.3f}x vs int8 "
               f"(compression {s['compression_vs_int8']:.3f}x), {s['speedup_vs_quantized']:.3f}x "
               f"vs quantized-uncompressed (compression {s['compression_vs_quantized']:.3f}x)")
    return "\n".join(out)


def plot(rep: dict, out: str | Path) -> None:
    """Fig. 5 style: per-layer memory, quantized-uncompressed (top) and compressed (bottom)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["name"].removesuffix(".weight") for r in rep["layers"]]
    big = max(r["int8"]["bytes"] for r in rep["layers"]) >= 1 << 20
    unit, scale = ("MB", 1e6) if big else ("KB", 1e3)
    fig, axes = plt.subplots(2, 1, figsize=(max(6, 0.35 * len(names) + 3), 6))
    for ax, scheme, title, color in (
            (axes[0], "quantized", "Quantized uncompressed", "tab:blue"),
            (axes[1], "compressed", "Quantized ANS compressed", "tab:orange")):
        vals = [r[scheme]["bytes"] / scale for r in rep["layers"]]
        ax.bar(range(len(vals)), vals, color=color)
        ax.set_ylabel(f"memory ({unit})")
        peak = max(vals)
        ax.set_title(f"{title}: total {sum(vals):.3g} {unit}, peak layer {peak:.3g} {unit}")
        ax.set_xticks(range(len(vals)))
        ax.set_xticklabels(names, rotation=90 if len(names) > 8 else 0, fontsize=8)
    fig.suptitle("Memory cost per layer (axes scales differ)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump)."""

    def error(self, message: str):
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def auto_grain(c_path: str | Path, max_grains: int = 1 << 20) -> int:
    """Model resolution: one 8-byte beat, coarsened for networks of more than ~8 MB."""
    from sw import container

    total = sum(t.size for t in container.read(c_path).tensors)
    grain = 8
    while total // grain > max_grains:
        grain *= 2
    return grain


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    ap = _Parser(prog="python -m sim.system", description=__doc__.splitlines()[0])
    ap.add_argument("model", help=".tans container")
    ap.add_argument("--dram-bytes-per-cycle", "-B", type=float, required=True, dest="B")
    ap.add_argument("--weights-per-cycle", "-W", type=int, required=True, dest="W")
    ap.add_argument("--plot", help="write a Fig. 5 style per-layer memory plot here")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)
    from sw.tans.errors import TansError

    try:
        if not (args.B > 0 and math.isfinite(args.B)):
            raise ValueError(f"--dram-bytes-per-cycle must be a finite number > 0, got {args.B:g}")
        if args.W <= 0:
            raise ValueError(f"--weights-per-cycle must be > 0, got {args.W}")
        if not Path(args.model).is_file():
            raise ValueError(f"no such file: {args.model}")
        grain = auto_grain(args.model)
        hw = HwModel(bytes_per_cycle=args.B, weights_per_cycle=args.W, grain_bytes=grain,
                     chunk_bytes=max(128, grain))
        rep = analyse(args.model, args.B, args.W, hw)
        if args.plot:
            plot(rep, args.plot)
    except (TansError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - a damaged input must never end in a traceback
        print(f"error: cannot model {args.model}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(rep, indent=1) if args.json else format_table(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
