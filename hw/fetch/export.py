"""Memory image and descriptor table as files for other tools: `$readmemh` hex, Vivado .mem and
.coe, raw binary, and a C header. Every layout fact comes from the RTL's own definitions
(DESCRIPTOR in hw/fetch/descriptor.py, FetchErrorCode in hw/fetch/datapath.py).

Packing, the same in every format:

* the image: bytes from `base`, zero-padded to whole words of `word_bits`; word i holds bytes
  [i*W/8, (i+1)*W/8) little-endian, so byte 0 is the word's least significant byte (the
  AXI data bus of a little-endian system);
* a descriptor: `Descriptor.pack()` (bit j of the DESCRIPTOR layout) split into DESC_WORDS
  32-bit words, word j = bits [32j, 32j + 32), written least significant word first.
"""
from __future__ import annotations

import re
from pathlib import Path

from hw.fetch.descriptor import DESCRIPTOR
from hw.fetch.image import Image

FORMATS = ("hex", "mem", "coe", "bin", "h")
DESC_WORDS = -(-DESCRIPTOR.size // 32)      #: 32-bit words per descriptor


def image_words(im: Image, word_bits: int) -> list[int]:
    nb = word_bits // 8
    blob = bytes(im.data) + bytes(-len(im.data) % nb)
    return [int.from_bytes(blob[i:i + nb], "little") for i in range(0, len(blob), nb)]


def descriptor_words(im: Image) -> list[list[int]]:
    """Each descriptor as DESC_WORDS 32-bit words, least significant first."""
    return [[(d.pack() >> (32 * j)) & 0xFFFFFFFF for j in range(DESC_WORDS)] for d in im.descriptors]


def _hex(value: int, bits: int) -> str:
    return f"{value:0{-(-bits // 4)}x}"


def desc_path(out: Path) -> Path:
    """Where the descriptor table goes next to image file `out`: NAME_desc.EXT."""
    return out.with_name(f"{out.stem}_desc{out.suffix}")


def _comment_lines(im: Image, word_bits: int) -> list[str]:
    lines = [f"tans-weights memory image: {len(im.data)} bytes from base 0x{im.base:08x}, "
             f"{word_bits}-bit little-endian words",
             f"{len(im.descriptors)} descriptors of {DESCRIPTOR.size} bits ({DESC_WORDS} x 32-bit words) "
             "in the _desc file"]
    for i, (d, n) in enumerate(zip(im.descriptors, im.names)):
        lines.append(f"  {i}: {n} at 0x{d.addr:08x}, {d.total_bytes} bytes, crc 0x{d.crc:08x}")
    return lines


def write_readmem(im: Image, out: Path, word_bits: int, vivado: bool) -> list[Path]:
    """`$readmemh` text (hex) or Vivado .mem (mem: the same with an @0 address line)."""
    written = []
    for path, words, bits in ((out, image_words(im, word_bits), word_bits),
                              (desc_path(out), [_join(w) for w in descriptor_words(im)], 32 * DESC_WORDS)):
        head = [f"// {c}" for c in _comment_lines(im, word_bits)] if path == out else \
               [f"// {len(words)} descriptors, {bits} bits each (DESCRIPTOR layout, bit 0 = LSB)"]
        body = (["@0"] if vivado else []) + [_hex(w, bits) for w in words]
        path.write_text("\n".join(head + body) + "\n")
        written.append(path)
    return written


def _join(words32: list[int]) -> int:
    return sum(w << (32 * j) for j, w in enumerate(words32))


def write_coe(im: Image, out: Path, word_bits: int) -> list[Path]:
    """Xilinx .coe memory initialization files (radix 16), image and descriptor table."""
    written = []
    for path, words, bits in ((out, image_words(im, word_bits), word_bits),
                              (desc_path(out), [_join(w) for w in descriptor_words(im)], 32 * DESC_WORDS)):
        head = [f"; {c}" for c in _comment_lines(im, word_bits)] if path == out else \
               [f"; {len(words)} descriptors, {bits} bits each"]
        vec = ",\n".join(_hex(w, bits) for w in words) if words else _hex(0, bits)
        path.write_text("\n".join(head) + "\nmemory_initialization_radix=16;\n"
                        f"memory_initialization_vector=\n{vec};\n")
        written.append(path)
    return written


def write_bin(im: Image, out: Path, word_bits: int) -> list[Path]:
    """Raw bytes of the image (padded to whole words) and of the descriptor table."""
    nb = word_bits // 8
    out.write_bytes(bytes(im.data) + bytes(-len(im.data) % nb))
    d = desc_path(out)
    d.write_bytes(b"".join(w.to_bytes(4, "little") for ws in descriptor_words(im) for w in ws))
    return [out, d]


def c_identifier(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return s if re.match(r"[A-Za-z_]", s) else "_" + s


def layout_defines(prefix: str, layout) -> list[str]:
    """#define PREFIX_FIELD_OFFSET / _WIDTH for each field of an Amaranth struct layout."""
    out = []
    for name, f in layout:
        n = f"{prefix}_{name.upper()}"
        out += [f"#define {n}_OFFSET {f.offset}u", f"#define {n}_WIDTH {f.width}u"]
    return out


def descriptor_header_lines() -> list[str]:
    """The descriptor layout and error codes as C #defines (shared with the register map header)."""
    from hw.fetch.datapath import FetchErrorCode
    from sw.tans import format as fmt

    lines = [f"#define TANS_DESC_BITS {DESCRIPTOR.size}u",
             f"#define TANS_DESC_WORDS {DESC_WORDS}u   /* 32-bit words, least significant first */"]
    lines += layout_defines("TANS_DESC", DESCRIPTOR)
    lines += [f"#define TANS_KIND_TANS {fmt.KIND_TANS}u", f"#define TANS_KIND_RAW_INT8 {fmt.KIND_RAW_INT8}u"]
    lines += [f"#define TANS_ERR_{e.name} {int(e)}u" for e in FetchErrorCode]
    return lines


def write_header(im: Image, out: Path, word_bits: int) -> list[Path]:
    """One C header: layout #defines, the image bytes and the packed descriptor table."""
    guard = c_identifier(out.name).upper()
    lines = [f"/* generated by python -m hw.fetch.image: do not edit */",
             *[f"/* {c} */" for c in _comment_lines(im, word_bits)],
             f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", ""]
    lines += descriptor_header_lines()
    lines += ["", f"#define TANS_IMAGE_BASE 0x{im.base:08x}u", f"#define TANS_IMAGE_BYTES {len(im.data)}u",
              f"#define TANS_N_DESCRIPTORS {len(im.descriptors)}u", ""]
    lines.append(f"static const uint8_t tans_image[{max(1, len(im.data))}] __attribute__((aligned(8))) = {{")
    data = bytes(im.data) or b"\0"
    for i in range(0, len(data), 16):
        lines.append("  " + ", ".join(f"0x{b:02x}" for b in data[i:i + 16]) + ",")
    lines.append("};")
    lines.append("")
    lines.append(f"static const uint32_t tans_descriptors[{max(1, len(im.descriptors))}][TANS_DESC_WORDS] = {{")
    for ws, name in zip(descriptor_words(im), im.names):
        lines.append("  {" + ", ".join(f"0x{w:08x}u" for w in ws) + f"}},  /* {name} */")
    if not im.descriptors:
        lines.append("  {0},")
    lines += ["};", "", f"#endif /* {guard} */", ""]
    out.write_text("\n".join(lines))
    return [out]


def export(im: Image, fmt_name: str, out: Path, word_bits: int = 64) -> list[Path]:
    """Write the image (and descriptor table) in format `fmt_name`; return the files written."""
    if fmt_name not in FORMATS:
        raise ValueError(f"unknown format {fmt_name!r}; choose one of {', '.join(FORMATS)}")
    if word_bits % 8 or not 8 <= word_bits <= 512:
        raise ValueError(f"word bits must be a multiple of 8 in 8..512, got {word_bits}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt_name in ("hex", "mem"):
        return write_readmem(im, out, word_bits, vivado=fmt_name == "mem")
    if fmt_name == "coe":
        return write_coe(im, out, word_bits)
    if fmt_name == "bin":
        return write_bin(im, out, word_bits)
    return write_header(im, out, word_bits)
