"""Weight-fetch path (hw/fetch/top.py) in Verilator + cocotb against the cocotbext-axi AXI4 RAM.

One Verilator build (P = 4 decode units, 64-bit AXI4, behind the AXI4-Lite register block that
the testbench programs like the C driver) is shared by every test; the demo
network (a small MLP trained on sklearn digits, sim/model/demo.py) is loaded into the
simulated DRAM and every delivered weight is checked, inside the testbench, against the
container's golden decode (Tensor.integers() in decode-step order).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from sw import container as ctr
from sw.tans import decode
from sw.tans.codec import Coded
from sw.tans.errors import FormatError


from hw.fetch.datapath import FetchErrorCode  # noqa: E402
from sim.tb.build_fetch import params_for  # noqa: E402
from sim.model.demo import cached_demo  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("TANS_SIM_BUILD", ROOT / "build" / "sim")) / "fetch_p4"
PARAMS = params_for(4, log2_states=8, lanes=256)
MAX_BURST = 16

pytestmark = pytest.mark.skipif(
    not __import__("shutil").which("verilator"), reason="verilator is not installed")


@pytest.fixture(scope="module")
def demo() -> Path:
    return cached_demo()


_cache: dict[str, dict] = {}
_pools: list = []

#: the testbench runs (configurations) of this module, by key; "crc" adds its flips (crc_flip_sample)
RUNS: dict[str, dict] = {
    "random": dict(ar_pause=0.3, r_pause=0.3, out_stall=0.25, seed=7),
    "corrupt": dict(corrupt=[0], seed=3, r_pause=0.1),
    "crc": dict(seed=16),
    "full": {},
    "b1": dict(bytes_per_cycle=1),
    "b2": dict(bytes_per_cycle=2),
    "banks": dict(corrupt=[1], seed=4),       # on banks_model(), not the demo
    "int8_b1": dict(bytes_per_cycle=1),       # on the demo stored 8-bit, given by a relative path
}
#: which runs each test reads
USES = {
    "test_random_latency_and_backpressure": ["random"],
    "test_corrupted_tensor_flags_error_and_next_runs": ["corrupt"],
    "test_crc_flags_every_flipped_bit": ["crc"],
    "test_compute_bound_throughput": ["full"],
    "test_bandwidth_bound_utilization": ["b1"],
    "test_model_agrees_with_rtl[1]": ["b1"], "test_model_agrees_with_rtl[2]": ["b2"],
    "test_model_agrees_with_rtl[8]": ["full"],
    "test_rtl_speedup_over_int8_matches_compression": ["b1", "int8_b1"],
    "test_table_loads_hidden_behind_decoding": ["banks"],
}


def run_config(demo: Path, key: str) -> dict:
    """The testbench configuration of run `key`."""
    return {**RUNS[key], **({"crc_flips": crc_flip_sample(demo)} if key == "crc" else {})}


def run_container(demo: Path, key: str) -> Path:
    """The container run `key` streams: the demo MLP, four l = 256 tensors for "banks", or the
    demo stored 8-bit for "int8_b1" (a path relative to INT8_DIR, as a user would type it)."""
    if key == "int8_b1":
        from sim.fetch_bench import as_int8
        INT8_DIR.mkdir(parents=True, exist_ok=True)
        as_int8(demo, INT8_DIR / "int8.tans")
        return Path("int8.tans")
    return banks_model(BUILD.parent / "banks.tans") if key == "banks" else demo


INT8_DIR = BUILD.parent / "fetch_int8_run"


def run_from(folder: str, lock: str, container: Path, *args, **kwargs) -> dict:
    """A queue job: the fetch run with `folder` as the working directory (relative paths as a
    user types them); the worker process gets its own directory back afterwards."""
    from conftest import fetch_run_one_build_at_a_time
    Path(lock).parent.mkdir(parents=True, exist_ok=True)
    old = os.getcwd()
    os.chdir(folder)
    try:
        return fetch_run_one_build_at_a_time(lock, container, *args, **kwargs)
    finally:
        os.chdir(old)


def start_early(session, items):
    """Called by conftest before the first test: the build, then the runs the selected tests need,
    each in its own process of the session's shared queue (cocotb's runner sets environment
    variables); the runs find the build up to date (a file lock guards it)."""
    import shutil
    from conftest import build_fetch_locked, shared_jobs
    wanted = {item.name for item in items}
    keys = [k for k in RUNS if any(k in USES.get(name, ()) for name in wanted)]
    if not keys or not shutil.which("verilator"):
        return None
    demo = cached_demo()
    BUILD.parent.mkdir(parents=True, exist_ok=True)
    lock = str(BUILD.parent / "fetch_p4.lock")
    pool = shared_jobs("fetch:")
    pool.submit("build", build_fetch_locked, lock, PARAMS, BUILD, priority=0)
    for k in keys:
        pool.submit(k, run_from, str(INT8_DIR if k == "int8_b1" else ROOT), lock, run_container(demo, k),
                    PARAMS, BUILD, **run_config(demo, k), priority=1 if k in ("b1", "int8_b1") else 3)
    return pool


@pytest.fixture(scope="module", autouse=True)
def _side_by_side(demo: Path, request):
    """The runs of this module, started early by conftest (or now)."""
    from conftest import early_pool
    pool = early_pool(request, start_early)
    if pool is not None:
        _pools.append(pool)
    yield
    if pool is not None:
        _pools.remove(pool)


def run(demo: Path, key: str) -> dict:
    """The result of testbench run `key` (RUNS), run once per session."""
    if key not in _cache:
        pool = _pools[0] if _pools else None
        _cache[key] = (pool.result(key) if pool is not None and key in pool
                       else run_from(str(INT8_DIR if key == "int8_b1" else ROOT), str(BUILD.parent / "fetch_p4.lock"),
                                     run_container(demo, key), PARAMS, BUILD, **run_config(demo, key)))
    return _cache[key]


def check_bursts(res: dict) -> None:
    """Every tensor is read sequentially in full INCR bursts (short only at its end or a 4 KiB edge)."""
    bursts = [tuple(b) for b in res["bursts"]]
    beat = res["beat_bytes"]
    k = 0
    for addr, nbytes in res["descriptors"]:
        pos, end = addr, addr + nbytes
        while pos < end:
            baddr, beats, size, kind = bursts[k]
            assert baddr == pos, f"burst {k} at {baddr:#x}, expected the next address {pos:#x}"
            assert size == beat.bit_length() - 1 and kind == 1, "bursts are INCR of full-width beats"
            full = min(MAX_BURST, (end - pos) // beat, (4096 - pos % 4096) // beat)
            assert beats == full, f"burst {k}: {beats} beats where {full} were possible"
            pos += beats * beat
            k += 1
    assert k == len(bursts) == res["status"]["bursts"]


def test_random_latency_and_backpressure(demo: Path) -> None:
    """Random AR/R gaps and compute-side stalls: all weights correct, status counters right."""
    res = run(demo, "random")
    st = res["status"]
    assert st["layers_done"] == len(res["layers"]) == 3
    assert st["layers_failed"] == 0 and st["error"] == 0 and st["bus_error"] == 0
    assert st["crc_error"] == 0 and st["crc_failed"] == 0
    assert st["weights_out"] == res["total_weights"]
    assert st["beats"] * res["beat_bytes"] == res["total_bytes"]
    assert st["busy"] == 0
    check_bursts(res)


def test_corrupted_tensor_flags_error_and_next_runs(demo: Path) -> None:
    """A damaged payload raises the error flag; the following descriptors still decode."""
    from hw.fetch.image import build_image
    from sim.tb.fetch import flip_payload_bits
    import random

    c = ctr.read(demo)
    image = build_image(c)
    d = image.descriptors[0]
    mem = bytearray(image.data)
    flip_payload_bits(mem, d.addr + d.table_bytes, d.payload_bytes, random.Random(3))
    t = c[image.names[0]]
    damaged = Coded(t.coded.log2_states, t.coded.lanes, t.coded.n_symbols, t.coded.norm,
                    bytes(mem[d.addr + d.table_bytes:d.addr + d.total_bytes]), t.coded.payload_bits)
    with pytest.raises(FormatError):       # the damage is real: the golden decoder rejects it
        decode(damaged)
    res = run(demo, "corrupt")
    st = res["status"]
    assert [l["error"] for l in res["layers"]] == [1, 0, 0]
    assert [l["crc_error"] for l in res["layers"]] == [1, 0, 0]
    assert st["error"] == 1 and st["error_layer"] == 0 and st["error_code"] == FetchErrorCode.CRC
    assert st["crc_error"] == 1 and st["crc_error_layer"] == 0 and st["crc_failed"] == 1
    assert st["layers_failed"] == 1 and st["layers_done"] == 3


def crc_flip_sample(demo: Path) -> list[list[int]]:
    """Region bits to flip: the first and last bit of every tensor, then random ones in the
    tables and payloads of both coded layers and in the raw layer (20 in all)."""
    import random
    from hw.fetch.image import build_image

    im = build_image(ctr.read(demo))
    rnd = random.Random(16)
    flips = []
    for i, d in enumerate(im.descriptors):
        bits = 8 * d.total_bytes
        flips += [[i, 0], [i, bits - 1]]
        if d.table_bytes:
            flips += [[i, rnd.randrange(8 * d.table_bytes)] for _ in range(2)]
            flips += [[i, 8 * d.table_bytes + rnd.randrange(8 * d.payload_bytes)] for _ in range(4 if i else 2)]
        else:
            flips += [[i, rnd.randrange(bits)] for _ in range(4)]
    return flips


def test_crc_flags_every_flipped_bit(demo: Path) -> None:
    """Each sampled single-bit flip of a tensor's stored bytes (table, payload, padding, raw
    bytes) raises the CRC error on that tensor's last beat, and the next descriptor runs; the
    undamaged model in the same run raises none (checked inside the testbench)."""
    flips = crc_flip_sample(demo)
    res = run(demo, "crc")
    st = res["status"]
    n = 3 + len(flips)
    assert len(res["layers"]) == st["layers_done"] == n
    assert [l["crc_error"] for l in res["layers"]] == [0, 0, 0] + [1] * len(flips)
    assert st["crc_failed"] == st["layers_failed"] == len(flips) and st["crc_error_layer"] == 3
    assert st["error_code"] == FetchErrorCode.CRC and st["busy"] == 0


def test_compute_bound_throughput(demo: Path) -> None:
    """With a full-speed bus the path sustains P weights per cycle on the coded layers."""
    res = run(demo, "full")
    P = res["units"]
    for lay in res["layers"]:
        rate = lay["weights"] / (lay["last_cycle"] - lay["first_cycle"] + 1)
        assert rate >= 0.95 * P, f"{lay['name']}: {rate:.2f} weights/cycle, P = {P}"
    check_bursts(res)


def test_bandwidth_bound_utilization(demo: Path) -> None:
    """A bus supplying 1 byte/cycle stays >= 90% busy while the first coded layer streams."""
    res = run(demo, "b1")
    from sim.fetch_bench import utilization

    lay = res["layers"][0]
    util = utilization(lay, res["beat_bytes"], 1.0)
    assert lay["bytes"] / lay["weights"] * res["units"] > 1.0      # this layer is bandwidth-bound
    assert util >= 0.9, f"bus utilization {util:.3f}"
    # bytes read per weight is the compressed size (table + payload) per weight
    assert res["total_bytes"] / res["total_weights"] < 0.5


@pytest.mark.parametrize("b", [1, 2, 8])
def test_model_agrees_with_rtl(demo: Path, b: int) -> None:
    """sim.system's cycle model is within 5% of the RTL with the same B and W."""
    from sim.system import analyse

    key = {1: "b1", 8: "full"}.get(b, f"b{b}")
    res = run(demo, key)
    rep = analyse(demo, b, PARAMS.units)
    model = rep["total"]["compressed"]["cycles"]
    assert abs(model - res["cycles"]) <= 0.05 * res["cycles"], (model, res["cycles"])
    for row, lay in zip(rep["layers"], res["layers"]):
        assert row["compressed"]["bytes"] == lay["bytes"]


def test_rtl_speedup_over_int8_matches_compression(demo: Path) -> None:
    """Bandwidth-bound (B = 1): fetch time int8 / compressed in RTL ~ the compression ratio.

    The int8 container is given by a relative path, as a user would type it.
    """
    packed = run(demo, "b1")
    plain = run(demo, "int8_b1")
    assert plain["total_bytes"] >= plain["total_weights"]          # really 8 bits per weight
    ratio = plain["total_bytes"] / packed["total_bytes"]
    speedup = plain["cycles"] / packed["cycles"]
    assert abs(speedup / ratio - 1) < 0.10, (speedup, ratio)


def banks_model(path: Path) -> Path:
    """Four l = 256 zero-point tANS tensors back to back, 32 lanes each (8 lane groups at P = 4),
    so a tensor decodes in about 512 cycles and its table has 256 entries."""
    import numpy as np
    from sw.tans import format as fmt

    rng = np.random.default_rng(5)
    tensors = []
    for i, (bins, scale) in enumerate([(7, 0.8), (9, 1.5), (5, 0.5), (11, 2.0)]):
        z = (bins - 1) // 2
        w = np.clip(np.round(rng.laplace(0, scale, (64, 32))), -z, z).astype(np.int64) + z
        tensors.append(ctr.tans_tensor(f"t{i}", w, log2_states=8, lanes=32, lane_axis=1,
                                       quant=fmt.QUANT_ZERO_POINT, bins=bins, zero_point=z,
                                       steps=[0.01 * (i + 1)]))
    path.parent.mkdir(parents=True, exist_ok=True)
    ctr.write(path, ctr.Container(tensors))
    return path


def test_table_loads_hidden_behind_decoding(demo: Path) -> None:
    """Back-to-back l = 256 coded tensors, the second one damaged: each next table loads into the
    other bank while the current tensor decodes, so the gap from one tensor's last weight to the
    next one's first is the decoder's start-up, far below the 256 cycles of a table load; the
    damaged tensor is flagged and the tensors after it decode exactly (checked in the testbench)."""
    from hw.fetch.image import build_image

    descs = build_image(ctr.read(run_container(demo, "banks"))).descriptors
    assert [d.log2_states for d in descs] == [8] * 4 and all(d.table_bytes == 512 for d in descs)
    res = run(demo, "banks")
    lays = res["layers"]
    assert [l["error"] for l in lays] == [0, 1, 0, 0] and [l["crc_error"] for l in lays] == [0, 1, 0, 0]
    assert res["status"]["layers_done"] == 4 and res["status"]["layers_failed"] == 1
    gaps = [b["first_cycle"] - a["last_cycle"] for a, b in zip(lays, lays[1:])]
    assert max(gaps) < 64, f"cycles from a tensor's last weight to the next one's first: {gaps}"
    assert lays[0]["first_cycle"] > 256      # the first table is not hidden: nothing decodes before it
