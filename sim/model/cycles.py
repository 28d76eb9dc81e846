"""Cycle model of the weight-fetch path (the engine behind `python -m sim.system`).

Resolution is one bus beat (`grain_bytes`). The DRAM side delivers B bytes per cycle
while a request is outstanding; the fetcher requests one burst (`chunk_bytes`) at a time,
only when the read FIFO (`fifo_bytes`) has room for all of it, i.e. once every byte but
the last `fifo_bytes` requested up to that burst's end has been consumed; its data follow
after `mem_latency` cycles. The consumer works through each tensor as the RTL does
(hw/fetch/datapath.py, hw/core/decoder.py):

* tANS: one table entry per cycle (and one codebook entry per cycle for a codebook or
  tuple-coded tensor) on the input side, which runs one tensor ahead: a plain tANS tensor's
  table loads while the previous tensor still decodes (the core's second table bank), and its
  payload goes through a `payload_fifo_bytes` FIFO to the decoder once that tensor is out; on
  the decoder, `tans_start` cycles plus the initial-state round
  (ceil(L/P) cycles, taking the L*k bits of initial states), then every symbol round in
  `round_cycles(ceil(RL/P), pipe_depth)` cycles (RL = lanes still active in the round), then
  `tans_end` cycles for the final check; payload bytes are taken uniformly over the rounds.
  The rounds count symbols: a tuple-coded tensor (FORMAT.md 2.3c) has one symbol per tuple of
  N weights, so its rounds deliver N weights per symbol (N·P per cycle at full rate).
* uncompressed (raw 8-bit, or b-bit packed for the `quantized` scheme): W weights per cycle.

A grain's work starts when the grain has arrived and the previous work is done; a raw or
codebook tensor's only once the previous tensor is out.
"""
from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import asdict, dataclass
from typing import Literal

from sw.tans import format as fmt

try:                                   # the decoder core's own figure, when it exports one
    from hw.core.decoder import PIPELINE_DEPTH as DECODER_PIPELINE
except ImportError:                    # pragma: no cover
    DECODER_PIPELINE = 6

Scheme = Literal["compressed", "quantized", "int8"]
RAW_INT8_BINS = 255    #: bins of a raw 8-bit layer, as `report` counts them (docs/NUMBERS.md): -127..127


@dataclass
class HwModel:
    """Parameters of the modelled hardware (defaults match hw/fetch/top.py as built for tests)."""

    bytes_per_cycle: float
    weights_per_cycle: int
    chunk_bytes: int = 128          #: one 16-beat burst of 8 bytes
    grain_bytes: int = 8            #: model resolution (one beat; coarser for huge models)
    fifo_bytes: int = 512           #: read-data FIFO (64 beats of 8 bytes)
    mem_latency: int = 5            #: cycles from a request to its first beat (AXI RAM model)
    table_entries_per_cycle: int = 1
    tans_start: int = 8             #: command, pipeline fill and dequantizer register
    tans_end: int = 3               #: drain, done and the held last beat
    pipe_depth: int = DECODER_PIPELINE  #: lane groups per round that hide the decoder pipeline
    raw_start: int = 2
    raw_end: int = 0
    payload_fifo_bytes: int = 512   #: payload FIFO in front of the decoder (64 words of 8 bytes)
    run_ahead: bool = True          #: the next plain tANS table loads while a tensor decodes

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LayerTraffic:
    """One weight tensor: what each storage scheme fetches."""

    name: str
    kind: str                     #: "tans" or "raw_int8"
    weights: int
    bins: int
    lanes: int
    log2_states: int
    table_bytes: int
    payload_bytes: int
    symbols: int | None = None    #: decoded symbols (tuples); None: one per weight
    cb_bytes: int = 0             #: codebook section bytes (loaded one entry per cycle)
    cb_entries: int = 0

    @property
    def coded_symbols(self) -> int:
        return self.weights if self.symbols is None else self.symbols

    def bytes(self, scheme: Scheme) -> int:
        """Bytes fetched for this tensor under `scheme` (whole 8-byte words)."""
        if self.kind == "tans" and scheme == "compressed":
            return self.table_bytes + self.cb_bytes + self.payload_bytes
        if self.kind == "tans" and scheme == "quantized":
            bits = max(1, math.ceil(math.log2(max(self.bins, 2))))
            return -(-self.weights * bits // 64) * 8
        return -(-self.weights // 8) * 8


@dataclass
class LayerResult:
    """Model figures of one tensor under one scheme."""

    bytes: int
    cycles: int
    stall_cycles: int
    end: int                      #: cycle at which its last weight is delivered


def layer_traffic(c) -> list[LayerTraffic]:
    """The weight tensors of a container (tANS and raw 8-bit), laid out as hw/fetch/image.py does."""
    from hw.fetch.image import build_image

    image = build_image(c)
    tensors = {t.name: t for t in c.tensors}
    out = []
    for name, d in zip(image.names, image.descriptors):
        t = tensors[name]
        if d.kind == fmt.KIND_TANS:
            bins = t.bins if t.quant == fmt.QUANT_ZERO_POINT else t.coded.alphabet
            out.append(LayerTraffic(name, "tans", t.size, bins, d.lanes, d.log2_states,
                                    d.table_bytes, d.payload_bytes, d.n_symbols, d.cb_bytes, d.cb_entries))
        else:
            out.append(LayerTraffic(name, "raw_int8", d.n_symbols, RAW_INT8_BINS, 1, 0, 0, d.payload_bytes))
    return out


def round_cycles(groups: int, pipe: int) -> int:
    """Cycles of one symbol round of `groups` lane groups.

    With at least `pipe` groups the lane vector hides the decoder pipeline (one group per
    cycle); with fewer, a group is issued again only once its previous step is written back,
    `pipe` cycles after its previous issue, so a round takes `pipe` cycles (hw/core/decoder.py).
    """
    return max(groups, pipe)


def decode_cycles(n: int, lanes: int, p: int, pipe: int) -> int:
    """Cycles of all symbol rounds of an n-symbol tensor over `lanes` lanes, P per cycle."""
    q, r = divmod(n, lanes)
    full = round_cycles(-(-lanes // p), pipe)
    return q * full + (round_cycles(-(-r // p), pipe) if r else 0)


def _segments(lay: LayerTraffic, scheme: Scheme, hw: HwModel) -> list[tuple[int, float]]:
    """The tensor's consumption profile: (bytes taken, cycles) in order."""
    w = hw.weights_per_cycle
    if lay.kind == "tans" and scheme == "compressed":
        entries = 1 << lay.log2_states
        init = -(-lay.lanes // w)
        init_bytes = min(lay.payload_bytes, -(-lay.lanes * lay.log2_states // 8))
        segs = [(lay.table_bytes, entries / hw.table_entries_per_cycle)]
        if lay.cb_bytes:
            segs.append((lay.cb_bytes, lay.cb_entries))
        return segs + [(init_bytes, hw.tans_start + init),
                       (lay.payload_bytes - init_bytes,
                        decode_cycles(lay.coded_symbols, lay.lanes, w, hw.pipe_depth)),
                       (0, hw.tans_end)]
    return [(0, hw.raw_start), (lay.bytes(scheme), -(-lay.weights // w)), (0, hw.raw_end)]


def simulate(layers: list[LayerTraffic], scheme: Scheme, hw: HwModel) -> list[LayerResult]:
    """Run the model over all layers in order; one result per layer.

    Two sides, as in hw/fetch/datapath.py: the input side takes a tensor's table (and codebook)
    bytes at its load rate, then, once the output side is free, pushes its payload into the
    payload FIFO (`payload_fifo_bytes`, at most one word a cycle); the decoder takes the
    payload from there. A plain tANS tensor's table loads while the previous tensor still
    decodes (`run_ahead`); a raw or codebook tensor waits until the previous one is out.
    A layer's cycles run from the previous layer's last weight to its own.
    """
    if hw.bytes_per_cycle <= 0 or hw.weights_per_cycle <= 0:
        raise ValueError("bytes and weights per cycle must be positive")
    B = float(hw.bytes_per_cycle)
    g = hw.grain_bytes
    per_burst = max(1, hw.chunk_bytes // g)           # grains per burst
    sizes: list[int] = []          # grain sizes, bursts never span two tensors
    first_of_burst: list[int] = [] # index of the first grain of the burst each grain is in
    last_of_burst: list[int] = []  # index of the last grain of each burst
    bursts_seen: list[int] = []    # burst index of each grain
    for lay in layers:
        n = lay.bytes(scheme)
        grains = [g] * (n // g) + ([n % g] if n % g else [])
        for b0 in range(0, len(grains), per_burst):
            burst = grains[b0:b0 + per_burst]
            base = len(sizes)
            sizes += burst
            first_of_burst += [base] * len(burst)
            bursts_seen += [len(last_of_burst)] * len(burst)
            last_of_burst.append(base + len(burst) - 1)
    ends = list(itertools.accumulate(sizes))   # bytes up to and including each grain
    arrive: list[float] = []       # arrival time of each grain's last byte
    freed: list[float] = []        # time each grain has left the read FIFO

    def arrival(i: int) -> float:
        while len(arrive) <= i:
            j = len(arrive)
            prev = arrive[j - 1] if j else 0.0
            if first_of_burst[j] == j:                 # a new burst: needs FIFO room for all of it
                burst_end = ends[last_of_burst[bursts_seen[j]]]
                need = burst_end - hw.fifo_bytes       # bytes that must have been consumed
                issue = 0.0 if need <= 0 else freed[bisect.bisect_left(ends, need)]
                prev = max(prev, issue + hw.mem_latency)
            arrive.append(prev + sizes[j] / B)
        return arrive[i]

    cur = {"grain": 0, "pos": 0}

    def take(nbytes: int, cycles: float, t: float, ready, done) -> float:
        """Consume `nbytes` over `cycles` from time t, each grain once `ready(grain)`; `done(grain, t)`."""
        if nbytes == 0:
            return t + cycles
        rate = cycles / nbytes
        left = nbytes
        while left > 0:
            gi = cur["grain"]
            step = min(left, sizes[gi] - cur["pos"])
            t = max(t, ready(gi)) + step * rate
            left -= step
            cur["pos"] += step
            if cur["pos"] == sizes[gi]:
                done(gi, t)
                cur["grain"], cur["pos"] = gi + 1, 0
        return t

    def leave_fifo(_gi: int, t: float) -> None:
        freed.append(t)

    results = []
    t_in = 0.0          # the input side is free
    t_out = 0.0         # the output side is free: the previous tensor's last weight
    prev_end = 0.0
    depth = max(1, hw.payload_fifo_bytes // g)         # payload FIFO, in grains
    word = g / 8                                       # cycles to push one grain (one 8-byte word a cycle)
    for lay in layers:
        segs = _segments(lay, scheme, hw)
        if lay.kind == "tans" and scheme == "compressed":
            ahead = hw.run_ahead and not lay.cb_bytes
            t = t_in if ahead else max(t_in, t_out)
            front = segs[:2 if lay.cb_bytes else 1]    # table (and codebook): input side
            for nbytes, cycles in front:
                t = take(nbytes, cycles, t, arrival, leave_fifo)
            hand = max(t, t_out)
            pushed: dict[int, float] = {}
            consumed: list[float] = []                 # decoder finished grain k of this payload
            first_payload = cur["grain"]
            last_push = [hand]

            def pushed_at(gi: int) -> float:
                while gi not in pushed:
                    j = len(pushed) + first_payload
                    k = j - first_payload
                    room = consumed[k - depth] if k >= depth else hand
                    tp = max(arrival(j), last_push[0], room) + word
                    pushed[j] = tp
                    last_push[0] = tp
                    freed.append(tp)
                return pushed[gi]

            def decoded(_gi: int, t_: float) -> None:
                consumed.append(t_)

            td = hand
            busy = 0.0
            for nbytes, cycles in segs[len(front):]:
                td = take(nbytes, cycles, td, pushed_at, decoded)
                busy += cycles
            if not ahead or t_in >= t_out:              # the table was on the critical path
                busy += sum(c for _, c in front)
            t_in = last_push[0] + 1                    # the CRC verdict, then the next descriptor
            end = td
        else:
            t = max(t_in, t_out)
            busy = 0.0
            for nbytes, cycles in segs:
                t = take(nbytes, cycles, t, arrival, leave_fifo)
                busy += cycles
            t_in = end = t
        t_out = end
        cyc = int(round(end - prev_end))
        results.append(LayerResult(lay.bytes(scheme), cyc, max(0, int(round(end - prev_end - busy))),
                                   int(round(end))))
        prev_end = end
    return results
