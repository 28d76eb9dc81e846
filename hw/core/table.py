"""The decode table: two banks of l entries in block RAM, loaded by a stream, replicated once per decode unit."""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from sw.tans import format as fmt

from hw.core.ram import SimpleRam, check_ram_target
from hw.core.layouts import TABLE_BANKS, entry_layout, table_load_layout
from hw.core.params import DecoderParams


class DecodeTable(wiring.Component):
    """Holds two tables (state -> symbol, nb_bits, base); one read port per unit, latency 2.

    Two banks, so one table can load while the other decodes: each unit's RAM is 2*l deep with
    the bank as its top address bit (one DP16KD holds both at l <= 512 on ECP5). Entries arrive
    on `load` at addresses 0, 1, 2, ... of the beat's `bank`; the beat with `last` ends the table,
    whose size 2**k must be a power of two from 32 to l, and whose every entry must be one a
    tANS table of 2**k states can hold: nb_bits <= k, base a multiple of 2**nb_bits, and
    base + 2**nb_bits <= 2**k (so every next state is in range). Otherwise that bank is `bad`.
    Every beat invalidates its bank; a load whose beats name different banks is bad. A beat
    enters an input register and goes on into the table while `load_enable` is high or it names
    the bank other than `busy_bank` (the decoder holds `load_enable` high while idle, and
    `busy_bank` is the running decode's bank), so a table never changes under a decode; a beat
    for the busy bank waits in the register (`load.ready` low behind it).
    Read ports: bank `rbank`, address `addr[i]` sampled every cycle, its entry on `data[i]` two
    cycles later: block RAM then an output register. `ready`, `bad` and `log2_states` describe
    bank `rbank` (registered: valid a cycle after `rbank` changes); `ready_banks` both banks.
    `ram="ecp5"` puts the output register inside the DP16KD (REGMODE OUTREG, see `Ecp5Ram`);
    "ice40" uses SB_RAM40_4K instances and "generic" leaves the RAM to yosys, both with a fabric
    output register (see `hw.core.ram.SimpleRam`).
    """

    def __init__(self, p: DecoderParams, ram: str = "generic") -> None:
        check_ram_target(ram)
        self.p = p
        self.ram = ram
        ent = entry_layout(p)
        super().__init__({
            "load": In(stream.Signature(table_load_layout(p))),
            "load_enable": In(1),
            "busy_bank": In(1),
            "rbank": In(1),
            "ready": Out(1),                          # bank rbank holds a valid table
            "bad": Out(1),                            # bank rbank's last load: bad size or entry
            "log2_states": Out(range(p.log2_states + 1)),
            "ready_banks": Out(TABLE_BANKS),
            "addr": In(p.log2_states).array(p.units),
            "data": Out(ent).array(p.units),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.p
        ent = entry_layout(p)
        count = Signal(range(p.states + 1))           # entries written by the current load
        overflow = Signal()
        # the beats enter through a register, so whether one may go on (its bank against the
        # running decode's) is judged from registers only
        r_valid = Signal()
        r_beat = Signal(table_load_layout(p))
        beat = Signal()                               # r_beat goes into the table this cycle
        m.d.comb += [beat.eq(r_valid & (self.load_enable | (r_beat.bank != self.busy_bank))),
                     self.load.ready.eq(~r_valid | beat)]
        # (short enables: a free register takes whatever is offered, valid or not)
        m.d.sync += r_valid.eq(self.load.valid | (r_valid & ~beat))
        with m.If(self.load.ready):
            m.d.sync += r_beat.eq(self.load.payload)
        lbank = r_beat.bank
        payload = r_beat

        w_en = beat & (count < p.states)
        for i in range(p.units):
            ram = SimpleRam(ent.size, TABLE_BANKS * p.states, self.ram)
            m.submodules[f"mem{i}"] = ram
            m.d.comb += [ram.w_addr.eq(Cat(count[:p.log2_states], lbank)),
                         ram.w_data.eq(payload.entry),
                         ram.w_en.eq(w_en), ram.r_addr.eq(Cat(self.addr[i], self.rbank))]
            if ram.latency == 2:
                m.d.comb += self.data[i].eq(ram.r_data)
            else:                       # a fabric output register makes it two
                out = Signal(ent, name=f"out{i}", reset_less=True)
                m.d.sync += out.eq(ram.r_data)
                m.d.comb += self.data[i].eq(out)

        # the size check runs two cycles after the last beat, from registers (the decoder checks
        # `ready` at least eight cycles after it takes a command)
        ended = Signal()
        final_count = Signal.like(count)        # entries - 1 of the table just loaded
        final_overflow = Signal()
        fresh = Signal(init=1)                  # the latest beat was a table's last (or none yet)
        final_bank = Signal()                   # the bank the table just loaded went to
        m.d.sync += ended.eq(0)
        with m.If(beat):
            m.d.sync += fresh.eq(payload.last)
            with m.If(payload.last):
                m.d.sync += [count.eq(0), overflow.eq(0), ended.eq(1), final_count.eq(count),
                             final_overflow.eq(overflow), final_bank.eq(lbank)]
            with m.Else():
                with m.If(count == p.states):
                    m.d.sync += overflow.eq(1)
                with m.Else():
                    m.d.sync += count.eq(count + 1)
        # entry checks, a register stage behind the load: `reach` ORs base | (2**nb_bits - 1) over
        # the table (it must stay below 2**k), `misfit` flags a base that is not a multiple of
        # 2**nb_bits, an nb_bits above l's, or a beat into another bank than the load's first
        K = p.log2_states
        e_nb = Signal(range(1 << p.nb_width))
        e_base = Signal(K)
        e_on, e_first, e_bank, first_bank = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [e_on.eq(beat), e_first.eq(beat & fresh), e_bank.eq(lbank),
                     e_nb.eq(payload.entry.nb_bits), e_base.eq(payload.entry.base)]
        mask = Signal(K)
        m.d.comb += mask.eq(Cat(e_nb > b for b in range(K)))
        reach = Signal(K)
        misfit = Signal()
        entry_bad = Signal()
        m.d.comb += entry_bad.eq((e_base & mask).any() | (e_nb > K))
        with m.If(e_on):
            with m.If(e_first):
                m.d.sync += [reach.eq(e_base | mask), misfit.eq(entry_bad), first_bank.eq(e_bank)]
            with m.Else():
                m.d.sync += [reach.eq(reach | e_base | mask),
                             misfit.eq(misfit | entry_bad | (e_bank != first_bank))]

        sizes = range(fmt.MIN_LOG2_STATES, p.log2_states + 1)
        is_size = Signal(len(sizes))            # registered final_count == 2**k - 1, one bit per k
        ended2 = Signal()
        # a beat into the same bank right after a last one starts a new load there: the check of
        # the old one is dropped (so a check runs only while the latest beat into its bank is the
        # checked load's last); a beat into the other bank leaves it alone
        m.d.sync += [ended2.eq(ended & ~(beat & (lbank == final_bank))),
                     is_size.eq(Cat(final_count == (1 << k) - 1 for k in sizes))]
        ready = Signal(TABLE_BANKS)
        bad = Signal(TABLE_BANKS)
        log2 = [Signal(range(p.log2_states + 1), name=f"log2_states{b}") for b in range(TABLE_BANKS)]
        with m.If(ended2):
            ok = Signal()
            fits = Cat((reach[k:] == 0) if k < K else 1 for k in sizes)
            m.d.comb += ok.eq((is_size & fits).any() & ~final_overflow & ~misfit)
            for b in range(TABLE_BANKS):
                with m.If(final_bank == b):
                    for j, k in enumerate(sizes):
                        with m.If(is_size[j]):
                            m.d.sync += log2[b].eq(k)
                    m.d.sync += [ready[b].eq(ok), bad[b].eq(~ok)]
        with m.If(beat):                        # (after the check: a beat now wins)
            for b in range(TABLE_BANKS):
                with m.If(lbank == b):
                    m.d.sync += [ready[b].eq(0), bad[b].eq(0)]
        # the read bank's figures, registered (rbank changes only when the decoder takes a command)
        m.d.sync += [self.ready.eq(ready.bit_select(self.rbank, 1)),
                     self.bad.eq(bad.bit_select(self.rbank, 1)),
                     self.log2_states.eq(Mux(self.rbank, log2[1], log2[0]))]
        m.d.comb += self.ready_banks.eq(ready)
        return m
