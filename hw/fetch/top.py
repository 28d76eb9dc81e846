"""Weight-fetch path: descriptor queue -> AXI4 burst reader -> decoder / raw bypass -> dequantizer.

    desc_in ─> DescriptorQueue ─fetch─> AxiBurstReader <─AXI4 read─> DRAM
                      └──work──> FetchDatapath <─words─┘
                  (input side: tables -> bank b, payload -> FIFO; output side: command, symbols)
                                   ├─table/cmd/words─> Decoder ─symbols─┐
                                   └─raw bytes───────────────────────────┴─> Dequantizer ─> weights

Status and error registers (plain output ports, sticky bits cleared by `clear`):
`busy`, `layers_done`, `layers_failed`, `error` (sticky: some tensor failed its check),
`error_layer`/`error_code` (first failure since clear; a FetchErrorCode, 7 = CRC),
`crc_error`/`crc_error_layer` (sticky: some tensor's bytes failed their CRC-32, and the first
such tensor's layer tag since clear), `crc_failed` (count), `bus_error` (sticky RRESP != OKAY),
and performance counters `bursts`, `beats`, `weights`.
"""
from __future__ import annotations

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from hw.fetch.bus import AxiReadSignature
from hw.fetch.dequant import PLAIN, DequantParams, Dequantizer, weight_beat
from hw.fetch.descriptor import DESCRIPTOR, DescriptorQueue
from hw.fetch.burst import AxiBurstReader
from hw.fetch.datapath import PAYLOAD_FIFO_DEPTH, FetchDatapath
from hw.core.params import DecoderParams


class WeightFetch(wiring.Component):
    """The whole fetch path for one decoder core; P = `params.units` weights per output beat."""

    def __init__(self, params: DecoderParams, max_burst: int = 16, fifo_depth: int = 64,
                 queue_depth: int = 4, dq: DequantParams = PLAIN,
                 payload_depth: int = PAYLOAD_FIFO_DEPTH) -> None:
        if params.word_bits != 64 or 8 % params.units:
            raise ValueError("the fetch path needs a 64-bit decoder word and P dividing 8 "
                             f"(got word_bits={params.word_bits}, units={params.units})")
        self.params, self.dq = params, dq
        self.max_burst, self.fifo_depth, self.queue_depth = max_burst, fifo_depth, queue_depth
        self.payload_depth = payload_depth
        super().__init__({
            "desc_in": In(stream.Signature(DESCRIPTOR)),
            "m_axi": Out(AxiReadSignature(32, params.word_bits)),
            "weights": Out(stream.Signature(weight_beat(params.units, dq))),
            "clear": In(1),
            "busy": Out(1),
            "layers_done": Out(16),
            "layers_failed": Out(16),
            "error": Out(1),
            "error_layer": Out(8),
            "error_code": Out(3),
            "crc_error": Out(1),
            "crc_error_layer": Out(8),
            "crc_failed": Out(16),
            "bus_error": Out(1),
            "bursts": Out(32),
            "beats": Out(32),
            "weights_out": Out(32),
        })

    def elaborate(self, platform) -> Module:
        from hw.core.decoder import TansDecoder   # the decoder core (hw/core/decoder.py)

        m = Module()
        p = self.params
        m.submodules.queue = queue = DescriptorQueue(self.queue_depth)
        m.submodules.reader = reader = AxiBurstReader(p.word_bits, self.max_burst, self.fifo_depth)
        m.submodules.path = path = FetchDatapath(p, p.word_bits, self.dq, self.payload_depth)
        m.submodules.decoder = dec = TansDecoder(p)
        m.submodules.dequant = dq = Dequantizer(p.units, 8, self.dq)

        connect(m, flipped(self.desc_in), queue.desc_in)
        connect(m, queue.fetch, reader.cmd)
        connect(m, flipped(self.m_axi), reader.m_axi)
        connect(m, queue.work, path.work)
        connect(m, reader.data, path.words)
        connect(m, path.dec_table, dec.table)
        connect(m, path.dec_cmd, dec.cmd)
        connect(m, path.dec_words, dec.words)
        connect(m, dec.out, path.dec_out)
        m.d.comb += path.dec_status.eq(dec.status)
        connect(m, path.sym, dq.i)
        connect(m, dq.o, flipped(self.weights))
        m.d.comb += [dq.zero_point.eq(path.zero_point), dq.step.eq(path.step),
                     dq.layer.eq(path.layer), dq.first.eq(path.first), dq.last.eq(path.last),
                     dq.error.eq(path.error), dq.crc_error.eq(path.crc_error)]
        if not self.dq.plain:
            m.d.comb += [dq.use_cb.eq(path.use_cb), dq.cb_we.eq(path.cb_we), dq.cb_waddr.eq(path.cb_waddr),
                         dq.cb_wdata.eq(path.cb_wdata)]

        m.d.comb += [reader.clear.eq(self.clear), self.bus_error.eq(reader.bus_error),
                     self.bursts.eq(reader.bursts), self.beats.eq(reader.beats),
                     self.busy.eq(queue.work.valid | ~reader.idle | (queue.pending != 0) |
                                  self.weights.valid | path.busy)]
        with m.If(self.weights.valid & self.weights.ready):
            m.d.sync += self.weights_out.eq(self.weights_out + self.weights.payload.count)
        with m.If(path.done):
            m.d.sync += self.layers_done.eq(self.layers_done + 1)
            with m.If(path.done_error):
                m.d.sync += self.layers_failed.eq(self.layers_failed + 1)
                with m.If(~self.error):
                    m.d.sync += [self.error.eq(1), self.error_layer.eq(path.done_layer),
                                 self.error_code.eq(path.done_code)]
            with m.If(path.done_crc):
                m.d.sync += self.crc_failed.eq(self.crc_failed + 1)
                with m.If(~self.crc_error):
                    m.d.sync += [self.crc_error.eq(1), self.crc_error_layer.eq(path.done_layer)]
        with m.If(self.clear):
            m.d.sync += [self.error.eq(0), self.error_layer.eq(0), self.error_code.eq(0),
                         self.crc_error.eq(0), self.crc_error_layer.eq(0)]
        return m
