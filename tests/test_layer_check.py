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


def test_trained_layers_are_bit_exact_and_damage_is_caught():
    """Every coded layer of a trained network through one core, then a damaged copy of one."""
    from sim.model.demo import cached_demo
    layers = coded_tensors(ct.read(cached_demo()))
    first = layers[0]
    c = first.coded
    data = bytearray(c.payload)
    data[len(data) // 3] ^= 0x24
    damaged = ct.Tensor(first.name + ".damaged", first.shape, first.dtype, first.kind, first.quant,
                        first.bins, first.zero_point, first.step_axis, first.steps, first.lane_axis,
                        Coded(c.log2_states, c.lanes, c.n_symbols, c.norm, bytes(data), c.payload_bits))
    res = check_tensors(layers + [damaged] + layers[:1])
    for r, t in zip(res, layers):
        assert r["bit_exact"] and r["symbols"] == t.size and r["mismatches"] == 0, r
    bad = res[len(layers)]
    assert not bad["bit_exact"] and bad["golden_failed"] and bad["hardware_error"]
    assert res[-1]["bit_exact"]        # the core decodes correctly again right after the error
