"""HEMP on a finished Fracbits QAT model: its quantizer kept, HEMP's n-th order entropy regularizer instead of Eq. 3.

`hemp_from_qat` starts from a `train` checkpoint of the QAT method (phase done): its learned
per-channel clips, its per-layer bins (frozen) and its weights. `HempRefineTrainer` then trains
for `hemp_epochs` epochs through the QAT quantizer (the forward pass of QAT's fine-tuning,
straight-through rounding, Adam at the QAT `lr` on weights and clips) on
J = L + lambda_H H_n + lambda_E E, where H_n is HEMP's differentiable n-th order entropy
(sw.quant.hemp, Eq. 8 with the explicit gradient Eq. 17) of every coded layer's quantization
indices over the n-tuples the code scans, computed in index units (w / step per channel against
the integer levels -k..k, so per-channel steps need no per-layer level vector); E is the RMS
reconstruction error (Eq. 25) and R's gradient on the weights is re-weighted by the
insensitivity (Eq. 27). H_n also reaches the clips through the step. The last epoch is kept (the
rate keeps falling; nothing is chosen). At the end every coded layer's bins are trimmed to the
levels its weights use (`trim_bins`: 2 max|index| + 1, the clip moved so that the step and every
weight's reconstruction stay bit for bit the same), because a pair code's table has a count for
each of up to bins^2 pairs. The result is an ordinary QAT-quantized checkpoint: `compress` (and
`compress --tuple N`) codes it as usual.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sw.data.datasets import Dataset
from sw.methods.hemp import HEMP_PHASES, LOG_ORDERS, HempConfig, HempTrainer, layer_order_entropies
from sw.methods.layout import lanes_for
from sw.methods.qat import make_optimizer
from sw.quant import QuantizedModel
from sw.quant.hemp import hemp_entropy, insensitivity, scan_order
from sw.train import load_checkpoint, save_checkpoint
from sw.train.loop import accuracy, batches, set_threads

INIT_FROM_QAT = "qat"     #: HempConfig.init_from of a run started from a QAT checkpoint
DEFAULT_EPOCHS = 4        #: HEMP epochs on a QAT model unless the caller gives hemp_epochs


def index_coordinates(qmodel: QuantizedModel, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(w / step, the integer levels -k..k as float64, w's hard reconstruction) of a coded layer.

    w / step is differentiable in the weights and the clip; the levels are one vector per layer,
    so the quantizer must have one precision per layer and no dead zone (else ValueError)."""
    q, w = qmodel.quantizer(name), qmodel.weight(name)
    if q.lam.numel() != 1 or q.dead_zone:
        raise ValueError(f"{name}: HEMP on a QAT model needs one precision per layer and plain rounding "
                         "(no per-channel bins, no dead zone)")
    w_q, _, step = q.quantize(w)
    half = int(q.hard_half().max())
    levels = torch.arange(-half, half + 1, dtype=torch.float64)
    return w.to(torch.float64) / step.to(torch.float64), levels, w_q.detach()


def index_order_entropies(qmodel: QuantizedModel, orders=LOG_ORDERS, softness: float = 1.0) -> dict:
    """Per order k: proxy H_k and exact entropy of the hard indices in scan order, bits per weight (H_k / k),
    averaged over the coded layers weighted by their weights (in index units, see index_coordinates)."""
    with torch.no_grad():
        layers = [index_coordinates(qmodel, n)[:2] for n in qmodel.coded_names()]
    return layer_order_entropies(layers, orders, softness)


@torch.no_grad()
def trim_bins(qmodel: QuantizedModel) -> dict[str, tuple[int, int]]:
    """Shrink each coded layer's bins to the levels its weights use, step and reconstruction unchanged.

    Returns {layer: (old bins, new bins)} of the trimmed layers. A layer is left alone when it
    has per-channel bins or a dead zone, already uses its outer levels, or (float rounding) the trimmed
    quantizer would not reproduce its weights exactly."""
    out = {}
    for n in qmodel.coded_names():
        q, w = qmodel.quantizer(n), qmodel.weight(n).detach()
        if q.lam.numel() != 1 or q.dead_zone:
            continue
        w_q, idx, step = q.quantize(w)
        old = int(q.hard_half().max())
        new = max(q.min_half, int(idx.abs().max()))
        if new >= old:
            continue
        lam, clip = q.lam.detach().clone(), q.clip.detach().clone()
        q.lam.fill_(float(new))
        q.clip.copy_((torch.broadcast_to(step, w.shape).reshape(w.shape[0], -1)[:, 0] if q.clip.numel() > 1
                      else step.reshape(-1)[:1]) * new)
        w_q2, idx2, step2 = q.quantize(w)
        if torch.equal(w_q2, w_q) and torch.equal(idx2, idx) and torch.equal(torch.broadcast_to(step2, w.shape),
                                                                             torch.broadcast_to(step, w.shape)):
            out[n] = (2 * old + 1, 2 * new + 1)
        else:
            q.lam.copy_(lam)
            q.clip.copy_(clip)
    return out


class HempRefineTrainer(HempTrainer):
    """HEMP's regularizer on a QAT model (phase hemp, then done); per-epoch checkpoints, resumable."""

    def __init__(self, cfg: HempConfig, checkpoint: str | Path, data: Dataset | None = None,
                 progress: bool = True, log=print) -> None:
        if cfg.lloyd:
            raise ValueError("HEMP from a QAT model keeps the QAT's uniform grid: no --lloyd")
        super().__init__(cfg, checkpoint, data, progress, log)

    @classmethod
    def resume(cls, checkpoint: str | Path, data: Dataset | None = None, progress: bool = True,
               log=print, overrides: dict | None = None) -> "HempRefineTrainer":
        """Continue a HEMP-on-QAT checkpoint (its bins frozen again, as the QAT's fine-tuning left them)."""
        t = super().resume(checkpoint, data, progress, log, overrides)
        if t.phase not in ("hemp", "done"):
            raise ValueError(f"{checkpoint}: a HEMP run from a QAT model has no phase {t.phase!r}")
        t.qmodel.freeze_bins()                  # the QAT's final bins, as its fine-tuning used them
        return t

    def run(self, stop_after: str | None = None) -> dict:
        """Run (or finish) the HEMP epochs on the QAT model; returns the results dict."""
        set_threads()
        self.qmodel.freeze_bins()
        if self.phase == "hemp":
            opt = make_optimizer(self.qmodel, self.cfg)
            self._resume_optimizer(opt)
            n_epochs = self.cfg.hemp_epochs
            bar = tqdm(range(self.epoch, n_epochs), desc="hemp    ", disable=not self.progress,
                       initial=self.epoch, total=n_epochs, leave=True, dynamic_ncols=True)
            for ep in bar:
                rec = self._refine_epoch(opt, ep)
                self._after_epoch(rec, ep, bar, opt)
            bar.close()
            if self.cfg.trim_bins:
                trimmed = trim_bins(self.qmodel)
                self.results["trimmed_bins"] = {n: list(v) for n, v in trimmed.items()}
            self._end_hemp("hemp")
            self.phase, self.epoch = "done", 0
            save_checkpoint(self.path, self.state(None))
        return self.results

    def regularizer(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(R, H_n, E) of the coded layers in index units (H_n weighted by layer size; E in weight units)."""
        names = self.qmodel.coded_names()
        total = sum(self.qmodel.weight(n).numel() for n in names)
        h = torch.zeros((), dtype=torch.float64)
        sq = torch.zeros((), dtype=torch.float64)
        for name in names:
            x, levels, w_q = index_coordinates(self.qmodel, name)
            if name not in self._orders:
                self._orders[name] = scan_order(tuple(x.shape), *lanes_for(tuple(x.shape)), self.cfg.order)
            tuples = x.reshape(-1)[self._orders[name]]
            h = h + (x.numel() / total) * hemp_entropy(tuples, levels, self.cfg.softness)
            w = self.qmodel.weight(name)
            sq = sq + ((w.to(torch.float64) - w_q.to(torch.float64)) ** 2).sum()
        e = torch.sqrt(sq / max(1, total) + 1e-30)
        return self.cfg.lam_h * h + self.cfg.lam_e * e, h, e

    def _refine_epoch(self, opt: torch.optim.Optimizer, ep: int) -> dict:
        """One epoch of L through the QAT quantizer plus R (insensitivity-weighted on the weights)."""
        d, cfg = self.data, self.cfg
        self._orders: dict[str, torch.Tensor] = {}
        self.qmodel.train()
        names = self.qmodel.coded_names()
        ws = [self.qmodel.weight(n) for n in names]
        clips = [self.qmodel.quantizer(n).clip for n in names]
        total, count, rsum = 0.0, 0, 0.0
        for idx in batches(len(d.x_train), cfg.hemp_batch_size, cfg.seed * 1000 + 700 + ep):
            loss = F.cross_entropy(self.qmodel(d.x_train[idx]), d.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            r, _, _ = self.regularizer()
            grads = torch.autograd.grad(r, ws + clips, allow_unused=True)
            with torch.no_grad():
                for i, (p, g) in enumerate(zip(ws + clips, grads)):
                    if g is None:
                        continue
                    weight = i < len(ws)          # Eq. 27 re-weights the weights' gradient, not the clips'
                    scale = insensitivity(p.grad) if weight and cfg.insensitive and p.grad is not None else 1.0
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                    p.grad.add_((scale * g).to(p.dtype))
            opt.step()
            self.qmodel.clamp_()
            total += float(loss.detach()) * len(idx)
            rsum += float(r.detach()) * len(idx)
            count += len(idx)
        self.qmodel.eval()
        ents = index_order_entropies(self.qmodel, LOG_ORDERS, cfg.softness)
        with torch.no_grad():
            _, _, e = self.regularizer()
        rec = {"phase": "hemp", "epoch": ep + 1, "loss": total / max(1, count), "reg": rsum / max(1, count),
               "val_acc": accuracy(self.qmodel, d.x_val, d.y_val) if d.x_val is not None else None,
               "acc": accuracy(self.qmodel, d.x_test, d.y_test),            # logged, never used to choose
               "E": float(e), "bpw": ents[1]["exact"]}
        for k, v in ents.items():
            rec[f"h{k}"], rec[f"h{k}_proxy"] = v["exact"], v["proxy"]
        return rec

    def _end_hemp(self, phase: str = "hemp") -> None:
        """Results of the run (its last epoch): accuracy and the exact entropy of order 1..4."""
        d = self.data
        self.qmodel.eval()
        if d.x_val is not None:
            self.results["hemp_val_accuracy"] = accuracy(self.qmodel, d.x_val, d.y_val)
        acc = accuracy(self.qmodel, d.x_test, d.y_test)
        ents = index_order_entropies(self.qmodel, LOG_ORDERS, self.cfg.softness)
        self.results.update(hemp_accuracy=acc, entropy_bits_per_weight=ents[1]["exact"],
                            block_entropy_bits_per_weight={str(k): v["exact"] for k, v in ents.items()},
                            bins=self.qmodel.bins(), lloyd=False, init_from=INIT_FROM_QAT)
        self.log(f"{phase}: {acc:.2f}% test accuracy, entropy per weight of order 1..4 "
                 + " / ".join(f"{v['exact']:.3f}" for v in ents.values()) + f" bits, bins {self.qmodel.bins()}")


def hemp_from_qat(qat_ckpt: str | Path, checkpoint: str | Path, overrides: dict,
                  data: Dataset | None = None, progress: bool = False, log=lambda *a, **k: None) -> HempRefineTrainer:
    """A HEMP run on a finished QAT checkpoint (its weights, clips and frozen bins), written to `checkpoint`."""
    state = load_checkpoint(qat_ckpt)
    cfg0 = state["config"]
    if cfg0.get("method") == "hemp" or state.get("codebooks"):
        raise ValueError(f"{qat_ckpt}: not a QAT checkpoint (it was trained by HEMP)")
    if state["phase"] != "done":
        raise ValueError(f"{qat_ckpt}: the QAT run is not finished (phase {state['phase']!r})")
    if Path(qat_ckpt).resolve() == Path(checkpoint).resolve():
        raise ValueError("the HEMP checkpoint must not overwrite the QAT checkpoint it starts from")
    cfg = HempConfig.from_dict({**cfg0, "method": "hemp", "lloyd": False, "finetune_epochs": 0,
                                "hemp_epochs": DEFAULT_EPOCHS, **overrides, "init_from": INIT_FROM_QAT})
    # the QAT's results stay in its own checkpoint: a container copies `results` into its metadata
    state.update(phase="hemp", epoch=0, best=None, optimizer=None, teacher=None, config=asdict(cfg),
                 codebooks={}, results={}, history=[])
    save_checkpoint(checkpoint, state)
    return HempRefineTrainer.resume(checkpoint, data=data, progress=progress, log=log)


__all__ = ["DEFAULT_EPOCHS", "HEMP_PHASES", "INIT_FROM_QAT", "HempRefineTrainer", "hemp_from_qat", "index_coordinates",
           "index_order_entropies", "trim_bins"]
