"""HEMP: entropy proxy vs exact entropy, Eq. 17 vs autograd vs finite differences, Lloyd-max fits, a training smoke run."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sw.quant.hemp import (block_entropy, entropy_proxy, hemp_entropy, insensitivity, nearest_indices,
                           reconstruction_error, scan_order, soft_assign)
from sw.quant.lloyd import distortion, fit_levels, to_grid


def _levels(bins: int = 7, step: float = 0.1) -> torch.Tensor:
    h = (bins - 1) // 2
    return torch.arange(-h, h + 1, dtype=torch.float64) * step


def _weights(t: int, n: int, seed: int = 0, scale: float = 0.12) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(t, n, generator=g, dtype=torch.float64) * scale


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_proxy_tends_to_exact_entropy_as_softness_goes_to_zero(n):
    lv = _levels()
    w = _weights(300, n, seed=n)
    exact = block_entropy(nearest_indices(w, lv))
    errs = [abs(float(hemp_entropy(w, lv, s)) - exact) for s in (1.0, 0.1, 0.01, 1e-6)]
    assert errs[-1] < 1e-9                         # hard binning: the exact n-th order entropy
    assert errs[0] > 1e-3                          # the paper's linear binning is a smooth stand-in
    assert errs[2] < errs[0]


def test_block_entropy_is_the_empirical_entropy_of_tuples():
    idx = torch.tensor([[0, 1], [0, 1], [2, 2], [1, 0]])
    p = np.array([0.5, 0.25, 0.25])
    assert block_entropy(idx) == pytest.approx(float(-(p * np.log2(p)).sum()))
    # pairs of a sequence in which every symbol repeats: 2nd-order entropy per weight is half the 1st
    seq = torch.tensor([0, 0, 1, 1, 2, 2, 0, 0])
    assert block_entropy(seq.reshape(-1, 2)) / 2 == pytest.approx(block_entropy(seq.reshape(-1, 1)) / 2)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_explicit_gradient_matches_autograd_and_finite_differences(n):
    lv = _levels()
    w = _weights(40, n, seed=10 + n).requires_grad_()
    g17, = torch.autograd.grad(hemp_entropy(w, lv), w)
    gauto, = torch.autograd.grad(entropy_proxy(w, lv), w)
    assert float(hemp_entropy(w, lv).detach()) == pytest.approx(float(entropy_proxy(w, lv).detach()), abs=1e-12)
    assert torch.allclose(g17, gauto, atol=1e-10, rtol=1e-8)
    assert float(g17.abs().max()) > 1e-3           # not trivially zero
    eps = 1e-6
    flat = w.detach().reshape(-1)
    for i in range(0, flat.numel(), max(1, flat.numel() // 12)):
        up, dn = flat.clone(), flat.clone()
        up[i] += eps
        dn[i] -= eps
        fd = (float(hemp_entropy(up.reshape(w.shape), lv)) - float(hemp_entropy(dn.reshape(w.shape), lv))) / (2 * eps)
        assert fd == pytest.approx(float(g17.reshape(-1)[i]), abs=1e-6, rel=1e-5)


def test_first_order_gradient_is_eq16():
    lv = _levels(5, 0.5)
    w = torch.tensor([[0.1], [0.2], [0.7], [-0.3], [0.05]], dtype=torch.float64, requires_grad=True)
    g, = torch.autograd.grad(hemp_entropy(w, lv), w)
    lo, p, _ = soft_assign(w.detach(), lv)
    mass = torch.zeros(5, dtype=torch.float64)
    mass.index_add_(0, lo[:, 0], 1 - p[:, 0]).index_add_(0, lo[:, 0] + 1, p[:, 0])
    P = mass / 5
    want = torch.log2(P[lo[:, 0]] / P[lo[:, 0] + 1]) / (5 * 0.5)    # (1/(|W| Delta)) log2 P(q-)/P(q+)
    assert torch.allclose(g[:, 0], want, atol=1e-12)


def test_entropy_descent_lowers_exact_entropy():
    """Gradient steps on H_2 alone lower the exact 2nd-order entropy of the hard indices."""
    lv = _levels()
    w = _weights(500, 2, seed=3).requires_grad_()
    before = block_entropy(nearest_indices(w.detach(), lv))
    for _ in range(40):                     # plain gradient steps (torch.optim is slow to import)
        g, = torch.autograd.grad(hemp_entropy(w, lv), w)
        with torch.no_grad():
            w -= 1.0 * g
    after = block_entropy(nearest_indices(w.detach(), lv))
    assert after < before - 1.0


def test_scan_order_follows_the_lanes():
    shape = (2, 4, 3)                       # out, in (lane axis), kernel
    order = scan_order(shape, lanes=2, lane_axis=1, n=2)
    y = np.moveaxis(np.arange(24).reshape(shape), 1, 0).reshape(-1)
    lane0, lane1 = y[:12], y[12:]
    assert order.tolist() == lane0.reshape(6, 2).tolist() + lane1.reshape(6, 2).tolist()
    # ragged tails: 3 lanes of 8 symbols, triples -> 2 per lane, 2 symbols left out of each
    order3 = scan_order((2, 3, 4), lanes=3, lane_axis=1, n=3)
    assert order3.shape == (6, 3)
    y3 = np.moveaxis(np.arange(24).reshape(2, 3, 4), 1, 0).reshape(-1)
    assert order3[2].tolist() == y3[8:11].tolist()
    # near-equal lanes (FORMAT 1.4): 10 symbols in 3 lanes of 4, 3, 3
    o = scan_order((10,), lanes=3, lane_axis=-1, n=2)
    assert o.tolist() == [[0, 1], [2, 3], [4, 5], [7, 8]]


def test_reconstruction_error_and_insensitivity():
    lv = _levels(3, 1.0)
    w = torch.tensor([0.2, -0.9, 1.4], dtype=torch.float64)
    assert float(reconstruction_error([w], [lv])) == pytest.approx(math.sqrt((0.04 + 0.01 + 0.16) / 3))
    s = insensitivity(torch.tensor([0.5, -1.0, 0.0]))
    assert s.tolist() == [0.5, 0.0, 1.0]
    assert insensitivity(torch.zeros(3)).tolist() == [1.0, 1.0, 1.0]


def test_lloyd_max_fit():
    g = torch.Generator().manual_seed(1)
    w = torch.cat([torch.randn(3000, generator=g) * 0.01, torch.randn(1000, generator=g) * 0.2])   # peaked
    step = 0.2 / 64
    levels = fit_levels(w, 7, step)
    assert levels.dtype == torch.int64 and levels.numel() == 7
    assert levels[3] == 0 and bool((levels[1:] > levels[:-1]).all())
    assert bool((levels[:3] < 0).all()) and bool((levels[4:] > 0).all())
    uniform = torch.linspace(-1, 1, 7, dtype=torch.float64) * float(w.abs().max())
    assert distortion(w, levels * step) < 0.8 * distortion(w, uniform)
    # levels close to zero collapse onto distinct grid points, on their side of zero
    assert to_grid(torch.tensor([-1e-4, -1e-5, 0.0, 1e-5, 2e-5]), 1.0).tolist() == [-2, -1, 0, 1, 2]
    with pytest.raises(ValueError):
        fit_levels(w, 6, step)


def test_hemp_training_lowers_entropy(tmp_path):
    """A tiny HEMP run (8x8 digits) lowers the 2nd-order entropy of the coded layers and compresses to a normal file."""
    from sw import container as ct
    from sw.methods.compress import compress_checkpoint
    from sw.methods.hemp import HempConfig, HempTrainer, hemp_quant
    cfg = HempConfig(data="sklearn-digits", n_train=200, n_test=50, float_epochs=1, float_lr=5e-3,
                     hemp_epochs=2, finetune_epochs=1, hemp_batch_size=20, order=2, lam_h=30.0, quant=hemp_quant(7),
                     lloyd=True)
    t = HempTrainer(cfg, tmp_path / "h.ckpt", progress=False, log=lambda *a, **k: None)
    t.run(stop_after="float")
    t.phase, t.epoch = "hemp", 0
    t._init_levels()
    from sw.methods.hemp import order_entropies
    before = order_entropies(t.qmodel)[2]["exact"]
    t.run()
    after = t.history[-1]["h2"]
    assert after < before - 0.2
    assert [h["phase"] for h in t.history[-3:]] == ["hemp"] * 2 + ["finetune"]
    c = compress_checkpoint(tmp_path / "h.ckpt", tmp_path / "h.tans")
    back = ct.read(tmp_path / "h.tans")
    for n in t.qmodel.coded_names():
        assert np.array_equal(back[n].values(golden=True), t.qmodel.quantized_weights()[n].numpy())
    assert len(c.tensors) == len(back.tensors)


def test_checkpoint_codebooks_are_checked():
    from sw.methods.hemp import checked_codebooks
    good = {"fc1.weight": {"levels": [-5, 0, 3], "step": 0.0625}}
    assert checked_codebooks(good, ["fc1.weight"]) == good
    bad = [{"fc9.weight": good["fc1.weight"]},
           {"fc1.weight": {"levels": [-5, 1, 3], "step": 0.0625}},          # middle level not 0
           {"fc1.weight": {"levels": [0, -5, 3], "step": 0.0625}},          # not increasing
           {"fc1.weight": {"levels": [-5, 0], "step": 0.0625}},             # even count
           {"fc1.weight": {"levels": [-40000, 0, 3], "step": 0.0625}},      # beyond 16 bits
           {"fc1.weight": {"levels": [-5, 0, 3], "step": 0.1}},             # not a float32 value
           {"fc1.weight": {"levels": [-5, 0, 3], "step": -1.0}}]
    for cb in bad:
        with pytest.raises(ValueError):
            checked_codebooks(cb, ["fc1.weight"])


def test_train_cli_hemp_options(tmp_path, capsys):
    """HEMP options without --method hemp are refused with one error line; --order is 1..4."""
    from sw.cli.main import main
    assert main(["train", "--order", "2", "-o", str(tmp_path / "x.ckpt"), "--quiet"]) == 1
    assert "need --method hemp" in capsys.readouterr().err
    assert not (tmp_path / "x.ckpt").exists()
    with pytest.raises(SystemExit):            # argparse: --order is 1..4
        main(["train", "--method", "hemp", "--order", "5", "-o", str(tmp_path / "x.ckpt")])


def test_trim_bins_keeps_every_reconstruction():
    """Trimming a coded layer's bins to the levels it uses changes neither a step nor a weight."""
    from torch import nn
    from sw.methods.hemp_refine import trim_bins
    from sw.quant import QuantConfig, QuantizedModel
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 3))
    qm = QuantizedModel(net, QuantConfig(init_bins=11, step_bits=8))
    qm.freeze_bins()
    with torch.no_grad():
        net[1].weight.copy_(torch.randn(16, 16) * 0.02)
        net[2].weight.copy_(torch.randn(16, 16) * 0.02)
        net[2].weight[3, 5] = 10.0               # layer 2 keeps its outer level: nothing to trim
    for n in qm.coded_names():
        qm.quantizer(n).init_clip(qm.weight(n))
        qm.quantizer(n).clip.data.fill_(0.1)
    before = {n: qm.quantizer(n).quantize(qm.weight(n))[0].detach().clone() for n in qm.coded_names()}
    used = int(qm.quantizer("1.weight").quantize(qm.weight("1.weight"))[1].abs().max())
    assert used < 5
    trimmed = trim_bins(qm)
    assert trimmed == {"1.weight": (11, 2 * used + 1)}
    assert qm.bins()["1.weight"] == 2 * used + 1 and qm.bins()["2.weight"] == 11
    for n in qm.coded_names():
        assert torch.equal(qm.quantizer(n).quantize(qm.weight(n))[0], before[n])


def test_hemp_on_a_qat_model(tmp_path):
    """HEMP from a finished QAT checkpoint: QAT's quantizer kept, H_2 lowered, pair-coded file exact, resumable."""
    from sw import container as ct
    from sw.methods.compress import compress_checkpoint
    from sw.methods.hemp import HempTrainer
    from sw.methods.hemp_refine import HempRefineTrainer, hemp_from_qat, index_order_entropies
    from sw.methods.qat import Trainer, TrainConfig, restore
    from sw.train import load_checkpoint
    cfg = TrainConfig(data="sklearn-digits", n_train=200, n_test=50, float_epochs=1, float_lr=5e-3, qat_epochs=1,
                      finetune_epochs=0, target_bits_per_weight=2.0)
    Trainer(cfg, tmp_path / "q.ckpt", progress=False, log=lambda *a, **k: None).run()
    _, qat = restore(load_checkpoint(tmp_path / "q.ckpt"))
    before = index_order_entropies(qat, (2,))[2]["exact"]
    with pytest.raises(ValueError, match="not finished"):
        st = load_checkpoint(tmp_path / "q.ckpt")
        torch.save({**st, "phase": "qat"}, tmp_path / "unfinished.ckpt")
        hemp_from_qat(tmp_path / "unfinished.ckpt", tmp_path / "x.ckpt", {})
    t = hemp_from_qat(tmp_path / "q.ckpt", tmp_path / "h.ckpt",
                      {"order": 2, "lam_h": 30.0, "hemp_epochs": 2, "hemp_batch_size": 20})
    assert isinstance(t, HempRefineTrainer) and t.phase == "hemp"
    t.run()
    assert t.phase == "done" and [h["phase"] for h in t.history] == ["hemp", "hemp"]
    assert t.history[-1]["h2"] < before - 0.1
    for n in t.qmodel.coded_names():               # the QAT's clips (one per channel where it had them)
        assert t.qmodel.quantizer(n).clip.numel() == qat.quantizer(n).clip.numel()
    assert isinstance(HempTrainer.resume(tmp_path / "h.ckpt", progress=False), HempRefineTrainer)
    _, back = restore(load_checkpoint(tmp_path / "h.ckpt"))
    c = compress_checkpoint(tmp_path / "h.ckpt", tmp_path / "h.tans", tuple_size=2)
    f = ct.read(tmp_path / "h.tans")
    want = back.quantized_state_dict()
    for n in back.coded_names():
        assert f[n].tuple_size == 2
        assert np.array_equal(f[n].values(golden=True), want[n].numpy())
    assert len(c.tensors) == len(f.tensors)
    # the same from the CLI: `train --method hemp --hemp-from QAT.ckpt`; a missing source or --resume is refused
    from sw.cli.main import main
    assert main(["train", "--method", "hemp", "--hemp-from", str(tmp_path / "q.ckpt"), "-o", str(tmp_path / "c.ckpt"),
                 "--hemp-epochs", "1", "--lam-h", "5", "--quiet", "--json"]) == 0
    assert load_checkpoint(tmp_path / "c.ckpt")["phase"] == "done"
    assert main(["train", "--method", "hemp", "--hemp-from", str(tmp_path / "nope.ckpt"), "-o",
                 str(tmp_path / "d.ckpt"), "--quiet"]) == 1
    assert main(["train", "--hemp-from", str(tmp_path / "q.ckpt"), "-o", str(tmp_path / "d.ckpt"), "--quiet"]) == 1
    assert not (tmp_path / "d.ckpt").exists()
