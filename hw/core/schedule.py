"""The decode order: which lanes each cycle serves, round by round, P lanes (a group) at a time."""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.core.layouts import COUNT_BITS
from hw.core.params import DecoderParams


class GroupScheduler(wiring.Component):
    """Walks the rounds of the consumption rule: first the initial-state round, then symbol rounds.

    Round t serves lanes 0..RL-1 with RL = min(lanes, symbols left), in groups of P consecutive
    lanes starting at a multiple of P, so unit i always serves lanes = i (mod P) and the lane
    states bank cleanly. `load` takes `n_symbols` and `lanes`; `too_few` (two cycles later) says
    n_symbols < lanes; `start` then begins. `valid` while a group is pending; `next` issues it.
    Per group (all from registers): `group` (bank address), `lane0`,
    `active` (units with a lane), `final` (the lane's last step, when it must reach the final
    state), `init` (a state-loading round) and `last` (the tensor's last group).

    A round's last group must be issued at least 6 cycles after the previous round's last group
    (the decoder re-issues a group PIPELINE_DEPTH = 7 cycles after its previous issue at the earliest).

    Only one wide register exists, `ahead` (see below), which drops by `lanes` a cycle after each
    round end; the next round's parameters are precomputed from it into registers, so neither
    the wide subtraction nor any compare sits between `next` and the registers it updates.
    """

    def __init__(self, p: DecoderParams) -> None:
        self.p = p
        super().__init__({
            "load": In(1),
            "start": In(1),
            "stop": In(1),
            "n_symbols": In(COUNT_BITS),
            "lanes": In(p.lane_count_bits),
            "ready": Out(1),
            "too_few": Out(1),
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
        p, P = self.p, self.p.units
        LB = p.lane_count_bits
        lanes = Signal(LB)
        # ahead = Z of the next round, where Z(round t) = N - (t + 1) * lanes: round t is full iff
        # Z >= 0, lane j's last step is in round t iff Z <= j, and round t is the last iff Z <= 0.
        ahead = Signal(signed(COUNT_BITS + 2))
        # ahead_next = ahead - lanes, a two-stage pipelined subtraction (no long carry chain in a
        # cycle): valid two cycles after `ahead` changes
        LO = (COUNT_BITS + 2) // 2
        lo = Signal(LO + 1)                    # low half difference; bit LO is its borrow
        lo2 = Signal(LO)
        hi = Signal(signed(COUNT_BITS + 2 - LO))
        m.d.sync += [lo.eq(ahead[:LO] - lanes), lo2.eq(lo[:LO]), hi.eq(ahead[LO:].as_signed() - lo[LO])]
        ahead_next = Signal(signed(COUNT_BITS + 2))
        m.d.comb += ahead_next.eq(Cat(lo2, hi))
        step = Signal()        # ahead -= lanes: a cycle after each round end
        # setup after `load`: ahead = N (cycle 1) -> N - lanes (cycle 4) -> next-round registers
        # (a one-hot countdown: bit k - 1 set <=> k cycles to go, 8 .. 1; no compares)
        setup = Signal(8)
        setting_up = Signal()
        m.d.sync += [step.eq(0), setup.eq(setup >> 1)]
        with m.If(setup[0]):
            m.d.sync += setting_up.eq(0)
        with m.If(setup[5]):                 # 6 cycles to go
            m.d.sync += [self.too_few.eq(ahead_next[-1]), ahead.eq(ahead_next)]   # N < lanes
        with m.If(step):
            m.d.sync += ahead.eq(ahead_next)
        m.d.comb += self.ready.eq(~setting_up)

        # The next round's parameters, precomputed from `ahead` (stable between round ends, which
        # are at least PIPELINE_DEPTH cycles apart), so a round end only copies registers.
        low = Signal(LB)                     # Z of the next round, lane-wide (exact when 0 <= Z < lanes)
        m.d.comb += low.eq(ahead[:LB])
        nxt_neg = Signal()
        nxt_small = Signal()
        nxt_last = Signal()
        nxt_eor = Signal()
        nxt_left = Signal(signed(LB + 2))
        nxt_lm = Signal(signed(LB + 2))      # nxt_left - 2P - 1
        m.d.sync += [
            nxt_neg.eq(ahead[-1]), nxt_small.eq(ahead_next[-1]),
            nxt_last.eq(ahead[-1] | (ahead_next[-1] & (low == 0))),
            nxt_left.eq(Mux(ahead[-1], (low + lanes)[:LB], lanes)),   # lane-wide: Z + lanes
            nxt_eor.eq(nxt_left <= P),        # a cycle after nxt_left
            nxt_lm.eq(nxt_left - (2 * P + 1)),
        ]

        z_neg = Signal()       # this round is partial (Z < 0): every active lane ends here
        z_small = Signal()     # Z < lanes: lanes >= Z end in this round
        z_last = Signal()      # Z <= 0: no round after this one
        # lane0 = group * P: a wire when P is a power of two (synthesis then drops the counter)
        lane0 = Signal.like(self.lane0)
        m.d.comb += self.lane0.eq(self.group * P if P & (P - 1) == 0 else lane0)
        left = Signal(signed(LB + 2))        # lanes of this round from lane0 on
        # left - 2P - 1: its sign is the next group's end_of_round, so that flag is one LUT
        # from a register
        lm = Signal(signed(LB + 2))
        to_final = Signal(signed(LB + 2))    # Z - lane0 - 1 (only meaningful when z_small)
        end_of_round = Signal()              # registered left <= P
        for i in range(P):
            m.d.comb += [
                # a group has at least one lane: unit 0 is always active
                self.active[i].eq(1 if i == 0 else left > i),
                self.final[i].eq(~self.init & (z_neg | (z_small & (to_final < i)))),
            ]
        m.d.comb += self.last.eq(~self.init & end_of_round & z_last)

        with m.If(self.next & self.valid):
            with m.If(end_of_round):
                m.d.sync += [lane0.eq(0), self.group.eq(0), self.init.eq(0),
                             z_neg.eq(nxt_neg), z_small.eq(nxt_small), z_last.eq(nxt_last),
                             left.eq(nxt_left), end_of_round.eq(nxt_eor), lm.eq(nxt_lm),
                             to_final.eq(low - 1),
                             step.eq(1)]
                with m.If(self.last):
                    m.d.sync += self.valid.eq(0)
            with m.Else():
                m.d.sync += [lane0.eq(lane0 + P), self.group.eq(self.group + 1),
                             left.eq(left - P), lm.eq(lm - P), to_final.eq(to_final - P),
                             end_of_round.eq(lm[-1])]
        with m.If(self.stop):
            m.d.sync += self.valid.eq(0)
        with m.If(self.load):
            m.d.sync += [lanes.eq(self.lanes), ahead.eq(self.n_symbols), self.valid.eq(0),
                         setup.eq(1 << 7), setting_up.eq(1)]
        with m.If(self.start):
            # the initial-state round: every lane, no final steps (`ahead` is N - lanes by now)
            m.d.sync += [left.eq(lanes), end_of_round.eq(lanes <= P), z_last.eq(0), z_neg.eq(0),
                         lm.eq(lanes - (2 * P + 1)), z_small.eq(0), to_final.eq(-1), lane0.eq(0),
                         self.group.eq(0), self.init.eq(1), self.valid.eq(1)]
        return m
