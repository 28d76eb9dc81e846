"""AXI4-Lite register block for the weight-fetch path: descriptor queue, status, errors,
counters and an interrupt. `REGISTERS` is the register map's one definition: the RTL decodes
from it, `c_header()` (python -m hw.fetch.regs -o tans_fetch_regs.h) prints it for C, and the
testbench and the C driver (hw/fetch/driver/) use those names.

Programming model (what hw/fetch/driver/tans_fetch.c does):

1. write the descriptor's DESC_WORDS 32-bit words (Descriptor.pack(), least significant word
   first) to DESC0..DESCn, then write 1 to PUSH: the descriptor enters the queue (the write
   response waits while the queue is full, so a push is never lost);
2. repeat for every tensor of the model; the path streams them in order;
3. wait until STATUS.BUSY is low (poll, or enable IRQ_DONE and take the interrupt);
4. read ERROR (first failing tensor's layer tag and code since the last clear), CRC_ERROR and
   the counters; write CTRL.CLEAR to clear the sticky errors.

Interrupt: `irq` = IRQ_ENABLE & IRQ_STATUS (write 1 to clear). IRQ_STATUS.DONE is set when the
path goes idle after work, IRQ_STATUS.ERROR when a tensor fails (any code, CRC included).
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from hw.core.params import DecoderParams
from hw.fetch.bus import AxiReadSignature
from hw.fetch.dequant import PLAIN, DequantParams, weight_beat
from hw.fetch.descriptor import DESCRIPTOR
from hw.fetch.export import DESC_WORDS
from hw.fetch.top import WeightFetch

REG_ID_VALUE = 0x7A4E5301      #: what ID reads ("zNS", version 1)
RESP_OKAY, RESP_SLVERR = 0, 2


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    width: int
    doc: str


@dataclass(frozen=True)
class Register:
    name: str
    addr: int
    access: str          #: "ro", "rw", "wo" (reads 0), "w1c"
    doc: str
    fields: tuple[Field, ...] = ()


REGISTERS: tuple[Register, ...] = (
    Register("ID", 0x00, "ro", "identification and version (REG_ID_VALUE)"),
    Register("CTRL", 0x04, "rw", "control", (
        Field("CLEAR", 0, 1, "write 1: clear the sticky error, CRC and bus-error registers (self-clearing)"),
        Field("IRQ_ENABLE", 1, 1, "1: irq follows IRQ_STATUS"))),
    Register("STATUS", 0x08, "ro", "status", (
        Field("BUSY", 0, 1, "descriptors queued or in flight, or weights not yet taken"),
        Field("ERROR", 1, 1, "sticky: some tensor failed its check since the last clear"),
        Field("CRC_ERROR", 2, 1, "sticky: some tensor's bytes failed their CRC-32"),
        Field("BUS_ERROR", 3, 1, "sticky: a read came back with RRESP != OKAY"),
        Field("QUEUE_FULL", 4, 1, "a PUSH now would wait for room"))),
    Register("ERROR", 0x0C, "ro", "first failure since the last clear", (
        Field("LAYER", 0, 8, "layer tag of the first failing tensor"),
        Field("CODE", 8, 3, "its code (TANS_ERR_*)"),
        Field("CRC_LAYER", 16, 8, "layer tag of the first tensor that failed its CRC"))),
    Register("LAYERS", 0x10, "ro", "tensor counters since reset", (
        Field("DONE", 0, 16, "tensors finished"),
        Field("FAILED", 16, 16, "tensors that failed a check"))),
    Register("CRC_FAILED", 0x14, "ro", "tensors that failed their CRC since reset"),
    Register("BURSTS", 0x18, "ro", "AXI read bursts issued"),
    Register("BEATS", 0x1C, "ro", "AXI read beats received"),
    Register("WEIGHTS", 0x20, "ro", "weights delivered"),
    Register("IRQ_STATUS", 0x24, "w1c", "interrupt causes (write 1 to clear)", (
        Field("DONE", 0, 1, "the path went idle after work"),
        Field("ERROR", 1, 1, "a tensor failed"))),
    Register("PUSH", 0x28, "wo", "write: the staged DESC words enter the descriptor queue"),
    *(Register(f"DESC{j}", 0x40 + 4 * j, "rw", f"descriptor staging, bits [{32 * j}, {32 * j + 32})")
      for j in range(DESC_WORDS)),
)
REG = {r.name: r for r in REGISTERS}
ADDR_BITS = 8


class AxiLiteSignature(wiring.Signature):
    """AXI4-Lite, from the master's side (ports awaddr, wdata, ... under the member's name)."""

    def __init__(self, addr_width: int = ADDR_BITS, data_width: int = 32) -> None:
        super().__init__({
            "awaddr": Out(addr_width), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })


class WeightFetchAxiLite(wiring.Component):
    """WeightFetch with its descriptor queue, status and counters behind an AXI4-Lite slave."""

    def __init__(self, params: DecoderParams, max_burst: int = 16, fifo_depth: int = 64,
                 queue_depth: int = 4, dq: DequantParams = PLAIN) -> None:
        self.params = params
        self.core_args = (max_burst, fifo_depth, queue_depth, dq)
        super().__init__({
            "s_axil": In(AxiLiteSignature()),
            "m_axi": Out(AxiReadSignature(32, params.word_bits)),
            "weights": Out(stream.Signature(weight_beat(params.units, dq))),
            "irq": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.fetch = f = WeightFetch(self.params, *self.core_args)
        connect(m, flipped(self.m_axi), f.m_axi)
        connect(m, f.weights, flipped(self.weights))
        ax = self.s_axil

        stage = [Signal(32, name=f"desc{j}") for j in range(DESC_WORDS)]
        irq_enable = Signal()
        irq_done, irq_error = Signal(), Signal()
        was_busy = Signal()
        failed_seen = Signal(16)
        pushing = Signal()           # PUSH written: desc_in valid until the queue takes it

        # --- write channel: AW and W together, one response per write ---
        b_pending = Signal()
        waddr = Signal(ADDR_BITS)
        wdata = Signal(32)
        take_w = Signal()
        m.d.comb += [take_w.eq(ax.awvalid & ax.wvalid & ~b_pending & ~pushing),
                     ax.awready.eq(take_w), ax.wready.eq(take_w),
                     ax.bvalid.eq(b_pending & ~pushing), ax.bresp.eq(RESP_OKAY)]
        m.d.sync += f.clear.eq(0)
        with m.If(take_w):
            m.d.sync += [b_pending.eq(1), waddr.eq(ax.awaddr), wdata.eq(ax.wdata)]
            addr = ax.awaddr[2:ADDR_BITS]
            with m.Switch(addr):
                with m.Case(REG["CTRL"].addr >> 2):
                    m.d.sync += [f.clear.eq(ax.wdata[0]), irq_enable.eq(ax.wdata[1])]
                with m.Case(REG["IRQ_STATUS"].addr >> 2):
                    with m.If(ax.wdata[0]):
                        m.d.sync += irq_done.eq(0)
                    with m.If(ax.wdata[1]):
                        m.d.sync += irq_error.eq(0)
                with m.Case(REG["PUSH"].addr >> 2):
                    m.d.sync += pushing.eq(1)
                for j in range(DESC_WORDS):
                    with m.Case(REG[f"DESC{j}"].addr >> 2):
                        m.d.sync += stage[j].eq(ax.wdata)
        with m.If(ax.bvalid & ax.bready):
            m.d.sync += b_pending.eq(0)
        m.d.comb += [f.desc_in.valid.eq(pushing), f.desc_in.payload.eq(Cat(*stage)[:DESCRIPTOR.size])]
        with m.If(f.desc_in.valid & f.desc_in.ready):
            m.d.sync += pushing.eq(0)

        # --- interrupt causes ---
        m.d.sync += [was_busy.eq(f.busy), failed_seen.eq(f.layers_failed)]
        with m.If(was_busy & ~f.busy):
            m.d.sync += irq_done.eq(1)
        with m.If(f.layers_failed != failed_seen):
            m.d.sync += irq_error.eq(1)
        m.d.comb += self.irq.eq(irq_enable & (irq_done | irq_error))

        # --- read channel ---
        # what each register reads: a whole value, or its fields placed by REGISTERS' offsets
        sources = {
            "ID": Const(REG_ID_VALUE, 32),
            "CTRL": {"CLEAR": Const(0, 1), "IRQ_ENABLE": irq_enable},
            "STATUS": {"BUSY": f.busy | pushing, "ERROR": f.error, "CRC_ERROR": f.crc_error,
                       "BUS_ERROR": f.bus_error, "QUEUE_FULL": ~f.desc_in.ready | pushing},
            "ERROR": {"LAYER": f.error_layer, "CODE": f.error_code, "CRC_LAYER": f.crc_error_layer},
            "LAYERS": {"DONE": f.layers_done, "FAILED": f.layers_failed},
            "CRC_FAILED": f.crc_failed, "BURSTS": f.bursts, "BEATS": f.beats, "WEIGHTS": f.weights_out,
            "IRQ_STATUS": {"DONE": irq_done, "ERROR": irq_error},
            **{f"DESC{j}": stage[j] for j in range(DESC_WORDS)},
        }
        values = {}
        for name, src in sources.items():
            v = Signal(32, name=f"reg_{name.lower()}")
            if isinstance(src, dict):
                fields = {fl.name: fl for fl in REG[name].fields}
                assert set(src) == set(fields), name
                for fname, sig in src.items():
                    fl = fields[fname]
                    m.d.comb += v[fl.offset:fl.offset + fl.width].eq(sig)
            else:
                m.d.comb += v.eq(src)
            values[name] = v
        r_valid = Signal()
        r_data = Signal(32)
        m.d.comb += [ax.arready.eq(~r_valid), ax.rvalid.eq(r_valid), ax.rdata.eq(r_data),
                     ax.rresp.eq(RESP_OKAY)]
        with m.If(ax.arvalid & ax.arready):
            m.d.sync += [r_valid.eq(1), r_data.eq(0)]
            with m.Switch(ax.araddr[2:ADDR_BITS]):
                for name, value in values.items():
                    with m.Case(REG[name].addr >> 2):
                        m.d.sync += r_data.eq(value)
        with m.If(ax.rvalid & ax.rready):
            m.d.sync += r_valid.eq(0)
        return m


def c_header() -> str:
    """The register map, descriptor layout and error codes as a C header."""
    from hw.fetch.export import descriptor_header_lines

    lines = ["/* generated by python -m hw.fetch.regs: the weight-fetch path's AXI4-Lite registers */",
             "#ifndef TANS_FETCH_REGS_H", "#define TANS_FETCH_REGS_H", "",
             f"#define TANS_REG_ID_VALUE 0x{REG_ID_VALUE:08x}u", ""]
    for r in REGISTERS:
        lines.append(f"#define TANS_REG_{r.name} 0x{r.addr:02x}u   /* {r.access}: {r.doc} */")
        for fl in r.fields:
            n = f"TANS_{r.name}_{fl.name}"
            lines += [f"#define {n}_SHIFT {fl.offset}u", f"#define {n}_MASK 0x{((1 << fl.width) - 1) << fl.offset:08x}u"
                      f"   /* {fl.doc} */"]
    lines += [f"#define TANS_REG_DESC(j) (0x{REG['DESC0'].addr:02x}u + 4u * (j))", ""]
    lines += descriptor_header_lines()
    lines += ["", "#endif /* TANS_FETCH_REGS_H */", ""]
    return "\n".join(lines)


def markdown_table() -> str:
    """The register map as the Markdown table in docs/FETCH.md (tests/test_fetch_regs.py compares)."""
    rows = ["| offset | register | access | bits | meaning |", "|---|---|---|---|---|"]
    for r in REGISTERS:
        rows.append(f"| 0x{r.addr:02x} | `{r.name}` | {r.access} | | {r.doc} |")
        for f in r.fields:
            bits = f"{f.offset}" if f.width == 1 else f"{f.offset + f.width - 1}:{f.offset}"
            rows.append(f"| | `{r.name}.{f.name}` | | [{bits}] | {f.doc} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(prog="python -m hw.fetch.regs", description="Write the register map as a C header.")
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--markdown", action="store_true", help="write the Markdown register table instead")
    args = ap.parse_args(argv)
    args.out.write_text(markdown_table() if args.markdown else c_header())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
