"""A small trained demo network (MLP on sklearn digits) stored as a `.tans` container.

Stands in for the training pipeline's LeNet-5 until it exists: real trained weights,
quantized with a zero-point quantizer and tANS-coded with one lane per input channel
(hidden layers), the classifier kept as raw 8-bit, biases as float32.
Run `python -m sim.model.demo OUT.tans` to write it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sw import container
from sw.tans import format as fmt

#: (name, fan_in, fan_out, bins or None for raw 8-bit, log2_states)
LAYERS: list[tuple[str, int, int, int | None, int]] = [
    ("fc1", 64, 128, 7, 7),
    ("fc2", 128, 64, 5, 6),
    ("fc3", 64, 10, None, 0),
]


def train_mlp(seed: int = 0, epochs: int = 30) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Train a float MLP on sklearn digits; return weights (out, in), biases and test accuracy."""
    import torch
    from sklearn.datasets import load_digits

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    tr, te = perm[:1500], perm[1500:]
    mods: list[torch.nn.Module] = []
    for i, (_, fin, fout, _, _) in enumerate(LAYERS):
        mods.append(torch.nn.Linear(fin, fout))
        if i < len(LAYERS) - 1:
            mods.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(epochs):
        for b in torch.split(tr[torch.randperm(len(tr))], 100):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[b]), y[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = float((net(x[te]).argmax(1) == y[te]).float().mean())
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    return ([m.weight.detach().numpy().copy() for m in lin],
            [m.bias.detach().numpy().copy() for m in lin], acc)


def quantize_zero_point(w: np.ndarray, bins: int) -> tuple[np.ndarray, float]:
    """Symbols in 0..bins-1 and the per-tensor step of a symmetric zero-point quantizer."""
    zp = (bins - 1) // 2
    step = float(np.percentile(np.abs(w), 99.5)) / zp
    return np.clip(np.round(w / step) + zp, 0, bins - 1).astype(np.int64), step


def build_demo(seed: int = 0) -> container.Container:
    """Train the MLP and pack it as a container (tANS hidden layers, raw 8-bit classifier)."""
    weights, biases, acc = train_mlp(seed)
    tensors = []
    for (name, _, _, bins, k), w, b in zip(LAYERS, weights, biases):
        if bins is None:
            step = float(np.abs(w).max()) / 127
            q = np.clip(np.round(w / step), -127, 127).astype(np.int8)
            tensors.append(container.int8_tensor(f"{name}.weight", q, [step]))
        else:
            sym, step = quantize_zero_point(w, bins)
            tensors.append(container.tans_tensor(
                f"{name}.weight", sym, log2_states=k, lanes=w.shape[1], lane_axis=1,
                quant=fmt.QUANT_ZERO_POINT, bins=bins, zero_point=(bins - 1) // 2, steps=[step]))
        tensors.append(container.f32_tensor(f"{name}.bias", b))
    return container.Container(tensors, {"model": "mlp-digits", "float_test_accuracy": acc,
                                         "layers": [l[0] for l in LAYERS]})


def _code_hash() -> str:
    """Hash of the codec, container and this file: a cached demo is rebuilt when they change."""
    import hashlib

    import sw.tans

    h = hashlib.sha256()
    files = sorted(Path(sw.tans.__file__).parent.glob("*.py"))
    files += sorted(Path(container.__file__).parent.glob("*.py")) + [Path(__file__)]
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def demo_path(directory: str | Path, seed: int = 0) -> Path:
    """Write (once per codec version) the demo container into `directory`; return its path."""
    path = Path(directory) / f"mlp_digits_s{seed}_{_code_hash()}.tans"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        container.write(path, build_demo(seed))
    return path


def cached_demo(seed: int = 0) -> Path:
    """The demo container in the shared build cache ($TANS_SIM_BUILD or build/sim)."""
    import os

    root = Path(os.environ.get("TANS_SIM_BUILD", Path(__file__).resolve().parents[2] / "build" / "sim"))
    return demo_path(root / "demo", seed)


def main() -> None:
    """CLI: write the demo container."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    container.write(args.out, build_demo(args.seed))


if __name__ == "__main__":
    main()
