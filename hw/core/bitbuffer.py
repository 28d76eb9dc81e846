"""The FIFO of compressed bits: a few input words and a bit pointer, read P fields at a time."""
from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.core.layouts import COUNT_BITS, word_layout
from hw.core.params import DecoderParams


FINE_BITS = 3   #: low bits of a read's bit offset applied in the second cycle of a read


def shift_levels(m: Module, src: Value, amount: Value, width: int, low: int, name: str) -> Value:
    """`src` shifted right by `amount`'s bits `low` and up, kept `width + 2**low - 1` bits wide.

    A pruned barrel shifter, most significant amount bit first: each level is only
    `width + 2**b - 1` bits wide, so a k-bit field from a 2W-bit window costs about
    k*log2(W) + W two-input muxes instead of k full W:1 multiplexers.
    """
    n_amt = len(amount)
    need = width + (1 << n_amt) - 1
    cur = Cat(src, Const(0, max(0, need - len(src))))[:need]
    for b in reversed(range(low, n_amt)):
        s = 1 << b
        keep = width + s - 1
        level = Signal(keep, name=f"{name}_shift{b}")     # a signal per level: no re-expansion
        m.d.comb += level.eq(Mux(amount[b], cur[s:s + keep], cur[:keep]))
        cur = level
    return cur[:width + (1 << low) - 1]


class BitBuffer(wiring.Component):
    """Serves LSB-first reads of up to P fields per cycle from a stream of W-bit words.

    `start` (with `payload_bits`, held for the three cycles before) arms it for one packet: it
    loads the payload's words (only payload bits count as available), then, while `drain` is
    high, discards words up to the one with `last`. `can_read` (a register) means the reads of
    the next `ahead` cycles, each of up to P*k bits, are all covered by buffered bits, or every
    payload bit is already buffered; the decoder checks it when it issues a group, several
    cycles before that group reads. `read` consumes fields of `widths[0..P-1]` bits, returned on
    `fields` in the next cycle, laid end to end in stream order; `ends[i]` must be
    widths[0] + ... + widths[i] (the caller registers these sums with the widths, so no adder
    chain sits in front of the read's shifters); `short`, also in the next cycle, flags a read
    of more bits than were buffered (past the payload's end).
    `idle_widths_zero` promises that `widths` are all 0 whenever `read` is low (saves logic).
    Words enter the first free slot of the window; only the read side has a bit multiplexer.
    """

    def __init__(self, p: DecoderParams, ahead: int = 6, idle_widths_zero: bool = False) -> None:
        self.p = p
        self.ahead = ahead
        self.idle_widths_zero = idle_widths_zero
        super().__init__({
            "words": In(stream.Signature(word_layout(p))),
            "start": In(1),
            "payload_bits": In(COUNT_BITS),
            "drain": In(1),
            "widths": In(range(p.log2_states + 1)).array(p.units),
            "ends": In(range(p.max_take + 1)).array(p.units),
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
        W, K = p.word_bits, p.log2_states
        M = p.window_words_for(self.ahead)
        log2w = W.bit_length() - 1
        T = p.max_take
        tb = T.bit_length()
        # The bit pointer runs past the first word, and whole words leave the window the cycle
        # after the pointer passed them: the pop is then decided by a register, not by this
        # cycle's read, which keeps the read's adder off the window's enables.
        max_pop = (W - 1 + T) // W              # words passed at once (pos < W + T)
        span = -(-(W + 2 * T - 1) // W)         # words a read can touch

        window = [Signal(W, name=f"w{j}") for j in range(M)]
        pos = Signal(range(W + T))
        avail = Signal(range(M * W + 1))       # bits buffered and not read (loads count a cycle late)
        loaded_bits = Signal(range(W + 1))      # bits of the word loaded last cycle
        arrived = Signal()                      # a word was loaded last cycle
        # payload words still to load: `full` whole words, then a partial one if `part` is nonzero.
        # Its low byte counts the words; the high part takes the borrow a cycle later (two short
        # carry chains instead of one long one; `full == 2` is never asked while a borrow is due).
        full = Signal(COUNT_BITS - log2w)
        LOB = min(8, len(full) - 1)
        full_lo, full_hi = full[:LOB], full[LOB:]
        borrow = Signal()
        m.d.sync += borrow.eq(0)
        with m.If(borrow):
            m.d.sync += full_hi.eq(full_hi - 1)
        full_zero = Signal(init=1)              # registered full == 0
        full_one = Signal()                     # registered full == 1
        part = Signal(range(W))                 # bits of the final partial word (0: none)
        part_due = Signal()                     # the partial word is still to come
        all_loaded = Signal(init=1)             # every payload word is in the window

        # --- read side: P fields laid end to end from the bit pointer ------------------------
        # A read takes two cycles: the cycle of `read` shifts by the offset's high bits into a
        # register, the next shifts by its low FINE_BITS bits and masks to the width (`fields`).
        front = Cat(*window[:span])
        low = min(FINE_BITS, len(front).bit_length())
        for i in range(p.units):
            w_i = self.widths[i]
            at = Signal(range(len(front) + 1), name=f"at{i}")
            m.d.comb += at.eq(pos if i == 0 else pos + self.ends[i - 1])
            coarse = Signal(K + (1 << low) - 1, name=f"coarse{i}")
            fine = Signal(low, name=f"fine{i}")
            width_r = Signal.like(w_i, name=f"width{i}")
            m.d.sync += [coarse.eq(shift_levels(m, front, at, K, low, f"field{i}")),
                         fine.eq(at[:low]), width_r.eq(w_i)]
            raw = shift_levels(m, coarse, fine, K, 0, f"fine{i}")
            m.d.comb += self.fields[i].eq(Cat(*(raw[b] & (width_r > b) for b in range(K))))
        take = Signal(range(p.max_take + 1))
        m.d.comb += [
            take.eq(self.ends[-1]), self.take.eq(take),
            self.empty.eq(all_loaded & ~arrived & (avail == 0)),
        ]
        npop = Signal(range(max_pop + 1))
        m.d.comb += npop.eq(pos >> log2w)
        pos_sum = Signal(range(W + T))
        # with idle_widths_zero the user keeps `widths` at 0 when not reading: no gate on the adders
        used = take if self.idle_widths_zero else Mux(self.read, take, 0)
        m.d.comb += pos_sum.eq(Cat(pos[:log2w], Const(0, len(pos) - log2w)) + used)

        # --- write side: whole words into the first free slot --------------------------------
        # `words.ready` is a register: it is computed from next-cycle values and off in the cycle
        # of `start` (the window is empty until the packet is armed, see the decoder's FSM)
        ready = Signal()
        drain = Signal()                        # `drain`, registered (a cycle late is harmless)
        m.d.sync += drain.eq(self.drain)
        loading = Signal()
        accept = Signal()
        load_ok = Signal()                      # ready and not draining (a register)
        m.d.comb += [
            self.words.ready.eq(ready),
            accept.eq(self.words.valid & ready),
            loading.eq(self.words.valid & load_ok),
        ]
        final_word = Signal()                   # the word being loaded is the payload's last
        m.d.comb += final_word.eq(Mux(full_zero, 1, full_one & ~part_due))
        word_bits = Signal(range(W + 1))
        m.d.comb += word_bits.eq(Mux(full_zero, part, W))
        # one-hot count of filled slots: the slot a word goes to is found without an adder. The
        # input word is written to the first free slot every cycle, loaded or not (a free slot's
        # bits are never read), so the window's enables come from registers only, not from the
        # load handshake; `filled` alone says whether it counts.
        filled = Signal(M + 1, init=1)
        for j in range(M):
            targets = [filled[j + c] if j + c <= M else Const(0) for c in range(max_pop + 1)]
            target = Signal(name=f"target{j}")
            m.d.comb += target.eq(Array(targets)[npop])
            with m.If(target):
                m.d.sync += window[j].eq(self.words.payload.data)
            with m.Else():
                with m.Switch(npop):
                    for c in range(1, max_pop + 1):
                        with m.Case(c):
                            if j + c < M:
                                m.d.sync += window[j].eq(window[j + c])
        shifted = Signal(M + 1)
        m.d.comb += shifted.eq(filled >> npop)
        filled_next = Signal(M + 1)
        m.d.comb += filled_next.eq(Mux(loading, shifted << 1, shifted))
        seen_last_next = Signal()
        all_loaded_next = Signal()
        m.d.comb += [
            seen_last_next.eq(self.seen_last | (accept & self.words.payload.last)),
            all_loaded_next.eq(all_loaded | (loading & final_word)),
        ]
        # a loaded word's bits count a cycle later (one adder less behind the load handshake);
        # `arrived` covers them where that matters
        m.d.sync += [loaded_bits.eq(Mux(loading, word_bits, 0)), arrived.eq(loading)]
        m.d.sync += [
            # registered: for the read of last cycle. take <= P*k, so only avail's low bits need
            # a compare (the rest must be zero for the read to be short)
            self.short.eq(self.read & (avail[tb:] == 0) & (take > avail[:tb])),
            filled.eq(filled_next),
            avail.eq(avail - used + loaded_bits),
            # reads take at most P*k bits a cycle: avail now covers the reads of this cycle and
            # the next ahead - 1 (a registered compare of a register, seen one cycle later)
            self.can_read.eq((avail >= self.ahead * p.max_take) | all_loaded),
            ready.eq(~self.start & ~seen_last_next &
                     (drain | (~all_loaded_next & ~filled_next[M]))),
            load_ok.eq(~self.start & ~seen_last_next & ~self.drain &
                       ~all_loaded_next & ~filled_next[M]),
        ]
        m.d.sync += pos.eq(pos_sum)
        with m.If(loading):
            with m.If(~full_zero):
                m.d.sync += [full_zero.eq(full_one), full_one.eq(full == 2),
                             full_lo.eq(full_lo - 1), borrow.eq(full_lo == 0)]
            with m.Else():
                m.d.sync += part_due.eq(0)
            with m.If(final_word):
                m.d.sync += all_loaded.eq(1)
            with m.If(self.words.payload.last & ~final_word):
                m.d.sync += self.truncated.eq(1)
        with m.If(accept & self.words.payload.last):
            m.d.sync += self.seen_last.eq(1)

        # flags of `payload_bits`, registered ahead of `start` (the value is held for three cycles)
        pb = self.payload_bits
        # (two register stages: nibble-wide zero tests, then their AND)
        hi = pb[log2w + 1:]
        nibbles = Signal(-(-len(hi) // 4))
        m.d.sync += nibbles.eq(Cat((hi[j:j + 4] == 0) for j in range(0, len(hi), 4)))
        low_word, low_part = Signal(), Signal()
        m.d.sync += [low_word.eq(pb[log2w]), low_part.eq(pb[:log2w] != 0)]
        pre_full_zero, pre_full_one, pre_part, pre_empty = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [pre_full_zero.eq(nibbles.all() & ~low_word),
                     pre_full_one.eq(nibbles.all() & low_word),
                     pre_part.eq(low_part), pre_empty.eq(nibbles.all() & ~low_word & ~low_part)]
        with m.If(self.start):
            m.d.sync += [
                full.eq(pb[log2w:]), borrow.eq(0),
                full_zero.eq(pre_full_zero), full_one.eq(pre_full_one),
                part.eq(pb[:log2w]), part_due.eq(pre_part), all_loaded.eq(pre_empty),
                filled.eq(1), pos.eq(0), avail.eq(0), loaded_bits.eq(0), arrived.eq(0),
                self.can_read.eq(pre_empty),
                self.seen_last.eq(0), self.truncated.eq(0),
            ]
        return m
