"""HEMP training (Tartaglione et al.): continuous weights regularized by the n-th order entropy of their quantization.

Phases: the float baseline (the same as the QAT method's, so both start from the same model),
then HEMP: the network is trained with its continuous weights (paper Fig. 1) on
J = L + lambda_H H_n + lambda_E E (Eq. 24-26), where H_n is the differentiable n-th order
entropy (sw.quant.hemp, Eq. 8 with the explicit gradient Eq. 17) of each coded layer's
quantization indices over the n-tuples the code scans (consecutive weights within a lane), E
the reconstruction error Eq. 25, and the gradient of R re-weighted per parameter by the
insensitivity Eq. 27 (the max taken per layer). Optimizer: SGD with momentum 0.9, lr 1e-2,
batch 100 (the paper's settings). Then `finetune_epochs` (not in the paper; 0 turns it off) train
through the quantized weights (straight-through), R still on and the levels fixed, so the
quantized network recovers what the continuous one learned. The quantized model (nearest level
per weight) is what `compress` codes. E and H_n cover the coded layers only.

Levels per coded layer: a uniform zero-point grid (bins = --init-bins, one step per layer,
fixed from the float weights), or with `lloyd` a Lloyd-max codebook (sw.quant.lloyd) fitted to
the float weights and refitted at the start of every HEMP epoch, stored in the checkpoint
("codebooks") and in the container as a codebook tensor. First and last layers stay 8-bit.

H_n here is each coded layer's own entropy (the code has one table per layer), averaged over
the layers weighted by their number of weights; bits per tuple as in the paper.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call
from tqdm import tqdm

from sw.data.datasets import Dataset
from sw.methods.layout import lanes_for
from sw.methods.qat import Trainer, TrainConfig
from sw.quant import QuantConfig, QuantizedModel
from sw.quant.entropy import entropy_bits_per_symbol
from sw.quant.hemp import (block_entropy, hemp_entropy, insensitivity, nearest_indices,
                           reconstruction_error, scan_order)
from sw.quant.lloyd import MAX_LEVEL, fit_levels
from sw.train import load_checkpoint, save_checkpoint
from sw.train.loop import accuracy, batches, set_threads

HEMP_PHASES = ("float", "hemp", "finetune", "done")
LOG_ORDERS = (1, 2, 3, 4)      #: entropy orders logged every epoch (paper Fig. 6)
LLOYD_GRID = 16                #: Lloyd-max levels sit on the uniform step / 16


@dataclass
class HempConfig(TrainConfig):
    """A HEMP run: the QAT method's float settings plus the regularizer's (stored in the checkpoint)."""

    method: str = "hemp"
    order: int = 2                   #: n of H_n (1..4)
    lam_h: float = 1.0               #: lambda_H (paper: 1)
    lam_e: float = 0.1               #: lambda_E (paper: 0.1)
    softness: float = 1.0            #: soft binning width (1: the paper's Eq. 7)
    insensitive: bool = True         #: re-weight dR/dw by the insensitivity (Eq. 27)
    hemp_epochs: int = 8
    hemp_lr: float = 1e-2            #: SGD (paper)
    momentum: float = 0.9
    hemp_batch_size: int = 100
    lloyd: bool = False              #: Lloyd-max levels, refitted every epoch
    finetune_epochs: int = 3         #: then epochs with the quantized forward pass (STE), R still on, levels fixed
    init_from: str = "float"         #: "float": HEMP after the float baseline; "qat": on a QAT model (sw.methods.hemp_refine)
    trim_bins: bool = True           #: on a QAT model: end with each coded layer's bins cut to the levels it uses

    @classmethod
    def from_dict(cls, d: dict) -> "HempConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def hemp_quant(bins: int, code_first_last: bool = False) -> dict:
    """Quantizer settings of a HEMP model: fixed bins, one step per layer (8-bit mantissa)."""
    return QuantConfig(init_bins=bins, learn_bins=False, per_channel_scale=False, soft_entropy=False,
                       code_first_last=code_first_last, min_bins=3, max_bins=255).to_dict()


class HempModel(QuantizedModel):
    """A QuantizedModel whose coded layers may use codebooks (Lloyd-max levels times a fine step)."""

    def __init__(self, base, config=None, codebooks: dict | None = None) -> None:
        super().__init__(base, config)
        self.codebooks: dict[str, dict] = dict(codebooks or {})   # name -> {"levels": [int], "step": float}

    def uniform_step(self, name: str) -> torch.Tensor:
        """The zero-point step of a layer's quantizer (its clip fixed from the weights it first saw)."""
        q = self.quantizer(name)
        with torch.no_grad():
            return q.quantize(self.weight(name).detach())[2].reshape(-1)[0].to(torch.float64)

    def levels(self, name: str) -> torch.Tensor:
        """Sorted reconstruction values (float64) of a coded layer."""
        cb = self.codebooks.get(name)
        if cb is not None:
            return torch.tensor(cb["levels"], dtype=torch.float64) * float(torch.tensor(cb["step"], dtype=torch.float32))
        half = int(self.quantizer(name).hard_half().max())
        return torch.arange(-half, half + 1, dtype=torch.float64) * self.uniform_step(name)

    def quantized_weights(self) -> dict[str, torch.Tensor]:
        """Every quantized layer's reconstruction (nearest level / its quantizer), detached."""
        out = {}
        with torch.no_grad():
            for n in self.names:
                w = self.weight(n).detach()
                if n in self.codebooks:
                    lv = self.levels(n)
                    out[n] = lv[nearest_indices(w.double(), lv)].to(w.dtype)
                else:
                    out[n] = self.quantizer(n).quantize(w)[0]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.codebooks:
            return super().forward(x)
        return functional_call(self.base, self.quantized_weights(), (x,), strict=False)

    def indices(self, name: str) -> torch.Tensor:
        """Level indices 0..bins-1 of a coded layer's weights (nearest level)."""
        lv = self.levels(name)
        return nearest_indices(self.weight(name).detach().double(), lv)

    def hard_entropy_bits(self) -> float:
        return sum(entropy_bits_per_symbol(self.indices(n)) * self.weight(n).numel() for n in self.coded_names())

    def export(self) -> dict[str, dict]:
        out = super().export()
        for n, cb in self.codebooks.items():
            idx = self.indices(n).numpy()
            levels = torch.tensor(cb["levels"], dtype=torch.int64).numpy()
            step = torch.tensor([cb["step"]], dtype=torch.float32).numpy()
            values = (levels[idx].astype("float64") * float(step[0])).astype("float32")
            out[n].update(indices=idx, levels=levels, integers=levels[idx], steps=step, per_channel=False,
                          bins=len(levels), group_bins=[len(levels)], values=values)
        return out


def checked_codebooks(codebooks: object, coded: list[str]) -> dict[str, dict]:
    """Codebooks read from a checkpoint (data): coded layer names, an odd number of strictly increasing
    integer levels within +-MAX_LEVEL with 0 in the middle, a positive finite float32 step; ValueError otherwise."""
    if not isinstance(codebooks, dict):
        raise ValueError("codebooks must be a dict")
    out = {}
    for name, cb in codebooks.items():
        if name not in coded or not isinstance(cb, dict):
            raise ValueError(f"codebook for {name!r}, which is not a coded layer")
        levels, step = cb.get("levels"), cb.get("step")
        if not isinstance(levels, list) or not 3 <= len(levels) <= 255 or len(levels) % 2 == 0 or \
                not all(isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_LEVEL for v in levels) or \
                any(b <= a for a, b in zip(levels, levels[1:])) or levels[len(levels) // 2] != 0:
            raise ValueError(f"codebook of {name!r}: levels must be an odd number (3..255) of increasing "
                             f"integers within +-{MAX_LEVEL}, the middle one 0")
        if not isinstance(step, float) or not math.isfinite(step) or not step > 0 or \
                float(torch.tensor(step, dtype=torch.float32)) != step:
            raise ValueError(f"codebook of {name!r}: the step must be a positive float32 value")
        out[name] = {"levels": list(levels), "step": step}
    return out


def with_codebooks(qmodel: QuantizedModel, codebooks: dict) -> HempModel:
    """The same model and quantizer state as a HempModel with (checked) `codebooks` (for `restore`)."""
    m = HempModel(qmodel.base, qmodel.config, checked_codebooks(codebooks, qmodel.coded_names()))
    m.load_state_dict(qmodel.state_dict())
    return m


def layer_order_entropies(layers: list[tuple[torch.Tensor, torch.Tensor]], orders=LOG_ORDERS,
                          softness: float = 1.0) -> dict:
    """Per order k: the proxy H_k and the exact entropy of the hard (nearest-level) indices, both in
    bits per weight (H_k / k), averaged over `layers` = [(weights, levels)] weighted by their sizes;
    tuples are taken in the code's scan order (the layer's lanes)."""
    total = sum(w.numel() for w, _ in layers)
    out = {}
    with torch.no_grad():
        for k in orders:
            proxy = exact = 0.0
            for w, lv in layers:
                order = scan_order(tuple(w.shape), *lanes_for(tuple(w.shape)), k)
                tuples = w.reshape(-1)[order]
                share = w.numel() / total
                proxy += share * float(hemp_entropy(tuples, lv, softness)) / k
                exact += share * block_entropy(nearest_indices(tuples, lv)) / k
            out[k] = {"proxy": proxy, "exact": exact}
    return out


def order_entropies(model: HempModel, orders=LOG_ORDERS, softness: float = 1.0) -> dict:
    """Per order k: the proxy H_k and the exact entropy of the hard indices of the coded layers."""
    return layer_order_entropies([(model.weight(n).detach().double(), model.levels(n))
                                  for n in model.coded_names()], orders, softness)


class HempTrainer(Trainer):
    """Float baseline, then HEMP; per-epoch checkpoints, `run()` resumes where a checkpoint stopped."""

    def _after_epoch(self, rec: dict, ep: int, bar, opt: torch.optim.Optimizer) -> None:
        """Record epoch `ep`, show its figures on the progress bar and save the checkpoint."""
        self.history.append(rec)
        self.epoch = ep + 1
        bar.set_postfix({k: (round(v, 3) if isinstance(v, float) else v) for k, v in rec.items()
                         if k in ("loss", "val_acc", "bpw", f"h{self.cfg.order}")})
        save_checkpoint(self.path, self.state(opt))

    def _resume_optimizer(self, opt: torch.optim.Optimizer) -> None:
        """Load the checkpoint's optimizer state into `opt` when resuming mid-phase (a state that
        no longer fits, e.g. after a phase change, is dropped), then forget it."""
        if self.opt_state is not None and self.epoch > 0:
            try:
                opt.load_state_dict(self.opt_state)
            except (ValueError, KeyError):
                pass
        self.opt_state = None

    def __init__(self, cfg: HempConfig, checkpoint: str | Path, data: Dataset | None = None,
                 progress: bool = True, log=print) -> None:
        if not 1 <= cfg.order <= 4:
            raise ValueError(f"--order must be 1..4, got {cfg.order}")
        if cfg.lam_h < 0 or cfg.lam_e < 0 or not cfg.softness > 0:
            raise ValueError("lam_h and lam_e must be >= 0 and softness > 0")
        if cfg.hemp_epochs < 0 or cfg.finetune_epochs < 0 or cfg.hemp_batch_size < 1:
            raise ValueError("the HEMP and fine-tuning epochs must be >= 0 and the batch size >= 1")
        super().__init__(cfg, checkpoint, data, progress, log)
        self.qmodel = with_codebooks(self.qmodel, {})

    @classmethod
    def resume(cls, checkpoint: str | Path, data: Dataset | None = None, progress: bool = True,
               log=print, overrides: dict | None = None) -> "HempTrainer":
        """Continue a HEMP checkpoint (or start HEMP from a float one, whose config `overrides` extend)."""
        state = load_checkpoint(checkpoint)
        d = dict(state["config"])
        d.update(overrides or {})
        cfg = HempConfig.from_dict(d)
        if cls is HempTrainer and cfg.init_from != "float":     # HEMP on a QAT model: its own trainer
            from sw.methods.hemp_refine import HempRefineTrainer
            return HempRefineTrainer.resume(checkpoint, data, progress, log, overrides)
        t = cls(cfg, checkpoint, data, progress, log)
        t.qmodel.load_state_dict(state["model"])
        t.qmodel.codebooks = checked_codebooks(state.get("codebooks") or {}, t.qmodel.coded_names())
        t.phase, t.epoch = state["phase"], state["epoch"]
        if t.phase not in HEMP_PHASES:
            raise ValueError(f"{checkpoint}: a HEMP run cannot continue from phase {t.phase!r}")
        t.history, t.results = state.get("history", []), state.get("results", {})
        t.opt_state = state.get("optimizer")
        t.best = state.get("best")
        return t

    def state(self, optimizer) -> dict:
        s = super().state(optimizer)
        s["codebooks"] = dict(self.qmodel.codebooks)
        return s

    def run(self, stop_after: str | None = None) -> dict:
        """Run (or finish) the float and HEMP phases; returns the results dict."""
        set_threads()
        while self.phase != "done":
            phase = self.phase
            if phase == "float":
                opt = torch.optim.Adam(self.qmodel.base.parameters(), lr=self.cfg.float_lr)
                n_epochs = self.cfg.float_epochs
            else:
                opt = torch.optim.SGD(self.qmodel.base.parameters(), lr=self.cfg.hemp_lr,
                                      momentum=self.cfg.momentum)
                n_epochs = self.cfg.hemp_epochs if phase == "hemp" else self.cfg.finetune_epochs
                self._init_levels()
            self._resume_optimizer(opt)
            bar = tqdm(range(self.epoch, n_epochs), desc=f"{phase:8}", disable=not self.progress,
                       initial=self.epoch, total=n_epochs, leave=True, dynamic_ncols=True)
            self._ddp = None                  # one process: the float epochs run the model itself
            for ep in bar:
                if phase == "float":
                    rec = self._epoch(self.qmodel.base, opt, phase, ep, None)
                    self._keep_if_best(rec)
                else:
                    rec = self._hemp_epoch(opt, ep, ste=phase == "finetune")
                self._after_epoch(rec, ep, bar, opt)
            bar.close()
            if phase == "float":
                self._end_phase("float")
            elif phase == "hemp" or n_epochs > 0:
                self._end_hemp(phase)
            if phase == stop_after:
                save_checkpoint(self.path, self.state(None))
                return self.results
            self.phase = HEMP_PHASES[HEMP_PHASES.index(phase) + 1]
            self.epoch = 0
            save_checkpoint(self.path, self.state(None))
        return self.results

    def _init_levels(self) -> None:
        """Fix every coded layer's grid from its current weights (the quantizer clip; Lloyd-max codebooks)."""
        for n in self.qmodel.coded_names():
            self.qmodel.quantizer(n).init_clip(self.qmodel.weight(n).detach())
        if self.cfg.lloyd and self.phase == "hemp" and (self.epoch == 0 or not self.qmodel.codebooks):
            self._fit_lloyd()

    def _fit_lloyd(self) -> None:
        """(Re)fit each coded layer's Lloyd-max codebook to its current weights, from its current levels."""
        for n in self.qmodel.coded_names():
            step = float(self.qmodel.uniform_step(n)) / LLOYD_GRID
            step = float(torch.tensor(step, dtype=torch.float32))
            old = self.qmodel.codebooks.get(n)
            init = self.qmodel.levels(n) if old is not None and old["step"] == step else None
            bins = int(self.qmodel.quantizer(n).hard_half().max()) * 2 + 1
            levels = fit_levels(self.qmodel.weight(n), bins, step, init=init)
            self.qmodel.codebooks[n] = {"levels": levels.tolist(), "step": step}

    def regularizer(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(R, H_n, E) of the coded layers' current weights (Eq. 24, 8, 25)."""
        names = self.qmodel.coded_names()
        ws = [self.qmodel.weight(n) for n in names]
        total = sum(w.numel() for w in ws)
        n = self.cfg.order
        h = ws[0].new_zeros((), dtype=torch.float64)
        levels = []
        for name, w in zip(names, ws):
            lv = self.qmodel.levels(name)
            levels.append(lv)
            if name not in self._orders:
                self._orders[name] = scan_order(tuple(w.shape), *lanes_for(tuple(w.shape)), n)
            tuples = w.reshape(-1).to(torch.float64)[self._orders[name]]
            h = h + (w.numel() / total) * hemp_entropy(tuples, lv, self.cfg.softness)
        e = reconstruction_error([w.to(torch.float64) for w in ws], levels)
        return self.cfg.lam_h * h + self.cfg.lam_e * e, h, e

    def _ste_weights(self) -> dict[str, torch.Tensor]:
        """Coded layers' weights quantized to their nearest level, straight-through gradient (fine-tuning)."""
        out = {}
        for n in self.qmodel.coded_names():
            w = self.qmodel.weight(n)
            lv = self.qmodel.levels(n)
            q = lv[nearest_indices(w.detach().double(), lv)].to(w.dtype)
            out[n] = w + (q - w).detach()
        return out

    def _hemp_epoch(self, opt: torch.optim.Optimizer, ep: int, ste: bool = False) -> dict:
        d, cfg, base = self.data, self.cfg, self.qmodel.base
        if cfg.lloyd and ep > 0 and not ste:
            self._fit_lloyd()
        self._orders: dict[str, torch.Tensor] = {}
        base.train()
        names = self.qmodel.coded_names()
        ws = [self.qmodel.weight(n) for n in names]
        total, count, rsum = 0.0, 0, 0.0
        for idx in batches(len(d.x_train), cfg.hemp_batch_size, cfg.seed * 1000 + 500 + ep):
            x = d.x_train[idx]
            out = functional_call(base, self._ste_weights(), (x,), strict=False) if ste else base(x)
            loss = F.cross_entropy(out, d.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            r, _, _ = self.regularizer()
            grads = torch.autograd.grad(r, ws)
            with torch.no_grad():
                for w, g in zip(ws, grads):
                    scale = insensitivity(w.grad) if cfg.insensitive and w.grad is not None else 1.0
                    if w.grad is None:
                        w.grad = torch.zeros_like(w)
                    w.grad.add_((scale * g).to(w.dtype))
            opt.step()
            total += float(loss.detach()) * len(idx)
            rsum += float(r.detach()) * len(idx)
            count += len(idx)
        ents = order_entropies(self.qmodel, LOG_ORDERS, cfg.softness)
        _, h, e = self.regularizer()
        rec = {"phase": "finetune" if ste else "hemp", "epoch": ep + 1, "loss": total / max(1, count), "reg": rsum / max(1, count),
               "val_acc": accuracy(self.qmodel, d.x_val, d.y_val) if d.x_val is not None else None,
               "acc": accuracy(self.qmodel, d.x_test, d.y_test),            # logged, never used to choose
               "continuous_acc": accuracy(base, d.x_test, d.y_test), "E": float(e.detach()),
               "bpw": ents[1]["exact"]}
        for k, v in ents.items():
            rec[f"h{k}"], rec[f"h{k}_proxy"] = v["exact"], v["proxy"]
        return rec

    def _end_hemp(self, phase: str = "hemp") -> None:
        """Results of the HEMP or fine-tuning phase (its last epoch: the rate keeps falling, nothing is chosen)."""
        d = self.data
        if d.x_val is not None:
            self.results["hemp_val_accuracy"] = accuracy(self.qmodel, d.x_val, d.y_val)
        acc = accuracy(self.qmodel, d.x_test, d.y_test)
        ents = order_entropies(self.qmodel, LOG_ORDERS, self.cfg.softness)
        self.results[f"{phase}_accuracy"] = acc
        self.results.update(hemp_accuracy=acc,                   # the final model's (after fine-tuning if any) entropy_bits_per_weight=ents[1]["exact"],
                            block_entropy_bits_per_weight={str(k): v["exact"] for k, v in ents.items()},
                            bins=self.qmodel.bins(), lloyd=bool(self.qmodel.codebooks))
        self.log(f"{phase}: {acc:.2f}% test accuracy, entropy per weight of order 1..4 "
                 + " / ".join(f"{v['exact']:.3f}" for v in ents.values()) + f" bits, bins {self.qmodel.bins()}")


def hemp_from_float(float_ckpt: str | Path, checkpoint: str | Path, overrides: dict,
                    data: Dataset | None = None, progress: bool = False, log=lambda *a, **k: None) -> HempTrainer:
    """A HEMP trainer that starts from a finished float phase (e.g. a shared float model of a benchmark)."""
    from sw.methods.qat import build_qmodel
    state = load_checkpoint(float_ckpt)
    if state["phase"] == "float":
        raise ValueError(f"{float_ckpt}: the float phase is not finished")
    cfg = HempConfig.from_dict({**state["config"], **overrides})
    model = build_qmodel(cfg)        # HEMP's quantizers (fixed bins, one step per layer) on the float weights
    model.base.load_state_dict({k[len("base."):]: v for k, v in state["model"].items() if k.startswith("base.")})
    state.update(phase="hemp", epoch=0, best=None, optimizer=None, teacher=None, config=asdict(cfg),
                 model=model.state_dict(), codebooks={})
    save_checkpoint(checkpoint, state)
    return HempTrainer.resume(checkpoint, data=data, progress=progress, log=log)


def is_hemp_checkpoint(path: str | Path) -> bool:
    """Whether a `train` checkpoint was written by a HEMP run."""
    return load_checkpoint(path)["config"].get("method") == "hemp"


def train(cfg: HempConfig | None, checkpoint: str | Path, *, resume: bool = False, force: bool = False,
          stop_after: str | None = None, progress: bool = True, log=print) -> tuple[HempTrainer, dict]:
    """Run (or resume) float baseline and HEMP into `checkpoint` (`python -m sw train --method hemp`)."""
    ckpt = Path(checkpoint)
    if resume:
        if not ckpt.exists():
            raise FileNotFoundError(2, "no such file", str(ckpt))
        trainer = HempTrainer.resume(ckpt, progress=progress, log=log)
        if trainer.phase == "done":
            log(f"{ckpt}: training already finished")
    else:
        if ckpt.exists() and not force:
            raise ValueError(f"{ckpt} exists: pass --resume to continue it or --force to start over")
        trainer = HempTrainer(cfg, ckpt, progress=progress, log=log)
    return trainer, trainer.run(stop_after=stop_after)
