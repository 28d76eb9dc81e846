"""Codebook and tuple-coded tensors through the Verilated fetch path (FORMAT.md 2.3c, docs/FETCH.md).

One build (P = 2, tuples up to 4, a 256-entry codebook memory of 16-bit levels) streams a model of
real encoded tensors: codebook levels (8- and 16-bit), zero-point and codebook tensors in tuples of
2, 3 and 4 with ragged lane tails, a plain zero-point tensor and a raw 8-bit one. The testbench
checks every delivered weight against the golden decode (expected_stream) bit for bit.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from sw import container as ctr
from sw.container.codebook import dead_zone_levels

from hw.fetch.dequant import DequantParams
from hw.fetch.image import build_image
from sim.tb.build_fetch import params_for

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("TANS_SIM_BUILD", ROOT / "build" / "sim")) / "fetch_p2_tuples"
PARAMS = params_for(2, log2_states=8, lanes=64)
DQ = DequantParams(max_tuple=4, codebook_depth=256, level_bits=16)

pytestmark = pytest.mark.skipif(not shutil.which("verilator"), reason="verilator is not installed")


def model(path: Path) -> Path:
    """The test model: one tensor per case, each a real tANS record."""
    rng = np.random.default_rng(15)
    peaked = [0.04, 0.16, 0.6, 0.16, 0.04]
    t = [
        ctr.codebook_tensor("cb1_wide", rng.integers(0, 5, (6, 8, 3)), [-300, -7, 0, 5, 9000],
                            rng.uniform(0.01, 0.1, 6).astype(np.float32), 0, lanes=8, lane_axis=1),
        ctr.tans_tensor("zp2_ragged", rng.choice(5, (9, 6, 3), p=peaked), log2_states=7, lanes=4, quant=1,
                        bins=5, zero_point=2, steps=np.float32([0.5]), tuple_size=2),
        ctr.codebook_tensor("cb3_deadzone", rng.choice(5, (10, 7), p=peaked), dead_zone_levels(5, 1),
                            np.float32([0.02]), lanes=7, lane_axis=1, tuple_size=3),
        ctr.codebook_tensor("cb4", rng.integers(0, 3, (13, 5)), [-1, 0, 2], np.float32([0.1]),
                            lanes=5, lane_axis=1, tuple_size=4),
        ctr.tans_tensor("zp1", rng.choice(5, (7, 16), p=peaked), lanes=16, lane_axis=1, quant=1, bins=5,
                        zero_point=2, steps=np.float32([0.25])),
        ctr.int8_tensor("raw", rng.integers(-128, 128, (5, 7)), np.float32([0.01])),
        ctr.tans_tensor("zp2_wide", rng.choice(5, (24, 16, 3), p=peaked), lanes=16, lane_axis=1, quant=1,
                        bins=5, zero_point=2, steps=np.float32([0.3]), tuple_size=2),
    ]
    ctr.write(path, ctr.Container(t))
    return path


def _models(folder: Path) -> tuple[Path, Path]:
    """The test model and the 16-lane pair-coded tensor alone (for the throughput run)."""
    tuples = model(folder / "tuples.tans")
    pairs = folder / "pairs.tans"
    ctr.write(pairs, ctr.Container([ctr.read(tuples)["zp2_wide"]]))
    return tuples, pairs


#: the tests that read the testbench runs
USES_RUNS = ("test_tuple_and_codebook_tensors_bit_exact", "test_pairs_deliver_n_times_p_weights_per_cycle")


def start_early(session, items):
    """Called by conftest before the first test: the build, then the two testbench runs, each in
    its own process of the session's shared queue (a file lock guards the build)."""
    from conftest import build_fetch_locked, fetch_run_one_build_at_a_time, shared_jobs
    if items and not any(i.name in USES_RUNS for i in items):
        return None
    tuples, pairs = _models(session.config._tmp_path_factory.mktemp("fetch_tuples_runs"))
    BUILD.parent.mkdir(parents=True, exist_ok=True)
    lock = str(BUILD.parent / "fetch_p2_tuples.lock")
    pool = shared_jobs("tuples:")
    pool.submit("build", build_fetch_locked, lock, PARAMS, BUILD, DQ, priority=0)   # the longest build
    pool.submit("stalls", fetch_run_one_build_at_a_time, lock, tuples, PARAMS, BUILD, DQ, ar_pause=0.1,
                r_pause=0.1, out_stall=0.1, seed=5, golden=True, priority=3)
    pool.submit("full", fetch_run_one_build_at_a_time, lock, pairs, PARAMS, BUILD, DQ, seed=1, priority=3)
    return pool


@pytest.fixture(scope="module")
def runs(request):
    """The two testbench runs, started early by conftest (or now)."""
    from conftest import early_pool
    return early_pool(request, start_early)


@pytest.fixture(scope="module")
def tuples_model(tmp_path_factory) -> Path:
    return model(tmp_path_factory.mktemp("fetch_tuples") / "tuples.tans")


def test_image_describes_codebooks_and_tails(tuples_model: Path) -> None:
    """The image's codebook sections and tail figures (no simulation)."""
    c = ctr.read(tuples_model)
    im = build_image(c)
    d = dict(zip(im.names, im.descriptors))
    assert d["cb1_wide"].cb_wide == 1 and d["cb1_wide"].tuple_size == 1 and d["cb1_wide"].cb_entries == 5
    assert d["zp1"].cb_bytes == 0 and d["raw"].cb_bytes == 0
    z = d["zp2_ragged"]          # 162 weights over 4 lanes: 41, 41, 40, 40 -> pairs, tails 1 and 2
    assert (z.tuple_size, z.long_lanes, z.last_round_long, z.tail_long, z.tail_short) == (2, 2, 20, 1, 2)
    assert d["cb4"].cb_entry_log2 == 2 and d["cb3_deadzone"].cb_entry_log2 == 2   # 4 x 8 bits, 3 x 8 bits
    for i, name in enumerate(im.names):
        assert d[name].total_bytes == len(im.region(i))


def test_tuple_and_codebook_tensors_bit_exact(tuples_model: Path, runs) -> None:
    """Random bus latency and compute-side stalls: every weight of every tensor equals the scalar
    golden decoder's (checked in the testbench; the tuple rounds advance only on beats taken)."""
    res = runs.result("stalls")
    st = res["status"]
    n = len(ctr.read(tuples_model).tensors)
    assert st["layers_done"] == n and st["layers_failed"] == 0 and st["error"] == 0 and st["crc_error"] == 0
    assert st["weights_out"] == res["total_weights"]


def test_pairs_deliver_n_times_p_weights_per_cycle(runs) -> None:
    """At full bus speed a 16-lane tensor coded in pairs delivers close to N·P = 4 weights per cycle
    (P = 2 symbols per cycle, two weights each)."""
    (lay,) = runs.result("full")["layers"]
    rate = lay["weights"] / (lay["last_cycle"] - lay["first_cycle"] + 1)
    assert rate >= 0.95 * 2 * PARAMS.units, f"{rate:.2f} weights/cycle"


def test_build_parameters_are_recorded(tuples_model: Path) -> None:
    """`hw.build --fetch` records the dequantizer's parameters and the widened weight beat; `--for`
    picks them from a model (no Verilog is written here)."""
    from hw.build import describe_fetch, dequant_for
    from hw.fetch.top import WeightFetch

    cores = [WeightFetch(PARAMS, dq=DQ), WeightFetch(PARAMS)]
    for core in cores:
        core._MustUse__silence = True          # described (its ports), not elaborated
    meta = describe_fetch(cores[0])
    assert {k: meta["fetch_params"][k] for k in ("max_tuple", "codebook_depth", "level_bits")} == DQ.to_dict()
    beat = meta["ports"]["weights"]
    assert beat["data"]["width"] == PARAMS.units * DQ.max_tuple * DQ.level_bits
    need, _why = dequant_for(tuples_model)
    assert need == {"max_tuple": 4, "codebook_depth": 128, "level_bits": 16}
    plain = describe_fetch(cores[1])
    assert plain["ports"]["weights"]["data"]["width"] == PARAMS.units * 8
