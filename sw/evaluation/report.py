"""Per-layer size report of a `.tans` model and the paper-style plots (Fig. 4 bins, Fig. 5 memory)."""
from __future__ import annotations

import math
from pathlib import Path

from sw import container as ct
from sw.container.files import atomic_write
from sw.tans import format as fmt


def layer_rows(c: ct.Container) -> list[dict]:
    """One row per quantized layer: weights, bins, entropy bound, coded bits, gap, bits/weight."""
    rows = []
    for t in c.tensors:
        if t.quant == fmt.QUANT_NONE:
            continue
        s = t.stats()
        n = t.size
        row = {"name": t.name, "kind": s["kind"], "weights": n, "total_bits": s["total_bits"],
               "bits_per_weight": s["total_bits"] / n}
        if t.kind == fmt.KIND_TANS:
            bits_uncoded = math.ceil(math.log2(t.bins)) if t.bins > 1 else 1
            row.update(bins=t.bins, lanes=s["lanes"], states=s["states"], entropy_bits=s["entropy_bits"],
                       entropy_bits_per_weight=s["entropy_bits"] / n, payload_bits=s["payload_bits"],
                       lane_state_bits=s["lane_state_bits"], table_bits=s["table_bits"],
                       step_bits=s["step_bits"], header_bits=s["header_bits"],
                       gap_percent=s["gap_percent"], uncoded_bits=n * bits_uncoded)
        else:
            row.update(bins=255, lanes=0, states=0, entropy_bits=None, entropy_bits_per_weight=None,
                       payload_bits=s["payload_bits"], lane_state_bits=0, table_bits=0, step_bits=s["step_bits"],
                       header_bits=s["header_bits"], gap_percent=None, uncoded_bits=8 * n)
        rows.append(row)
    return rows


def summarize(c: ct.Container, path: str | Path | None = None) -> dict:
    """Totals: coded bits/weight (tables and headers included), entropy bits/weight, total bytes."""
    rows = layer_rows(c)
    coded = [r for r in rows if r["kind"] == "tans"]
    n_coded = sum(r["weights"] for r in coded)
    total_bytes = len(ct.to_bytes(c)) if path is None else Path(path).stat().st_size
    return {
        "layers": rows,
        "coded_weights": n_coded,
        "coded_bits": sum(r["total_bits"] for r in coded),
        "coded_bits_per_weight": sum(r["total_bits"] for r in coded) / n_coded if n_coded else None,
        "entropy_bits_per_weight": sum(r["entropy_bits"] for r in coded) / n_coded if n_coded else None,
        "quantized_weights": sum(r["weights"] for r in rows),
        "all_weights_bits_per_weight": sum(r["total_bits"] for r in rows) / max(1, sum(r["weights"] for r in rows)),
        "total_bytes": total_bytes,
        "float32_bytes": 4 * sum(t.size for t in c.tensors),
    }


def format_table(summary: dict) -> str:
    """Plain-text per-layer table plus totals."""
    head = (f"{'layer':20} {'kind':8} {'weights':>7} {'bins':>4} {'lanes':>5} {'l':>4} {'entropy':>8} "
            f"{'payload':>8} {'lanest':>6} {'table':>5} {'steps':>5} {'header':>6} {'record':>8} {'gap%':>6} "
            f"{'bits/w':>7}")
    lines = [head, "-" * len(head)]
    for r in summary["layers"]:
        ent = "-" if r["entropy_bits"] is None else f"{r['entropy_bits']:.0f}"
        gap = "-" if r["gap_percent"] is None else f"{r['gap_percent']:.1f}"
        states = str(r["states"]) if r["states"] else "-"
        lines.append(f"{r['name'][:20]:20} {r['kind']:8} {r['weights']:7d} {r['bins']:4d} {r['lanes']:5d} "
                     f"{states:>4} {ent:>8} {r['payload_bits']:8d} {r['lane_state_bits']:6d} {r['table_bits']:5d} "
                     f"{r['step_bits']:5d} {r['header_bits']:6d} {r['total_bits']:8d} {gap:>6} "
                     f"{r['bits_per_weight']:7.3f}")
    lines.append("bits per record: payload (coded symbols) + lane states + table + steps + header = record; "
                 "gap = record vs entropy bound")
    if summary["coded_weights"]:
        lines.append(f"coded layers: {summary['coded_weights']} weights, "
                     f"{summary['coded_bits_per_weight']:.3f} bits/weight coded (tables and headers included), "
                     f"entropy bound {summary['entropy_bits_per_weight']:.3f} bits/weight")
    lines.append(f"file: {summary['total_bytes']} bytes ({summary['float32_bytes']} bytes as float32, "
                 f"{summary['float32_bytes'] / max(1, summary['total_bytes']):.1f}x smaller)")
    return "\n".join(lines)


def plot(summary: dict, out_dir: str | Path) -> list[str]:
    """Fig. 4-style bins per layer and Fig. 5-style memory per layer (quantized uncoded vs coded) PNGs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = summary["layers"]
    names = [r["name"].removesuffix(".weight") for r in rows]
    x = range(len(rows))
    colors = ["tab:blue" if r["kind"] == "tans" else "tab:gray" for r in rows]

    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(rows)), 4))
    bars = ax.bar(x, [r["bins"] for r in rows], color=colors)
    ax.bar_label(bars, fontsize=7)
    ax.set_yscale("log", base=2)
    ax.set_xticks(list(x), names, rotation=70, ha="right", fontsize=8)
    ax.set_ylabel("quantization bins (log scale)")
    ax.set_title("Bins per layer (blue: tANS coded, grey: 8-bit uncoded)", fontsize=10)
    fig.tight_layout()
    p1 = out / "bins_per_layer.png"
    atomic_write(p1, lambda f: fig.savefig(f, format="png", dpi=120))   # regular files only, no partial PNG
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(6, 0.45 * len(rows)), 6), sharex=True)
    fig.suptitle("Memory per layer (KiB)", fontsize=11)
    a1.bar(x, [r["uncoded_bits"] / 8192 for r in rows], color=colors)
    a1.set_ylabel("KiB")
    a1.set_title("Quantized, uncoded (ceil(log2 bins) bits/weight)", fontsize=10)
    a2.bar(x, [r["total_bits"] / 8192 for r in rows], color=colors)
    a2.set_ylabel("KiB")
    a2.set_title("Quantized, tANS coded (tables, lane states, headers included)", fontsize=10)
    a2.set_xticks(list(x), names, rotation=70, ha="right", fontsize=8)
    fig.tight_layout()
    p2 = out / "memory_per_layer.png"
    atomic_write(p2, lambda f: fig.savefig(f, format="png", dpi=120))   # regular files only, no partial PNG
    plt.close(fig)
    return [str(p1), str(p2)]
