"""The decode table: l entries in block RAM, loaded by a stream, replicated once per decode unit."""
from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from sw.tans import format as fmt

from hw.core.ram import SimpleRam, check_ram_target
from hw.core.layouts import entry_layout, table_load_layout
from hw.core.params import DecoderParams


class DecodeTable(wiring.Component):
    """Holds the table (state -> symbol, nb_bits, base); one read port per unit, latency 2.

    Entries arrive on `load` at addresses 0, 1, 2, ...; the beat with `last` ends the table,
    whose size 2**k must be a power of two from 32 to l, and whose every entry must be one a
    tANS table of 2**k states can hold: nb_bits <= k, base a multiple of 2**nb_bits, and
    base + 2**nb_bits <= 2**k (so every next state is in range). Otherwise `bad`. Loads are
    accepted only while `load_enable` is high (the decoder is idle), so a table never changes
    under a decode.
    Read ports: address `addr[i]` sampled every cycle, its entry on `data[i]` two cycles later:
    block RAM then an output register. `ram="ecp5"` puts that register inside the DP16KD
    (REGMODE OUTREG, see `Ecp5Ram`); "ice40" uses SB_RAM40_4K instances and "generic" leaves the
    RAM to yosys, both with a fabric output register (see `hw.core.ram.SimpleRam`).
    """

    def __init__(self, p: DecoderParams, ram: str = "generic") -> None:
        check_ram_target(ram)
        self.p = p
        self.ram = ram
        ent = entry_layout(p)
        super().__init__({
            "load": In(stream.Signature(table_load_layout(p))),
            "load_enable": In(1),
            "ready": Out(1),                          # a valid table is loaded
            "bad": Out(1),                            # the last load: bad size or entry
            "log2_states": Out(range(p.log2_states + 1)),
            "addr": In(p.log2_states).array(p.units),
            "data": Out(ent).array(p.units),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.p
        ent = entry_layout(p)
        count = Signal(range(p.states + 1))           # entries written by the current load
        overflow = Signal()
        m.d.comb += self.load.ready.eq(self.load_enable)
        beat = self.load.valid & self.load.ready

        w_en = beat & (count < p.states)
        for i in range(p.units):
            ram = SimpleRam(ent.size, p.states, self.ram)
            m.submodules[f"mem{i}"] = ram
            m.d.comb += [ram.w_addr.eq(count[:p.log2_states]), ram.w_data.eq(self.load.payload.entry),
                         ram.w_en.eq(w_en), ram.r_addr.eq(self.addr[i])]
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
        m.d.sync += ended.eq(0)
        with m.If(beat):
            m.d.sync += fresh.eq(self.load.payload.last)
            with m.If(self.load.payload.last):
                m.d.sync += [count.eq(0), overflow.eq(0), ended.eq(1), final_count.eq(count),
                             final_overflow.eq(overflow)]
            with m.Else():
                with m.If(count == p.states):
                    m.d.sync += overflow.eq(1)
                with m.Else():
                    m.d.sync += count.eq(count + 1)
        # entry checks, a register stage behind the load: `reach` ORs base | (2**nb_bits - 1) over
        # the table (it must stay below 2**k), `misfit` flags a base that is not a multiple of
        # 2**nb_bits or an nb_bits above l's
        K = p.log2_states
        e_nb = Signal(range(1 << p.nb_width))
        e_base = Signal(K)
        e_on, e_first = Signal(), Signal()
        m.d.sync += [e_on.eq(beat), e_first.eq(beat & fresh),
                     e_nb.eq(self.load.payload.entry.nb_bits), e_base.eq(self.load.payload.entry.base)]
        mask = Signal(K)
        m.d.comb += mask.eq(Cat(e_nb > b for b in range(K)))
        reach = Signal(K)
        misfit = Signal()
        entry_bad = Signal()
        m.d.comb += entry_bad.eq((e_base & mask).any() | (e_nb > K))
        with m.If(e_on):
            with m.If(e_first):
                m.d.sync += [reach.eq(e_base | mask), misfit.eq(entry_bad)]
            with m.Else():
                m.d.sync += [reach.eq(reach | e_base | mask), misfit.eq(misfit | entry_bad)]

        sizes = range(fmt.MIN_LOG2_STATES, p.log2_states + 1)
        is_size = Signal(len(sizes))            # registered final_count == 2**k - 1, one bit per k
        ended2 = Signal()
        # a beat right after a last one starts a new load: the check of the old one is dropped
        # (so a check runs only while the latest beat is the checked load's last)
        m.d.sync += [ended2.eq(ended & ~beat), is_size.eq(Cat(final_count == (1 << k) - 1 for k in sizes))]
        with m.If(ended2):
            ok = Signal()
            fits = Cat((reach[k:] == 0) if k < K else 1 for k in sizes)
            m.d.comb += ok.eq((is_size & fits).any() & ~final_overflow & ~misfit)
            for j, k in enumerate(sizes):
                with m.If(is_size[j]):
                    m.d.sync += self.log2_states.eq(k)
            m.d.sync += [self.ready.eq(ok), self.bad.eq(~ok)]
        with m.If(beat):                        # (after the check: a beat now wins)
            m.d.sync += [self.ready.eq(0), self.bad.eq(0)]
        return m
