"""How a layer's weights are laid out for the decoder: lanes of whole input channels."""
from __future__ import annotations

from sw.tans import format as fmt

PIPELINE_DEPTH = 7   #: the reference core's lane-state loop in cycles (hw.core.decoder checks it is the same)
MIN_LANES = PIPELINE_DEPTH + 1   #: fewest lanes a layer gets where its channels allow: 7 groups keep a P = 1 core at full rate
MIN_LANE_SYMBOLS = 16   #: lanes_for_units adds lanes only while every lane keeps at least this many symbols


def lanes_for(shape: tuple[int, ...], max_lanes: int = fmt.DEFAULT_LANES,
              min_lanes: int = MIN_LANES) -> tuple[int, int]:
    """(lanes, lane_axis): lanes of whole input channels (axis 1), as few as keep the decoder busy.

    Every lane costs a k-bit initial state, so the fewest lanes are the cheapest; but a core with
    P decode units needs about 7·P lanes to run at full rate. So: the smallest divisor of the
    channel count that is at least `min_lanes` (and at most `max_lanes`, the core's lane vector;
    0: no cap); failing that, the largest divisor within the cap. Every lane holds whole channels.
    `min_lanes` = 0 takes one lane per channel (the most lanes the cap allows).
    """
    if len(shape) < 2 or shape[1] < 1:
        return 1, fmt.NO_AXIS
    c = int(shape[1])
    cap = c if max_lanes <= 0 else min(c, max_lanes)
    divisors = [d for d in range(1, cap + 1) if c % d == 0]
    if min_lanes > 0:
        enough = [d for d in divisors if d >= min_lanes]
        if enough:
            return enough[0], 1
    return divisors[-1], 1


def lanes_for_units(shape: tuple[int, ...], units: int, lanes: int, max_lanes: int = fmt.DEFAULT_LANES,
                    tuple_size: int = 1) -> int:
    """Lanes for a core with `units` decode units P: rounds of at least PIPELINE_DEPTH full groups.

    A round of fewer than PIPELINE_DEPTH groups of P lanes still takes PIPELINE_DEPTH cycles (a
    lane's next step waits for its state), so a 6-lane layer gives 6 weights per 7 cycles even
    with P = 4. Returns `lanes` when it is already at least 7·P; otherwise the fewest lanes
    L >= 7·P that are whole input channels (a divisor of shape[1]) and a multiple of P, then any
    such divisor, then L = 7·P itself (near-equal lanes that split channels, FORMAT.md 1.4). At
    most `max_lanes` (0: no cap), and only while every lane keeps MIN_LANE_SYMBOLS coded symbols
    (a tuple of `tuple_size` weights is one symbol). Every extra lane costs one k-bit initial state.
    """
    weights = 1
    for n in shape:
        weights *= int(n)
    p = max(1, int(units))
    need = PIPELINE_DEPTH * p
    cap = weights // max(1, tuple_size) // MIN_LANE_SYMBOLS
    if max_lanes > 0:
        cap = min(cap, max_lanes)
    if lanes >= need or cap < need:
        return lanes
    if len(shape) >= 2 and shape[1] >= 1:
        c = int(shape[1])
        whole = [d for d in range(need, min(c, cap) + 1) if c % d == 0]
        for d in whole:
            if d % p == 0:
                return d
        if whole:
            return whole[0]
    return need
