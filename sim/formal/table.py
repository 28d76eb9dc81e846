"""Formal properties of the decode table (`hw.core.table.DecodeTable`): its load checks and its RAM.

The solver loads any entries it likes into bank 0, with gaps; they pass the table's input
register whenever `load_enable` or `busy_bank` (both free) allow, as docs/CORE.md says.
A shadow model judges each finished load arithmetically, independently of the hardware's
bit-mask formulation: a table is good iff it has exactly 2**k entries for a k the core
supports and every entry has nb_bits <= k, base mod 2**nb_bits = 0 and base + 2**nb_bits
<= 2**k. Checked:
  * the load port's handshake is the input register's (ready while it is free or draining);
  * from three cycles after a load's last beat enters the table until the next beat, `ready`
    is the model's verdict and `bad` its negation (`ready` is registered from the bank's);
  * `ready` and `bad` are low from a load's first beat until that check, and `ready` is
    low until a good table is loaded;
  * a read of any address, two cycles later, returns the entry the finished load wrote there.
"""
from __future__ import annotations

from amaranth import Elaboratable, Module, Mux, Signal
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover

from hw.core.params import DecoderParams
from hw.core.table import DecodeTable
from sw.tans import format as fmt


class TableSpec(Elaboratable):
    """The decode table under free loads and reads, with the properties above as assertions."""

    def __init__(self, p: DecoderParams, ram: bool = True) -> None:
        self.p = p
        self.ram = ram          #: also check the RAM contents (slower: run it shallower)

    def elaborate(self, platform) -> Module:
        m = Module()
        p, K = self.p, self.p.log2_states
        m.submodules.dut = dut = DecodeTable(p)
        m.d.comb += [dut.load.valid.eq(AnySeq(1)), dut.load.payload.eq(AnySeq(dut.load.payload.shape().size)),
                     dut.load_enable.eq(AnySeq(1)), dut.busy_bank.eq(AnySeq(1))]
        m.d.comb += Assume(dut.load.payload.bank == 0)      # bank 0 loads and reads (rbank = 0)
        addr = AnySeq(K)
        m.d.comb += dut.addr[0].eq(addr)

        # --- the documented input register: a beat waits in it until load_enable or the other
        # bank lets it into the table; the port is ready while the register is free or draining
        pend = Signal()
        held = Signal.like(dut.load.payload)
        beat = Signal()                          # the held beat goes into the table
        m.d.comb += beat.eq(pend & (dut.load_enable | (held.bank != dut.busy_bank)))
        m.d.comb += Assert(dut.load.ready == (~pend | beat))
        with m.If(dut.load.valid & dut.load.ready):
            m.d.sync += [pend.eq(1), held.eq(dut.load.payload)]
        with m.Elif(beat):
            m.d.sync += pend.eq(0)
        ent, last = held.entry, held.last

        # --- shadow model of the load in progress ------------------------------------------------
        nb, base = ent.nb_bits, ent.base
        most = (1 << len(nb)) - 1                # largest nb_bits the field can carry
        count = Signal(range(p.states + 2))      # entries so far (saturates past l)
        span = Signal(range(p.states + 2))       # max of base + 2**nb_bits (saturates past l)
        misaligned = Signal()
        max_nb = Signal(len(nb))
        size = Signal(range((1 << most) + 1))
        end = Signal(range(p.states + (1 << most) + 1))
        m.d.comb += [size.eq(1 << nb), end.eq(base + size)]
        new_count, new_span = Signal.like(count), Signal.like(span)
        m.d.comb += [new_count.eq(Mux(count > p.states, count, count + 1)),
                     new_span.eq(Mux(end > span, Mux(end > p.states, p.states + 1, end), span))]
        new_mis = misaligned | ((base & (size - 1)) != 0)
        new_max = Mux(nb > max_nb, nb, max_nb)
        verdict = Signal()                       # the last finished load is a good table
        good = 0
        for k in range(fmt.MIN_LOG2_STATES, K + 1):
            good = good | ((new_count == (1 << k)) & (new_max <= k) & (new_span <= (1 << k)))
        with m.If(beat):
            with m.If(last):
                m.d.sync += [count.eq(0), span.eq(0), misaligned.eq(0), max_nb.eq(0),
                             verdict.eq(good & ~new_mis)]
            with m.Else():
                m.d.sync += [count.eq(new_count), span.eq(new_span), misaligned.eq(new_mis),
                             max_nb.eq(new_max)]

        # --- ready / bad (registered outputs: they show the state the model had a cycle ago) -----
        any_beat = Signal()
        ended = Signal()                         # the latest beat was a load's last
        quiet = Signal(range(4))                 # cycles since the latest beat (saturates at 3)
        with m.If(beat):
            m.d.sync += [any_beat.eq(1), ended.eq(last), quiet.eq(0)]
        with m.Elif(quiet != 3):
            m.d.sync += quiet.eq(quiet + 1)
        any_d, ended_d, verdict_d = Signal(), Signal(), Signal()
        quiet_d = Signal.like(quiet)
        m.d.sync += [any_d.eq(any_beat), ended_d.eq(ended), verdict_d.eq(verdict), quiet_d.eq(quiet)]
        with m.If(~any_d):
            m.d.comb += [Assert(~dut.ready), Assert(~dut.bad)]
        with m.Elif(~ended_d | (quiet_d <= 1)):  # a load in progress, or its check not yet due
            m.d.comb += [Assert(~dut.ready), Assert(~dut.bad)]
        with m.Else():                           # three cycles after a load's last beat, and on
            m.d.comb += [Assert(dut.ready == verdict_d), Assert(dut.bad == ~verdict_d)]

        settled = any_d & ended_d & (quiet_d == 3)
        m.d.comb += Cover(settled & ~verdict)
        if not self.ram:
            m.d.comb += Cover(settled & verdict)
            return m

        # --- RAM: one watched address, its entry from the last finished load ------------------
        a = AnyConst(K)
        pending = Signal(ent.shape().size)       # the entry at `a` of the load in progress
        kept = Signal(ent.shape().size)          # ... and of the last finished load
        pending_ok, kept_ok = Signal(), Signal()
        idx = Signal(range(p.states + 1))
        with m.If(beat):
            m.d.sync += idx.eq(Mux(last, 0, idx + 1))
            with m.If(idx == a):
                with m.If(last):
                    m.d.sync += [kept.eq(ent), kept_ok.eq(1), pending_ok.eq(0)]
                with m.Else():
                    m.d.sync += [pending.eq(ent), pending_ok.eq(1)]
            with m.Elif(last):
                m.d.sync += [kept.eq(pending), kept_ok.eq(pending_ok), pending_ok.eq(0)]
        r1, r2 = Signal(), Signal()
        m.d.sync += [r1.eq(addr == a), r2.eq(r1)]
        busy = Signal()                          # a beat in the last two cycles (read may overlap)
        b1, b2 = Signal(), Signal()
        m.d.sync += [b1.eq(beat), b2.eq(b1)]
        m.d.comb += busy.eq(b1 | b2)
        with m.If(r2 & ~busy & ~beat & kept_ok & (count == 0)):
            m.d.comb += Assert(dut.data[0].as_value() == kept)

        m.d.comb += Cover(settled & r2 & kept_ok & ~busy & ~beat & (dut.data[0].as_value() != 0))
        return m


def spec_params(log2_states: int = 6) -> DecoderParams:
    """A small core: l = 64 takes tables of 32 and 64 entries, so a 32-entry table (reachable
    within the bounded depth) exercises the check that entries stay inside the loaded size."""
    return DecoderParams(log2_states=log2_states, symbol_bits=2, lanes=2, units=1, word_bits=8)
