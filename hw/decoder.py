"""The tANS decoder core: table, bit buffer, lane-state vector and P decode units in a pipeline."""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from sw.tans import format as fmt

from .bitbuffer import BitBuffer
from .layouts import (ErrorCode, command_layout, entry_layout, output_layout, status_layout,
                      table_load_layout, word_layout)
from .params import DecoderParams
from .schedule import GroupScheduler
from .skid import StreamBuffer
from .table import DecodeTable


def group_info_layout(p: DecoderParams) -> data.StructLayout:
    """What travels down the pipeline with each lane group."""
    return data.StructLayout({
        "group": range(p.groups), "lane0": range(p.lanes + p.units + 1), "active": p.units,
        "final": p.units, "init": 1, "last": 1, "first": 1,
    })


PIPELINE_DEPTH = 6   #: cycles from a lane's state read to its write back: lanes/P >= this is full rate


class TansDecoder(wiring.Component):
    """Decodes lane-interleaved tANS streams, P symbols per cycle, against a loaded table.

    Ports (all `amaranth.lib.stream` except `status`):
      table  -- In: table entries (symbol, nb_bits, base), state 0 first, `last` on the final one;
                accepted only while idle.
      cmd    -- In: (n_symbols, lanes, payload_bits); accepted only while idle.
      words  -- In: the payload as W-bit words (bit j = bit j % W of word j // W); every command
                takes exactly one packet, up to and including the word with `last`.
      out    -- Out: up to P symbols of consecutive lanes per beat (`symbols`, `lanes`, `count`),
                `last` on the tensor's final beat.
      status -- busy; done and error/error_code hold from the command's end to the next command.

    Pipeline: issue (lane-state read) -> table read -> table output register -> entry decode ->
    execute (read the bits, emit the symbols) -> write back (next state = base + bits, final-state
    check). With at least PIPELINE_DEPTH groups of P lanes a round, a lane's previous step is
    written back before its next one is issued, so the lane vector hides the whole latency and
    the core runs at P symbols per cycle; with fewer, each round waits for the pipeline to drain.
    Errors: see `ErrorCode`. After any error the rest of the packet is drained, then `done`.
    """

    def __init__(self, p: DecoderParams) -> None:
        self.p = p
        super().__init__({
            "table": In(stream.Signature(table_load_layout(p))),
            "cmd": In(stream.Signature(command_layout(p))),
            "words": In(stream.Signature(word_layout(p))),
            "out": Out(stream.Signature(output_layout(p))),
            "status": Out(status_layout(p)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.p
        K, P = p.log2_states, p.units
        info = group_info_layout(p)

        m.submodules.table = table = DecodeTable(p)
        m.submodules.bits = bits = BitBuffer(p)
        m.submodules.sched = sched = GroupScheduler(p)
        # symbols are pushed from the write-back stage, a cycle after the fire that checked room
        m.submodules.outbuf = outbuf = StreamBuffer(output_layout(p), depth=3, headroom=2)
        wiring.connect(m, wiring.flipped(self.table), table.load)
        wiring.connect(m, wiring.flipped(self.words), bits.words)
        wiring.connect(m, outbuf.o, wiring.flipped(self.out))

        running = Signal()
        error_code = Signal(range(8))
        done = Signal()

        # --- pipeline registers ----------------------------------------------------------------
        t_valid, r_valid, q_valid, x_valid = Signal(), Signal(), Signal(), Signal()
        t_info, r_info, q_info, x_info = Signal(info), Signal(info), Signal(info), Signal(info)
        q_entry = Signal(data.ArrayLayout(entry_layout(p), P), reset_less=True)  # BRAM output reg
        x_symbol = Signal(data.ArrayLayout(p.symbol_bits, P))
        x_width = Signal(data.ArrayLayout(range(K + 1), P))    # bits to read (0 if idle unit)
        x_base = Signal(data.ArrayLayout(K, P))

        fire = Signal()
        short_seen = Signal()       # a read ran past the payload: abort next cycle
        y_valid = Signal()
        y_info = Signal(info)
        advance = Signal()
        hazard = Signal()
        few_groups = Signal()       # lanes / P < PIPELINE_DEPTH for this command
        issue = Signal()
        # the scheduler runs ahead into a 2-entry buffer, so the stall never reaches its counters
        m.submodules.groups = groups = StreamBuffer(info)
        head = groups.o.payload
        m.d.comb += [
            groups.i.valid.eq(sched.valid), sched.next.eq(groups.i.ready),
            groups.i.payload.eq(Cat(sched.group, sched.lane0, sched.active, sched.final, sched.init,
                                    sched.last, sched.group == 0)),
            advance.eq(~x_valid | fire),
            # With >= PIPELINE_DEPTH groups a round, a group's previous step has been written back
            # before it comes round again. With fewer, a new round waits for the pipeline to drain.
            hazard.eq(few_groups & head.first &
                      (t_valid | r_valid | q_valid | x_valid | y_valid)),
            issue.eq(running & advance & groups.o.valid & ~hazard),
            groups.o.ready.eq(issue),
        ]

        # lane-state banks: unit i holds lanes i, i+P, i+2P, ... at address lane // P
        state_rd = []
        state_wr = []
        for i in range(P):
            mem = memory.Memory(shape=K, depth=p.groups, init=[])
            m.submodules[f"states{i}"] = mem
            rp, wp = mem.read_port(), mem.write_port()
            m.d.comb += [rp.addr.eq(head.group), rp.en.eq(advance)]
            state_rd.append(rp)
            state_wr.append(wp)

        # table lookups: address = the lane's state, read while the group moves T -> R
        m.d.comb += table.en.eq(advance)
        for i in range(P):
            m.d.comb += table.addr[i].eq(state_rd[i].data)

        with m.If(advance):
            m.d.sync += [
                t_valid.eq(issue), r_valid.eq(t_valid), q_valid.eq(r_valid), x_valid.eq(q_valid),
                t_info.eq(head), r_info.eq(t_info), q_info.eq(r_info), x_info.eq(q_info),
            ]
            for i in range(P):   # resolve the initial-state round here, off the execute path
                e = q_entry[i]
                m.d.sync += [
                    q_entry[i].eq(table.data[i]),
                    x_symbol[i].eq(e.symbol),
                    x_width[i].eq(Mux(q_info.active[i], Mux(q_info.init, table.log2_states, e.nb_bits), 0)),
                    x_base[i].eq(Mux(q_info.init, 0, e.base)),
                ]

        # --- execute: read the bits and emit the symbols (all known from the table entry) --------
        y_base = Signal(data.ArrayLayout(K, P))
        y_fields = Signal(data.ArrayLayout(K, P))
        y_out = Signal(output_layout(p))
        y_emit = Signal()
        count = 0
        for i in range(P):
            m.d.comb += bits.widths[i].eq(x_width[i])
            count = count + x_info.active[i]
        m.d.comb += [
            fire.eq(running & ~short_seen & x_valid & outbuf.i.ready & bits.can_read),
            bits.read.eq(fire),
        ]
        m.d.sync += [y_valid.eq(fire & ~bits.short), short_seen.eq(fire & bits.short),
                     y_emit.eq(fire & ~bits.short & ~x_info.init)]
        with m.If(fire):
            m.d.sync += [y_info.eq(x_info), y_fields.eq(Cat(*bits.fields)), y_base.eq(x_base),
                         y_out.count.eq(count), y_out.last.eq(x_info.last)]
            for i in range(P):
                m.d.sync += [y_out.symbols[i].eq(x_symbol[i]), y_out.lanes[i].eq(x_info.lane0 + i)]
        m.d.comb += [outbuf.i.valid.eq(y_emit), outbuf.i.payload.eq(y_out)]

        # --- write back: next state = base + bits; a lane's last step must reach the final state --
        final_bad = Signal()        # registered: reported one cycle later, off the critical path
        finals = []
        for i in range(P):
            next_state = Signal(K, name=f"next_state{i}")
            m.d.comb += [
                next_state.eq(y_base[i] + y_fields[i]),
                state_wr[i].addr.eq(y_info.group), state_wr[i].data.eq(next_state),
                state_wr[i].en.eq(y_valid & y_info.active[i]),
            ]
            finals.append(y_info.active[i] & y_info.final[i] & (next_state != fmt.FINAL_STATE))
        m.d.sync += final_bad.eq(y_valid & Cat(*finals).any())

        # --- control ----------------------------------------------------------------------------
        def fail(code: ErrorCode) -> None:
            with m.If(error_code == ErrorCode.NONE):
                m.d.sync += error_code.eq(code)

        cmd = Signal(command_layout(p))          # the command, registered before it is checked
        bad_command = Signal()
        m.d.comb += [
            sched.n_symbols.eq(cmd.n_symbols), sched.lanes.eq(cmd.lanes),
            bits.payload_bits.eq(cmd.payload_bits),
        ]
        flush = Signal()
        with m.FSM(init="IDLE"):
            with m.State("IDLE"):
                m.d.comb += [self.cmd.ready.eq(1), table.load_enable.eq(1)]
                with m.If(self.cmd.valid):
                    m.d.sync += [cmd.eq(self.cmd.payload), done.eq(0),
                                 error_code.eq(ErrorCode.NONE)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.sync += [
                    bad_command.eq((cmd.lanes == 0) | (cmd.lanes > p.lanes) |
                                   (cmd.n_symbols < cmd.lanes)),
                    few_groups.eq(cmd.lanes <= (PIPELINE_DEPTH - 1) * P),
                ]
                m.next = "LAUNCH"
            with m.State("LAUNCH"):
                m.d.comb += bits.start.eq(1)
                with m.If(table.bad):
                    m.d.sync += error_code.eq(ErrorCode.BAD_TABLE)
                    m.next = "DRAIN"
                with m.Elif(~table.ready):
                    m.d.sync += error_code.eq(ErrorCode.NO_TABLE)
                    m.next = "DRAIN"
                with m.Elif(bad_command):
                    m.d.sync += error_code.eq(ErrorCode.BAD_COMMAND)
                    m.next = "DRAIN"
                with m.Else():
                    m.d.comb += sched.start.eq(1)
                    m.d.sync += running.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(short_seen):     # registered: the abort is off the execute path
                    fail(ErrorCode.TRUNCATED)
                    m.d.comb += flush.eq(1)
                    m.next = "DRAIN"
                with m.Elif(bits.truncated):
                    fail(ErrorCode.TRUNCATED)
                    m.d.comb += flush.eq(1)
                    m.next = "DRAIN"
                with m.Else():
                    with m.If(~sched.valid & ~groups.o.valid & ~t_valid & ~r_valid & ~q_valid & ~x_valid &
                              ~y_valid & ~final_bad):
                        with m.If(~bits.empty):
                            fail(ErrorCode.EXCESS_BITS)
                        m.d.sync += running.eq(0)
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += bits.drain.eq(1)
                with m.If(bits.seen_last & outbuf.empty):
                    m.d.sync += done.eq(1)
                    m.next = "IDLE"
        with m.If(final_bad):
            fail(ErrorCode.FINAL_STATE)
        with m.If(flush):
            m.d.sync += [running.eq(0), t_valid.eq(0), r_valid.eq(0), q_valid.eq(0), x_valid.eq(0)]
            m.d.comb += [sched.stop.eq(1), groups.clear.eq(1)]

        m.d.comb += [
            self.status.busy.eq(~self.cmd.ready),  # IDLE is the only state that takes commands
            self.status.done.eq(done),
            self.status.error.eq(done & (error_code != ErrorCode.NONE)),
            self.status.error_code.eq(Mux(done, error_code, 0)),
            self.status.table_ready.eq(table.ready),
        ]
        return m
