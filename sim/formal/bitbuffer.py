"""Formal properties of the bit buffer (`hw.core.bitbuffer.BitBuffer`) for any input and any reads.

The solver drives every input freely within the protocol the decoder follows (a `start` only
while the buffer is not taking words, `payload_bits` held for the three cycles before it, reads
only after it, widths of at most k bits that are 0 when not reading, `ends` their running sums;
`payload_bits` below 2**SPOS_BITS, as no longer packet can end within the bounded depth).
A shadow model tracks, since the last `start`, the payload bits read (`spos`) and the words
taken, and captures one arbitrary stream bit `n` (a solver constant) when its word arrives.
Checked, in the cycle after each read up to the first `short` one (the decoder drops the rest):
  * data: every returned bit is the stream's bit at its position, and bits above a field's
    width are 0, unless `short` flags the read;
  * end: a read that runs past `payload_bits` is flagged `short` (the decoder's TRUNCATED);
  * lookahead: a read covered by `can_read` (high at some cycle c with c <= read cycle
    <= c + ahead - 2; the decoder reads c + READ_STAGE + 1 = c + ahead - 2 at the latest, see
    `open_`) and inside the payload is never `short`.
"""
from __future__ import annotations

from amaranth import Cat, Elaboratable, Module, Mux, Signal
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover

from hw.core.bitbuffer import BitBuffer
from hw.core.layouts import COUNT_BITS
from hw.core.params import DecoderParams

SPOS_BITS = 9       #: shadow bit counters: enough for the bounded depths used
WATCH_BITS = 7      #: the watched bit lies in the first 128 bits of a packet


class BitBufferSpec(Elaboratable):
    """The bit buffer under a free environment, with the properties above as assertions."""

    def __init__(self, p: DecoderParams, ahead: int, promise: int | None = None) -> None:
        self.p = p
        self.ahead = ahead
        #: the lookahead checked (default `ahead`; a larger one must fail: the check can fail)
        self.promise = ahead if promise is None else promise

    def elaborate(self, platform) -> Module:
        m = Module()
        p, K, W, P = self.p, self.p.log2_states, self.p.word_bits, self.p.units
        log2w = W.bit_length() - 1
        m.submodules.dut = dut = BitBuffer(p, ahead=self.ahead, idle_widths_zero=True)

        # --- free inputs --------------------------------------------------------------------
        pb = AnySeq(COUNT_BITS)
        start, read, drain = AnySeq(1), AnySeq(1), AnySeq(1)
        widths = [AnySeq(len(dut.widths[i])) for i in range(P)]
        m.d.comb += [
            dut.payload_bits.eq(pb), dut.start.eq(start), dut.read.eq(read), dut.drain.eq(drain),
            dut.words.valid.eq(AnySeq(1)), dut.words.payload.data.eq(AnySeq(W)),
            dut.words.payload.last.eq(AnySeq(1)),
        ]
        total = 0
        for i in range(P):
            total = total + widths[i]
            m.d.comb += [dut.widths[i].eq(widths[i]), dut.ends[i].eq(total)]
            m.d.comb += Assume(widths[i] <= K)
            m.d.comb += Assume(read | (widths[i] == 0))

        # --- the decoder's side of the protocol ----------------------------------------------
        warm = Signal(2)                        # three cycles before the first possible start
        m.d.sync += warm.eq(Mux(warm == 3, 3, warm + 1))
        pb1, pb2, pb3 = Signal(COUNT_BITS), Signal(COUNT_BITS), Signal(COUNT_BITS)
        m.d.sync += [pb1.eq(pb), pb2.eq(pb1), pb3.eq(pb2)]
        armed = Signal()                        # a start happened (reads may follow)
        drained = Signal()                      # drain was raised since the last start
        m.d.comb += Assume(pb < (1 << SPOS_BITS))       # packets the bounded run can reach
        with m.If(start):
            m.d.comb += [Assume(warm == 3), Assume(~dut.words.ready),
                         Assume((pb == pb1) & (pb1 == pb2) & (pb2 == pb3))]
            m.d.sync += [armed.eq(1), drained.eq(0)]
        with m.Elif(drain):
            m.d.sync += drained.eq(1)
        m.d.comb += Assume(~read | (armed & ~start & ~drain & ~drained))

        # --- shadow model: bits read, words taken, one watched stream bit ----------------------
        n = AnyConst(WATCH_BITS)
        spos = Signal(SPOS_BITS)
        words_in = Signal(SPOS_BITS - log2w)
        payload = Signal(COUNT_BITS)
        seen, value = Signal(), Signal()
        accept = Signal()
        m.d.comb += accept.eq(dut.words.valid & dut.words.ready)
        with m.If(start):
            m.d.sync += [spos.eq(0), words_in.eq(0), seen.eq(0), payload.eq(pb)]
        with m.Else():
            with m.If(read):
                m.d.sync += spos.eq(spos + total)
            with m.If(accept):
                m.d.sync += words_in.eq(words_in + 1)
                with m.If(words_in == (n >> log2w)):
                    m.d.sync += [seen.eq(1), value.eq(dut.words.payload.data.bit_select(n[:log2w], 1))]

        # can_read over the last cycles since the start (bit j: j + 1 cycles ago)
        hist = Signal(self.promise)
        now_cr = Signal()
        m.d.comb += now_cr.eq(dut.can_read & armed)
        m.d.sync += hist.eq(Mux(start, 0, Cat(now_cr, hist[:-1])))

        # --- the read of last cycle, checked now (its fields and `short` arrive now) -----------
        r_read = Signal()
        r_total = Signal(range(p.max_take + 1))
        r_widths = [Signal(len(dut.widths[i]), name=f"r_width{i}") for i in range(P)]
        r_lo = [Signal(SPOS_BITS + 1, name=f"r_lo{i}") for i in range(P)]
        m.d.sync += [r_read.eq(read), r_total.eq(total)]
        lo = spos
        for i in range(P):
            m.d.sync += [r_widths[i].eq(widths[i]), r_lo[i].eq(lo)]
            lo = lo + widths[i]
        end = Signal(SPOS_BITS + 1)
        m.d.comb += end.eq(r_lo[0] + r_total)
        # after a short read the decoder discards every later read of the packet: not checked
        shorted = Signal()
        with m.If(start):
            m.d.sync += shorted.eq(0)
        with m.Elif(dut.short):
            m.d.sync += shorted.eq(1)
        with m.If(r_read & ~shorted):
            # end: past the payload is always short
            m.d.comb += Assert(~(end > payload) | dut.short)
            # lookahead: covered by can_read (in the read's cycle or up to ahead - 2 before it)
            # and inside the payload is never short
            covered = Signal()
            m.d.comb += covered.eq(hist[:self.promise - 1].any())
            m.d.comb += Assert(~(covered & (end <= payload)) | ~dut.short)
            # reachability (sby cover mode): a covered full-width read well inside a long payload
            m.d.comb += Cover(covered & (r_total == p.max_take) & ~dut.short &
                              (end + self.ahead * p.max_take < payload))
            # data: bits above the width are 0; the watched bit, if read, is the stream's
            with m.If(~dut.short):
                for i in range(P):
                    f, w, base = dut.fields[i], r_widths[i], r_lo[i]
                    m.d.comb += Assert((f >> w) == 0)
                    with m.If((n >= base) & (n < base + w)):
                        m.d.comb += Assert(seen & (f.bit_select((n - base)[:len(w)], 1) == value))
                        # reachability: the watched bit read at the far end of a field
                        m.d.comb += Cover((n == base + w - 1) & (w == K) & (n >= 2 * W))
        return m


def spec_params(units: int = 1, word_bits: int = 8, log2_states: int = 5) -> DecoderParams:
    """A small decoder shape for the checks (the buffer's logic is the same for every size)."""
    return DecoderParams(log2_states=log2_states, symbol_bits=3, lanes=4, units=units,
                         word_bits=word_bits)
