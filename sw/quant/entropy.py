"""Entropy of quantized weights and the paper's entropy criterion (Eq. 3) with its gradient (Eq. 4)."""
from __future__ import annotations

import torch


def entropy_bits_per_symbol(symbols: torch.Tensor) -> float:
    """Empirical Shannon entropy (bits per symbol) of an integer tensor."""
    flat = symbols.detach().reshape(-1).to(torch.int64)
    if flat.numel() == 0:
        return 0.0
    counts = torch.bincount(flat - flat.min()).to(torch.float64)
    p = counts[counts > 0] / flat.numel()
    return float(-(p * torch.log2(p)).sum())


def row_entropies(symbols: torch.Tensor) -> torch.Tensor:
    """Entropy in bits per symbol of each row (dim 0 slice) of an integer tensor, float64."""
    rows = symbols.detach().reshape(symbols.shape[0], -1).to(torch.int64)
    rows = rows - rows.min()
    width = int(rows.max()) + 1
    counts = torch.zeros(rows.shape[0], width, dtype=torch.float64, device=rows.device)
    counts.scatter_add_(1, rows, torch.ones_like(rows, dtype=torch.float64))
    p = counts / rows.shape[1]
    return -(torch.where(p > 0, p * torch.log2(torch.where(p > 0, p, 1.0)), 0.0)).sum(dim=1)


class EntropyCriterion(torch.autograd.Function):
    """L = |sum_W |W| ((1 - f_W) H_W(lo) + f_W H_W(hi)) - H_hat| / H_hat, f_W = lambda_W - floor(lambda_W).

    Backward is Eq. 4 of the paper, dL/dlambda_W = |W| (H_W(hi) - H_W(lo)) / H_hat, times the
    sign of the bracket (the paper states the case above the target). H_W(k) is a step function
    of lambda and of the clip, treated as a constant as in the paper.
    """

    @staticmethod
    def forward(ctx, lam: torch.Tensor, h_lo: torch.Tensor, h_hi: torch.Tensor,
                sizes: torch.Tensor, target: float) -> torch.Tensor:
        frac = lam - torch.floor(lam)
        total = (sizes * ((1 - frac) * h_lo + frac * h_hi)).sum()
        ctx.save_for_backward(h_lo, h_hi, sizes, torch.sign(total - target))
        ctx.target = float(target)
        return (total - target).abs() / target

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        h_lo, h_hi, sizes, sign = ctx.saved_tensors
        grad = grad_out * sign * sizes * (h_hi - h_lo) / ctx.target
        return grad.to(h_lo.dtype), None, None, None, None


def entropy_loss(lam: torch.Tensor, h_lo: torch.Tensor, h_hi: torch.Tensor, sizes: torch.Tensor,
                 target_bits: float) -> torch.Tensor:
    """The paper's L^entropy (Eq. 3) for precision parameters `lam` of groups of `sizes` weights."""
    if target_bits <= 0:
        raise ValueError(f"the entropy target must be positive, got {target_bits} bits")
    dt = torch.float64
    return EntropyCriterion.apply(lam.to(dt), h_lo.to(dt), h_hi.to(dt), sizes.to(dt), float(target_bits))


def mixed_entropy_bits(lam: torch.Tensor, h_lo: torch.Tensor, h_hi: torch.Tensor,
                       sizes: torch.Tensor) -> float:
    """The bracketed sum of Eq. 3: the entropy (bits) that the fractional precisions stand for."""
    frac = lam.detach().double() - torch.floor(lam.detach().double())
    return float((sizes.double() * ((1 - frac) * h_lo.double() + frac * h_hi.double())).sum())


def soft_bin_entropies(x: torch.Tensor, half: torch.Tensor, dead_zone: float = 0.0,
                       tau: float = 0.2) -> torch.Tensor:
    """Differentiable entropy (bits) of each row of x (weights in units of the step) over bins -k..k.

    Each bin's probability is the mean of a difference of sigmoids at its edges (temperature
    `tau`), computed as a difference of the edges' mean sigmoids. The estimate has gradients
    with respect to the weights and the clip; it is used only for those gradients, never for
    the reported entropy.
    """
    rows = x.reshape(x.shape[0], -1)
    k = half.reshape(-1, 1).to(rows.dtype)
    big = int(half.max())
    i = torch.arange(-big, big + 2, dtype=rows.dtype)          # lower edge of bin i (i = big+1: top edge)
    shift = torch.where(i > 0, dead_zone / 2, torch.where(i <= 0, -dead_zone / 2, 0.0))
    edges = i - 0.5 + shift
    cdf = torch.sigmoid((rows[:, :, None] - edges) / tau).mean(dim=1)      # (rows, 2*big+2)
    cdf = torch.where(i <= -k, torch.ones_like(cdf), torch.where(i > k, torch.zeros_like(cdf), cdf))
    p = (cdf[:, :-1] - cdf[:, 1:]).clamp(min=1e-12)
    p = p / p.sum(dim=1, keepdim=True)
    return -(p * torch.log2(p)).sum(dim=1)
