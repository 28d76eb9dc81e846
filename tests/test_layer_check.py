"""A coded layer of a trained network through the Verilated core, as `python -m sw run` does it."""
from pathlib import Path

import numpy as np

from sim.layer_check import check_tensor, load_coded, save_coded, smallest_coded_tensor
from sw import container as ct
from sw.tans.codec import Coded


def test_save_load_roundtrip(tmp_path):
    t = ct.read(Path(__file__).parent / "golden" / "weights.tans")["conv.weight"]
    save_coded(t.coded, tmp_path / "c.npz")
    back = load_coded(tmp_path / "c.npz")
    assert back.payload == t.coded.payload and np.array_equal(back.norm, t.coded.norm)


def test_trained_layer_is_bit_exact_and_damage_is_caught():
    from sim.system_demo import cached_demo
    c = ct.read(cached_demo())
    layer = smallest_coded_tensor(c)
    res = check_tensor(layer)
    assert res["bit_exact"] and res["symbols"] == layer.size and res["mismatches"] == 0
    # the same check fails on a damaged stream: the comparison can fail
    data = bytearray(layer.coded.payload)
    data[len(data) // 3] ^= 0x24
    c2 = layer.coded
    layer.coded = Coded(c2.log2_states, c2.lanes, c2.n_symbols, c2.norm, bytes(data), c2.payload_bits)
    bad = check_tensor(layer)
    assert not bad["bit_exact"] and bad["golden_failed"] and bad["hardware_error"]
