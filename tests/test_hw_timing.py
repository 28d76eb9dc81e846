"""docs/CORE.md's timing and behaviour statements, measured on the core in the Amaranth simulator.

Input always valid, output always ready (sim.tb.amaranth_sim.timeline); cycle 0 is the
command's transfer. Each test pins a sentence of CORE.md's "Timing" or "Errors" section.
"""
from __future__ import annotations

import pytest

from hw.core.layouts import ErrorCode
from hw.core.params import DecoderParams
from sim.tb.amaranth_sim import timeline
from sw.tans.vectors import make_case

DEFAULT = DecoderParams()        # l = 256, S = 5, L = 64, P = 1, W = 32


@pytest.mark.parametrize("cfg,lanes,n", [((8, 5, 64, 1, 32), 64, 600), ((8, 5, 64, 4, 32), 6, 120),
                                         ((6, 6, 16, 2, 16), 16, 200)])
def test_done_after_last_beat_and_last_word(cfg, lanes, n):
    """`done` = max(last output beat + 5, last word taken + 3): 5 cycles after the last beat
    without a trailing padding word, 8 with one."""
    k, s, L, P, W = cfg
    p = DecoderParams(log2_states=k, symbol_bits=s, lanes=L, units=P, word_bits=W)
    case = make_case(3, k, lanes, n, s, "peaked")
    for extra in (0, 1):
        ev = timeline(p, case, extra_words=extra)
        assert ev["error"] == 0 and ev["symbols"] == n
        assert ev["done"] == max(ev["last_out"] + 5, ev["last_word"] + 3), ev
    assert ev["done"] - ev["last_out"] >= 8              # with the trailing word


def test_default_build_figures():
    """Command to first word request 13; initial round max(ceil(lanes/P), 7) cycles; whole tensors."""
    big = timeline(DEFAULT, make_case(1, 8, 64, 4000, 5, "random"))
    small = timeline(DEFAULT, make_case(1, 8, 8, 400, 5, "random"))
    few = timeline(DEFAULT, make_case(1, 8, 3, 300, 5, "random"))
    assert big["first_word_ready"] == small["first_word_ready"] == 13
    # first beat = 13 + initial round + 12: 64 lanes -> 64 cycles, 8 -> 8, 3 lanes -> 7, not 3
    assert (big["first_out"], small["first_out"], few["first_out"]) == (13 + 64 + 12, 13 + 8 + 12, 13 + 7 + 12)
    assert (big["done"], small["done"]) == (4093, 437)
    assert 7 * 99 <= few["last_out"] - few["first_out"] <= 7 * 99 + 3   # 100 rounds of 3 lanes: 7 cycles each


def test_rate_limited_by_word_width():
    """P = 4 with 8-bit words: about 0.85 W / (coded bits per symbol), not P, per cycle."""
    p = DecoderParams(log2_states=8, symbol_bits=5, lanes=64, units=4, word_bits=8)
    for dist, lo, hi in (("dominant", 3.4, 3.9), ("random", 1.5, 1.9)):
        case = make_case(2, 8, 64, 1600, 5, dist)
        ev = timeline(p, case)
        rate = case.n_symbols / (ev["last_out"] - ev["first_out"] + 1)
        bound = 8 / (case.coded.payload_bits / case.n_symbols)
        assert lo <= rate <= hi and 0.8 * bound <= rate <= bound, (dist, rate, bound)


def test_truncated_sends_no_last_beat():
    """TRUNCATED: symbols before the damage come out, but no beat carries `last`."""
    ev = timeline(DEFAULT, make_case(1, 8, 64, 1000, 5, "random"), truncate_to=40)
    assert ev["error_code"] == ErrorCode.TRUNCATED and not ev["saw_last"] and ev["symbols"] > 0


def test_command_during_table_load_is_no_table():
    """A command taken while a table load is under way ends in NO_TABLE, although the
    previous table was good (the load has already invalidated it); the packet is drained."""
    case = make_case(1, 8, 64, 500, 5, "random")
    other = make_case(5, 8, 64, 500, 5, "peaked")
    ev = timeline(DEFAULT, case, reload=other.entries)
    assert ev["error_code"] == ErrorCode.NO_TABLE and ev["symbols"] == 0
    assert ev["words"] == len(case.words(32))
