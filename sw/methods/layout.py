"""How a layer's weights are laid out for the decoder: lanes of whole input channels."""
from __future__ import annotations

from sw.tans import format as fmt

MIN_LANES = 8   #: fewest lanes a layer gets where its channels allow: 7 groups keep a P = 1 core at full rate


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
