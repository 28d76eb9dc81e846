"""One figure style for every plot of the project (report, sim.system, benchmarks): fonts, sizes,
colours per storage kind and size part, layer labels, and `save` writing PNG (200 dpi) and PDF/SVG.

Colours are the Okabe-Ito colour-blind-safe palette; one meaning per colour in every figure:
8-bit storage grey, quantized-uncoded orange, tANS coded blue (its parts in related shades).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable, Iterator

from sw.container.files import atomic_write

FORMATS = ("png", "pdf", "svg")   #: what `save` can write
DEFAULT_FORMATS = ("png", "pdf")  #: what the commands write unless told (--plot-format)
PNG_DPI = 200
WIDTH = 7.0                       #: inches: a two-column paper's text width
HEIGHT = 3.2
COLUMN_WIDTH = 3.4                #: one column

#: storage schemes and kinds (report and sim.system use the same names and colours)
COLORS = {
    "int8": "#BBBBBB",            # 8 bits per weight
    "raw_int8": "#7F7F7F",        # a layer stored raw 8-bit in the coded file
    "quantized": "#E69F00",       # quantized, uncoded: ceil(log2 bins) bits per weight
    "tans": "#0072B2",            # tANS coded
    "compressed": "#0072B2",
    "entropy": "#000000",         # the entropy bound
    "stall": "#D55E00",
}
#: the parts of a coded record, stacked bottom to top (docs/FORMAT.md 2.7)
PART_COLORS = {
    "payload": "#0072B2",
    "lane states": "#56B4E9",
    "table": "#009E73",
    "steps": "#CC79A7",
    "header": "#F0E442",
}
#: a curve per method in rate-accuracy plots, in this order; others take the next free colour
METHOD_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]

RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.axisbelow": True,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "errorbar.capsize": 2,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "pdf.fonttype": 42,           # embed TrueType fonts: text stays text in the PDF
    "svg.fonttype": "none",
}


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


@contextlib.contextmanager
def style() -> Iterator[object]:
    """Draw (and save) inside this: the project's rcParams, yields pyplot."""
    plt = pyplot()
    with plt.rc_context(RC):
        yield plt


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The formats as a tuple; ValueError for one `save` cannot write."""
    out = tuple(dict.fromkeys(f.lower().lstrip(".") for f in formats))
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise ValueError(f"plot formats are {', '.join(FORMATS)}, got {', '.join(bad) or 'none'}")
    return out


def parse_formats(text: str) -> tuple[str, ...]:
    """Parse --plot-format: a comma-separated list such as png,pdf (argparse type)."""
    import argparse
    try:
        return check_formats(x for x in text.split(",") if x.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def save(fig, path_stem: str | Path, formats: Iterable[str] = DEFAULT_FORMATS) -> list[str]:
    """Write `fig` as path_stem.<fmt> for each format (PNG at 200 dpi), atomically; close it; the paths."""
    plt = pyplot()
    stem = Path(path_stem)
    if stem.suffix.lower().lstrip(".") in FORMATS:
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    files = []
    try:
        with plt.rc_context(RC):
            for f in check_formats(formats):
                path = stem.parent / f"{stem.name}.{f}"
                kw = {"dpi": PNG_DPI} if f == "png" else {}
                atomic_write(path, lambda out, f=f, kw=kw: fig.savefig(out, format=f, **kw))
                files.append(str(path))
    finally:
        plt.close(fig)
    return files


def short_name(name: str) -> str:
    """A layer's label: the tensor name without `.weight`."""
    return name.removesuffix(".weight")


def layer_axis(ax, names: list[str], width_in: float) -> None:
    """Layer names under the bars: horizontal when they fit, else rotated 30 (45 for many layers) degrees."""
    labels = [short_name(n) for n in names]
    ax.set_xticks(range(len(labels)))
    longest = max((len(x) for x in labels), default=1)
    fits = longest * 0.065 * len(labels) <= 0.9 * width_in      # ~0.065 in per 7-pt character
    if fits:
        ax.set_xticklabels(labels)
    else:
        ax.set_xticklabels(labels, rotation=30 if len(labels) <= 12 else 45, ha="right", rotation_mode="anchor")
    ax.tick_params(axis="x", length=0)
    ax.set_xlim(-0.6, len(labels) - 0.4)


def figure_width(n_groups: int, per_group: float = 0.55) -> float:
    """A width that gives each group of bars room: a column and more for a few layers, the text
    width up to 24 layers, wider (at most two text widths) for deeper networks."""
    if n_groups > 24:
        return min(2 * WIDTH, 0.3 * n_groups)
    return min(WIDTH, max(COLUMN_WIDTH + 1.0, 1.2 + per_group * n_groups))


def method_style(i: int) -> dict:
    """Colour and marker of the i-th curve of a rate-accuracy plot."""
    return {"color": METHOD_COLORS[i % len(METHOD_COLORS)], "marker": MARKERS[i % len(MARKERS)]}


def plain_log_axis(ax, axis: str = "x", ticks: Iterable[float] = (0.125, 0.25, 0.5, 1, 2, 4, 8, 16)) -> None:
    """A log-scale axis labelled with plain numbers at powers of two (no crowded minor labels)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_locator(FixedLocator(list(ticks)))
    a.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    a.set_minor_formatter(NullFormatter())
