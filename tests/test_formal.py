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


def _jobs() -> dict[str, tuple]:
    """Every solver run of this module: test id -> (design factory, name, depth, mode)."""
    jobs = {}
    for case in CASES:
        u, w, ahead, depth = case
        jobs[f"test_bitbuffer_contract[{_id(case)}]"] = (
            lambda u=u, w=w, a=ahead: BitBufferSpec(spec_params(u, w), a), "bitbuffer", depth, "bmc")
    for case in CASES[:2]:
        u, w, ahead, depth = case
        jobs[f"test_bitbuffer_contract_is_reachable[{_id(case)}]"] = (
            lambda u=u, w=w, a=ahead: BitBufferSpec(spec_params(u, w), a), "cover", depth, "cover")
    jobs["test_bitbuffer_overpromise_is_caught"] = (
        lambda: BitBufferSpec(spec_params(1, 8), 3, promise=4), "bitbuffer", 14, "bmc")
    for case in SCHEDULE_CASES:
        u, lanes, depth = case
        for test, name, mode in (("test_schedule_matches_model", "schedule", "bmc"),
                                 ("test_schedule_model_is_reachable", "cover", "cover")):
            jobs[f"{test}[{_sid(case)}]"] = (lambda u=u, n=lanes: ScheduleSpec(schedule_params(u, n)), name, depth, mode)
    for case in TABLE_CASES:
        k, ram, depth = case
        for test, name, mode in (("test_table_checks_match_model", "table", "bmc"),
                                 ("test_table_model_is_reachable", "cover", "cover")):
            jobs[f"{test}[{_tid(case)}]"] = (lambda k=k, r=ram: TableSpec(table_params(k), ram=r), name, depth, mode)
    return jobs


def start_early(session, items):
    """Called by conftest before the first test: the selected solver runs start on one worker
    thread (each waits on its own sby process) while the other modules' tests run."""
    try:
        formal_tools()
    except FormalToolError:
        return None                    # the `tools` fixture reports it
    from conftest import JobPool
    wanted = {item.name for item in items}
    tmp = session.config._tmp_path_factory
    pool = JobPool(processes=False, workers=1)
    for key, (make, name, depth, mode) in _jobs().items():
        if key in wanted:
            pool.submit(key, check, make(), [], name, tmp.mktemp("formal"), depth, mode=mode)
    return pool


@pytest.fixture(scope="module")
def solved(tools, request):
    """The solver runs of this module: started early by conftest; what has not started yet gets
    the machine's workers now."""
    import conftest
    pool = conftest.early_pool(request, start_early)
    pool.widen(conftest.pool_workers())
    yield pool


def _id(case: tuple[int, int, int, int]) -> str:
    return "P{}-W{}-ahead{}-depth{}".format(*case)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_bitbuffer_contract(solved, request, case) -> None:
    r = solved.result(request.node.name)
    assert r.passed, f"{r.status}; counterexample in {r.workdir}/engine_0/trace.vcd\n{r.log_tail}"


@pytest.mark.parametrize("case", CASES[:2], ids=_id)
def test_bitbuffer_contract_is_reachable(solved, request, case) -> None:
    """The checked situations occur within the depth: a covered full-width read inside a long
    payload, and the watched bit read at the top of a k-bit field."""
    r = solved.result(request.node.name)
    assert r.passed, f"unreached cover statements:\n{r.log_tail}"


def test_bitbuffer_overpromise_is_caught(solved, request) -> None:
    """Checking a lookahead one cycle longer than the buffer was built for finds a short read."""
    r = solved.result(request.node.name)
    assert r.status == "FAIL", r.log_tail


# (units, core lanes, depth): P = 3 takes the scheduler's lane0 counter (not a wire)
SCHEDULE_CASES = [(1, 4, 28), (2, 8, 26), (3, 6, 26)]


def _sid(case: tuple[int, int, int]) -> str:
    return "P{}-lanes{}-depth{}".format(*case)


@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=_sid)
def test_schedule_matches_model(solved, request, case) -> None:
    r = solved.result(request.node.name)
    assert r.passed, f"{r.status}; counterexample in {r.workdir}/engine_0/trace.vcd\n{r.log_tail}"


@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=_sid)
def test_schedule_model_is_reachable(solved, request, case) -> None:
    """Within the depth: the last group of a two-round tensor and a partial round's first group."""
    r = solved.result(request.node.name)
    assert r.passed, f"unreached cover statements:\n{r.log_tail}"


# (log2 l, check the RAM too, depth): 39 cycles load a whole 32-entry table (through the input register) and judge it; the
# RAM's contents are checked on shorter loads (its model makes deep runs slow)
TABLE_CASES = [(6, False, 39), (5, True, 12)]   # 32 beats, the input register, the check and ready's register


def _tid(case: tuple[int, bool, int]) -> str:
    return "l{}-{}-depth{}".format(1 << case[0], "ram" if case[1] else "checks", case[2])


@pytest.mark.parametrize("case", TABLE_CASES, ids=_tid)
def test_table_checks_match_model(solved, request, case) -> None:
    r = solved.result(request.node.name)
    assert r.passed, f"{r.status}; counterexample in {r.workdir}/engine_0/trace.vcd\n{r.log_tail}"


@pytest.mark.parametrize("case", TABLE_CASES, ids=_tid)
def test_table_model_is_reachable(solved, request, case) -> None:
    """Within the depth: a judged bad table, and a good one (or a read of a loaded entry)."""
    r = solved.result(request.node.name)
    assert r.passed, f"unreached cover statements:\n{r.log_tail}"
