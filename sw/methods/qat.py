"""The entropy-driven QAT method: float baseline, then QAT (Fracbits + the entropy loss Eq. 3), then fine-tuning at fixed bins.

Epochs are chosen on a validation split carved from the training data (`val_fraction`, seeded;
never the test set): the float phase keeps its best epoch by validation accuracy and QAT starts
from it; fine-tuning keeps its best epoch too. QAT and fine-tuning can distill from the float
model (`distill` > 0: a mix of cross-entropy and the KL divergence to the float model's softened
outputs). Each epoch ends with a checkpoint (atomic write) from which `train --resume` continues.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F
from tqdm import tqdm

from sw.data.datasets import Dataset, load_dataset, split_validation
from sw.models.zoo import build_model
from sw.quant import QuantConfig, QuantizedModel
from sw.methods.layout import lanes_for
from sw.tans import format as fmt
from sw.train.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from sw.train import distributed
from sw.train.loop import accuracy, set_threads, shard_batches

PHASES = ("float", "qat", "finetune", "done")


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint)."""

    model: str = "lenet5"
    data: str = "mnist-digits"
    n_train: int | None = 4000
    n_test: int | None = 1000
    seed: int = 0
    batch_size: int = 64
    float_epochs: int = 8
    float_lr: float = 2e-3
    qat_epochs: int = 8
    finetune_epochs: int = 3
    lr: float = 1e-3
    lam_lr: float = 0.02
    entropy_weight: float = 1.0
    target_bits_per_weight: float | None = 0.7
    target_kb: float | None = None
    val_fraction: float = 0.1        #: share of the training data held out to choose epochs (0: keep the last)
    distill: float = 0.0             #: QAT/fine-tuning: weight of the KL term to the float model (0: off)
    distill_temperature: float = 2.0
    log2_states: int = fmt.DEFAULT_LOG2_STATES
    model_config: dict = field(default_factory=dict)
    quant: dict = field(default_factory=lambda: QuantConfig().to_dict())

    def quant_config(self) -> QuantConfig:
        return QuantConfig.from_dict(self.quant)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def overhead_bits(qmodel: QuantizedModel, log2_states: int) -> float:
    """Estimated container bits of the coded layers besides the payload entropy (version-2 records).

    Per layer: one k-bit initial state per lane (sw.methods.layout.lanes_for), k + 1 bits per
    stored count, the record header (name, shape, varints) and its steps (8-bit mantissas with
    a shared exponent when the quantizer rounds them, else float32).
    """
    total = 0.0
    for n in qmodel.coded_names():
        w = qmodel.weight(n)
        lanes = lanes_for(tuple(w.shape))[0]
        bins = qmodel.bins()[n]
        q = qmodel.quantizer(n)
        steps = w.shape[0] if q.clip.numel() > 1 else 1
        step_bits = 8 * (4 + steps) if q.step_bits and steps > 1 else 40 * steps
        header = 8 * (16 + len(n) + 3 * w.dim())
        total += lanes * log2_states + (log2_states + 1) * (bins - 1) + step_bits + header + 4
    return total


def entropy_target_bits(cfg: TrainConfig, qmodel: QuantizedModel) -> float:
    """Entropy goal H_hat for Eq. 3: the user's coded-size target minus the estimated overhead."""
    n = qmodel.coded_weights()
    if cfg.target_kb is not None:
        total = cfg.target_kb * 8192.0
    elif cfg.target_bits_per_weight is not None:
        total = cfg.target_bits_per_weight * n
    else:
        raise ValueError("give a target: --target-bits-per-weight or --target-kb")
    goal = total - overhead_bits(qmodel, cfg.log2_states)
    if goal <= 0.05 * n:
        raise ValueError(f"the target of {total / max(1, n):.3f} bits/weight leaves no room once the "
                         f"{overhead_bits(qmodel, cfg.log2_states) / n:.3f} bits/weight of tables, "
                         "lane states and headers are paid: raise it")
    return goal


def make_optimizer(qmodel: QuantizedModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam: weights and clips at lr, precisions lambda at lam_lr."""
    lams = [q.lam for q in qmodel.quantizers.values() if q.lam.requires_grad]
    others = [p for n, p in qmodel.named_parameters() if not n.endswith(".lam")]
    groups = [{"params": others, "lr": cfg.lr}]
    if lams:
        groups.append({"params": lams, "lr": cfg.lam_lr})
    return torch.optim.Adam(groups)


def build_qmodel(cfg: TrainConfig, data: Dataset | None = None, module: nn.Module | None = None) -> QuantizedModel:
    """The configured model wrapped with its quantizers (`module`: the caller's own model instead of cfg.model)."""
    if module is not None:
        return QuantizedModel(module, cfg.quant_config())
    mc = dict(cfg.model_config) or (data.model_config() if data else {})
    torch.manual_seed(cfg.seed)
    return QuantizedModel(build_model(cfg.model, mc), cfg.quant_config())


def restore(state: dict, module: nn.Module | None = None) -> tuple[TrainConfig, QuantizedModel]:
    """Rebuild the configuration and the quantized model of a checkpoint (into `module` if given)."""
    cfg = TrainConfig.from_dict(state["config"])
    qmodel = build_qmodel(cfg, None, module)
    from sw.models.zoo import load_weights
    load_weights(qmodel, state["model"], "checkpoint", cfg.model)
    if state["phase"] in ("finetune", "done") or (state["phase"] == "qat" and state.get("frozen")):
        qmodel.freeze_bins()
    if state.get("codebooks"):          # HEMP's Lloyd-max levels of the coded layers (sw.methods.hemp)
        from sw.methods.hemp import with_codebooks
        qmodel = with_codebooks(qmodel, state["codebooks"])
    return cfg, qmodel


class Trainer:
    """Runs the three phases with per-epoch checkpoints; `run()` resumes where a checkpoint stopped."""

    def __init__(self, cfg: TrainConfig, checkpoint: str | Path, data: Dataset | None = None,
                 progress: bool = True, log=print, module: nn.Module | None = None) -> None:
        self.cfg, self.path, self.progress, self.log = cfg, Path(checkpoint), progress, log
        if not 0 <= cfg.distill <= 1 or not 0 <= cfg.val_fraction < 1 or not cfg.distill_temperature > 0:
            raise ValueError(f"distill must be in 0..1 (got {cfg.distill}), val_fraction in 0..1 (got "
                             f"{cfg.val_fraction}), distill_temperature positive (got {cfg.distill_temperature})")
        data = data or load_dataset(cfg.data, cfg.n_train, cfg.n_test, cfg.seed)
        self.data = split_validation(data, cfg.val_fraction, cfg.seed)
        if not cfg.model_config:
            cfg.model_config = self.data.model_config()
        elif ":" in cfg.model:       # a factory gets the data's arguments too (sw.models.zoo.build_model)
            cfg.model_config = {**self.data.model_config(), **cfg.model_config}
        self.qmodel = build_qmodel(cfg, self.data, module)
        self.phase, self.epoch = "float", 0
        self.history: list[dict] = []
        self.results: dict = {}
        self.opt_state: dict | None = None
        self.best: dict | None = None            # best epoch so far of the current phase (validation accuracy)
        self.teacher: nn.Module | None = None    # the float model, for distillation
        self.device = torch.device("cpu")        # where training runs (sw.api.train sets it from --device)
        self.dist = distributed.current()        # this rank's place in a torchrun job (world 1: alone)
        self.workers = 0                         # DataLoader processes decoding batches ahead (lazy image folders)

    @classmethod
    def resume(cls, checkpoint: str | Path, data: Dataset | None = None, progress: bool = True,
               log=print, overrides: dict | None = None, module: nn.Module | None = None) -> "Trainer":
        """Continue the run of a checkpoint (later phases may take new epoch counts from `overrides`)."""
        state = load_checkpoint(checkpoint)
        cfg, qmodel = restore(state, module)
        for k, v in (overrides or {}).items():
            setattr(cfg, k, v)
        t = cls(cfg, checkpoint, data, progress, log, copy.deepcopy(module) if module is not None else None)
        t.qmodel = qmodel
        t.phase, t.epoch = state["phase"], state["epoch"]
        t.history, t.results = state.get("history", []), state.get("results", {})
        t.opt_state = state.get("optimizer")
        t.best = state.get("best")
        if state.get("teacher") is not None:
            t.teacher = t._frozen_copy(state["teacher"])
        return t

    def state(self, optimizer: torch.optim.Optimizer | None) -> dict:
        return {"format": CHECKPOINT_FORMAT, "config": asdict(self.cfg), "phase": self.phase,
                "epoch": self.epoch, "model": self.qmodel.state_dict(),
                "optimizer": optimizer.state_dict() if optimizer else None,
                "history": self.history, "results": self.results, "best": self.best,
                "teacher": self.teacher.state_dict() if self.teacher is not None else None}

    def _frozen_copy(self, state_dict: dict | None = None) -> nn.Module:
        """An eval-mode, gradient-free copy of the base model (with `state_dict` loaded if given)."""
        net = copy.deepcopy(self.qmodel.base)
        if state_dict is not None:
            net.load_state_dict(state_dict)
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        return net

    def _keep_if_best(self, rec: dict) -> None:
        """Remember this epoch's weights if its validation accuracy is the phase's best so far.

        Float phase: ties go to the later epoch. Fine-tuning (bins fixed): ties go to the lower
        entropy, then to the later epoch. QAT keeps its last epoch (the bins are still moving
        towards the rate target), so nothing is chosen there.
        """
        phase = rec["phase"]
        if rec.get("val_acc") is None or phase == "qat":
            return
        b = self.best
        if b is not None and b["phase"] == phase:
            if rec["val_acc"] < b["val_acc"]:
                return
            if phase == "finetune" and rec["val_acc"] == b["val_acc"] and rec["bpw"] > b["bpw"] + 1e-12:
                return
        self.best = {"phase": phase, "epoch": rec["epoch"], "val_acc": rec["val_acc"], "bpw": rec.get("bpw"),
                     "model": {k: v.detach().clone() for k, v in self.qmodel.state_dict().items()}}

    def _epochs(self, phase: str) -> int:
        return {"float": self.cfg.float_epochs, "qat": self.cfg.qat_epochs,
                "finetune": self.cfg.finetune_epochs}[phase]

    def run(self, stop_after: str | None = None) -> dict:
        """Run (or finish) every phase, or only up to `stop_after` ("float": the float baseline); returns the results dict."""
        set_threads()
        if self.phase in ("float", "qat") and stop_after != "float":
            entropy_target_bits(self.cfg, self.qmodel)   # an impossible target fails now, before any checkpoint
        self.dist = distributed.current()
        self.device = distributed.rank_device(self.device)
        self.qmodel.to(self.device)
        if self.teacher is not None:
            self.teacher.to(self.device)
        if not self.dist.is_main:
            self.progress, self.log = False, (lambda *a, **k: None)
        while self.phase != "done":
            phase = self.phase
            if phase == "finetune":
                self.qmodel.freeze_bins()
            model = self.qmodel.base if phase == "float" else self.qmodel
            self._ddp = self.dist.wrap(model, self.device)    # the model itself unless distributed
            if phase == "float":
                opt = torch.optim.Adam(self.qmodel.base.parameters(), lr=self.cfg.float_lr)
            else:
                opt = make_optimizer(self.qmodel, self.cfg)
            if self.opt_state is not None and self.epoch > 0:
                try:
                    opt.load_state_dict(self.opt_state)
                except (ValueError, KeyError):
                    pass   # a changed parameter set: start the optimizer afresh
            self.opt_state = None
            target = entropy_target_bits(self.cfg, self.qmodel) if phase != "float" else None
            if phase != "float" and self.cfg.distill > 0 and self.teacher is None:
                self.teacher = self._frozen_copy()   # the float model QAT starts from (its best epoch)
            n_epochs = self._epochs(phase)
            bar = tqdm(range(self.epoch, n_epochs), desc=f"{phase:8}", disable=not self.progress,
                       initial=self.epoch, total=n_epochs, leave=True, dynamic_ncols=True)
            for ep in bar:
                rec = self._epoch(model, opt, phase, ep, target)
                self.history.append(rec)
                self._keep_if_best(rec)
                self.epoch = ep + 1
                bar.set_postfix({k: (round(v, 3) if isinstance(v, float) else v) for k, v in rec.items()
                                 if k in ("loss", "val_acc", "bpw", "bins")})
                self._save(opt)
            bar.close()
            self._ddp = None
            self._end_phase(phase)
            if phase == stop_after:   # the checkpoint stays in this phase with its epochs done; --resume goes on
                self._save(None)
                return self.results
            self.phase = PHASES[PHASES.index(phase) + 1]
            self.epoch = 0
            self._save(None)
        return self.results

    def _save(self, opt: torch.optim.Optimizer | None) -> None:
        """Write the checkpoint (rank 0 only; buffers synced from rank 0 first)."""
        self.dist.sync_buffers(self.qmodel)
        if self.dist.is_main:
            save_checkpoint(self.path, self.state(opt))

    def _accuracy(self, model: nn.Module, x, y: torch.Tensor) -> float:
        """Test/validation accuracy on this device (counted on shards and summed across ranks)."""
        self.dist.sync_buffers(model)
        return distributed.sharded_accuracy(model, x, y, self.dist, self.device)

    def _epoch(self, model: nn.Module, opt: torch.optim.Optimizer, phase: str, ep: int,
               target: float | None) -> dict:
        d, cfg = self.data, self.cfg
        model.train()
        seed = cfg.seed * 1000 + 100 * PHASES.index(phase) + ep
        total, count, est = 0.0, 0, None
        distill = self.teacher is not None and phase != "float" and cfg.distill > 0
        ddp, dev, ctx = getattr(self, "_ddp", None) or model, self.device, self.dist
        for n_global, x, y in shard_batches(d.x_train, d.y_train, cfg.batch_size, seed, ctx, self.workers):
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            out = ddp(x)
            if ctx.active:   # shard sums over the global batch x world: DDP's gradient mean is the global mean's
                scale = ctx.world / n_global
                loss = F.cross_entropy(out, y, reduction="sum") * scale
            else:
                loss = F.cross_entropy(out, y)
            if distill:
                temp = cfg.distill_temperature
                with torch.no_grad():
                    soft = F.log_softmax(self.teacher(x) / temp, dim=1)
                if ctx.active:
                    kd = F.kl_div(F.log_softmax(out / temp, dim=1), soft, log_target=True, reduction="sum") * scale
                else:
                    kd = F.kl_div(F.log_softmax(out / temp, dim=1), soft, log_target=True, reduction="batchmean")
                loss = (1 - cfg.distill) * loss + cfg.distill * temp * temp * kd
            if target is not None:
                ent, est = self.qmodel.entropy_loss(target)
                loss = loss + cfg.entropy_weight * ent.to(loss.dtype)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if phase != "float":
                self.qmodel.clamp_()
            total += float(loss.detach()) * (n_global / ctx.world if ctx.active else len(y))
            count += n_global if ctx.active else len(y)
        if ctx.active:
            total = ctx.all_sum(total, dev)
        rec = {"phase": phase, "epoch": ep + 1, "loss": total / max(1, count),
               "val_acc": self._accuracy(model, d.x_val, d.y_val) if d.x_val is not None else None,
               "acc": self._accuracy(model, d.x_test, d.y_test)}   # test accuracy: logged, never used to choose
        if phase != "float":
            n = self.qmodel.coded_weights()
            rec["bpw"] = self.qmodel.hard_entropy_bits() / max(1, n)
            if est is not None:
                rec["mixed_bpw"] = est / max(1, n)
            rec["bins"] = "/".join(str(b) for b in self.qmodel.bins().values())
        return rec

    def _end_phase(self, phase: str) -> None:
        d = self.data
        b = self.best
        if b is not None and b["phase"] == phase:
            self.qmodel.load_state_dict(b["model"])
            self.results[f"{phase}_best_epoch"] = b["epoch"]
            self.log(f"{phase}: keeping epoch {b['epoch']} (best validation accuracy {b['val_acc']:.2f}% "
                     f"on {len(d.x_val)} held-out training examples)")
        self.best = None
        if d.x_val is not None:
            model = self.qmodel.base if phase == "float" else self.qmodel
            self.results[f"{phase}_val_accuracy"] = self._accuracy(model, d.x_val, d.y_val)
            self.results["validation_examples"] = len(d.x_val)
        if phase == "float":
            self.results["float_accuracy"] = self._accuracy(self.qmodel.base, d.x_test, d.y_test)
            self.log(f"float baseline: {self.results['float_accuracy']:.2f}% test accuracy")
        else:
            acc = self._accuracy(self.qmodel, d.x_test, d.y_test)
            n = self.qmodel.coded_weights()
            self.results[f"{phase}_accuracy"] = acc
            self.results["entropy_bits_per_weight"] = self.qmodel.hard_entropy_bits() / max(1, n)
            self.results["bins"] = self.qmodel.bins()
            self.log(f"{phase}: {acc:.2f}% test accuracy, entropy {self.results['entropy_bits_per_weight']:.3f} "
                     f"bits/weight over {n} coded weights, bins {self.results['bins']}")


def quantized_accuracy(state: dict, data: Dataset | None = None) -> float:
    """Test accuracy of a checkpoint's quantized model (hard bins)."""
    cfg, qmodel = restore(state)
    data = data or load_dataset(cfg.data, cfg.n_train, cfg.n_test, cfg.seed)
    return accuracy(qmodel, data.x_test, data.y_test)
