"""Per-layer size report of a `.tans` model and the paper-style plots (Fig. 4 bins, Fig. 5 memory).

Every figure follows docs/NUMBERS.md: whole records, gap against the entropy bound, bins of raw
8-bit layers = 255, KiB = 1024 bytes.
"""
from __future__ import annotations

import math
from pathlib import Path

from sw import container as ct
from sw.evaluation import plotstyle
from sw.tans import format as fmt

RAW_INT8_BINS = 255       #: bins of a raw 8-bit layer: the int8 quantizer's -127..127 (docs/NUMBERS.md)
KIB_BITS = 8 * 1024


def uncoded_width(bins: int) -> int:
    """Bits per weight of the same quantized integers stored uncoded: ceil(log2 bins), at least 1."""
    return max(1, math.ceil(math.log2(bins))) if bins > 1 else 1


def layer_rows(c: ct.Container) -> list[dict]:
    """One row per quantized layer: weights, bins, entropy bound, coded bits, gap, bits/weight.

    `int8_bits` / `uncoded_bits`: the same layer stored as 8-bit / ceil(log2 bins)-bit integers
    with this record's header and step fields (so all three schemes count the same overhead).
    """
    rows = []
    for t in c.tensors:
        if t.quant == fmt.QUANT_NONE:
            continue
        s = t.stats()
        n = t.size
        overhead = s["step_bits"] + s["header_bits"]
        row = {"name": t.name, "kind": s["kind"], "weights": n, "total_bits": s["total_bits"],
               "bits_per_weight": s["total_bits"] / n if n else None}
        if t.kind == fmt.KIND_TANS:
            bins = t.bins
            row.update(bins=bins, alphabet=s["alphabet"], used_symbols=s["used_symbols"], lanes=s["lanes"],
                       states=s["states"], entropy_bits=s["entropy_bits"],
                       entropy_bits_per_weight=s["entropy_bits"] / n if n else None,
                       payload_bits=s["payload_bits"], lane_state_bits=s["lane_state_bits"],
                       table_bits=s["table_bits"], step_bits=s["step_bits"], header_bits=s["header_bits"],
                       gap_percent=s["gap_percent"], coding_gap_percent=s.get("coding_gap_percent"),
                       uncoded_bits=n * uncoded_width(bins) + overhead)
        else:
            row.update(bins=RAW_INT8_BINS, alphabet=None, used_symbols=None, lanes=0, states=0, entropy_bits=None,
                       entropy_bits_per_weight=None, payload_bits=s["payload_bits"], lane_state_bits=0,
                       table_bits=0, step_bits=s["step_bits"], header_bits=s["header_bits"], gap_percent=None,
                       coding_gap_percent=None, uncoded_bits=s["total_bits"])
        row["int8_bits"] = 8 * n + overhead
        rows.append(row)
    return rows


def summarize(c: ct.Container, path: str | Path | None = None) -> dict:
    """Totals: coded bits/weight (tables and headers included), entropy bits/weight, total bytes."""
    rows = layer_rows(c)
    coded = [r for r in rows if r["kind"] == "tans"]
    n_coded = sum(r["weights"] for r in coded)
    total_bytes = len(ct.to_bytes(c)) if path is None else Path(path).stat().st_size
    coded_bits = sum(r["total_bits"] for r in coded)
    entropy = sum(r["entropy_bits"] for r in coded)
    return {
        "layers": rows,
        "coded_weights": n_coded,
        "coded_bits": coded_bits,
        "coded_bits_per_weight": coded_bits / n_coded if n_coded else None,
        "entropy_bits_per_weight": entropy / n_coded if n_coded else None,
        "coded_gap_percent": 100.0 * (coded_bits / entropy - 1) if entropy > 0 else None,
        "quantized_weights": sum(r["weights"] for r in rows),
        "all_weights_bits_per_weight": sum(r["total_bits"] for r in rows) / max(1, sum(r["weights"] for r in rows)),
        "total_bytes": total_bytes,
        "total_kib": total_bytes / 1024,
        "float32_bytes": 4 * sum(t.size for t in c.tensors),
    }


def _num(v, spec: str) -> str:
    """A table cell: '-' for a figure that does not exist (None)."""
    return "-" if v is None else format(v, spec)


def format_table(summary: dict) -> str:
    """Plain-text per-layer table plus totals (column meanings: docs/NUMBERS.md)."""
    head = (f"{'layer':20} {'kind':8} {'weights':>7} {'bins':>4} {'A':>5} {'lanes':>5} {'l':>4} {'entropy':>8} "
            f"{'payload':>8} {'lanest':>6} {'table':>5} {'steps':>5} {'header':>6} {'record':>8} {'gap%':>6} "
            f"{'pgap%':>6} {'bits/w':>7}")
    lines = [head, "-" * len(head)]
    for r in summary["layers"]:
        states = str(r["states"]) if r["states"] else "-"
        lines.append(f"{r['name'][:20]:20} {r['kind']:8} {r['weights']:7d} {r['bins']:4d} "
                     f"{_num(r['alphabet'], 'd'):>5} {r['lanes']:5d} {states:>4} {_num(r['entropy_bits'], '.0f'):>8} "
                     f"{r['payload_bits']:8d} {r['lane_state_bits']:6d} {r['table_bits']:5d} "
                     f"{r['step_bits']:5d} {r['header_bits']:6d} {r['total_bits']:8d} "
                     f"{_num(r['gap_percent'], '.1f'):>6} {_num(r['coding_gap_percent'], '.1f'):>6} "
                     f"{_num(r['bits_per_weight'], '.3f'):>7}")
    lines.append("bits: payload (coded symbols) + lane states + table + steps + header = record; "
                 "A = stored alphabet; gap = record vs entropy bound; pgap = payload and lane states only")
    if summary["coded_weights"]:
        lines.append(f"coded layers: {summary['coded_weights']} weights, "
                     f"{summary['coded_bits_per_weight']:.3f} bits/weight coded (whole records), "
                     f"entropy bound {summary['entropy_bits_per_weight']:.3f} bits/weight, "
                     f"gap {_num(summary['coded_gap_percent'], '.1f')}%")
    lines.append(f"file: {summary['total_bytes']} bytes = {summary['total_bytes'] / 1024:.2f} KiB "
                 f"({summary['float32_bytes']} bytes as float32, "
                 f"{summary['float32_bytes'] / max(1, summary['total_bytes']):.1f}x smaller)")
    return "\n".join(lines)


def plot(summary: dict, out_dir: str | Path, formats=plotstyle.DEFAULT_FORMATS) -> list[str]:
    """Fig. 4-style bins per layer and Fig. 5-style memory per layer, each as PNG and PDF (or `formats`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = summary["layers"]
    if not rows:
        raise ValueError("the model holds no quantized layer to plot")
    return plot_bins(rows, out / "bins_per_layer", formats) + plot_memory(rows, out / "memory_per_layer", formats)


def plot_bins(rows: list[dict], stem: Path, formats=plotstyle.DEFAULT_FORMATS) -> list[str]:
    """Per layer, on one linear bits-per-weight axis: log2(bins) and the entropy bound."""
    C = plotstyle.COLORS
    with plotstyle.style() as plt:
        width = plotstyle.figure_width(len(rows))
        fig, ax = plt.subplots(figsize=(width, plotstyle.HEIGHT), layout="constrained")
        x = range(len(rows))
        w = 0.38
        log2b = [math.log2(r["bins"]) for r in rows]
        colors = [C["tans"] if r["kind"] == "tans" else C["raw_int8"] for r in rows]
        bars = ax.bar([i - w / 2 for i in x], log2b, w, color=colors, edgecolor="none")
        ax.bar_label(bars, labels=[str(r["bins"]) for r in rows], padding=1, fontsize=6)
        ent = [r["entropy_bits_per_weight"] or 0.0 for r in rows]
        coded = [i for i, r in enumerate(rows) if r["kind"] == "tans"]
        ax.bar([i + w / 2 for i in coded], [ent[i] for i in coded], w, color="white", edgecolor=C["tans"],
               hatch="////", linewidth=0.8)
        ax.plot([i + w / 2 for i in coded], [rows[i]["bits_per_weight"] for i in coded], ls="none",
                marker="_", ms=9, mew=1.6, color=C["entropy"])
        ax.set_ylabel("bits per weight")
        ax.set_ylim(0, max(log2b) * 1.15)
        plotstyle.layer_axis(ax, [r["name"] for r in rows], width)
        handles = [plt.Rectangle((0, 0), 1, 1, color=C["tans"]),
                   plt.Rectangle((0, 0), 1, 1, color=C["raw_int8"]),
                   plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor=C["tans"], hatch="////"),
                   plt.Line2D([], [], ls="none", marker="_", ms=9, mew=1.6, color=C["entropy"])]
        labels = ["log2(bins), tANS-coded layer (label: bins)", "log2(bins), raw 8-bit layer",
                  "entropy bound", "coded, whole record"]
        fig.legend(handles, labels, loc="outside upper center", ncol=2)
        return plotstyle.save(fig, stem, formats)


def plot_memory(rows: list[dict], stem: Path, formats=plotstyle.DEFAULT_FORMATS) -> list[str]:
    """Per layer, grouped on one KiB axis: 8-bit, quantized uncoded, coded (stacked by part), entropy bound."""
    C, P = plotstyle.COLORS, plotstyle.PART_COLORS
    with plotstyle.style() as plt:
        width = plotstyle.figure_width(len(rows), 0.7)
        fig, ax = plt.subplots(figsize=(width, plotstyle.HEIGHT + 0.4), layout="constrained")
        w = 0.27
        mib = max(r["int8_bits"] for r in rows) >= 4 * 1024 * KIB_BITS      # MiB from 4 MiB layers on
        unit = "MiB" if mib else "KiB"
        kib = lambda bits: bits / (KIB_BITS * (1024 if mib else 1))        # noqa: E731
        for i, r in enumerate(rows):
            ax.bar(i - w, kib(r["int8_bits"]), w, color=C["int8"] if r["kind"] == "tans" else C["raw_int8"])
            ax.bar(i, kib(r["uncoded_bits"]), w, color=C["quantized"] if r["kind"] == "tans" else C["raw_int8"])
            if r["kind"] == "tans":
                bottom = 0.0
                for part, key in (("payload", "payload_bits"), ("lane states", "lane_state_bits"),
                                  ("table", "table_bits"), ("steps", "step_bits"), ("header", "header_bits")):
                    h = kib(r[key])
                    ax.bar(i + w, h, w, bottom=bottom, color=P[part], edgecolor="none")
                    bottom += h
                ax.plot([i + w / 2 + 0.02, i + 1.5 * w - 0.02], [kib(r["entropy_bits"])] * 2,
                        color=C["entropy"], lw=1.2)
                ratio = r["int8_bits"] / r["total_bits"]
                if len(rows) <= 12:                     # room for a label per layer
                    ax.annotate(f"{ratio:.1f}x" if ratio < 100 else f"{ratio:.0f}x", (i + w, bottom), xytext=(0, 1),
                                textcoords="offset points", ha="center", va="bottom", fontsize=6)
            else:
                ax.bar(i + w, kib(r["total_bits"]), w, color=C["raw_int8"])
        ax.set_ylabel(f"memory per layer ({unit})")
        plotstyle.layer_axis(ax, [r["name"] for r in rows], width)
        handles = [plt.Rectangle((0, 0), 1, 1, color=C["int8"]),
                   plt.Rectangle((0, 0), 1, 1, color=C["quantized"]),
                   *[plt.Rectangle((0, 0), 1, 1, color=P[p]) for p in P],
                   plt.Line2D([], [], color=C["entropy"], lw=1.2),
                   plt.Rectangle((0, 0), 1, 1, color=C["raw_int8"])]
        labels = ["8-bit", "quantized, uncoded", *[f"tANS coded: {p}" for p in P],
                  "entropy bound", "raw 8-bit layer (all three)"]
        fig.legend(handles, labels, loc="outside upper center", ncol=3)
        return plotstyle.save(fig, stem, formats)
