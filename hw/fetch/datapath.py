"""Fetch datapath: routes one descriptor's words to the decoder (tANS) or the raw unpacker.

Per descriptor, in order:

* tANS: table words -> decode-table entries (one per cycle, `last` on entry 2**k - 1),
  then the decode command, then payload words (`last` on the final one) to the decoder.
  Decoded symbol beats pass straight to the dequantizer, except the tensor's last beat,
  which is held until the decoder reports done so it can carry the integrity verdict.
  Payload words the decoder does not take after finishing (a damaged tensor) are drained,
  so the next descriptor starts on its own first word.
* raw 8-bit: each 64-bit word gives 8/P beats of P bytes (C order), zero point 0; the last
  beat is held until the region's last word has been taken, so it carries the CRC verdict.

Every word taken from `words` for a descriptor (table, payload, padding) goes through a
CRC-32 (hw/fetch/crc.py, one 64-bit word per cycle, so at line rate). The tensor's last
beat leaves only after the region's final word, with `error` and `crc_error` set if the CRC
differs from the descriptor's `crc`; `done_code` is then FetchErrorCode.CRC. The next
descriptor runs as usual.

Weight stream order (what the compute array receives):

* tANS tensors: the decode-step order of docs/FORMAT.md: round t delivers symbol t of
  lanes 0, 1, ..., L-1. With lane_axis = the input-channel axis and one lane per input
  channel (how the pipeline codes conv/linear weights), a conv weight w[O, C, KH, KW] is
  coded as (C, O, KH, KW), lane c holds input channel c, and round t = (o, ky, kx) in
  C order delivers w[o, 0..C-1, ky, kx]: output channel major, kernel position next,
  input channel fastest -- one C-wide dot-product operand per round, what an
  input-channel-parallel (or weight-stationary systolic) array consumes. When a layer has
  more input channels than `compress --max-lanes` (64 by default), each of its L lanes holds
  C/L whole consecutive channels and round t delivers element t of every lane's channel run.
  `hw.fetch.image.expected_stream` computes this order from a container.
* raw 8-bit tensors: C order of the tensor as stored.

Codebook / tuple-coded tensors (a build with DequantParams not plain): after the table, the
codebook section's entries are written to the dequantizer's codebook memory (state CODEBOOK,
one entry per cycle), then the command and payload as above. Each symbol beat carries `nw`, the
weights each symbol gives: the tuple size, or in a lane's last tuple its tail (descriptor fields
long_lanes / last_round_* / tail_*; the round count advances on the beat holding lane L-1).

Beats carry P consecutive weights; a beat ends short (`count` < P) at the end of a round
when L is not a multiple of P, and at the end of a tensor.
"""
from __future__ import annotations

import enum

from amaranth import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sw.tans import format as fmt

from hw.fetch.crc import Crc32
from hw.fetch.descriptor import DESCRIPTOR
from hw.fetch.dequant import PLAIN, DequantParams, symbol_beat
from hw.fetch.image import NARROW, WIDE
from hw.core.layouts import (ErrorCode, command_layout, output_layout, status_layout,
                      table_load_layout, word_layout)
from hw.core.params import DecoderParams

#: Why a tensor failed, as the fetch path reports it: the decoder core's codes, and CRC when the
#: bytes read differ from the descriptor's CRC-32 (reported in preference to a decoder code,
#: which damaged bytes usually also cause).
FetchErrorCode = enum.IntEnum("FetchErrorCode", {**{e.name: int(e) for e in ErrorCode}, "CRC": 7})


class FetchDatapath(wiring.Component):
    """Splits the fetched word stream of each descriptor between decoder and raw bypass."""

    def __init__(self, params: DecoderParams, word_bits: int = 64, dq: DequantParams = PLAIN) -> None:
        if word_bits != 64 or params.word_bits != 64:
            raise ValueError("the fetch datapath is built for a 64-bit bus word and decoder word")
        if 8 % params.units:
            raise ValueError("P (decoder units) must divide 8 for the raw 8-bit bypass")
        self.params, self.word_bits, self.p, self.dq = params, word_bits, params.units, dq
        extra = {} if dq.plain else {
            "use_cb": Out(1), "cb_we": Out(1),
            "cb_waddr": Out(max(1, (max(dq.codebook_depth, 2) - 1).bit_length())),
            "cb_wdata": Out(dq.max_tuple * dq.level_bits),
        }
        super().__init__({
            **extra,
            "work": In(stream.Signature(DESCRIPTOR)),
            "words": In(stream.Signature(word_bits)),
            # to / from the decoder core
            "dec_table": Out(stream.Signature(table_load_layout(params))),
            "dec_cmd": Out(stream.Signature(command_layout(params))),
            "dec_words": Out(stream.Signature(word_layout(params))),
            "dec_out": In(stream.Signature(output_layout(params))),
            "dec_status": In(status_layout(params)),
            # to the dequantizer
            "sym": Out(stream.Signature(symbol_beat(self.p, 8, dq))),
            "zero_point": Out(8),
            "step": Out(32),
            "layer": Out(8),
            "first": Out(1),
            "last": Out(1),
            "error": Out(1),
            "crc_error": Out(1),       # with `last`: the tensor's bytes failed their CRC
            # per-tensor completion report (one pulse per descriptor)
            "done": Out(1),
            "done_error": Out(1),
            "done_code": Out(3),       # a FetchErrorCode
            "done_crc": Out(1),
            "done_layer": Out(8),
            "busy": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        p, P, W = self.params, self.p, self.word_bits
        desc = Signal(DESCRIPTOR)
        words_left = Signal(30)        # words of the current section still to take from `words`
        entry = Signal(fmt.MAX_LOG2_STATES + 1)
        sub = Signal(3)                # entry (or raw beat) index inside the current word
        remaining = Signal(32)         # raw weights still to emit
        first = Signal()
        held = Signal(output_layout(p))
        held_valid = Signal()
        saw_done = Signal()            # decoder status.done seen for this command
        last_word = Signal()
        held_raw = Signal(symbol_beat(P, 8, self.dq))   # a raw tensor's last beat, held for the CRC verdict
        dq = self.dq
        rnd = Signal(32)               # tuple round of the beat being presented (tuple tails)
        cb_entry = Signal(17)          # codebook entry being written
        pres_lanes = Signal(data.ArrayLayout(p.lane_bits, P))   # lanes of the presented tANS beat
        # CRC-32 of every word taken from `words` for this descriptor (table, payload, padding)
        m.submodules.crc = crc = Crc32(W)
        crc_bad = Signal()
        m.d.comb += [crc.data.eq(self.words.payload), crc.en.eq(self.words.valid & self.words.ready),
                     crc_bad.eq(crc.crc != desc.crc)]
        m.d.comb += [self.zero_point.eq(desc.zero_point), self.step.eq(desc.step_bits),
                     self.layer.eq(desc.layer), self.first.eq(first)]
        m.d.comb += last_word.eq(words_left == 1)

        def pulse_done(error, code) -> None:
            m.d.comb += [self.done.eq(1), self.done_error.eq(error | crc_bad),
                         self.done_code.eq(Mux(crc_bad, FetchErrorCode.CRC, code)),
                         self.done_crc.eq(crc_bad), self.done_layer.eq(desc.layer)]

        # table word -> entry
        narrow = [(NARROW[f][0], NARROW[f][1]) for f in ("symbol", "nb_bits", "base")]
        wide = [(WIDE[f][0], WIDE[f][1]) for f in ("symbol", "nb_bits", "base")]
        word = self.words.payload
        for eb, fields, guard in ((16, narrow, ~desc.wide_entries), (32, wide, desc.wide_entries)):
            with m.If(guard):
                for k in range(W // eb):
                    with m.If(sub == k):
                        e = word[k * eb:(k + 1) * eb]
                        for name, (off, width) in zip(("symbol", "nb_bits", "base"), fields):
                            tgt = getattr(self.dec_table.payload.entry, name)
                            m.d.comb += tgt.eq(e[off:off + min(width, len(tgt))])
        per_word_m1 = Mux(desc.wide_entries, W // 32 - 1, W // 16 - 1)
        table_last = Signal()
        m.d.comb += table_last.eq(entry == (Const(1, fmt.MAX_LOG2_STATES + 1) << desc.log2_states) - 1)

        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.comb += [self.work.ready.eq(1), crc.clear.eq(1)]
                with m.If(self.work.valid):
                    m.d.sync += [desc.eq(self.work.payload), first.eq(1), sub.eq(0), entry.eq(0),
                                 saw_done.eq(0), held_valid.eq(0), held_raw.count.eq(0), rnd.eq(0),
                                 cb_entry.eq(0)]
                    with m.If(self.work.payload.kind == fmt.KIND_TANS):
                        m.d.sync += words_left.eq(self.work.payload.table_bytes >> 3)
                        m.next = "TABLE"
                    with m.Else():
                        m.d.sync += [words_left.eq(self.work.payload.payload_bytes >> 3),
                                     remaining.eq(self.work.payload.n_symbols)]
                        m.next = "RAW"

            with m.State("TABLE"):
                m.d.comb += [self.dec_table.valid.eq(self.words.valid),
                             self.dec_table.payload.last.eq(table_last)]
                with m.If(self.dec_table.valid & self.dec_table.ready):
                    m.d.sync += [entry.eq(entry + 1), sub.eq(sub + 1)]
                    with m.If((sub == per_word_m1) | table_last):
                        m.d.comb += self.words.ready.eq(1)
                        m.d.sync += [sub.eq(0), words_left.eq(words_left - 1)]
                    with m.If(table_last):
                        if dq.codebook_depth:
                            with m.If(desc.cb_entries != 0):
                                m.next = "CODEBOOK"
                            with m.Else():
                                m.next = "CMD"
                        else:
                            m.next = "CMD"

            if dq.codebook_depth:
                with m.State("CODEBOOK"):
                    # one entry of 2**cb_entry_log2 bytes per cycle into the codebook memory
                    N, lb = dq.max_tuple, dq.level_bits
                    wdata = Signal(N * lb)
                    for e in range(4):
                        eb = 8 << e                          # entry bits
                        with m.If(desc.cb_entry_log2 == e):
                            for k in range(W // eb):
                                with m.If(sub == k):
                                    ent = word[k * eb:(k + 1) * eb]
                                    for wide, w in ((0, 8), (1, 16)):
                                        with m.If(desc.cb_wide == wide):
                                            for t in range(N):
                                                if (t + 1) * w <= eb:
                                                    m.d.comb += wdata[t * lb:(t + 1) * lb].eq(
                                                        ent[t * w:(t + 1) * w].as_signed())
                    cb_last = cb_entry == desc.cb_entries - 1
                    m.d.comb += [self.cb_we.eq(self.words.valid), self.cb_waddr.eq(cb_entry),
                                 self.cb_wdata.eq(wdata)]
                    with m.If(self.words.valid):
                        m.d.sync += [cb_entry.eq(cb_entry + 1), sub.eq(sub + 1)]
                        with m.If((sub == (7 >> desc.cb_entry_log2)) | cb_last):
                            m.d.comb += self.words.ready.eq(1)
                            m.d.sync += sub.eq(0)
                        with m.If(cb_last):
                            m.next = "CMD"

            with m.State("CMD"):
                m.d.comb += [self.dec_cmd.valid.eq(1),
                             self.dec_cmd.payload.n_symbols.eq(desc.n_symbols),
                             self.dec_cmd.payload.lanes.eq(Mux(desc.lanes > p.lanes, 0, desc.lanes)),
                             self.dec_cmd.payload.payload_bits.eq(desc.payload_bits)]
                with m.If(self.dec_cmd.ready):
                    m.d.sync += words_left.eq(desc.payload_bytes >> 3)
                    m.next = "PAYLOAD"

            with m.State("PAYLOAD"):
                # words to the decoder until its last one, or drained once it has finished
                with m.If(words_left != 0):
                    with m.If(saw_done):
                        m.d.comb += self.words.ready.eq(1)
                    with m.Else():
                        m.d.comb += [self.dec_words.valid.eq(self.words.valid),
                                     self.dec_words.payload.data.eq(word),
                                     self.dec_words.payload.last.eq(last_word),
                                     self.words.ready.eq(self.dec_words.ready)]
                    with m.If(self.words.valid & self.words.ready):
                        m.d.sync += words_left.eq(words_left - 1)
                # symbols: pass through, hold the last beat for the verdict
                o = self.dec_out.payload
                with m.If(~held_valid):
                    for k in range(P):
                        m.d.comb += self.sym.payload.data[k].eq(o.symbols[k])
                    m.d.comb += pres_lanes.eq(o.lanes)
                    if not dq.plain:          # a beat holding lane L-1 ends its round
                        ends = Signal()
                        m.d.comb += ends.eq(0)
                        for k in range(P):
                            with m.If((o.count == k + 1) & (o.lanes[k] == desc.lanes - 1)):
                                m.d.comb += ends.eq(1)
                        with m.If(self.sym.valid & self.sym.ready & ends):
                            m.d.sync += rnd.eq(rnd + 1)
                    m.d.comb += [self.sym.payload.count.eq(o.count),
                                 self.sym.valid.eq(self.dec_out.valid & ~o.last),
                                 self.dec_out.ready.eq(Mux(o.last, 1, self.sym.ready))]
                    with m.If(self.dec_out.valid & o.last):
                        m.d.sync += [held.eq(o), held_valid.eq(1)]
                    with m.If(self.sym.valid & self.sym.ready):
                        m.d.sync += first.eq(0)
                st = self.dec_status
                with m.If(st.done & ~st.busy):
                    m.d.sync += saw_done.eq(1)
                # done comes only after the decoder's output has drained, so every beat,
                # the last one included (if the decode got that far), has been taken
                with m.If(saw_done & (words_left == 0)):
                    m.next = "VERDICT"

            with m.State("VERDICT"):
                st = self.dec_status
                for k in range(P):
                    m.d.comb += self.sym.payload.data[k].eq(held.symbols[k])
                m.d.comb += pres_lanes.eq(held.lanes)
                # every word of the region has been taken (words_left = 0) and the CRC register
                # holds them all: the verdict leaves with the last weight
                m.d.comb += [self.sym.payload.count.eq(Mux(held_valid, held.count, 0)),
                             self.sym.valid.eq(1), self.last.eq(1),
                             self.error.eq(st.error | ~held_valid | crc_bad), self.crc_error.eq(crc_bad)]
                with m.If(self.sym.ready):
                    pulse_done(st.error | ~held_valid,
                               Mux(st.error, st.error_code, Mux(held_valid, 0, ErrorCode.TRUNCATED)))
                    m.next = "IDLE"

            with m.State("RAW"):
                beat = Signal(symbol_beat(P))
                for k in range(P):
                    byte_sel = [word[8 * (P * s + k):8 * (P * s + k) + 8] for s in range(8 // P)]
                    for s, b in enumerate(byte_sel):
                        with m.If(sub == s):
                            m.d.comb += beat.data[k].eq(b)
                last_beat = remaining <= P
                take = self.words.valid & (remaining != 0)
                # every beat but the last passes; the last one is held until the region's final
                # word is in the CRC, then leaves with the verdict
                m.d.comb += [beat.count.eq(Mux(last_beat, remaining, P)),
                             self.sym.payload.eq(beat), self.sym.valid.eq(take & ~last_beat)]
                with m.If(take & (last_beat | self.sym.ready)):
                    m.d.sync += [sub.eq(sub + 1), remaining.eq(Mux(last_beat, 0, remaining - P))]
                    with m.If((sub == 8 // P - 1) | last_beat):
                        m.d.comb += self.words.ready.eq(1)
                        m.d.sync += [sub.eq(0), words_left.eq(words_left - 1)]
                    with m.If(last_beat):
                        m.d.sync += held_raw.eq(beat)
                with m.If(self.sym.valid & self.sym.ready):
                    m.d.sync += first.eq(0)
                with m.If(remaining == 0):
                    with m.If(words_left != 0):       # pad words after the last weight
                        m.d.comb += self.words.ready.eq(1)
                        with m.If(self.words.valid):
                            m.d.sync += words_left.eq(words_left - 1)
                    with m.Else():
                        m.d.comb += [self.sym.payload.eq(held_raw), self.sym.valid.eq(1),
                                     self.last.eq(1), self.error.eq(crc_bad),
                                     self.crc_error.eq(crc_bad)]
                        with m.If(self.sym.ready):
                            pulse_done(0, 0)
                            m.next = "IDLE"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        if not dq.plain:
            # weights per symbol: the tuple size, or a lane's tail in its last tuple; raw bytes 1
            cnt = self.sym.payload.count
            tans = desc.kind == fmt.KIND_TANS
            for k in range(P):
                long = pres_lanes[k] < desc.long_lanes
                last_round = Mux(long, desc.last_round_long, desc.last_round_short)
                tail = Mux(long, desc.tail_long, desc.tail_short)
                m.d.comb += self.sym.payload.nw[k].eq(
                    Mux(k < cnt, Mux(tans, Mux(rnd == last_round, tail, desc.tuple_size), 1), 0))
            m.d.comb += self.use_cb.eq(tans & (desc.cb_entries != 0))
        return m
