"""Tensor descriptors: the software record, its hardware layout, and the descriptor queue.

A descriptor tells the fetch path where one weight tensor lives and how to turn it into
weights: one contiguous region of `table_bytes + payload_bytes` bytes at `addr` (the
decode table then the payload for tANS, just the int8 values for raw layers), the
decoder parameters, the quantizer zero point, the layer's step (float32 bits) and the
CRC-32 of the region, which the fetch path checks as it reads. A codebook or tuple-coded tensor
(FORMAT.md 2.3c) has a codebook section between table and payload (`cb_bytes`, `cb_entries`
entries of 2^cb_entry_log2 bytes, each `tuple_size` levels of 8 or 16 bits) and the figures the
dequantizer needs to drop the padding of short lane tails (sw.container.tuples.tail_counts).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from amaranth import Cat, Module
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from sw.tans import format as fmt


class DescriptorLayout(data.StructLayout):
    """Hardware layout of a descriptor (field widths are the hardware limits)."""

    def __init__(self) -> None:
        super().__init__({
            "kind": 2,            # fmt.KIND_TANS or fmt.KIND_RAW_INT8
            "addr": 32,           # byte address of the region (8-byte aligned)
            "table_bytes": 16,    # bytes of decode table at the start of the region (0 if raw)
            "payload_bytes": 32,  # bytes of payload after the table (multiple of 8)
            "log2_states": 4,     # k: the table has 2**k entries
            "wide_entries": 1,    # 1: 32-bit table entries, 0: 16-bit
            "lanes": 16,          # interleaved tANS streams
            "n_symbols": 32,      # weights in the tensor
            "payload_bits": 32,   # bits the decoder must consume (integrity check)
            "zero_point": 8,      # weight = symbol - zero_point
            "step_bits": 32,      # float32 bits of the (first) quantizer step, for compute
            "steps_addr": 32,     # address of per-channel float32 steps (0: per-tensor step)
            "layer": 8,           # tag carried with every output beat
            "crc": 32,            # CRC-32 (zlib) of the region's table_bytes + cb_bytes + payload_bytes bytes
            # codebook and tuple coding (FORMAT.md 2.3c); 0 / 1 for a plain tensor
            "cb_bytes": 20,       # bytes of codebook entries after the table (multiple of 8; 0: none)
            "cb_entries": 17,     # entries (the table's alphabet): entry s gives symbol s's levels
            "cb_entry_log2": 2,   # an entry is 2**this bytes
            "cb_wide": 1,         # 1: 16-bit levels, 0: 8-bit levels
            "tuple_size": 3,      # N: weights per decoded symbol
            "long_lanes": 16,     # lanes below this hold one weight more than the others
            "last_round_long": 32,   # round of a long lane's last tuple
            "tail_long": 3,          # its valid weights (1..N)
            "last_round_short": 32,  # the same for the other lanes
            "tail_short": 3,
        })


DESCRIPTOR = DescriptorLayout()


@dataclass
class Descriptor:
    """Software view of one descriptor; `pack()` gives the integer the hardware takes."""

    kind: int
    addr: int
    table_bytes: int
    payload_bytes: int
    log2_states: int
    wide_entries: bool
    lanes: int
    n_symbols: int
    payload_bits: int
    zero_point: int
    step_bits: int
    layer: int
    steps_addr: int = 0
    crc: int = 0         #: zlib.crc32 of the region; the fetch path flags a tensor whose bytes differ
    cb_bytes: int = 0
    cb_entries: int = 0
    cb_entry_log2: int = 0
    cb_wide: int = 0
    tuple_size: int = 1
    long_lanes: int = 0
    last_round_long: int = 0
    tail_long: int = 1
    last_round_short: int = 0
    tail_short: int = 1

    @property
    def total_bytes(self) -> int:
        """Bytes the fetcher reads for this tensor."""
        return self.table_bytes + self.cb_bytes + self.payload_bytes

    def pack(self) -> int:
        """The descriptor as an integer in DESCRIPTOR layout (ValueError if a field overflows)."""
        word = 0
        for f in fields(self):
            value = int(getattr(self, f.name))
            fl = DESCRIPTOR[f.name]
            width = fl.width
            if not 0 <= value < (1 << width):
                raise ValueError(f"descriptor field {f.name}={value} does not fit {width} bits")
            word |= value << fl.offset
        return word


FETCH_CMD = data.StructLayout({"addr": 32, "nbytes": 32})


class DescriptorQueue(wiring.Component):
    """Queue of descriptors, fanned out to the fetcher (address runs) and the datapath.

    Both sides get every descriptor in order; the fetcher can run ahead of the datapath by
    up to `depth` descriptors, so consecutive layers stream back to back.
    """

    def __init__(self, depth: int = 4) -> None:
        self._depth = depth
        super().__init__({
            "desc_in": In(stream.Signature(DESCRIPTOR)),
            "fetch": Out(stream.Signature(FETCH_CMD)),
            "work": Out(stream.Signature(DESCRIPTOR)),
            "pending": Out(8),       # descriptors accepted whose data path has not started
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.fq = fq = fifo.SyncFIFOBuffered(width=FETCH_CMD.size, depth=self._depth)
        m.submodules.wq = wq = fifo.SyncFIFOBuffered(width=DESCRIPTOR.size, depth=self._depth)
        d = self.desc_in.payload
        both = fq.w_rdy & wq.w_rdy
        m.d.comb += [
            self.desc_in.ready.eq(both),
            fq.w_en.eq(self.desc_in.valid & both),
            wq.w_en.eq(self.desc_in.valid & both),
            fq.w_data.eq(Cat(d.addr, (d.table_bytes + d.cb_bytes + d.payload_bytes)[:32])),
            wq.w_data.eq(d.as_value()),
            self.fetch.valid.eq(fq.r_rdy),
            self.fetch.payload.eq(fq.r_data),
            fq.r_en.eq(self.fetch.ready),
            self.work.valid.eq(wq.r_rdy),
            self.work.payload.eq(wq.r_data),
            wq.r_en.eq(self.work.ready),
            self.pending.eq(wq.r_level),
        ]
        return m
