"""AXI4 read channels (AR + R) as an Amaranth signature, master's view.

Why AXI4 rather than Wishbone B4 pipelined: weights live in DRAM, and DRAM controllers
(Xilinx MIG / AXI SmartConnect, Intel EMIF, most SoC interconnects and HBM/DDR IP) expose
AXI4. AXI4 describes a whole INCR burst of up to 256 beats with one address handshake and
lets several bursts be outstanding, so a sequential tensor fetch keeps the data channel
busy every cycle while the next address is already in flight; Wishbone pipelined needs one
address phase per word and has no standard burst length for the interconnect to optimize.
Only the read half is needed: the fetch path never writes.

Port names are flat (`arvalid`, `rdata`, ...) so a component attribute `m_axi` becomes
Verilog ports `m_axi__arvalid`, ..., which cocotbext-axi finds with prefix "m_axi_".
"""
from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

BURST_INCR = 1   #: AxBURST encoding of an incrementing burst
RESP_OKAY = 0    #: xRESP encoding of a successful transfer
BOUNDARY_4K = 4096  #: an AXI burst must not cross a 4 KiB address boundary


class AxiReadSignature(wiring.Signature):
    """AXI4 read address and read data channels, from the master's side."""

    def __init__(self, addr_width: int = 32, data_width: int = 64, id_width: int = 1) -> None:
        if data_width not in (32, 64, 128, 256, 512):
            raise ValueError(f"AXI data width must be 32..512 bits, a power of two, not {data_width}")
        self.addr_width, self.data_width, self.id_width = addr_width, data_width, id_width
        super().__init__({
            "arid": Out(id_width),
            "araddr": Out(addr_width),
            "arlen": Out(8),
            "arsize": Out(3),
            "arburst": Out(2),
            "arvalid": Out(1),
            "arready": In(1),
            "rid": In(id_width),
            "rdata": In(data_width),
            "rresp": In(2),
            "rlast": In(1),
            "rvalid": In(1),
            "rready": Out(1),
        })
