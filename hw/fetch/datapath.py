"""Fetch datapath: routes each descriptor's words to the decoder (tANS) or the raw unpacker.

It has two sides, so the next tensor's table loads while the current one decodes:

* the input side takes descriptors and words: a tANS tensor's table words become decode-table
  entries (one per cycle, `last` on entry 2**k - 1) in table bank `bank` of the core, which
  alternates from tensor to tensor; then, once the output side is free, it hands the tensor
  over and pushes its payload words (`last` on the final one) into the payload FIFO
  (`payload_depth` words) in front of the decoder's word input. After the last payload word
  (when the tensor's CRC verdict is known) it takes the next descriptor: a plain tANS
  tensor's table then loads into the other bank while the decoder still decodes, so
  back-to-back coded tensors pay no idle table cycles.
* the output side owns the tensor being decoded: it sends the decode command (with the bank),
  feeds the FIFO's words to the decoder, passes the symbol beats to the dequantizer with that
  tensor's zero point, step, layer, tails and first flag, holds the tensor's last beat until
  the decoder reports done and the CRC verdict is in, and drains any of the tensor's words
  the decoder left in the FIFO (a damaged tensor), so the next tensor starts on its own first
  word (the FIFO only ever holds the output side's tensor: the next one's payload is pushed
  after the hand-over).

The input side runs ahead only where that is safe. A raw 8-bit tensor, or a tANS tensor with a
codebook section (the dequantizer's codebook memory is single-banked), is taken only once the
output side has finished the previous tensor:

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
one entry per cycle; only once the previous tensor is out, see above), then the command and
payload as above. Each symbol beat carries `nw`, the
weights each symbol gives: the tuple size, or in a lane's last tuple its tail (descriptor fields
long_lanes / last_round_* / tail_*; the round count advances on the beat holding lane L-1).

Beats carry P consecutive weights; a beat ends short (`count` < P) at the end of a round
when L is not a multiple of P, and at the end of a tensor.
"""
from __future__ import annotations

import enum

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from sw.tans import format as fmt

from hw.fetch.crc import Crc32
from hw.fetch.descriptor import DESCRIPTOR
from hw.fetch.dequant import PLAIN, DequantParams, symbol_beat
from hw.fetch.image import NARROW, WIDE
from hw.core.layouts import (ErrorCode, command_layout, output_layout, status_layout,
                      table_load_layout, word_layout)
from hw.core.params import DecoderParams

PAYLOAD_FIFO_DEPTH = 64   #: payload words buffered in front of the decoder: a 256-entry table load at 16 coded bits a cycle

#: Why a tensor failed, as the fetch path reports it: the decoder core's codes, and CRC when the
#: bytes read differ from the descriptor's CRC-32 (reported in preference to a decoder code,
#: which damaged bytes usually also cause).

FetchErrorCode = enum.IntEnum("FetchErrorCode", {**{e.name: int(e) for e in ErrorCode}, "CRC": 7})


class FetchDatapath(wiring.Component):
    """Splits the fetched word stream of each descriptor between decoder and raw bypass; the
    input side (tables, payload into the FIFO) runs one tensor ahead of the output side."""

    def __init__(self, params: DecoderParams, word_bits: int = 64, dq: DequantParams = PLAIN,
                 payload_depth: int = PAYLOAD_FIFO_DEPTH) -> None:
        if word_bits != 64 or params.word_bits != 64:
            raise ValueError("the fetch datapath is built for a 64-bit bus word and decoder word")
        if 8 % params.units:
            raise ValueError("P (decoder units) must divide 8 for the raw 8-bit bypass")
        if payload_depth < 2:
            raise ValueError(f"the payload FIFO needs at least 2 words, not {payload_depth}")
        self.params, self.word_bits, self.p, self.dq = params, word_bits, params.units, dq
        self.payload_depth = payload_depth
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
        dq = self.dq
        # --- input side: descriptor being read, its table / codebook / payload / raw words -----
        desc = Signal(DESCRIPTOR)      # the input side's descriptor
        words_left = Signal(30)        # words of the current section still to take from `words`
        entry = Signal(fmt.MAX_LOG2_STATES + 1)
        sub = Signal(3)                # entry (or raw beat) index inside the current word
        remaining = Signal(32)         # raw weights still to emit
        bank = Signal()                # table bank of the input side's next tANS tensor
        last_word = Signal()
        held_raw = Signal(symbol_beat(P, 8, self.dq))   # a raw tensor's last beat, held for the CRC verdict
        cb_entry = Signal(17)          # codebook entry being written
        # --- output side: the tensor being decoded (or the raw tensor being unpacked) -------------
        odesc = Signal(DESCRIPTOR)     # the output side's descriptor: every per-tensor output field
        obank = Signal()
        owords = Signal(30)            # the output tensor's payload words not yet popped from the FIFO
        ocrc_bad, ocrc_known = Signal(), Signal()   # its CRC verdict, from the input side
        first = Signal()
        held = Signal(output_layout(p))
        held_valid = Signal()
        saw_done = Signal()            # decoder status.done seen for this command
        rnd = Signal(32)               # tuple round of the beat being presented (tuple tails)
        pres_lanes = Signal(data.ArrayLayout(p.lane_bits, P))   # lanes of the presented tANS beat
        out_idle = Signal()
        handoff = Signal()             # the input side hands its tANS tensor to the output side

        m.submodules.fifo = pfifo = fifo.SyncFIFOBuffered(width=word_layout(p).size, depth=self.payload_depth)
        # CRC-32 of every word taken from `words` for this descriptor (table, payload, padding)
        m.submodules.crc = crc = Crc32(W)
        crc_bad = Signal()
        m.d.comb += [crc.data.eq(self.words.payload), crc.en.eq(self.words.valid & self.words.ready),
                     crc_bad.eq(crc.crc != desc.crc)]
        m.d.comb += [self.zero_point.eq(odesc.zero_point), self.step.eq(odesc.step_bits),
                     self.layer.eq(odesc.layer), self.first.eq(first)]
        m.d.comb += last_word.eq(words_left == 1)

        def pulse_done(error, code, bad) -> None:
            m.d.comb += [self.done.eq(1), self.done_error.eq(error | bad),
                         self.done_code.eq(Mux(bad, FetchErrorCode.CRC, code)),
                         self.done_crc.eq(bad), self.done_layer.eq(odesc.layer)]

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
        m.d.comb += self.dec_table.payload.bank.eq(bank)
        per_word_m1 = Mux(desc.wide_entries, W // 32 - 1, W // 16 - 1)
        table_last = Signal()
        m.d.comb += table_last.eq(entry == (Const(1, fmt.MAX_LOG2_STATES + 1) << desc.log2_states) - 1)

        # a descriptor the input side may take while the output side still works: a tANS tensor
        # without a codebook section (its table goes to the other bank)
        nxt = self.work.payload
        ahead_ok = Signal()
        m.d.comb += ahead_ok.eq((nxt.kind == fmt.KIND_TANS) &
                                ((nxt.cb_entries == 0) if dq.codebook_depth else 1))

        with m.FSM(name="input") as ifsm:
            with m.State("IDLE"):
                m.d.comb += [self.work.ready.eq(out_idle | ahead_ok), crc.clear.eq(1)]
                with m.If(self.work.valid & self.work.ready):
                    m.d.sync += [desc.eq(nxt), sub.eq(0), entry.eq(0), held_raw.count.eq(0),
                                 cb_entry.eq(0)]
                    with m.If(nxt.kind == fmt.KIND_TANS):
                        m.d.sync += words_left.eq(nxt.table_bytes >> 3)
                        m.next = "TABLE"
                    with m.Else():            # raw: the output side is idle, this is its tensor now
                        m.d.sync += [words_left.eq(nxt.payload_bytes >> 3),
                                     remaining.eq(nxt.n_symbols), odesc.eq(nxt), first.eq(1)]
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
                                m.next = "HANDOFF"
                        else:
                            m.next = "HANDOFF"

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
                                    for wide_, w in ((0, 8), (1, 16)):
                                        with m.If(desc.cb_wide == wide_):
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
                            m.next = "HANDOFF"

            with m.State("HANDOFF"):
                # the table is in; once the output side has finished the previous tensor, this one
                # becomes the output side's and its payload follows into the FIFO
                with m.If(out_idle):
                    m.d.comb += handoff.eq(1)
                    m.d.sync += [words_left.eq(desc.payload_bytes >> 3), bank.eq(~bank)]
                    m.next = "PAYLOAD"

            with m.State("PAYLOAD"):
                with m.If(words_left != 0):
                    m.d.comb += [pfifo.w_en.eq(self.words.valid),
                                 pfifo.w_data.eq(Cat(word, last_word)),
                                 self.words.ready.eq(pfifo.w_rdy)]
                    with m.If(self.words.valid & self.words.ready):
                        m.d.sync += words_left.eq(words_left - 1)
                with m.Else():                # every word is in the CRC: its verdict goes along
                    m.d.sync += [ocrc_bad.eq(crc_bad), ocrc_known.eq(1)]
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
                            pulse_done(0, 0, crc_bad)
                            m.next = "IDLE"

        # the FIFO's words go to the decoder while the command runs; after done, what is left of
        # the tensor's words is drained
        popped = pfifo.r_rdy & pfifo.r_en
        with m.If(popped):
            m.d.sync += owords.eq(owords - 1)

        with m.FSM(name="output") as ofsm:
            with m.State("IDLE"):
                m.d.comb += out_idle.eq(~ifsm.ongoing("RAW"))
                with m.If(handoff):
                    m.d.sync += [odesc.eq(desc), obank.eq(bank), owords.eq(desc.payload_bytes >> 3),
                                 ocrc_known.eq(0), first.eq(1), saw_done.eq(0), held_valid.eq(0),
                                 rnd.eq(0)]
                    m.next = "CMD"

            with m.State("CMD"):
                m.d.comb += [self.dec_cmd.valid.eq(1),
                             self.dec_cmd.payload.n_symbols.eq(odesc.n_symbols),
                             self.dec_cmd.payload.lanes.eq(Mux(odesc.lanes > p.lanes, 0, odesc.lanes)),
                             self.dec_cmd.payload.payload_bits.eq(odesc.payload_bits),
                             self.dec_cmd.payload.bank.eq(obank)]
                with m.If(self.dec_cmd.ready):
                    m.next = "DECODE"

            with m.State("DECODE"):
                with m.If(owords != 0):
                    with m.If(saw_done):
                        m.d.comb += pfifo.r_en.eq(1)
                    with m.Else():
                        m.d.comb += [self.dec_words.valid.eq(pfifo.r_rdy),
                                     self.dec_words.payload.eq(pfifo.r_data),
                                     pfifo.r_en.eq(self.dec_words.ready)]
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
                            with m.If((o.count == k + 1) & (o.lanes[k] == odesc.lanes - 1)):
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
                with m.If(saw_done & (owords == 0) & ocrc_known):
                    m.next = "VERDICT"

            with m.State("VERDICT"):
                st = self.dec_status
                for k in range(P):
                    m.d.comb += self.sym.payload.data[k].eq(held.symbols[k])
                m.d.comb += pres_lanes.eq(held.lanes)
                # every word of the region has been through the CRC: the verdict leaves with the
                # last weight
                m.d.comb += [self.sym.payload.count.eq(Mux(held_valid, held.count, 0)),
                             self.sym.valid.eq(1), self.last.eq(1),
                             self.error.eq(st.error | ~held_valid | ocrc_bad), self.crc_error.eq(ocrc_bad)]
                with m.If(self.sym.ready):
                    pulse_done(st.error | ~held_valid,
                               Mux(st.error, st.error_code, Mux(held_valid, 0, ErrorCode.TRUNCATED)),
                               ocrc_bad)
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(~ifsm.ongoing("IDLE") | ~ofsm.ongoing("IDLE"))
        if not dq.plain:
            # weights per symbol: the tuple size, or a lane's tail in its last tuple; raw bytes 1
            cnt = self.sym.payload.count
            tans = odesc.kind == fmt.KIND_TANS
            for k in range(P):
                long = pres_lanes[k] < odesc.long_lanes
                last_round = Mux(long, odesc.last_round_long, odesc.last_round_short)
                tail = Mux(long, odesc.tail_long, odesc.tail_short)
                m.d.comb += self.sym.payload.nw[k].eq(
                    Mux(k < cnt, Mux(tans, Mux(rnd == last_round, tail, odesc.tuple_size), 1), 0))
            m.d.comb += self.use_cb.eq(tans & (odesc.cb_entries != 0))
        return m
