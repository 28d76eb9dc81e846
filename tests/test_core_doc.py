"""docs/CORE.md's port table and error codes agree with the layouts the core is built from."""
from __future__ import annotations

import re
from pathlib import Path

from amaranth.lib import data

from hw.core.layouts import (ErrorCode, command_layout, output_layout, status_layout, table_load_layout,
                        word_layout)
from hw.core.params import DecoderParams

DOC = Path(__file__).resolve().parent.parent / "docs" / "CORE.md"
FIELD = re.compile(r"`(\w+)\[(\d+)(?::(\d+))?\]`")


def leaves(layout: data.Layout, offset: int = 0) -> dict[str, tuple[int, int]]:
    """name -> (msb, lsb) of every leaf field (a one-slot array counts as a leaf)."""
    out: dict[str, tuple[int, int]] = {}
    for name, field in layout:
        shape = field.shape
        if isinstance(shape, data.StructLayout):
            out.update(leaves(shape, offset + field.offset))
        else:
            lo = offset + field.offset
            out[name] = (lo + field.width - 1, lo)
    return out


def doc_rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| `(\w+)__payload` \| \w+ \| (\d+) \| (.*) \|$", line) or \
            re.match(r"\| `(status)` \| \w+ \| (\d+) \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = (int(m.group(2)), m.group(3))
    return rows


def test_port_table_matches_layouts() -> None:
    p = DecoderParams()      # the default build the table documents
    assert (p.log2_states, p.symbol_bits, p.lanes, p.units, p.word_bits) == (8, 5, 64, 1, 32)
    layouts = {"table": table_load_layout(p), "cmd": command_layout(p), "words": word_layout(p),
               "out": output_layout(p), "status": status_layout(p)}
    rows = doc_rows()
    assert set(rows) == set(layouts), rows
    for port, layout in layouts.items():
        width, text = rows[port]
        assert width == layout.size, (port, width, layout.size)
        got = {m.group(1): (int(m.group(2)), int(m.group(3) or m.group(2))) for m in FIELD.finditer(text)}
        assert got == leaves(layout), (port, got, leaves(layout))


def test_error_table_matches_codes() -> None:
    rows = dict(re.findall(r"^\| (\d+) \| `(\w+)` \|", DOC.read_text(), re.M))
    assert {name: int(code) for code, name in rows.items()} == \
        {e.name: int(e) for e in ErrorCode if e is not ErrorCode.NONE}
