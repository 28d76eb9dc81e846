"""Regenerate the golden vectors in tests/golden/ (run only on a deliberate format change).

    python tests/make_golden.py
"""
from pathlib import Path

import numpy as np

from sw import container as ct
from sw.tans import format as fmt

HERE = Path(__file__).parent / "golden"

CASES = {
    # name: (symbols, log2_states, lanes)
    "tiny_l32_1lane": (np.array([0, 1, 0, 0, 2, 0, 1, 0, 0, 0, 3, 0], dtype=np.uint8), 5, 1),
    "peaked_l256_7lanes": (np.random.default_rng(11).choice(5, size=(9, 23), p=[.05, .1, .7, .1, .05]).astype(np.int16), 8, 7),
    "single_symbol_l64": (np.full((3, 5), 4, dtype=np.int32), 6, 2),
    "wide_l1024_64lanes": (np.random.default_rng(12).integers(0, 300, 2000).astype(np.uint16), 10, 64),
}


def weights_case() -> ct.Container:
    """A quantized conv weight with per-input-channel lanes and per-output-channel steps."""
    rng = np.random.default_rng(13)
    sym = rng.choice(7, size=(4, 3, 3, 3), p=[.02, .08, .15, .5, .15, .08, .02])
    w = ct.tans_tensor("conv.weight", sym, log2_states=8, lanes=3, lane_axis=1,
                       quant=fmt.QUANT_ZERO_POINT, bins=7, zero_point=3,
                       steps=np.array([0.5, 0.25, 0.125, 1.0], np.float32), step_axis=0)
    raw = ct.int8_tensor("fc.weight", rng.integers(-128, 128, (2, 5)), np.float32(0.01))
    b = ct.f32_tensor("fc.bias", np.array([0.5, -1.25], np.float32))
    return ct.Container([w, raw, b], {"model": "golden"})


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for name, (sym, k, lanes) in CASES.items():
        ct.write(HERE / f"{name}.tans", ct.Container([ct.tans_tensor(name, sym, log2_states=k, lanes=lanes)]))
        np.save(HERE / f"{name}.npy", sym)
    c = weights_case()
    ct.write(HERE / "weights.tans", c)
    np.savez(HERE / "weights.npz", **{t.name: t.values() for t in c.tensors})


if __name__ == "__main__":
    main()
