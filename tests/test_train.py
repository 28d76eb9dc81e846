"""Training: the entropy-driven QAT lowers the entropy towards the target; checkpoints resume."""
from __future__ import annotations

import pytest
import torch

from sw.methods.qat import Trainer, TrainConfig, entropy_target_bits


from sw.train import load_checkpoint


def tiny_config(**kw) -> TrainConfig:
    base = dict(model="lenet5", data="sklearn-digits", n_train=300, n_test=100, batch_size=32,
                float_epochs=3, float_lr=5e-3, qat_epochs=0, finetune_epochs=0, target_bits_per_weight=1.2,
                lam_lr=0.2)   # 270 training examples (30 held out for validation): 3 quick float epochs
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def float_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "ck.pt"
    t = Trainer(tiny_config(), path, progress=False, log=lambda *a: None)
    t.run()
    return path, t


def test_float_phase_learns(float_run):
    path, t = float_run
    state = load_checkpoint(path)
    assert state["phase"] == "done"
    assert t.results["float_accuracy"] > 40.0      # 10 classes: chance is 10%


def test_qat_lowers_entropy_and_resumes(float_run, tmp_path):
    path, t = float_run
    start_bits = t.qmodel.hard_entropy_bits() / t.qmodel.coded_weights()
    copy = tmp_path / "ck.pt"
    copy.write_bytes(path.read_bytes())
    state = torch.load(copy, weights_only=True)
    state["phase"], state["epoch"] = "qat", 0        # continue the finished float run with QAT
    torch.save(state, copy)
    r = Trainer.resume(copy, progress=False, log=lambda *a: None, overrides={"qat_epochs": 4, "finetune_epochs": 1})
    r.run()
    end_bits = r.qmodel.hard_entropy_bits() / r.qmodel.coded_weights()
    target = entropy_target_bits(r.cfg, r.qmodel) / r.qmodel.coded_weights()
    assert end_bits < start_bits - 0.5
    assert end_bits < target + 0.35
    assert all(b % 2 == 1 for b in r.qmodel.bins().values())
    hist = [h for h in r.history if h["phase"] == "qat"]
    assert len(hist) == 4 and hist[-1]["bpw"] < hist[0]["bpw"] + 1e-9


def test_epochs_are_chosen_on_the_validation_split(float_run):
    """The float phase keeps its best epoch by accuracy on examples held out of the training data."""
    _, t = float_run
    assert len(t.data.x_val) == 30 and len(t.data.x_train) == 270 and len(t.data.x_test) == 100
    floats = [h for h in t.history if h["phase"] == "float"]
    best = max(floats, key=lambda h: (h["val_acc"], h["epoch"]))        # ties: the later epoch
    assert t.results["float_best_epoch"] == best["epoch"]
    assert t.results["float_val_accuracy"] == best["val_acc"]            # those weights were restored
    assert t.results["float_accuracy"] == best["acc"]


def test_distillation_from_the_float_model(float_run, tmp_path):
    path, t = float_run
    copy = tmp_path / "ck.pt"
    state = torch.load(path, weights_only=True)
    state["phase"], state["epoch"] = "qat", 0
    torch.save(state, copy)
    r = Trainer.resume(copy, progress=False, log=lambda *a: None,
                       overrides={"qat_epochs": 1, "finetune_epochs": 1, "distill": 0.5})
    r.run()
    saved = load_checkpoint(copy)
    assert saved["phase"] == "done" and saved["teacher"] is not None
    for k, v in t.qmodel.base.state_dict().items():          # the teacher is the float model QAT started from
        assert torch.equal(saved["teacher"][k], v), k


def test_resume_continues_from_saved_epoch(tmp_path):
    path = tmp_path / "ck.pt"
    cfg = tiny_config(float_epochs=3)
    t = Trainer(cfg, path, progress=False, log=lambda *a: None)
    # stop after one epoch by running a one-epoch config, then resume with three
    t.cfg.float_epochs = 1
    t.run()
    state = torch.load(path, weights_only=True)
    state["phase"], state["epoch"] = "float", 1
    torch.save(state, path)
    r = Trainer.resume(path, progress=False, log=lambda *a: None, overrides={"float_epochs": 3})
    r.run()
    epochs = [h["epoch"] for h in r.history if h["phase"] == "float"]
    assert epochs == [1, 2, 3]


def test_impossible_target_is_refused(tmp_path):
    t = Trainer(tiny_config(target_bits_per_weight=0.05), tmp_path / "ck.pt", progress=False)
    with pytest.raises(ValueError, match="no room"):
        entropy_target_bits(t.cfg, t.qmodel)
