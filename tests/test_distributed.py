"""Data-parallel training (sw.train.distributed): 2 CPU processes with gloo give the one-process run.

Both runs see the same global batches of 32 (the last one, 29 examples, split 15/14).
Tolerance: the float epoch's loss agrees to 1e-6 relative (measured: 1e-8; its parameters
to 1.5e-8), the QAT and fine-tuning losses to 1e-4 relative, the validation accuracies,
the bins and the Fracbits precisions are identical, and every parameter agrees within 1e-2
absolute. QAT is not bit-stable under rounding noise: in one process, perturbing the initial
weights by 1e-8 moves the parameters by up to 6e-4 after one QAT epoch (a weight at a
rounding boundary flips bin, Adam turns small gradient differences into steps of lr), and
two shards summed and all-reduced round differently from one sum.
"""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

CONFIG = {"model": "mlp", "model_config": {"hidden": [48, 48, 32]}, "data": "sklearn-digits",
          "n_train": 210, "n_test": 60, "val_fraction": 0.1, "batch_size": 32, "float_epochs": 1,
          "qat_epochs": 1, "finetune_epochs": 1, "target_bits_per_weight": 3.0, "seed": 3}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, ckpt: str) -> None:
    """One rank of the job, set up the way torchrun sets it up (environment variables)."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    from sw import api
    from sw.train import distributed
    try:
        api.train(CONFIG, ckpt, progress=False, log=lambda *a, **k: None, force=True)
    finally:
        distributed.shutdown()


def test_two_processes_match_one(tmp_path):
    from sw import api
    from sw.train import load_checkpoint
    one, two = tmp_path / "one.ckpt", tmp_path / "two.ckpt"
    api.train(CONFIG, one, progress=False, log=lambda *a, **k: None)
    # fork: the ranks inherit the imported modules (torch, sklearn) instead of importing them again
    mp.start_processes(_rank, args=(2, _free_port(), str(two)), nprocs=2, join=True, start_method="fork")
    a, b = load_checkpoint(one), load_checkpoint(two)
    assert a["phase"] == b["phase"] == "done"
    assert len(a["history"]) == len(b["history"]) == 3
    for ra, rb in zip(a["history"], b["history"]):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-6 if ra["phase"] == "float" else 1e-4)
        assert ra.get("bins") == rb.get("bins") and ra["val_acc"] == rb["val_acc"]
    assert a["results"]["bins"] == b["results"]["bins"]
    for k, v in a["model"].items():
        w = b["model"][k]
        if k.endswith(".lam") or v.dtype == torch.bool:
            assert torch.equal(v, w), k
        else:
            assert float((v.double() - w.double()).abs().max()) < 1e-2, k
