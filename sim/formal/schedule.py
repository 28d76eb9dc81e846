"""Formal properties of the group scheduler (`hw.core.schedule.GroupScheduler`) against a plain model.

The command (`n_symbols` N, any 32-bit value, and `lanes`, 1..the core's lanes) is a solver
constant; the environment follows the decoder: `load`, then `start` once `ready` says N >= lanes
(`too_few` low), and `next` whenever the solver likes within the decoder's hazard rule (a group
is issued only if fewer than G = ceil(lanes / P) groups were issued in the 6 cycles before).
A reference model walks the consumption rule of docs/FORMAT.md the obvious way: an
initial-state round over every lane, then symbol rounds t = 0, 1, ... serving lanes
0..min(lanes, N - t*lanes) - 1, P consecutive lanes a group. Checked at every issue: the
group, lane0, active units, final flags of active units (a lane's last symbol), init and last (the tensor's
final group) equal the model's; `valid` is high exactly until the model's last group;
`too_few` is N < lanes once `ready`. One command per run; `stop` (the decoder's abort) is not
driven here (the cocotb tests abort decodes).
"""
from __future__ import annotations

from amaranth import Elaboratable, Module, Mux, Signal, signed
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover

from hw.core.decoder import PIPELINE_DEPTH
from hw.core.layouts import COUNT_BITS
from hw.core.params import DecoderParams
from hw.core.schedule import GroupScheduler


class ScheduleSpec(Elaboratable):
    """The scheduler under a free environment, checked group by group against the model."""

    def __init__(self, p: DecoderParams) -> None:
        self.p = p

    def elaborate(self, platform) -> Module:
        m = Module()
        p, P = self.p, self.p.units
        m.submodules.dut = dut = GroupScheduler(p)
        n_symbols = AnyConst(COUNT_BITS)
        lanes = AnyConst(p.lane_count_bits)
        m.d.comb += [Assume(lanes >= 1), Assume(lanes <= p.lanes),
                     dut.n_symbols.eq(n_symbols), dut.lanes.eq(lanes)]

        # --- the decoder's side: load at cycle 1, start once ready (if N >= lanes), next -------
        cycle = Signal(range(4))
        m.d.sync += cycle.eq(Mux(cycle == 3, 3, cycle + 1))
        m.d.comb += dut.load.eq(cycle == 1)
        started = Signal()
        start = AnySeq(1)
        m.d.comb += [dut.start.eq(start), Assume(~start | ((cycle == 3) & dut.ready & ~dut.too_few
                                                             & ~started))]
        with m.If(start):
            m.d.sync += started.eq(1)
        groups = Signal(range(p.lanes + 1))          # G = ceil(lanes / P)
        m.d.comb += groups.eq((lanes + P - 1) // P)
        FEW = PIPELINE_DEPTH - 1
        hist = Signal(FEW)
        nxt = AnySeq(1)
        issue = Signal()
        count = 0
        for j in range(FEW):
            count = count + hist[j]
        m.d.comb += [dut.next.eq(nxt), issue.eq(nxt & dut.valid),
                     Assume(~nxt | (count < groups))]
        m.d.sync += hist.eq((hist << 1) | issue)

        # --- reference model ------------------------------------------------------------------
        init = Signal(init=1)                   # the initial-state round
        base = Signal(COUNT_BITS + 1)           # symbols before this round: t * lanes
        lane0 = Signal(range(p.lanes + P))
        done = Signal()
        rem = Signal(signed(COUNT_BITS + 2))
        m.d.comb += rem.eq(n_symbols - base)
        rl = Signal(range(p.lanes + 1))         # lanes served this round
        m.d.comb += rl.eq(Mux(init | (rem >= lanes), lanes, rem[:len(rl)]))
        end_of_round = Signal()
        m.d.comb += end_of_round.eq(lane0 + P >= rl)
        last_round = Signal()
        m.d.comb += last_round.eq(~init & (rem <= lanes))
        with m.If(issue):
            with m.If(end_of_round):
                m.d.sync += [lane0.eq(0), init.eq(0)]
                with m.If(~init):
                    m.d.sync += base.eq(base + lanes)
                with m.If(last_round):
                    m.d.sync += done.eq(1)
            with m.Else():
                m.d.sync += lane0.eq(lane0 + P)

        # --- properties -------------------------------------------------------------------------
        with m.If(dut.ready & (cycle == 3)):
            m.d.comb += Assert(dut.too_few == (n_symbols < lanes))
        with m.If(started):
            m.d.comb += Assert(dut.valid == ~done)
        with m.If(~started):
            m.d.comb += Assert(~dut.valid)
        with m.If(issue):
            m.d.comb += [Assert(dut.lane0 == lane0), Assert(dut.group * P == lane0),
                         Assert(dut.init == init),
                         Assert(dut.last == (last_round & end_of_round))]
            for i in range(P):
                lane = lane0 + i
                active = lane < rl
                # lane's next symbol would be symbol base + lanes + lane
                final = ~init & (base + lanes + lane >= n_symbols)
                # (`final` of an idle unit is not used: the decoder ANDs it with `active`)
                m.d.comb += [Assert(dut.active[i] == active), Assert(~active | (dut.final[i] == final))]
            # reachability (cover mode): the last group of a tensor of at least two symbol
            # rounds, and a partial round's first group
            m.d.comb += [Cover(dut.last & (base >= lanes) & (lanes > P)),
                         Cover(~init & (rl < lanes) & (lane0 == 0) & (rl > P))]
        return m


def spec_params(units: int = 1, lanes: int = 4) -> DecoderParams:
    """A small scheduler shape (its logic is the same for every count width and lane count)."""
    return DecoderParams(log2_states=5, symbol_bits=3, lanes=lanes, units=units, word_bits=8)
