"""HEMP's differentiable n-th order entropy of quantized weights (Tartaglione et al., Sec. 3).

Each weight is binned softly to the two reconstruction levels around it (the paper's Eq. 7,
generalised by a `softness` s: s = 1 is Eq. 7, s -> 0 is hard nearest-level quantization);
n-tuples of weights are taken in the order the tANS code scans them (consecutive symbols
within a lane, sw.methods.layout / FORMAT.md 1.4 and 2.5) and their 2^n corner
probabilities fill a soft histogram over the N^n index tuples, whose entropy is the proxy
H_n of Eq. 8 (bits per tuple). `HempEntropy` computes its gradient explicitly (Eq. 17),
`entropy_proxy` the same value through autograd (the tests compare both and finite
differences).

Eq. 17 as printed drops the weights of the other coordinates; the exact gradient used here is
dH/dw_{j,m} = (1/T) dp+/dw sum_{corners c of tuple j} [prod_{s != m} p_{j,s}(c_s)]
              * (log2 P(c with c_m = -) - log2 P(c with c_m = +)),
which is Eq. 16 for n = 1 and Eq. 17 whenever the other coordinates are binned hard.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

#: probabilities below this are treated as this in the logarithm (only empty cells get there)
LOG_FLOOR = 1e-300
#: dense histograms up to this many cells; beyond, the occupied cells are found by sorting
DENSE_CELLS = 1 << 22


def scan_order(shape: tuple[int, ...], lanes: int, lane_axis: int, n: int) -> torch.Tensor:
    """Flat indices (into the C-order tensor) of the n-tuples the code scans, shape (tuples, n).

    The symbols are the tensor with `lane_axis` (-1: none) moved to the front, flattened (FORMAT.md 2.5),
    split into `lanes` contiguous near-equal lanes (1.4); each lane is cut into consecutive
    n-tuples from its start. A lane's last len mod n symbols (its ragged tail) form no tuple here.
    """
    if n < 1:
        raise ValueError(f"the tuple size must be at least 1, got {n}")
    size = math.prod(shape)
    flat = np.arange(size, dtype=np.int64).reshape(shape)
    if lane_axis >= 0 and len(shape) > 1:        # a negative axis (FORMAT's NO_AXIS = -1): C order
        flat = np.moveaxis(flat, lane_axis, 0)
    y = flat.reshape(-1)
    q, r = divmod(size, max(1, lanes))
    parts = []
    for j in range(max(1, lanes)):
        start, length = j * q + min(j, r), q + (1 if j < r else 0)
        m = length // n
        parts.append(y[start:start + m * n].reshape(m, n))
    return torch.from_numpy(np.concatenate(parts) if parts else np.zeros((0, n), np.int64))


def soft_assign(w: torch.Tensor, levels: torch.Tensor, softness: float = 1.0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lower level index, p of the upper level, d p/d w) for every weight (no autograd).

    Between levels r(q) < r(q+1) the upper level gets p = clamp((f - 1/2)/s + 1/2, 0, 1) with
    f = (w - r(q))/(r(q+1) - r(q)): s = 1 is the paper's linear Eq. 7; as s -> 0 it becomes the
    nearest level. Weights beyond the outer levels go to them with certainty (no gradient).
    """
    if not softness > 0:
        raise ValueError(f"softness must be positive, got {softness}")
    lv = levels.detach().to(w.dtype)
    if lv.numel() < 2:
        raise ValueError("soft binning needs at least 2 reconstruction levels")
    x = w.detach()
    lo = torch.clamp(torch.searchsorted(lv, x.contiguous(), right=True) - 1, 0, lv.numel() - 2)
    delta = lv[lo + 1] - lv[lo]
    f = (x - lv[lo]) / delta
    u = (f - 0.5) / softness + 0.5
    p = u.clamp(0.0, 1.0)
    inside = (u > 0) & (u < 1)
    dp = torch.where(inside, 1.0 / (softness * delta), torch.zeros_like(delta))
    return lo, p, dp


def _corners(n: int) -> torch.Tensor:
    """The 2^n corner patterns (0: lower level, 1: upper) as a (2^n, n) bool tensor."""
    return torch.tensor(list(itertools.product((0, 1), repeat=n)), dtype=torch.bool).reshape(-1, n)


def _corner_cells(lo: torch.Tensor, bins: int) -> torch.Tensor:
    """Cell index (base `bins`, first coordinate most significant) of every corner: (T, 2^n)."""
    n = lo.shape[1]
    bits = _corners(n).to(lo.dtype)
    powers = bins ** torch.arange(n - 1, -1, -1, dtype=torch.int64)
    return ((lo[:, None, :] + bits[None]) * powers).sum(-1)


def _corner_probs(p: torch.Tensor) -> torch.Tensor:
    """Product over coordinates of p (upper) or 1 - p (lower) for every corner: (T, 2^n)."""
    bits = _corners(p.shape[1])
    return torch.where(bits[None], p[:, None, :], 1 - p[:, None, :]).prod(-1)


def _histogram(cells: torch.Tensor, weights: torch.Tensor, bins: int, n: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(cell masses, index of each corner's cell in them): dense or over the occupied cells."""
    flat = cells.reshape(-1)
    if bins ** n <= DENSE_CELLS:
        inv = flat
        size = bins ** n
    else:
        _, inv = torch.unique(flat, return_inverse=True)
        size = int(inv.max()) + 1 if inv.numel() else 1
    mass = torch.zeros(size, dtype=weights.dtype).index_add(0, inv, weights.reshape(-1))
    return mass, inv.reshape(cells.shape)


def _entropy_bits(prob: torch.Tensor) -> torch.Tensor:
    """-sum P log2 P with empty cells contributing 0 (differentiable)."""
    return -(prob * torch.log2(prob.clamp(min=LOG_FLOOR))).sum()


def entropy_proxy(tuples: torch.Tensor, levels: torch.Tensor, softness: float = 1.0) -> torch.Tensor:
    """H_n (Eq. 8, bits per tuple) of weights arranged as (T, n) tuples, differentiable by autograd."""
    t, n = tuples.shape
    if t == 0:
        return tuples.sum() * 0.0
    lo, _, _ = soft_assign(tuples, levels, softness)
    lv = levels.detach().to(tuples.dtype)
    delta = lv[lo + 1] - lv[lo]
    p = ((((tuples - lv[lo]) / delta) - 0.5) / softness + 0.5).clamp(0.0, 1.0)
    mass, inv = _histogram(_corner_cells(lo, lv.numel()), _corner_probs(p), lv.numel(), n)
    return _entropy_bits(mass / t)


class HempEntropy(torch.autograd.Function):
    """H_n of (T, n) weight tuples with the explicit gradient (Eq. 17, with the corner weights)."""

    @staticmethod
    def forward(ctx, tuples: torch.Tensor, levels: torch.Tensor, softness: float) -> torch.Tensor:
        t, n = tuples.shape
        if t == 0:
            ctx.empty = True
            return tuples.new_zeros(())
        ctx.empty = False
        lo, p, dp = soft_assign(tuples, levels, softness)
        mass, inv = _histogram(_corner_cells(lo, levels.numel()), _corner_probs(p), levels.numel(), n)
        prob = mass / t
        ctx.save_for_backward(p, dp, torch.log2(prob.clamp(min=LOG_FLOOR))[inv])
        return _entropy_bits(prob)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        if ctx.empty:
            return None, None, None
        p, dp, logp = ctx.saved_tensors          # logp: (T, 2^n) log2 P of each corner's cell
        t, n = p.shape
        bits = _corners(n)
        grads = []
        for m in range(n):
            others = torch.where(bits[None], p[:, None, :], 1 - p[:, None, :])
            others = torch.cat([others[..., :m], others[..., m + 1:]], dim=-1).prod(-1)   # (T, 2^n)
            sign = torch.where(bits[:, m], -1.0, 1.0).to(p.dtype)                          # + lower, - upper
            grads.append((others * logp * sign).sum(-1) * dp[:, m] / t)
        return grad_out * torch.stack(grads, dim=1), None, None


def hemp_entropy(tuples: torch.Tensor, levels: torch.Tensor, softness: float = 1.0) -> torch.Tensor:
    """H_n (bits per tuple) with the explicit Eq. 17 gradient (what training uses)."""
    return HempEntropy.apply(tuples, levels.detach().to(tuples.dtype), float(softness))


def nearest_indices(w: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Index of the nearest reconstruction level of every weight (ties to the lower level)."""
    lv = levels.detach().to(w.dtype)
    mids = (lv[1:] + lv[:-1]) / 2
    return torch.searchsorted(mids, w.detach().contiguous(), right=False)


def block_entropy(indices: torch.Tensor) -> float:
    """Exact empirical entropy (bits per tuple) of integer (T, n) index tuples (Eq. 2)."""
    if indices.numel() == 0:
        return 0.0
    _, counts = torch.unique(indices.reshape(indices.shape[0], -1), dim=0, return_counts=True)
    p = counts.to(torch.float64) / indices.shape[0]
    return float(-(p * torch.log2(p)).sum())


def reconstruction_error(weights: list[torch.Tensor], levels: list[torch.Tensor]) -> torch.Tensor:
    """E of Eq. 25: root mean square of w - r(q) over all given weights (q the nearest level)."""
    total = sum(w.numel() for w in weights)
    sq = sum(((w - lv.to(w.dtype)[nearest_indices(w, lv)]) ** 2).sum() for w, lv in zip(weights, levels))
    return torch.sqrt(sq / max(1, total) + 1e-30)


def insensitivity(grad: torch.Tensor) -> torch.Tensor:
    """S-bar of Eq. 27: 1 - |dL/dw| / max |dL/dw| over the layer (ones where the loss gradient is all zero)."""
    g = grad.detach().abs()
    top = g.max() if g.numel() else g.new_zeros(())
    return torch.ones_like(g) if not float(top) > 0 else 1 - g / top
