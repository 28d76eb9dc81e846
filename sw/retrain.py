"""Retraining from a `.tans` file (`train --init-from m.tans`): fine-tuning with the file's allocation fixed.

The Pareto paper retrains its allocated network for a few epochs with the straight-through
estimator (its Section 5.1). Here the file's golden-decoded weights become the model's
weights, every conv/linear layer's quantizer starts at the file's bins and step (zero-point
records, and raw 8-bit ones as 255 bins with their per-channel steps), the bins are frozen
(the allocation: bins per layer), and the ordinary fine-tuning phase of `sw.methods.qat`
runs `finetune_epochs` epochs, moving weights and clips only. Before the first epoch the
model reproduces the file's coded integers exactly (an 8-bit edge layer with per-channel steps
takes one step, its largest, when the coded layers have one step per tensor, as Pareto's do). The checkpoint it writes is an ordinary
finished `train` checkpoint, so `compress` turns it into a `.tans` file.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch

from sw import container as ct
from sw.tans import format as fmt

INT8_HALF = 127


def _half_and_steps(t: ct.Tensor) -> tuple[int, np.ndarray]:
    """(half width k, steps) of a quantized weight record; ValueError for anything the QAT quantizer cannot hold."""
    if t.kind == fmt.KIND_RAW_INT8:
        return INT8_HALF, np.asarray(t.steps, dtype=np.float64)
    if t.kind == fmt.KIND_TANS and t.quant == fmt.QUANT_ZERO_POINT:
        return (t.bins - 1) // 2, np.asarray(t.steps, dtype=np.float64)
    raise ValueError(f"tensor {t.name!r} is not a zero-point or raw 8-bit weight record: --init-from needs one "
                     "for every conv/linear weight")


def trainer_from_tans(path: str | Path, checkpoint: str | Path, cfg=None, progress: bool = True, log=print):
    """A Trainer in its fine-tuning phase, initialized from the file (see the module docstring).

    `cfg` (a TrainConfig) gives the epochs, learning rate and entropy weight; model, data split
    and rate target come from the file (a built-in model and data set, as `evaluate` accepts).
    """
    from sw.evaluation.evaluate import data_of, model_of
    from sw.methods.qat import TrainConfig, Trainer
    from sw.quant import QuantConfig, QuantizedModel
    from sw.train import accuracy

    where = os.fspath(path)
    c = ct.read(path)
    with ct.in_file(path):
        net = model_of(c, None, where)
        data = data_of(c, None, where)
    meta = c.metadata
    cfg = dataclasses.replace(cfg) if cfg is not None else TrainConfig()
    d = meta.get("data") or {}
    names = [n for n, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Conv1d,
                                                                 torch.nn.Conv3d))]
    records = {}
    for n in names:
        t = c[f"{n}.weight"]
        records[t.name] = (t, *_half_and_steps(t))
    per_tensor = all(s.size == 1 for t, _, s in records.values() if t.kind == fmt.KIND_TANS)
    coded = set(meta.get("coded") or []) if isinstance(meta.get("coded"), list) else set()
    first, last = f"{names[0]}.weight", f"{names[-1]}.weight"
    q = QuantConfig(init_bins=15, learn_bins=False, per_channel_scale=not per_tensor,
                    code_first_last=first in coded or last in coded, step_bits=0,
                    dead_zone=0.0, max_bins=255, min_bins=3)
    rate = meta.get("coded_bits_per_weight")
    if isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate > 0:
        cfg.target_bits_per_weight, cfg.target_kb = float(rate), None
    cfg = dataclasses.replace(cfg, model=meta["model"], model_config=dict(meta.get("model_config") or {}),
                              data=d.get("spec"), n_train=len(data.x_train), n_test=len(data.x_test),
                              seed=int(d.get("seed") or 0), quant=q.to_dict(), float_epochs=0, qat_epochs=0)
    trainer = Trainer(cfg, checkpoint, data, progress, log)
    qm = QuantizedModel(net, q)
    for name in qm.names:
        t, half, steps = records[name]
        quant = qm.quantizer(name)
        if half > quant.max_half:
            raise ValueError(f"tensor {name!r}: {2 * half + 1} bins is more than the quantizer holds")
        with torch.no_grad():
            clip = torch.as_tensor(half * steps, dtype=quant.clip.dtype).reshape(-1)
            if quant.clip.numel() == 1:         # one clip per layer: a per-channel 8-bit edge takes its largest
                clip = clip.max().reshape(1)
            quant.clip.copy_(clip.expand_as(quant.clip))
            quant.lam.fill_(float(half))
            quant.initialized.fill_(True)
    qm.freeze_bins()
    trainer.qmodel = qm
    trainer.phase, trainer.epoch = "finetune", 0
    fa = (meta.get("results") or {}).get("float_accuracy")
    trainer.results = {"init_from": where, "init_accuracy": accuracy(qm, data.x_test, data.y_test)}
    if isinstance(fa, (int, float)) and not isinstance(fa, bool):
        trainer.results["float_accuracy"] = float(fa)
    log(f"{where}: fine-tuning {cfg.finetune_epochs} epochs with its bins fixed "
        f"({', '.join(f'{n}: {b}' for n, b in qm.bins().items())}); start {trainer.results['init_accuracy']:.2f}%")
    return trainer
