"""Payload layouts of the decoder's ports and its error codes: the core's wire protocol."""
from __future__ import annotations

import enum

from amaranth.lib import data

from hw.core.params import DecoderParams

COUNT_BITS = 32          #: width of n_symbols and payload_bits in a command
ERROR_CODE_BITS = 3


class ErrorCode(enum.IntEnum):
    """Why a command ended with `status.error` set (first error wins)."""

    NONE = 0
    NO_TABLE = 1       #: decode started without a loaded table in its bank (or during its load)
    BAD_TABLE = 2      #: the bank's last table load: size not a power of two in 32..l, or an impossible entry
    BAD_COMMAND = 3    #: lanes = 0, lanes > the core's lanes, or fewer symbols than lanes
    TRUNCATED = 4      #: the input ended (last) early, or a read ran past payload_bits
    FINAL_STATE = 5    #: a lane did not end in the final state (symbols were still emitted)
    EXCESS_BITS = 6    #: the decode finished with payload bits left unread


def entry_layout(p: DecoderParams) -> data.StructLayout:
    """One decode-table entry: the symbol a state emits, bits to read, base of the next state."""
    return data.StructLayout({"symbol": p.symbol_bits, "nb_bits": p.nb_width, "base": p.log2_states})


TABLE_BANKS = 2          #: tables the core holds: one decodes while the other loads


def table_load_layout(p: DecoderParams) -> data.StructLayout:
    """A table-load beat: entries are written at 0, 1, 2, ... of table bank `bank`; `last` marks
    the final entry (`bank` comes last, so a beat without it loads bank 0 as before)."""
    return data.StructLayout({"entry": entry_layout(p), "last": 1, "bank": 1})


def command_layout(p: DecoderParams) -> data.StructLayout:
    """A decode command: symbols in the tensor, lanes used, payload bits to consume, and the
    table bank it decodes with (last, so a command without it uses bank 0)."""
    return data.StructLayout({"n_symbols": COUNT_BITS, "lanes": p.lane_count_bits,
                              "payload_bits": COUNT_BITS, "bank": 1})


def word_layout(p: DecoderParams) -> data.StructLayout:
    """A compressed word (bit j of the stream is bit j % W of word j // W); `last` ends the packet."""
    return data.StructLayout({"data": p.word_bits, "last": 1})


def output_layout(p: DecoderParams) -> data.StructLayout:
    """Up to P decoded symbols of consecutive lanes; slots 0..count-1 are valid."""
    return data.StructLayout({
        "symbols": data.ArrayLayout(p.symbol_bits, p.units),
        "lanes": data.ArrayLayout(p.lane_bits, p.units),
        "count": p.units.bit_length(),
        "last": 1,
    })


def status_layout(p: DecoderParams) -> data.StructLayout:
    """Core status: busy while a command runs; done/error/error_code hold until the next command;
    table_ready / table_ready1: bank 0 / bank 1 holds a good table."""
    return data.StructLayout({"busy": 1, "done": 1, "error": 1, "error_code": ERROR_CODE_BITS,
                              "table_ready": 1, "table_ready1": 1})


def pack(layout: data.StructLayout, **fields: int) -> int:
    """Pack integer fields into a layout's raw bits (host/testbench side)."""
    raw = 0
    for name, field in layout:
        value = int(fields.get(name, 0))
        if value < 0 or value >> field.width:
            raise ValueError(f"{name}={value} does not fit {field.width} bits")
        raw |= value << field.offset
    return raw


def unpack(layout: data.StructLayout | data.ArrayLayout, raw: int) -> dict:
    """Unpack raw bits into a dict of fields (arrays become lists)."""
    out: dict = {}
    for name, field in layout:
        value = (int(raw) >> field.offset) & ((1 << field.width) - 1)
        shape = field.shape
        if isinstance(shape, data.ArrayLayout):
            w = shape.size // shape.length
            value = [(value >> (i * w)) & ((1 << w) - 1) for i in range(shape.length)]
        out[name] = value
    return out
