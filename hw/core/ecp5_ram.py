"""A simple dual-port RAM built from ECP5 DP16KD block RAMs with the read port's output register on.

Yosys maps Amaranth memories to DP16KD with REGMODE="NOREG", whose clock-to-output delay (about
5.8 ns) limits Fmax; `Ecp5Ram` instantiates the primitives directly with REGMODE_B="OUTREG".
Simulate it with the behavioural model in sim/models/DP16KD.v (yosys ships only a blackbox).
"""
from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Ecp5Ram", "dp16kd_mode"]

# DP16KD width modes used here, (data width, address bits, lowest address pin). Source: Lattice
# TN1264 (ECP5 Memory Usage Guide) and yosys' techlibs/lattice/brams_16kd.txt / brams_map_16kd.v
# (14-bit bit address, "widths 1 2 4 9 18", "byte 9"): a word address sits on AD[13:lsb], the pins
# below it are unused, except that in x18 mode AD[1:0] are the byte write enables of DI[8:0] and
# DI[17:9]. Data always occupy the low pins: DI/DO[data width - 1:0].
#   x18 (1K x 18): address AD[13:4], AD[3:2] unused, AD[1:0] byte enables
#   x9  (2K x 9):  address AD[13:3], AD[2:0] unused
#   x4  (4K x 4):  address AD[13:2], AD[1:0] unused
_MODES = {18: (18, 10, 4), 9: (9, 11, 3), 4: (4, 12, 2)}
_AD_PINS = 14
_D_PINS = 18


def dp16kd_mode(depth: int) -> tuple[int, int, int]:
    """(data width, address bits, lowest address pin) of the DP16KD mode holding `depth` words."""
    if depth < 32 or depth > 4096 or depth & (depth - 1):
        raise ValueError(f"Ecp5Ram depth must be a power of two from 32 to 4096, not {depth}")
    return _MODES[18 if depth <= 1024 else 9 if depth == 2048 else 4]


class Ecp5Ram(wiring.Component):
    """A depth x width RAM in ECP5 DP16KD block RAMs: write on port A, read on port B through the
    block RAM's output register (REGMODE_B="OUTREG"), so read data arrive 2 cycles after the address.

    On a rising edge with `w_en`, entry `w_addr` becomes `w_data`. On a rising edge with `r_en`,
    `r_addr` is sampled; `r_data` shows that entry after the next rising edge with `r_en` high
    (CEB = OCEB = r_en). Read-during-write of the same entry is not defined. All in domain `sync`;
    the reset is not used (the output register is not cleared).
    """

    def __init__(self, width: int, depth: int) -> None:
        if width < 1:
            raise ValueError(f"Ecp5Ram width must be positive, not {width}")
        self.width, self.depth = width, depth
        self.data_width, self.mode_abits, self.addr_lsb = dp16kd_mode(depth)
        self.primitives = -(-width // self.data_width)
        super().__init__({
            "w_addr": In(range(depth)), "w_data": In(width), "w_en": In(1),
            "r_addr": In(range(depth)), "r_en": In(1), "r_data": Out(width),
        })

    def _address(self, addr: Value, low: int) -> Value:
        """The 14 AD pins: `low` on the pins below the word address, `addr` zero-extended above."""
        pad = _AD_PINS - self.addr_lsb - len(addr)
        return Cat(Const(low, self.addr_lsb), addr, Const(0, pad))

    def elaborate(self, platform) -> Module:
        m = Module()
        dw = self.data_width
        # write port: every byte enable on in x18 mode (AD[1:0] = 0b11); the pins are unused otherwise
        ada = self._address(self.w_addr, 0b11 if dw == 18 else 0)
        adb = self._address(self.r_addr, 0)
        outs = []
        for k in range(self.primitives):
            lo, hi = k * dw, min((k + 1) * dw, self.width)
            dia = Cat(self.w_data[lo:hi], Const(0, _D_PINS - (hi - lo)))
            dob = Signal(_D_PINS, name=f"dob{k}")
            outs.append(dob[:hi - lo])
            pins = {}
            for i in range(_AD_PINS):
                pins[f"i_ADA{i}"] = ada[i]
                pins[f"i_ADB{i}"] = adb[i]
            for i in range(_D_PINS):
                pins[f"i_DIA{i}"] = dia[i]
                pins[f"i_DIB{i}"] = Const(0, 1)
                pins[f"o_DOB{i}"] = dob[i]
            for p in ("A", "B"):
                for i in range(3):
                    pins[f"i_CS{p}{i}"] = Const(0, 1)
            m.submodules[f"bram{k}"] = Instance(
                "DP16KD",
                p_DATA_WIDTH_A=dw, p_DATA_WIDTH_B=dw,
                p_REGMODE_A="NOREG", p_REGMODE_B="OUTREG",
                p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC",
                p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
                p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL",
                p_GSR="DISABLED",
                # port A: write only
                i_CLKA=ClockSignal("sync"), i_CEA=self.w_en, i_WEA=self.w_en,
                i_OCEA=Const(1, 1), i_RSTA=Const(0, 1),
                # port B: read only, array read and output register both enabled by r_en
                i_CLKB=ClockSignal("sync"), i_CEB=self.r_en, i_OCEB=self.r_en,
                i_WEB=Const(0, 1), i_RSTB=Const(0, 1),
                **pins,
            )
        m.d.comb += self.r_data.eq(Cat(*outs))
        return m
