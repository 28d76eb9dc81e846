"""A coded layer of a trained network through the Verilated core, as `python -m sw run` does it."""
from pathlib import Path

import numpy as np

from sim.layer_check import check_tensors, coded_tensors, load_coded, save_coded
from sw import container as ct
from sw.tans.codec import Coded


def test_save_load_roundtrip(tmp_path):
    t = ct.read(Path(__file__).parent / "golden" / "weights.tans")["conv.weight"]
    save_coded(t.coded, tmp_path / "c.npz")
    back = load_coded(tmp_path / "c.npz")
    assert back.payload == t.coded.payload and np.array_equal(back.norm, t.coded.norm)


def damaged_run() -> tuple[list[int], list[dict]]:
    """Every coded layer of the demo network through one core, then a damaged copy of the first
    and the first again: (the layers' sizes, the per-tensor results)."""
    from sim.model.demo import cached_demo
    layers = coded_tensors(ct.read(cached_demo()))
    first = layers[0]
    c = first.coded
    data = bytearray(c.payload)
    data[len(data) // 3] ^= 0x24
    damaged = ct.Tensor(first.name + ".damaged", first.shape, first.dtype, first.kind, first.quant,
                        first.bins, first.zero_point, first.step_axis, first.steps, first.lane_axis,
                        Coded(c.log2_states, c.lanes, c.n_symbols, c.norm, bytes(data), c.payload_bits))
    return [t.size for t in layers], check_tensors(layers + [damaged] + layers[:1])


def start_early(session, items):
    """Called by conftest before the first test: the Verilated run in its own process of the
    session's shared queue (cocotb's runner sets environment variables)."""
    if not any(i.name == "test_trained_layers_are_bit_exact_and_damage_is_caught" for i in items):
        return None
    from conftest import shared_jobs
    pool = shared_jobs("layers:")
    pool.submit("damaged", damaged_run, priority=2)      # builds its own core: 20 s
    return pool


def test_trained_layers_are_bit_exact_and_damage_is_caught(request):
    """Every coded layer of a trained network through one core, then a damaged copy of one."""
    import conftest
    pool = conftest.EARLY.get(request.module.__name__)
    sizes, res = pool.result("damaged") if pool is not None else damaged_run()
    for r, size in zip(res, sizes):
        assert r["bit_exact"] and r["symbols"] == size and r["mismatches"] == 0, r
    bad = res[len(sizes)]
    assert not bad["bit_exact"] and bad["golden_failed"] and bad["hardware_error"]
    assert res[-1]["bit_exact"]        # the core decodes correctly again right after the error
