"""Memory image layout: a `.tans` container laid out in DRAM plus one descriptor per weight tensor.

Layout (all addresses relative to `base`, every section starts on a SECTION_ALIGN boundary):

* tANS tensor: the decode table as the l = 2**k entries the decoder loads, state 0 first,
  each entry a little-endian word of `entry_bytes` (2 = narrow, 4 = wide, see `pack_entry`),
  immediately followed by the payload exactly as in the container (zero-padded to 8 bytes).
  Table and payload are one contiguous region, so the fetcher reads it as one sequential run.
  A codebook or tuple-coded tensor (FORMAT.md 2.3c) has its codebook between the two: one
  entry per symbol of the table's alphabet, entry s holding the N signed levels symbol s stands
  for (level i of the tuple in bits [i·w, (i+1)·w), w = 8, or 16 when a level needs it), each
  entry 2^e bytes (the smallest power of two that holds N·w bits), zero-padded to 8 bytes
  (`codebook_bytes`). A zero-point tensor coded in tuples gets one too (levels index - zero point).
* raw 8-bit tensor: the int8 values in C order, zero-padded to a multiple of 8 bytes.
* per-channel quantizer steps (float32, when a tensor has more than one step) and float32
  tensors (biases) are placed after the weights for the compute side; the weight path does
  not stream them.

A `Descriptor` (hw/fetch/descriptor.py) describes one weight tensor: where its region starts, how
many bytes are table and payload, the decoder and quantizer parameters, and the CRC-32 (zlib)
of the region's bytes, which the fetch path recomputes as it reads them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sw import container as ctr
from sw.container.tuples import tail_counts, tuple_weight_order
from sw.tans import format as fmt

from hw.fetch.crc import crc32_bytes
from hw.fetch.descriptor import Descriptor

SECTION_ALIGN = 64          #: every tensor region starts on a 64-byte (burst) boundary
BEAT_BYTES = fmt.PAYLOAD_ALIGN_BYTES  #: regions are whole 64-bit words

# narrow (16-bit) table entry: symbol [0:4), nb_bits [4:8), base [8:16)
NARROW = {"symbol": (0, 4), "nb_bits": (4, 4), "base": (8, 8)}
# wide (32-bit) table entry: symbol [0:16), nb_bits [16:20), base [20:32)
WIDE = {"symbol": (0, 16), "nb_bits": (16, 4), "base": (20, 12)}


def entry_bytes_for(log2_states: int, alphabet: int) -> int:
    """2 when every entry fits the narrow 16-bit layout, else 4."""
    return 2 if (alphabet <= 16 and log2_states <= 8) else 4


def pack_entry(symbol: int, nb_bits: int, base: int, entry_bytes: int) -> int:
    """One decode-table entry as an integer word (layout NARROW or WIDE)."""
    lay = NARROW if entry_bytes == 2 else WIDE
    word = 0
    for name, value in (("symbol", symbol), ("nb_bits", nb_bits), ("base", base)):
        off, width = lay[name]
        if not 0 <= value < (1 << width):
            raise ValueError(f"table field {name}={value} does not fit {width} bits")
        word |= value << off
    return word


def unpack_entry(word: int, entry_bytes: int) -> tuple[int, int, int]:
    """Inverse of pack_entry: (symbol, nb_bits, base)."""
    lay = NARROW if entry_bytes == 2 else WIDE
    return tuple((word >> off) & ((1 << w) - 1) for off, w in (lay["symbol"], lay["nb_bits"], lay["base"]))


def table_bytes(coded) -> bytes:
    """The decode table of a Coded stream as it sits in memory."""
    eb = entry_bytes_for(coded.log2_states, coded.alphabet)
    words = [pack_entry(int(s), int(n), int(b), eb) for s, n, b in coded.decode_table().entries()]
    return np.asarray(words, dtype="<u2" if eb == 2 else "<u4").tobytes()


def codebook_entries(t: ctr.Tensor) -> np.ndarray | None:
    """The levels each symbol of a coded tensor stands for, shape (A, N); None for a plain
    zero-point (or quant 0) tensor, whose dequantizer subtracts the zero point."""
    n = t.tuple_size
    if t.quant != fmt.QUANT_CODEBOOK and n == 1:
        return None
    levels = t.levels if t.quant == fmt.QUANT_CODEBOOK else np.arange(t.bins, dtype=np.int64) - t.zero_point
    s = np.arange(t.coded.alphabet, dtype=np.int64)
    digits = (s[:, None] // (t.bins ** np.arange(n, dtype=np.int64))[None, :]) % t.bins
    return levels[digits]


def codebook_bytes(t: ctr.Tensor) -> tuple[bytes, int, int]:
    """(codebook section, log2 entry bytes, wide) of a tensor (b"", 0, 0 when it needs none)."""
    ent = codebook_entries(t)
    if ent is None:
        return b"", 0, 0
    wide = int(ent.size > 0 and (ent.min() < -128 or ent.max() > 127))
    w = 16 if wide else 8
    e = max(0, (ent.shape[1] * w // 8 - 1).bit_length())
    bits = np.zeros(ent.shape[0], dtype=object)
    for i in range(ent.shape[1]):
        bits = bits + (((ent[:, i] & ((1 << w) - 1)).astype(object)) << (w * i))
    blob = b"".join(int(v).to_bytes(1 << e, "little") for v in bits)
    return blob + bytes(-len(blob) % BEAT_BYTES), e, wide


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


@dataclass
class Image:
    """A memory image (bytes from `base`) and the descriptors of its weight tensors, in order."""

    base: int
    data: bytearray
    descriptors: list[Descriptor]
    names: list[str] = field(default_factory=list)          #: tensor name of each descriptor
    extras: dict[str, tuple[int, int]] = field(default_factory=dict)  #: name -> (addr, bytes)

    def region(self, i: int) -> bytes:
        """Bytes of descriptor i's region (table + payload, or raw values)."""
        d = self.descriptors[i]
        off = d.addr - self.base
        return bytes(self.data[off:off + d.total_bytes])


def build_image(c: ctr.Container, base: int = 0, max_lanes: int = (1 << 16) - 1) -> Image:
    """Lay out every weight tensor (tANS or raw 8-bit) of a container and describe it."""
    data = bytearray()
    descs: list[Descriptor] = []
    names: list[str] = []
    extras: dict[str, tuple[int, int]] = {}
    pending_steps: list[tuple[int, np.ndarray]] = []

    def put(blob: bytes) -> int:
        data.extend(bytes(_align(len(data), SECTION_ALIGN) - len(data)))
        addr = base + len(data)
        data.extend(blob)
        data.extend(bytes(_align(len(data), BEAT_BYTES) - len(data)))
        return addr

    for t in c.tensors:
        if t.kind == fmt.KIND_RAW_F32 or t.size == 0:
            continue
        step_bits = int(np.asarray(t.steps[:1], dtype="<f4").view("<u4")[0]) if t.steps.size else 0
        if t.kind == fmt.KIND_TANS:
            cd = t.coded
            if cd.lanes > max_lanes:
                raise ValueError(f"tensor {t.name!r}: {cd.lanes} lanes exceed the descriptor's {max_lanes}")
            tab = table_bytes(cd)
            cb, cb_log2, cb_wide = codebook_bytes(t)
            addr = put(tab + cb + cd.payload)
            zp = t.zero_point if t.quant == fmt.QUANT_ZERO_POINT else 0
            tails = tail_counts(t.size, cd.lanes, t.tuple_size)
            desc = Descriptor(kind=fmt.KIND_TANS, addr=addr, table_bytes=len(tab),
                              payload_bytes=len(cd.payload), log2_states=cd.log2_states,
                              wide_entries=len(tab) == 4 * cd.states, lanes=cd.lanes,
                              n_symbols=cd.n_symbols, payload_bits=cd.payload_bits,
                              zero_point=zp, step_bits=step_bits, layer=len(descs),
                              cb_bytes=len(cb), cb_entries=cd.alphabet if cb else 0, cb_entry_log2=cb_log2,
                              cb_wide=cb_wide, tuple_size=t.tuple_size, **tails)
        else:
            raw = t.raw.astype(np.int8).tobytes()
            addr = put(raw)
            desc = Descriptor(kind=fmt.KIND_RAW_INT8, addr=addr, table_bytes=0,
                              payload_bytes=_align(len(raw), BEAT_BYTES), log2_states=0,
                              wide_entries=False, lanes=1, n_symbols=t.size,
                              payload_bits=8 * t.size, zero_point=0, step_bits=step_bits,
                              layer=len(descs))
        desc.crc = crc32_bytes(bytes(data[addr - base:addr - base + desc.total_bytes]))
        descs.append(desc)
        names.append(t.name)
        if t.steps.size > 1:
            pending_steps.append((len(descs) - 1, t.steps))
    for i, steps in pending_steps:
        blob = np.asarray(steps, dtype="<f4").tobytes()
        addr = put(blob)
        descs[i].steps_addr = addr
        extras[names[i] + ".steps"] = (addr, len(blob))
    for t in c.tensors:
        if t.kind == fmt.KIND_RAW_F32 and t.size:
            blob = t.raw.astype("<f4").tobytes()
            extras[t.name] = (put(blob), len(blob))
    return Image(base, data, descs, names, extras)


def expected_stream(t: ctr.Tensor, golden: bool = False) -> np.ndarray:
    """The signed weights of tensor t in the order the fetch path delivers them (golden decode).

    tANS tensors: decode-step order (round t gives symbol t of every lane; with lane_axis =
    input channels, L consecutive weights are one position of every input channel);
    tuple-coded tensors: each decode step's tuple gives its (up to N) weights in order (FORMAT.md
    2.3c, sw.container.tuples.tuple_weight_order); codebook tensors give their levels;
    raw 8-bit tensors: C order. `golden`: decode with the scalar golden decoder (slow).
    """
    ints = t.integers(golden)
    if t.kind != fmt.KIND_TANS:
        return ints.reshape(-1)
    coded_order = ints if t.lane_axis == fmt.NO_AXIS else np.moveaxis(ints, t.lane_axis, 0)
    return coded_order.reshape(-1)[tuple_weight_order(t.size, t.coded.lanes, t.tuple_size)]


def main(argv: list[str] | None = None) -> int:
    """`python -m hw.fetch.image MODEL.tans --format hex|mem|coe|bin|h -o OUT`."""
    import argparse
    import sys
    from pathlib import Path

    from sw.tans.errors import TansError

    from hw.fetch.export import FORMATS, export

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            print(f"hw.fetch.image: error: {message}", file=sys.stderr)
            raise SystemExit(2)

    ap = Parser(prog="python -m hw.fetch.image",
                description="Write a .tans model's memory image and descriptor table for $readmemh "
                            "(hex), Vivado (.mem, .coe), raw binary or C (h). The descriptor table goes "
                            "to OUT's name + _desc (except for h, which holds both).")
    ap.add_argument("model", type=Path)
    ap.add_argument("--format", required=True, choices=FORMATS)
    ap.add_argument("-o", "--out", required=True, type=Path)
    ap.add_argument("--base", type=lambda s: int(s, 0), default=0, help="image base address (default 0)")
    ap.add_argument("--word-bits", type=int, default=64, help="memory word width (default 64, the bus)")
    args = ap.parse_args(argv)
    try:
        if args.base < 0 or args.base % SECTION_ALIGN or args.base >> 32:
            raise ValueError(f"base must be a 32-bit address aligned to {SECTION_ALIGN} bytes, got {args.base:#x}")
        im = build_image(ctr.read(args.model), base=args.base)
        if im.base + len(im.data) > 1 << 32:
            raise ValueError("the image does not fit a 32-bit address space at this base")
        files = export(im, args.format, args.out, args.word_bits)
    except (TansError, ValueError, OSError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"hw.fetch.image: error: {msg}", file=sys.stderr)
        return 1
    print(f"wrote {', '.join(map(str, files))} ({len(im.data)} bytes, {len(im.descriptors)} descriptors)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
