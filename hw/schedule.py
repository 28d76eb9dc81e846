"""The decode order: which lanes each cycle serves, round by round, P lanes (a group) at a time."""
from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .layouts import COUNT_BITS
from .params import DecoderParams


class GroupScheduler(wiring.Component):
    """Walks the rounds of the consumption rule: first the initial-state round, then symbol rounds.

    Round t serves lanes 0..RL-1 with RL = min(lanes, symbols left), in groups of P consecutive
    lanes starting at a multiple of P, so unit i always serves lanes = i (mod P) and the lane
    states bank cleanly. `valid` while a group is pending; `next` issues it. Per group: `group`
    (bank address), `lane0`, `active` (units with a lane), `final` (the lane's last step, when it
    must reach the final state), `init` (a state-loading round) and `last` (the tensor's last group).
    """

    def __init__(self, p: DecoderParams) -> None:
        self.p = p
        super().__init__({
            "start": In(1),
            "stop": In(1),
            "n_symbols": In(COUNT_BITS),
            "lanes": In(p.lane_count_bits),
            "valid": Out(1),
            "next": In(1),
            "group": Out(range(p.groups)),
            "lane0": Out(range(p.lanes + p.units + 1)),
            "active": Out(p.units),
            "final": Out(p.units),
            "init": Out(1),
            "last": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.p
        lanes = Signal(p.lane_count_bits)
        rem = Signal(COUNT_BITS)                 # symbol steps left after this round
        excess = Signal(signed(COUNT_BITS + 1))  # rem - lanes: its sign picks min(lanes, rem)
        next_rl = Signal(p.lane_count_bits)      # lanes of the next round: min(lanes, rem)
        m.d.comb += next_rl.eq(Mux(excess[-1], rem, lanes))
        # Counters relative to the current group, so no adder or wide compare sits in the loop:
        left = Signal(signed(p.lane_count_bits + 2))      # lanes of this round from lane0 on
        to_final = Signal(signed(p.lane_count_bits + 2))  # next_rl - lane0
        end_of_round = Signal()
        m.d.comb += end_of_round.eq(left <= p.units)
        for i in range(p.units):
            m.d.comb += [
                self.active[i].eq(left > i),
                self.final[i].eq(~self.init & (to_final <= i)),
            ]
        rem_zero = Signal()                      # no symbol steps after this round
        m.d.comb += self.last.eq(~self.init & end_of_round & rem_zero)

        rem_after = Signal(COUNT_BITS)
        excess_after = Signal(signed(COUNT_BITS + 1))
        m.d.comb += [rem_after.eq(rem - next_rl), excess_after.eq(excess - next_rl)]
        with m.If(self.next & self.valid):
            with m.If(end_of_round):
                m.d.sync += [self.lane0.eq(0), self.group.eq(0), self.init.eq(0),
                             left.eq(next_rl), rem.eq(rem_after), excess.eq(excess_after),
                             to_final.eq(Mux(excess_after[-1], rem_after, lanes)),
                             rem_zero.eq(excess[-1] | (excess == 0))]
                with m.If(self.last):
                    m.d.sync += self.valid.eq(0)
            with m.Else():
                m.d.sync += [self.lane0.eq(self.lane0 + p.units), self.group.eq(self.group + 1),
                             left.eq(left - p.units), to_final.eq(to_final - p.units)]
        with m.If(self.stop):
            m.d.sync += self.valid.eq(0)
        with m.If(self.start):
            m.d.sync += [lanes.eq(self.lanes), left.eq(self.lanes), rem.eq(self.n_symbols),
                         excess.eq(self.n_symbols - self.lanes), rem_zero.eq(0), to_final.eq(0),
                         self.lane0.eq(0), self.group.eq(0), self.init.eq(1), self.valid.eq(1)]
        return m
