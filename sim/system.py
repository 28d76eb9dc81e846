"""System model of weight traffic: DRAM -> fetch path -> decoder -> compute, per layer.

    python -m sim.system MODEL.tans --dram-bytes-per-cycle B --weights-per-cycle W
                         [--plot out.png] [--json]

Every weight tensor of the container is streamed in container order under three storage
schemes: `compressed` (the tANS table + payload as in the memory image of hw/fetch/image.py;
raw 8-bit layers as they are), `quantized` (the same quantized weights stored
uncompressed, ceil(log2(bins)) bits each) and `int8` (8 bits per weight). The cycle model
(sim/model/cycles.py) mirrors the RTL in hw/fetch/top.py: a DRAM that supplies B bytes per
cycle in 64-byte chunks, a read FIFO the fetcher may run ahead into, and a consumer that
loads the decode table (into the core's second bank while the previous coded tensor still
decodes, when two coded tensors follow each other), decodes W weights per cycle (P = W decode units) or unpacks
uncompressed weights at W per cycle. Reported per layer: bytes, cycles, stall cycles (the
compute side waiting for weights), the bandwidth needed to never stall, and the
whole-network weight-fetch speed-up of compressed storage over the other two.

With a compute side (`--platform eyeriss|tpu`, the paper's Table 2 scaled to the network,
or `--macs-per-cycle M [--buffer-bytes S] [--clock-hz F]`) it also models one inference
(sim/model/compute.py): each conv/linear layer takes the longer of its weight + activation
traffic and its compute; activations are counted at the bits of the file's activation
quantizers (`--activation-store entropy|fixed`, 8 bits without one). Reported: per-layer
cycles, weight fetch / decode / stall, activation traffic, compute and which bound, and
inferences per second against the full-precision baseline (8-bit weights and activations).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from sim.model import compute
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


def platform_for(c, kind: str | None, bytes_per_cycle: float, macs_per_cycle: float | None = None,
                 buffer_bytes: float = 0.0, clock_hz: float = 1e9) -> tuple[compute.Platform, dict]:
    """(platform, network totals): the paper's `kind` scaled to the container's network, or a custom one."""
    shapes = compute.shapes_of_container(c)
    net = compute.network_totals(c, shapes)
    if kind is not None:
        return compute.scaled_platform(kind, net["macs"], net["weights"], net["activations"], bytes_per_cycle), net
    if macs_per_cycle is None:
        raise ValueError("a compute side needs --platform or --macs-per-cycle")
    return compute.Platform("custom", bytes_per_cycle, macs_per_cycle, buffer_bytes, clock_hz), net


def add_inference(rep: dict, c, platform: compute.Platform, store: str = "entropy") -> dict:
    """Add the compute side to an `analyse` report: one inference, compressed vs full precision (int8)."""
    shapes = compute.shapes_of_container(c)
    rows = {s: [dict(r[s], name=r["name"]) for r in rep["layers"]] for s in ("compressed", "int8")}
    comp = compute.inference(c, rows["compressed"], shapes, platform, store)
    full = compute.inference(c, rows["int8"], shapes, platform, "int8")
    rep["inference"] = {"platform": platform.as_dict(), "network": compute.network_totals(c, shapes),
                        "compressed": comp, "int8": full,
                        "speedup_vs_int8": full["cycles"] / comp["cycles"]}
    return rep


def format_inference(inf: dict) -> str:
    """Per-layer table of the compute side."""
    p = inf["platform"]
    out = [f"\ninference on {p['name']}: {p['macs_per_cycle']:.4g} MACs/cycle, buffer {p['buffer_bytes']:.4g} bytes, "
           f"B = {p['dram_bytes_per_cycle']:g} bytes/cycle, clock {p['clock_hz']:.4g} Hz; network "
           f"{inf['network']['macs']} MACs, {inf['network']['weights']} weights, "
           f"{inf['network']['activations']} activations",
           f"{'layer':<16}{'MACs':>9}{'act bits':>9}{'w cyc':>8}{'w stall':>8}{'act cyc':>8}{'compute':>8}"
           f"{'cycles':>8}  bound    | int8 cycles"]
    for r, f in zip(inf["compressed"]["layers"], inf["int8"]["layers"]):
        out.append(f"{r['name'][:16]:<16}{r['macs']:>9}{r['activation_bits']:>9.2f}{r['weight_cycles']:>8}"
                   f"{r['weight_stall_cycles']:>8}{r['activation_cycles']:>8}{r['compute_cycles']:>8}"
                   f"{r['cycles']:>8}  {r['bound']:<8} | {f['cycles']:>8} ({f['bound']})")
    cm, fu = inf["compressed"], inf["int8"]
    out.append(f"total: {cm['cycles']} cycles = {cm['inferences_per_second']:.4g} inferences/s "
               f"({cm['compute_bound_layers']}/{len(cm['layers'])} layers compute-bound); full precision "
               f"(8-bit weights and activations) {fu['cycles']} cycles = {fu['inferences_per_second']:.4g}/s; "
               f"speed-up {inf['speedup_vs_int8']:.3f}x")
    return "\n".join(out)


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
    if "inference" in rep:
        out.append(format_inference(rep["inference"]))
    return "\n".join(out)


SCHEME_LABELS = {"int8": "8-bit", "quantized": "quantized, uncoded", "compressed": "tANS coded"}


def plot(rep: dict, out: str | Path, formats=None) -> list[str]:
    """Per layer and storage scheme: cycles (busy, stall, DRAM transfer time) and memory in KiB,
    in the project's plot style (sw/evaluation/plotstyle.py); writes PNG and PDF (or `formats`)."""
    from sw.evaluation import plotstyle

    C = plotstyle.COLORS
    layers = rep["layers"]
    names = [r["name"] for r in layers]
    B = rep["dram_bytes_per_cycle"]
    peak = max(r[s]["cycles"] for r in layers for s in SCHEMES)
    cunit, cscale = (("M", 1e6) if peak >= 1e7 else ("k", 1e3) if peak >= 1e4 else ("", 1.0))
    mib = max(r["int8"]["bytes"] for r in layers) >= 1 << 20
    munit, mscale = ("MiB", 1 << 20) if mib else ("KiB", 1 << 10)
    w = 0.27
    with plotstyle.style() as plt:
        width = plotstyle.figure_width(len(layers), 0.7)
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(width, 2 * plotstyle.HEIGHT), sharex=True,
                                       layout="constrained")
        for j, scheme in enumerate(SCHEMES[::-1]):          # int8, quantized, compressed: left to right
            x = [i + (j - 1) * w for i in range(len(layers))]
            colors = [C[scheme] if r["kind"] == "tans" else C["raw_int8"] for r in layers]
            busy = [(r[scheme]["cycles"] - r[scheme]["stall_cycles"]) / cscale for r in layers]
            stall = [r[scheme]["stall_cycles"] / cscale for r in layers]
            ax1.bar(x, busy, w, color=colors)
            some = [i for i, v in enumerate(stall) if v > 0]
            ax1.bar([x[i] for i in some], [stall[i] for i in some], w, bottom=[busy[i] for i in some],
                    color="white", edgecolor=C["stall"], hatch="////", linewidth=0.6)
            ax1.plot(x, [r[scheme]["bytes"] / B / cscale for r in layers], ls="none", marker="_", ms=8,
                     mew=1.4, color="black")
            ax2.bar(x, [r[scheme]["bytes"] / mscale for r in layers], w, color=colors)
        ax1.set_ylabel(f"{cunit}cycles per layer" if cunit else "cycles per layer")
        ax2.set_ylabel(f"weight memory per layer ({munit})")
        plotstyle.layer_axis(ax2, names, width)
        ax1.tick_params(axis="x", length=0)
        handles = [plt.Rectangle((0, 0), 1, 1, color=C[s]) for s in ("int8", "quantized", "compressed")]
        handles += [plt.Rectangle((0, 0), 1, 1, color=C["raw_int8"]),
                    plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor=C["stall"], hatch="////"),
                    plt.Line2D([], [], ls="none", marker="_", ms=8, mew=1.4, color="black")]
        labels = [SCHEME_LABELS[s] for s in ("int8", "quantized", "compressed")]
        labels += ["raw 8-bit layer (every scheme)", "stall: compute waits for weights",
                   f"DRAM transfer time (bytes / B, B = {B:g} bytes per cycle)"]
        fig.legend(handles, labels, loc="outside upper center", ncol=3)
        ax1.set_title(f"decode/unpack at W = {rep['weights_per_cycle']} weights per cycle "
                      f"(solid: busy, hatched: stall)", fontsize=plotstyle.RC["axes.labelsize"])
        stem = Path(out)
        return plotstyle.save(fig, stem, formats or plotstyle.DEFAULT_FORMATS)


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
    ap.add_argument("--plot", metavar="PATH",
                    help="write per-layer cycles (busy, stall, DRAM time) and memory (KiB) to PATH.png and PATH.pdf")
    ap.add_argument("--plot-format", default=None, metavar="FMT[,FMT]",
                    help="plot formats, from png, pdf, svg (default png,pdf)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    cs = ap.add_mutually_exclusive_group()
    cs.add_argument("--platform", choices=sorted(compute.PAPER_PLATFORMS),
                    help="model compute too: the paper's Table 2 platform scaled to this network")
    cs.add_argument("--macs-per-cycle", type=float, help="model compute too: a custom platform's MACs per cycle")
    ap.add_argument("--buffer-bytes", type=float, default=0.0, help="with --macs-per-cycle: on-chip activation buffer")
    ap.add_argument("--clock-hz", type=float, default=1e9, help="with --macs-per-cycle: cycles per second")
    ap.add_argument("--activation-store", choices=("entropy", "fixed"), default="entropy",
                    help="bits of quantized activations: index entropy (default) or ceil(log2 levels)")
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
        if args.macs_per_cycle is not None and not (args.macs_per_cycle > 0 and math.isfinite(args.macs_per_cycle)):
            raise ValueError(f"--macs-per-cycle must be a finite number > 0, got {args.macs_per_cycle:g}")
        if not (args.buffer_bytes >= 0 and math.isfinite(args.buffer_bytes)) or \
                not (args.clock_hz > 0 and math.isfinite(args.clock_hz)):
            raise ValueError("--buffer-bytes must be >= 0 and --clock-hz > 0, both finite")
        rep = analyse(args.model, args.B, args.W, hw)
        if args.platform or args.macs_per_cycle is not None:
            from sw import container
            c = container.read(args.model)
            plat, _ = platform_for(c, args.platform, args.B, args.macs_per_cycle, args.buffer_bytes, args.clock_hz)
            add_inference(rep, c, plat, args.activation_store)
        if args.plot:
            from sw.evaluation.plotstyle import check_formats
            formats = check_formats(args.plot_format.split(",")) if args.plot_format else None
            rep["plots"] = plot(rep, args.plot, formats)
    except (TansError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - a damaged input must never end in a traceback
        print(f"error: cannot model {args.model}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    try:
        print(json.dumps(rep, indent=1) if args.json else format_table(rep))
        for p in rep.get("plots", []) if not args.json else []:
            print(f"plot: {p}")
        sys.stdout.flush()
    except BrokenPipeError:          # `python -m sim.system ... | head -1`: stop quietly
        from sw.cli.main import quiet_broken_stdout
        quiet_broken_stdout()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
