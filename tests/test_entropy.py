"""The entropy criterion (Eq. 3), its gradient (Eq. 4) against finite differences, entropy helpers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sw.quant import QuantConfig, QuantizedModel, entropy_bits_per_symbol, entropy_loss, row_entropies
from sw.quant.entropy import soft_bin_entropies
from sw.models.zoo import LeNet5


def test_entropy_of_known_distributions():
    assert entropy_bits_per_symbol(torch.tensor([3, 3, 3, 3])) == 0.0
    assert math.isclose(entropy_bits_per_symbol(torch.tensor([0, 1, 2, 3])), 2.0)
    rows = row_entropies(torch.tensor([[0, 0, 1, 1], [-1, -1, -1, -1], [0, 1, 2, 3]]))
    assert torch.allclose(rows, torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64))


def eq3(lam, h_lo, h_hi, sizes, target):
    frac = lam - np.floor(lam)
    return abs(np.sum(sizes * ((1 - frac) * h_lo + frac * h_hi)) - target) / target


@pytest.mark.parametrize("target", [500.0, 5000.0])
def test_value_and_gradient_match_finite_differences(target):
    lam = torch.tensor([1.3, 2.6, 4.1], dtype=torch.float64, requires_grad=True)
    h_lo = torch.tensor([0.9, 1.4, 2.0], dtype=torch.float64)
    h_hi = torch.tensor([1.2, 1.9, 2.2], dtype=torch.float64)
    sizes = torch.tensor([100.0, 1000.0, 400.0], dtype=torch.float64)
    loss = entropy_loss(lam, h_lo, h_hi, sizes, target)
    ref = eq3(lam.detach().numpy(), h_lo.numpy(), h_hi.numpy(), sizes.numpy(), target)
    assert math.isclose(float(loss.detach()), ref, rel_tol=1e-12)
    loss.backward()
    eps = 1e-6
    for i in range(3):
        up, down = lam.detach().numpy().copy(), lam.detach().numpy().copy()
        up[i] += eps
        down[i] -= eps
        fd = (eq3(up, h_lo.numpy(), h_hi.numpy(), sizes.numpy(), target)
              - eq3(down, h_lo.numpy(), h_hi.numpy(), sizes.numpy(), target)) / (2 * eps)
        assert math.isclose(float(lam.grad[i]), fd, rel_tol=1e-5, abs_tol=1e-9)
    # Eq. 4: |W| (H_hi - H_lo) / H_hat, signed by which side of the target we are on
    total = np.sum(sizes.numpy() * ((1 - (lam.detach().numpy() % 1)) * h_lo.numpy()
                                    + (lam.detach().numpy() % 1) * h_hi.numpy()))
    sign = np.sign(total - target)
    assert torch.allclose(lam.grad, torch.tensor(sign * sizes.numpy() * (h_hi - h_lo).numpy() / target))


def test_rejects_non_positive_target():
    with pytest.raises(ValueError):
        entropy_loss(torch.ones(1), torch.ones(1), torch.ones(1), torch.ones(1), 0.0)


def test_model_entropy_terms_are_quantized_entropies():
    torch.manual_seed(0)
    qm = QuantizedModel(LeNet5(1, 10, 8), QuantConfig(init_bins=7, soft_entropy=False))
    qm(torch.randn(2, 1, 8, 8))
    lam, lo, hi, sizes = qm.entropy_terms()
    assert lam.numel() == 3 and torch.all(hi >= lo - 1e-9)   # more bins, at least as much entropy here
    assert int(sizes.sum()) == qm.coded_weights()
    loss, est = qm.entropy_loss(target_bits=0.5 * qm.coded_weights())
    loss.backward()
    expected = torch.sign(torch.tensor(est - 0.5 * qm.coded_weights())) * sizes * (hi - lo) / (0.5 * qm.coded_weights())
    got = torch.cat([qm.quantizer(n).lam.grad for n in qm.coded_names()])
    assert torch.allclose(got.double(), expected, rtol=1e-5)


def test_soft_term_keeps_value_and_lambda_gradient():
    torch.manual_seed(0)
    target = 2000.0
    grads = {}
    for soft in (False, True):
        torch.manual_seed(0)
        qm = QuantizedModel(LeNet5(1, 10, 8), QuantConfig(init_bins=7, soft_entropy=soft))
        qm(torch.randn(2, 1, 8, 8))
        loss, _ = qm.entropy_loss(target)
        loss.backward()
        grads[soft] = (float(loss.detach()), torch.cat([qm.quantizer(n).lam.grad for n in qm.coded_names()]),
                       qm.quantizer("fc1.weight").clip.grad, qm.weight("fc1.weight").grad)
    assert math.isclose(grads[False][0], grads[True][0], rel_tol=1e-12)
    assert torch.allclose(grads[False][1], grads[True][1])
    assert grads[False][2] is None and grads[True][2] is not None and grads[True][3].abs().sum() > 0


def test_soft_entropy_tracks_hard_entropy():
    torch.manual_seed(3)
    x = torch.randn(1, 20000) * 1.5
    soft = float(soft_bin_entropies(x, torch.tensor([3]), tau=0.02))
    hard = float(row_entropies(torch.clamp(torch.round(x), -3, 3)))
    assert abs(soft - hard) < 0.02
