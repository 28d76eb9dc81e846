"""The tANS decoder core: table, bit buffer, lane-state vector and P decode units in a pipeline."""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from sw.tans import format as fmt

from hw.core.bitbuffer import BitBuffer
from hw.core.layouts import (ErrorCode, command_layout, entry_layout, output_layout, status_layout,
                      table_load_layout, word_layout)
from hw.core.params import DecoderParams
from hw.core.ram import SimpleRam
from hw.core.schedule import GroupScheduler
from hw.core.table import DecodeTable


def group_info_layout(p: DecoderParams) -> data.StructLayout:
    """What travels down the pipeline with each lane group."""
    return data.StructLayout({
        "group": range(p.groups), "lane0": range(p.lanes + p.units + 1), "active": p.units,
        "final": p.units, "init": 1, "last": 1,
    })


PIPELINE_DEPTH = 7   #: cycles from a lane's state read to its write back: lanes/P >= this is full rate
READ_STAGE = 4       #: cycles from a group's issue to its bit-buffer read
OUT_FIFO_DEPTH = PIPELINE_DEPTH + 5   #: holds every group in flight, plus slack for full rate


class TansDecoder(wiring.Component):
    """Decodes lane-interleaved tANS streams, P symbols per cycle, against a loaded table.

    Ports (all `amaranth.lib.stream` except `status`):
      table  -- In: table entries (symbol, nb_bits, base), state 0 first, `last` on the final one,
                into table bank `bank` (0 or 1); accepted while idle, or while busy when `bank`
                is not the running command's bank (so the next table loads during a decode).
      cmd    -- In: (n_symbols, lanes, payload_bits, bank); accepted only while idle. It decodes
                with bank `bank`'s table: NO_TABLE if none is loaded there (or a load into it is
                under way), BAD_TABLE if its last load was bad.
      words  -- In: the payload as W-bit words (bit j = bit j % W of word j // W); every command
                takes exactly one packet, up to and including the word with `last`.
      out    -- Out: up to P symbols of consecutive lanes per beat (`symbols`, `lanes`, `count`),
                `last` on the tensor's final beat.
      status -- busy; done and error/error_code hold from the command's end to the next command;
                table_ready / table_ready1: bank 0 / 1 holds a good table.

    Pipeline: issue (lane-state read) -> table read -> table output register -> entry decode ->
    execute (read the bits: coarse shift; emit the symbols) -> fine shift of the bits -> write
    back (next state = base + bits, final-state check). Nothing stalls after issue: a group is issued only when the output FIFO has room for
    everything in flight and the bit buffer holds enough bits for every read in flight, both
    judged from registers. With at least PIPELINE_DEPTH groups of P lanes a round, a lane's
    previous step is written back before its next one is issued, so the lane vector hides the
    whole latency and the core runs at P symbols per cycle; with fewer, a group waits until its
    previous step is written back, so a round takes PIPELINE_DEPTH cycles. Errors: see `ErrorCode`. After any error the rest of the packet is drained.
    `ram` selects the RAM primitives: "generic" (inferred), "ice40" (SB_RAM40_4K) or "ecp5"
    (DP16KD with output registers for the table); see `hw.core.ram.SimpleRam`.
    """

    def __init__(self, p: DecoderParams, ram: str = "generic") -> None:
        self.p = p
        self.ram = ram
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
        ol = output_layout(p)

        m.submodules.table = table = DecodeTable(p, self.ram)
        # issue sees the bit count two cycles late (see `open_`): it covers the reads of those two
        # cycles, of the groups in flight and of the group issued
        m.submodules.bits = bits = BitBuffer(p, ahead=READ_STAGE + 3, idle_widths_zero=True)
        m.submodules.sched = sched = GroupScheduler(p)
        m.submodules.outbuf = outbuf = fifo.SyncFIFOBuffered(width=ol.size, depth=OUT_FIFO_DEPTH)
        wiring.connect(m, wiring.flipped(self.table), table.load)
        wiring.connect(m, wiring.flipped(self.words), bits.words)
        m.d.comb += [
            self.out.valid.eq(outbuf.r_rdy), self.out.payload.eq(outbuf.r_data),
            outbuf.r_en.eq(self.out.ready),
        ]

        error_code = Signal(range(8))
        done = Signal()

        # --- pipeline registers: no enables, a group moves one stage a cycle ----------------------
        t_valid, r_valid, q_valid, x_valid, y_valid, z_valid = (Signal(name=f"{s}_valid") for s in "trqxyz")
        t_info, r_info, q_info, x_info, y_info, z_info = (Signal(info, name=f"{s}_info") for s in "trqxyz")
        x_symbol = Signal(data.ArrayLayout(p.symbol_bits, P))
        x_width = Signal(data.ArrayLayout(range(K + 1), P))    # bits to read (0 if idle unit)
        x_base = Signal(data.ArrayLayout(K, P))
        busy = Signal()             # a group is in T..Z this cycle (registered)
        short_seen = Signal()       # a read ran past the payload: abort next cycle
        dead = Signal()             # a short read happened: nothing after it writes or emits
        few_groups = Signal()       # lanes / P < PIPELINE_DEPTH for this command
        room = Signal()             # the output FIFO takes every group in flight plus one more
        issue = Signal()
        open_ = Signal()
        # lanes / P < PIPELINE_DEPTH: a group may come round again before its previous step is
        # written back. Groups are issued in a fixed cycle of G, so the group about to be issued
        # was last issued G issues ago, and that is safe iff fewer than G issues happened in the
        # last PIPELINE_DEPTH - 1 cycles. `hazard` is that test, registered (both outcomes of this
        # cycle's issue are computed from registers, the issue only picks one).
        FEW = PIPELINE_DEPTH - 1
        hist = Signal(FEW - 1)      # issue flags of the last FEW - 1 cycles, most recent first
        recent = Signal(range(FEW))       # how many: issues in the FEW - 1 cycles before this one
        at_least_g = Signal(FEW + 2)      # bit k: k >= G (this command's groups), k = 0..FEW+1
        hazard = Signal()
        m.d.comb += [
            # With >= PIPELINE_DEPTH groups a round, a group's previous step has been written back
            # before it comes round again. With fewer, `hazard` holds it until then.
            issue.eq(sched.valid & ~hazard & open_),
            sched.next.eq(issue),
        ]
        head = Signal(info)
        m.d.comb += head.eq(Cat(sched.group, sched.lane0, sched.active, sched.final, sched.init,
                                sched.last))
        # issue depends on registers only: `open_` is room in the output FIFO and enough bits,
        # both judged two cycles late (the FIFO takes two more groups than are ever in flight)
        m.d.sync += [room.eq(outbuf.level < OUT_FIFO_DEPTH - PIPELINE_DEPTH - 1),
                     open_.eq(room & bits.can_read)]
        # next cycle's window (its last FEW cycles) holds this cycle's issue and `recent`
        hz_if_issue, hz_if_not = Signal(), Signal()
        m.d.comb += [hz_if_issue.eq(at_least_g[1:].bit_select(recent, 1)),
                     hz_if_not.eq(at_least_g.bit_select(recent, 1))]
        m.d.sync += [hist.eq(Cat(issue, hist[:-1])), recent.eq(recent + issue - hist[-1]),
                     hazard.eq(few_groups & Mux(issue, hz_if_issue, hz_if_not))]
        out_empty = Signal()        # registered: nothing in the output FIFO or being written to it
        drained = Signal()          # registered: packet taken to its end and every symbol out
        run_done = Signal()         # registered: the decode has finished (see below)
        m.d.sync += out_empty.eq((outbuf.level == 0) & ~outbuf.w_en)
        m.d.sync += [
            t_valid.eq(issue), r_valid.eq(t_valid), q_valid.eq(r_valid),
            x_valid.eq(q_valid),
            t_info.eq(head), r_info.eq(t_info), q_info.eq(r_info), x_info.eq(q_info),
            busy.eq(issue | t_valid | r_valid | q_valid | x_valid | y_valid),
        ]

        # lane-state banks: unit i holds lanes i, i+P, i+2P, ... at address lane // P
        state_wr = []
        for i in range(P):      # small banks: LUT RAM on ECP5, SB_RAM40_4K on iCE40
            bank = SimpleRam(K, p.groups, "ice40" if self.ram == "ice40" else "generic")
            m.submodules[f"states{i}"] = bank
            m.d.comb += [bank.r_addr.eq(sched.group), table.addr[i].eq(bank.r_data)]
            state_wr.append(bank)

        # entry decode (Q -> X): resolve the initial-state round here, off the execute path; the
        # fields' end offsets (running sums of the widths) are registered too, so the read in X
        # has no adder chain in front of its shifters
        x_end = Signal(data.ArrayLayout(range(p.max_take + 1), P))
        widths = []
        for i in range(P):
            e = table.data[i]
            width = Signal(range(K + 1), name=f"q_width{i}")
            # zero unless a group is read in X next cycle (the bit buffer relies on it)
            m.d.comb += width.eq(Mux(q_valid & q_info.active[i],
                                     Mux(q_info.init, table.log2_states, e.nb_bits), 0))
            widths.append(width)
            m.d.sync += [
                x_symbol[i].eq(e.symbol),
                x_width[i].eq(width),
                x_base[i].eq(Mux(q_info.init, 0, e.base)),
            ]
        # running sums as a prefix tree (Sklansky): log2(P) adders deep instead of P - 1
        ends = list(widths)
        d = 1
        while d < P:
            ends = [ends[i] + ends[i // (2 * d) * 2 * d + d - 1] if i % (2 * d) >= d else ends[i]
                    for i in range(P)]
            d *= 2
        for i in range(P):
            m.d.sync += x_end[i].eq(ends[i])

        # --- execute: read the bits and emit the symbols (all known from the table entry) --------
        # (the bit buffer's read takes this cycle and the next: its fields arrive in Y)
        y_base = Signal(data.ArrayLayout(K, P))
        y_out = Signal(ol)
        y_emit = Signal()
        count = 0
        for i in range(P):
            m.d.comb += [bits.widths[i].eq(x_width[i]), bits.ends[i].eq(x_end[i])]
            count = count + x_info.active[i]
        execute = Signal()
        m.d.comb += [execute.eq(x_valid), bits.read.eq(execute)]
        m.d.sync += [y_valid.eq(execute), y_emit.eq(execute & ~x_info.init),
                     y_info.eq(x_info), y_base.eq(x_base),
                     y_out.count.eq(count), y_out.last.eq(x_info.last)]
        for i in range(P):
            m.d.sync += [y_out.symbols[i].eq(x_symbol[i]), y_out.lanes[i].eq(x_info.lane0 + i)]
        # `bits.short` (registered) says the read of the group now in Y ran past the payload: that
        # group and every later one are dropped, and the decode ends with TRUNCATED
        y_ok = Signal()
        m.d.comb += [y_ok.eq(~bits.short & ~dead),
                     outbuf.w_en.eq(y_emit & y_ok), outbuf.w_data.eq(y_out)]
        m.d.sync += short_seen.eq(y_valid & bits.short)
        with m.If(y_valid & bits.short):
            m.d.sync += dead.eq(1)

        # --- Y -> Z: the fields -----------------------------------------------------------------
        z_base = Signal(data.ArrayLayout(K, P))
        z_negbase = Signal(data.ArrayLayout(K, P))  # -base mod l: the final state needs fields == it
        z_fields = Signal(data.ArrayLayout(K, P))
        m.d.sync += [z_valid.eq(y_valid & y_ok), z_info.eq(y_info), z_base.eq(y_base),
                     z_fields.eq(Cat(*bits.fields))]
        for i in range(P):
            m.d.sync += z_negbase[i].eq(fmt.FINAL_STATE - y_base[i])

        # --- write back: next state = base + bits; a lane's last step must reach the final state --
        final_bad = Signal()        # registered: reported one cycle later, off the critical path
        finals = []
        for i in range(P):
            next_state = Signal(K, name=f"next_state{i}")
            m.d.comb += [
                next_state.eq(z_base[i] + z_fields[i]),
                state_wr[i].w_addr.eq(z_info.group), state_wr[i].w_data.eq(next_state),
                state_wr[i].w_en.eq(z_valid & z_info.active[i]),
            ]
            finals.append(z_info.active[i] & z_info.final[i] & (z_fields[i] != z_negbase[i]))
        m.d.sync += final_bad.eq(z_valid & Cat(*finals).any())

        # --- control ----------------------------------------------------------------------------
        # An error found while running is recorded a cycle later through `pending` (first error
        # wins; within a cycle FINAL_STATE wins): the error register's input is then a short mux
        # of registers, off the FSM's decoding.
        pending = Signal(range(8))
        m.d.sync += pending.eq(ErrorCode.NONE)

        def fail(code: ErrorCode) -> None:
            m.d.sync += pending.eq(code)

        with m.If((pending != ErrorCode.NONE) & (error_code == ErrorCode.NONE)):
            m.d.sync += error_code.eq(pending)

        cmd = Signal(command_layout(p))          # the command, registered before it is checked
        bad_command = Signal()
        m.d.comb += [
            sched.n_symbols.eq(cmd.n_symbols), sched.lanes.eq(cmd.lanes),
            bits.payload_bits.eq(cmd.payload_bits),
        ]
        flush = Signal()
        leave = Signal()            # registered: RUN ends (aborted or finished)
        # The control FSM, one-hot in registers (each state's next value is a short function):
        # IDLE -> CHECK -> SIZE -> LAUNCH -> RUN -> DRAIN -> IDLE, or SIZE -> FAIL -> DRAIN.
        # `arm` is FAIL or LAUNCH (it starts the bit buffer), `launch` is LAUNCH.
        idle = Signal(init=1)
        check, size, arm, launch, run, drain = (Signal(name=n) for n in
                                                ("check", "size", "arm", "launch", "run", "drain"))
        m.d.sync += [arm.eq(0), launch.eq(0), check.eq(0)]
        m.d.comb += [bits.start.eq(arm), sched.start.eq(launch)]
        # a table load goes on while idle, or into the bank the running command does not use
        m.d.comb += [self.cmd.ready.eq(idle), table.load_enable.eq(idle),
                     table.busy_bank.eq(cmd.bank), table.rbank.eq(cmd.bank)]
        with m.If(idle & self.cmd.valid):
            m.d.sync += [idle.eq(0), check.eq(1), cmd.eq(self.cmd.payload), done.eq(0),
                         error_code.eq(ErrorCode.NONE)]
        with m.If(check):
            m.d.comb += sched.load.eq(1)
            m.d.sync += [
                size.eq(1),
                bad_command.eq((cmd.lanes == 0) | (cmd.lanes > p.lanes)),
                few_groups.eq(cmd.lanes <= (PIPELINE_DEPTH - 1) * P),
                at_least_g.eq(Cat(cmd.lanes <= k * P for k in range(FEW + 2))),
            ]
        with m.If(size & sched.ready):          # the scheduler has compared n_symbols with lanes
            m.d.sync += [size.eq(0), arm.eq(1)]
            with m.If(table.bad):
                m.d.sync += error_code.eq(ErrorCode.BAD_TABLE)
            with m.Elif(~table.ready):
                m.d.sync += error_code.eq(ErrorCode.NO_TABLE)
            with m.Elif(bad_command | sched.too_few):
                m.d.sync += error_code.eq(ErrorCode.BAD_COMMAND)
            with m.Else():
                m.d.sync += launch.eq(1)
        with m.If(launch):
            # `open_` still holds the idle bit buffer's can_read (high: nothing to load): the
            # first group must wait for the armed buffer's own judgement
            m.d.sync += [run.eq(1), dead.eq(0), hist.eq(0), recent.eq(0), hazard.eq(0), open_.eq(0)]
        with m.If(arm & ~launch):               # FAIL: the bit buffer is armed to drain the packet
            m.d.sync += drain.eq(1)
        with m.If(run):
            # the abort and end conditions are registers; the state change follows a cycle
            # later through `leave`
            with m.If(short_seen | bits.truncated):
                fail(ErrorCode.TRUNCATED)
                m.d.comb += flush.eq(1)
            with m.Elif(run_done & ~bits.empty):
                fail(ErrorCode.EXCESS_BITS)
            with m.If(leave):
                m.d.sync += [run.eq(0), drain.eq(1)]
        with m.If(drain):
            m.d.comb += bits.drain.eq(1)
            with m.If(drained):
                m.d.sync += [drain.eq(0), idle.eq(1), done.eq(1)]
        m.d.sync += drained.eq(drain & ~drained & bits.seen_last & out_empty)
        m.d.sync += leave.eq(run & ~leave & (short_seen | bits.truncated | run_done))
        # every group issued and written back (busy covers T..Z); once true it stays true, so the
        # registered (one cycle late) value is safe
        m.d.sync += run_done.eq(run & ~leave & ~sched.valid & ~busy & ~final_bad)
        with m.If(final_bad):
            fail(ErrorCode.FINAL_STATE)
        with m.If(flush):
            m.d.sync += [t_valid.eq(0), r_valid.eq(0), q_valid.eq(0), x_valid.eq(0)]
            m.d.comb += sched.stop.eq(1)

        m.d.comb += [
            self.status.busy.eq(~self.cmd.ready),  # IDLE is the only state that takes commands
            self.status.done.eq(done),
            self.status.error.eq(done & (error_code != ErrorCode.NONE)),
            self.status.error_code.eq(Mux(done, error_code, 0)),
            self.status.table_ready.eq(table.ready_banks[0]),
            self.status.table_ready1.eq(table.ready_banks[1]),
        ]
        return m
