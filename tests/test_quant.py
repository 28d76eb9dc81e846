"""Quantizer properties: odd bins, exact zero, STE gradients, dead zone, exact export."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sw.quant import FracQuantizer, QuantConfig, QuantizedModel, midrise_quantize, ste_round, zero_point_quantize
from sw.quant.quantizers import bins_of
from sw.models.zoo import LeNet5


@pytest.mark.parametrize("half", [1, 2, 3, 7, 127])
def test_zero_point_levels_odd_and_zero_exact(half):
    torch.manual_seed(0)
    w = torch.randn(64, 9) * 0.3
    w[0, :3] = 0.0
    wq, q, step = zero_point_quantize(w, torch.tensor(0.5), half)
    levels = torch.unique(q)
    assert bins_of(half) % 2 == 1
    assert levels.min() >= -half and levels.max() <= half
    assert torch.all(q == torch.round(q))
    assert torch.all(wq[0, :3] == 0.0)            # zero is a reconstruction level
    assert torch.equal(wq, q * step)
    assert torch.equal(torch.unique(torch.round(q)).abs().unique(), torch.unique(q).abs().unique())


def test_symmetric():
    w = torch.linspace(-1, 1, 101)
    _, q, _ = zero_point_quantize(w, torch.tensor(0.8), 3)
    assert torch.equal(q, -torch.flip(q, [0]))


def test_ste_gradient_is_identity():
    x = torch.tensor([0.2, 1.7, -2.4], requires_grad=True)
    ste_round(x).sum().backward()
    assert torch.equal(x.grad, torch.ones(3))
    assert torch.equal(ste_round(x.detach()), torch.round(x.detach()))


def test_weight_and_clip_gradients():
    w = torch.tensor([0.05, 0.3, -0.9, 2.0], requires_grad=True)
    clip = torch.tensor(1.0, requires_grad=True)
    wq, _, _ = zero_point_quantize(w, clip, 2)
    wq.sum().backward()
    # inside the range the STE passes the gradient; clipped weights get none
    assert torch.allclose(w.grad, torch.tensor([1.0, 1.0, 1.0, 0.0]))
    # d(q*step)/dclip = (q - x)/half inside, +-1 outside (LSQ): nonzero for the clipped weight
    assert clip.grad is not None and clip.grad.abs() > 0


def test_dead_zone_widens_zero_bin():
    w = torch.linspace(-1, 1, 2001)
    _, q0, _ = zero_point_quantize(w, torch.tensor(1.0), 4)
    _, qd, _ = zero_point_quantize(w, torch.tensor(1.0), 4, dead_zone=0.6)
    assert (qd == 0).sum() > (q0 == 0).sum()
    assert qd.abs().max() <= 4
    # outside the dead zone the smallest index is +-1
    step = 0.25
    x = w / step
    assert torch.all(qd[(x.abs() >= 0.8 + 1e-6) & (x.abs() < 1.2)].abs() == 1)


def test_midrise_has_no_zero():
    w = torch.linspace(-1, 1, 1001)
    wq, sym, _ = midrise_quantize(w, torch.tensor(1.0), 4)
    assert set(torch.unique(sym).tolist()) == {0, 1, 2, 3}
    assert not torch.any(wq == 0)
    with pytest.raises(ValueError):
        midrise_quantize(w, torch.tensor(1.0), 5)


def test_frac_quantizer_mixes_floor_and_ceil():
    torch.manual_seed(1)
    w = torch.randn(8, 20)
    q = FracQuantizer(tuple(w.shape), bins=5)
    with torch.no_grad():
        q.lam.fill_(2.25)
    q.train()
    mixed = q(w)
    clip = q._col(q.clip.detach())
    lo = zero_point_quantize(w, clip, 2)[0]
    hi = zero_point_quantize(w, clip, 3)[0]
    assert torch.allclose(mixed, 0.75 * lo + 0.25 * hi, atol=1e-6)
    q.eval()
    assert int(q.hard_half()) == 2 and torch.allclose(q(w), lo)


def test_frac_quantizer_rejects_even_bins():
    with pytest.raises(ValueError):
        FracQuantizer((4, 4), bins=4)


@pytest.mark.parametrize("per_channel_bins", [False, True])
def test_export_is_exact(per_channel_bins):
    torch.manual_seed(2)
    qm = QuantizedModel(LeNet5(1, 10, 8), QuantConfig(init_bins=7, per_channel_bins=per_channel_bins))
    qm.eval()
    x = torch.randn(3, 1, 8, 8)
    qm(x)
    for name, e in qm.export().items():
        ints, steps = e["integers"], e["steps"]
        bins = e["bins"]
        half = (bins - 1) // 2
        assert bins % 2 == 1 and np.abs(ints).max() <= half
        view = steps.reshape((-1,) + (1,) * (ints.ndim - 1)) if e["per_channel"] else steps
        recon = (ints.astype(np.float64) * view.astype(np.float64)).astype(np.float32)
        assert np.array_equal(recon, e["values"]), name
    # first and last layers stay 8-bit and uncoded
    assert qm.coded == {"conv1.weight": False, "conv2.weight": True, "fc1.weight": True,
                        "fc2.weight": True, "fc3.weight": False}
    assert qm.bins()["conv1.weight"] == 255


def test_small_coded_layers_get_one_clip():
    """Coded layers below per_channel_min_weights (LeNet-5's conv2: 2400 weights) share one clip, so
    one step instead of 16 is stored; larger ones keep a clip per output channel. Configurations
    saved before the option existed restore with per-channel clips everywhere."""
    qm = QuantizedModel(LeNet5(), QuantConfig())
    assert qm.quantizer("conv2.weight").clip.numel() == 1
    assert qm.quantizer("fc1.weight").clip.numel() == 120 and qm.quantizer("fc2.weight").clip.numel() == 84
    old = QuantConfig.from_dict({k: v for k, v in QuantConfig().to_dict().items() if k != "per_channel_min_weights"})
    assert old.per_channel_min_weights == 0
    assert QuantizedModel(LeNet5(), old).quantizer("conv2.weight").clip.numel() == 16
