"""A pin-light wrapper for place-and-route: core inputs from a serial shift chain, outputs shifted out.

The core (or the whole fetch path) has far more ports than a UP5K sg48 has pins. Every core input is a flip-flop of a shift
register fed from one pin, and every output is captured into a loadable shift register read out
on one pin, so nothing is optimized away and every core path is timed register to register.
"""
from __future__ import annotations

from collections.abc import Callable

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.core.decoder import TansDecoder
from hw.core.params import DecoderParams


def core_ports(core: wiring.Component) -> tuple[list, list]:
    """(inputs, outputs) of a component, as lists of Amaranth values."""
    ins, outs = [], []
    for _path, member, value in core.signature.flatten(core):
        (ins if member.flow == In else outs).append(value)
    return ins, outs


class SerialHarness(wiring.Component):
    """Wraps a component (by default the decoder core) between a serial-in and a serial-out
    shift register; `make` builds any other component, such as the whole fetch path.

    `narrow` = n (for wide components on small parts) feeds input bit i from chain bit i mod n
    and XORs output bits in groups of ceil(outputs/n) (one LUT4 level) before the output shift
    register, so the harness costs about 2n flip-flops instead of one per port bit.
    """

    def __init__(self, p: DecoderParams | None = None, ram: str = "generic",
                 make: Callable[[], wiring.Component] | None = None, narrow: int | None = None) -> None:
        if make is None:
            if p is None:
                raise ValueError("SerialHarness needs decoder parameters or a component factory")
            make = lambda: TansDecoder(p, ram=ram)   # noqa: E731
        self.make = make
        self.narrow = narrow
        super().__init__({"sin": In(1), "sout": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.core = core = self.make()
        ins, outs = core_ports(core)
        flat_in, flat_out = Cat(*ins), Cat(*outs)
        n = self.narrow
        chain = Signal(len(flat_in) if n is None else min(n, len(flat_in)))
        m.d.sync += chain.eq(Cat(self.sin, chain[:-1]))
        if n is None:
            m.d.comb += flat_in.eq(chain)
        else:
            m.d.comb += [flat_in[i].eq(chain[i % len(chain)]) for i in range(len(flat_in))]
            group = -(-len(flat_out) // n)
            folded = [flat_out[j:j + group].xor() for j in range(0, len(flat_out), group)]
            flat_out = Cat(*folded)
        shift = Signal(len(flat_out))
        count = Signal(range(len(flat_out) + 1))
        load = Signal()
        m.d.sync += [count.eq(count + 1), load.eq(count == len(flat_out) - 1)]
        with m.If(load):
            m.d.sync += [shift.eq(flat_out), count.eq(0)]
        with m.Else():
            m.d.sync += shift.eq(shift >> 1)
        m.d.comb += self.sout.eq(shift[0])
        return m
