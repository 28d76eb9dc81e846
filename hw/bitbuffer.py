"""The FIFO of compressed bits: a few input words and a bit pointer, read P fields at a time."""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import COUNT_BITS, word_layout
from .params import DecoderParams


class BitBuffer(wiring.Component):
    """Serves LSB-first reads of up to P fields per cycle from a stream of W-bit words.

    `start` (with `payload_bits`) arms it for one packet: it loads ceil(payload_bits / W) words
    (only payload bits count as available), then, while `drain` is high, discards words up to the
    one with `last`. `can_read` means any read of up to P*k bits is served (or every payload bit is
    buffered); then `read` consumes fields of `widths[0..P-1]` bits, returned on `fields`, laid
    end to end in stream order. `short` flags a request for more bits than the payload has left.
    Whole words move through the window; only the read side has a bit-level multiplexer.
    """

    def __init__(self, p: DecoderParams) -> None:
        self.p = p
        super().__init__({
            "words": In(stream.Signature(word_layout(p))),
            "start": In(1),
            "payload_bits": In(COUNT_BITS),
            "drain": In(1),
            "widths": In(range(p.log2_states + 1)).array(p.units),
            "fields": Out(p.log2_states).array(p.units),
            "take": Out(range(p.max_take + 1)),
            "can_read": Out(1),
            "short": Out(1),
            "read": In(1),
            "empty": Out(1),        # every payload bit loaded and consumed
            "seen_last": Out(1),    # the packet's last word has been taken
            "truncated": Out(1),    # `last` came before the payload was complete
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.p
        W, M, K = p.word_bits, p.window_words, p.log2_states
        log2w = W.bit_length() - 1
        max_pop = (W - 1 + p.max_take) // W

        window = [Signal(W, name=f"w{j}") for j in range(M)]
        flat = Cat(*window)
        nwords = Signal(range(M + 1))
        pos = Signal(range(W))
        avail = Signal(range(M * W + 1))
        need = Signal(COUNT_BITS - log2w + 1)          # payload words not yet loaded
        need_zero = Signal(init=1)                     # registered need == 0 (nothing armed)
        need_one = Signal()                            # registered need == 1
        plenty = Signal()                              # avail >= P*k, known a cycle early
        last_bits = Signal(range(W + 1))               # payload bits in the final word

        # --- read side: P fields laid end to end from the bit pointer ------------------------
        offset = Const(0, range(p.max_take + 1))
        for i in range(p.units):
            w_i = self.widths[i]
            raw = flat.bit_select(pos + offset, K)
            m.d.comb += self.fields[i].eq(Cat(*(raw[b] & (w_i > b) for b in range(K))))
            offset = offset + w_i
        take = Signal(range(p.max_take + 1))
        m.d.comb += [
            take.eq(offset), self.take.eq(take),
            self.can_read.eq(plenty | need_zero),
            self.short.eq(take > avail),
            self.empty.eq(need_zero & (avail == 0)),
        ]
        # a short read aborts the command (and `start` re-arms everything), so it need not gate this
        consume = Signal()
        m.d.comb += consume.eq(self.read)
        pos_sum = Signal(range(W + p.max_take))
        m.d.comb += pos_sum.eq(pos + take)
        npop = Signal(range(max_pop + 1))
        m.d.comb += npop.eq(Mux(consume, pos_sum >> log2w, 0))

        # --- write side: whole words into the window ----------------------------------------
        loading = Signal()
        accept = Signal()
        m.d.comb += [
            self.words.ready.eq(~self.seen_last & ~self.start &
                                ((~need_zero & (nwords < M) & ~self.drain) | self.drain)),
            accept.eq(self.words.valid & self.words.ready),
            loading.eq(accept & ~self.drain),
        ]
        word_bits = Signal(range(W + 1))
        m.d.comb += word_bits.eq(Mux(need_one, last_bits, W))
        slot = Signal(range(M + 1))
        m.d.comb += slot.eq(nwords - npop)
        for j in range(M):
            with m.Switch(npop):
                for c in range(max_pop + 1):
                    with m.Case(c):
                        src = window[j + c] if j + c < M else Const(0, W)
                        m.d.sync += window[j].eq(src)
            with m.If(loading & (slot == j)):
                m.d.sync += window[j].eq(self.words.payload.data)

        avail_next = Signal.like(avail)
        m.d.comb += avail_next.eq(avail - Mux(consume, take, 0) + Mux(loading, word_bits, 0))
        m.d.sync += [
            nwords.eq(nwords - npop + loading),
            # avail falls by at most P*k a cycle, so last cycle's avail >= 2*P*k is enough now:
            # a registered compare of a register, off the refill/consume path
            avail.eq(avail_next), plenty.eq(avail >= 2 * p.max_take),
        ]
        with m.If(consume):
            m.d.sync += pos.eq(pos_sum[:log2w] if log2w else 0)
        with m.If(loading):
            m.d.sync += [need.eq(need - 1), need_zero.eq(need_one), need_one.eq(need == 2)]
            with m.If(self.words.payload.last & ~need_one):
                m.d.sync += self.truncated.eq(1)
        with m.If(accept & self.words.payload.last):
            m.d.sync += self.seen_last.eq(1)

        with m.If(self.start):
            pb = self.payload_bits
            words = Signal(COUNT_BITS - log2w + 1)
            m.d.comb += words.eq((pb + (W - 1)) >> log2w)
            m.d.sync += [
                need_zero.eq(words == 0), need_one.eq(words == 1),
                nwords.eq(0), pos.eq(0), avail.eq(0), plenty.eq(0), self.seen_last.eq(0),
                self.truncated.eq(0),
                need.eq(words),
                last_bits.eq(((pb - 1) & (W - 1)) + 1),
            ]
        return m
