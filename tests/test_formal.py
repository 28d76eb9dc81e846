"""Bounded formal checks (SymbiYosys with boolector, from PyPI) of the bit buffer, the scheduler
and the decode table.

The solver drives each block with every input sequence the decoder's protocol allows; see
`sim/formal/bitbuffer.py`, `sim/formal/schedule.py` and `sim/formal/table.py` for the properties. The bit buffer's
lookahead promise is reachable within the bounded depth for a small `ahead`; with the decoder's
own `ahead` the depth covers the data and end-of-payload properties. Cover runs show that the
checked situations occur within the depth.
"""
from __future__ import annotations

import pytest

from hw.core.decoder import READ_STAGE
from sim.formal.runner import FormalToolError, check, formal_tools
from sim.formal.bitbuffer import BitBufferSpec, spec_params
from sim.formal.schedule import ScheduleSpec, spec_params as schedule_params
from sim.formal.table import TableSpec, spec_params as table_params

# (units, word bits, ahead, depth)
CASES = [
    (1, 8, 3, 14),
    (2, 16, 3, 12),
    (1, 8, READ_STAGE + 3, 13),
]


@pytest.fixture(scope="module")
def tools() -> None:
    try:
        formal_tools()
    except FormalToolError as e:       # part of the install (pyproject): a failure, not a skip
        pytest.fail(str(e))


def _id(case: tuple[int, int, int, int]) -> str:
    return "P{}-W{}-ahead{}-depth{}".format(*case)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_bitbuffer_contract(tools, tmp_path, case) -> None:
    units, word_bits, ahead, depth = case
    r = check(BitBufferSpec(spec_params(units, word_bits), ahead), [], "bitbuffer", tmp_path, depth)
    assert r.passed, f"{r.status}; counterexample in {r.workdir}/engine_0/trace.vcd\n{r.log_tail}"


@pytest.mark.parametrize("case", CASES[:2], ids=_id)
def test_bitbuffer_contract_is_reachable(tools, tmp_path, case) -> None:
    """The checked situations occur within the depth: a covered full-width read inside a long
    payload, and the watched bit read at the top of a k-bit field."""
    units, word_bits, ahead, depth = case
    r = check(BitBufferSpec(spec_params(units, word_bits), ahead), [], "cover", tmp_path, depth,
              mode="cover")
    assert r.passed, f"unreached cover statements:\n{r.log_tail}"


def test_bitbuffer_overpromise_is_caught(tools, tmp_path) -> None:
    """Checking a lookahead one cycle longer than the buffer was built for finds a short read."""
    r = check(BitBufferSpec(spec_params(1, 8), 3, promise=4), [], "bitbuffer", tmp_path, 14)
    assert r.status == "FAIL", r.log_tail


# (units, core lanes, depth): P = 3 takes the scheduler's lane0 counter (not a wire)
SCHEDULE_CASES = [(1, 4, 28), (2, 8, 26), (3, 6, 26)]


def _sid(case: tuple[int, int, int]) -> str:
    return "P{}-lanes{}-depth{}".format(*case)


@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=_sid)
def test_schedule_matches_model(tools, tmp_path, case) -> None:
    units, lanes, depth = case
    r = check(ScheduleSpec(schedule_params(units, lanes)), [], "schedule", tmp_path, depth)
    assert r.passed, f"{r.status}; counterexample in {r.workdir}/engine_0/trace.vcd\n{r.log_tail}"


@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=_sid)
def test_schedule_model_is_reachable(tools, tmp_path, case) -> None:
    """Within the depth: the last group of a two-round tensor and a partial round's first group."""
    units, lanes, depth = case
    r = check(ScheduleSpec(schedule_params(units, lanes)), [], "cover", tmp_path, depth, mode="cover")
    assert r.passed, f"unreached cover statements:\n{r.log_tail}"


# (log2 l, check the RAM too, depth): 37 cycles load a whole 32-entry table and judge it; the
# RAM's contents are checked on shorter loads (its model makes deep runs slow)
TABLE_CASES = [(6, False, 37), (5, True, 12)]


def _tid(case: tuple[int, bool, int]) -> str:
    return "l{}-{}-depth{}".format(1 << case[0], "ram" if case[1] else "checks", case[2])


@pytest.mark.parametrize("case", TABLE_CASES, ids=_tid)
def test_table_checks_match_model(tools, tmp_path, case) -> None:
    log2_states, ram, depth = case
    r = check(TableSpec(table_params(log2_states), ram=ram), [], "table", tmp_path, depth)
    assert r.passed, f"{r.status}; counterexample in {r.workdir}/engine_0/trace.vcd\n{r.log_tail}"


@pytest.mark.parametrize("case", TABLE_CASES, ids=_tid)
def test_table_model_is_reachable(tools, tmp_path, case) -> None:
    """Within the depth: a judged bad table, and a good one (or a read of a loaded entry)."""
    log2_states, ram, depth = case
    r = check(TableSpec(table_params(log2_states), ram=ram), [], "cover", tmp_path, depth, mode="cover")
    assert r.passed, f"unreached cover statements:\n{r.log_tail}"
