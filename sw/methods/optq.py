"""Index choice for one layer: round to nearest, OPTQ/GPTQ (column walk with the OBS error update), and CERWU.

Conventions. A layer's weights are a (rows, columns) float64 matrix `ws` already divided by
the quantization step ("scaled": the grid is the integers -K..K), and `hs` is the Hessian of
the layer-wise loss for those scaled weights (H·step² for one step per tensor, H from
`sw.methods.hessian`). The objective of a row with indices q is

    J(q) = ½ (ws - q) hs (ws - q)ᵀ + λ · R(q),

the mean squared output error (H = 2XXᵀ/n) plus λ times the code length R in bits. OPTQ
(λ = 0) walks the columns in order, rounds each weight and spreads its error over the
remaining columns through the upper Cholesky factor U of hs⁻¹ (the OBS update). CERWU
(λ > 0) adds a Gaussian rate prior γ/2·q², γ = 1 / (ln 2 · Var(ws)), to the quadratic part:
with H' = hs + γλ I and w' = ws hs H'⁻¹ the objective is ½ (w' - q) H' (w' - q)ᵀ + λ (R(q) -
γ/2 q²) up to a constant, and the walk on (w', H') chooses each index by minimizing
½ (x - q)² + λ U_jj² (R(q) - γ/2 q²). R(q) = -log2 p(q) is the code length under the counts
of the indices chosen so far plus a prior histogram: a static tANS table per tensor codes
with one histogram, so the model is a count model (refit after every column), not a
context model.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch

METHODS = ("rtn", "optq", "cerwu")
SMOOTHING = 0.5        #: pseudo-count of every index in the range (a finite cost for unused ones)


def gamma_of(ws: torch.Tensor) -> float:
    """CERWU's γ = 1 / (ln 2 · Var(ws)): the curvature of the Gaussian code length of the scaled weights."""
    var = float(torch.var(ws.to(torch.float64))) if ws.numel() > 1 else 0.0
    return 1.0 / (math.log(2.0) * var) if var > 0 else 0.0


def rate_transform(ws: torch.Tensor, hs: torch.Tensor, gamma_lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(w', H') = (ws hs (hs + γλ I)⁻¹, hs + γλ I): the Gaussian rate prior folded into the quadratic term."""
    hp = hs.to(torch.float64) + gamma_lam * torch.eye(hs.shape[0], dtype=torch.float64)
    wp = torch.linalg.solve(hp, hs.to(torch.float64) @ ws.to(torch.float64).T).T
    return wp, hp


def inverse_cholesky(h: torch.Tensor, retries: int = 6) -> torch.Tensor:
    """Upper triangular U with H⁻¹ = Uᵀ U (float64); adds diagonal dampening if H is numerically singular."""
    h = h.to(torch.float64)
    extra = 0.0
    for _ in range(retries + 1):
        try:
            hd = h + extra * torch.eye(h.shape[0], dtype=torch.float64) if extra else h
            lower = torch.linalg.cholesky(hd)
            return torch.linalg.cholesky(torch.cholesky_inverse(lower), upper=True)
        except torch.linalg.LinAlgError:
            extra = max(extra * 10.0, 1e-6 * float(torch.diagonal(h).abs().mean()) or 1e-12)
    raise ValueError("the layer's Hessian is not positive definite even after dampening")


def round_to_nearest(ws: torch.Tensor, max_index: int) -> torch.Tensor:
    """Integer indices round(ws) clipped to -max_index..max_index (int64)."""
    return torch.clamp(torch.round(ws.to(torch.float64)), -max_index, max_index).to(torch.int64)


def histogram(q: torch.Tensor, max_index: int) -> torch.Tensor:
    """Counts (float64) of the indices -max_index..max_index."""
    return torch.bincount((q.reshape(-1) + max_index).to(torch.int64), minlength=2 * max_index + 1
                          ).to(torch.float64)


@numba.njit(cache=True, nogil=True)
def _walk_kernel(w, u, max_index, lam, counts, gamma, smoothing, out):
    """The column walk in place on w (float64, rows x cols): indices into out, counts updated per column."""
    rows, cols = w.shape
    n_cand = 2 * max_index + 1
    row_cost = np.empty(n_cand)
    chosen = np.zeros(n_cand)
    for j in range(cols):
        d = u[j, j]
        if lam > 0:
            total = counts.sum() + smoothing * n_cand
            for a in range(n_cand):
                qv = a - max_index
                rate = -np.log2((counts[a] + smoothing) / total) - 0.5 * gamma * qv * qv
                row_cost[a] = 0.5 * qv * qv + lam * d * d * rate    # + ½x² - x·q: the same ½x² for every q
            chosen[:] = 0.0
        for r in range(rows):
            x = w[r, j]
            if lam > 0:
                best, best_cost = 0, np.inf
                for a in range(n_cand):
                    c = row_cost[a] - x * (a - max_index)
                    if c < best_cost:
                        best, best_cost = a, c
                q = best - max_index
                chosen[best] += 1.0
            else:
                q = int(min(max(np.rint(x), -max_index), max_index))
            out[r, j] = q
            e = (x - q) / d
            for k in range(j + 1, cols):
                w[r, k] -= e * u[j, k]
        if lam > 0:
            counts += chosen


def optq_walk(w: torch.Tensor, u: torch.Tensor, max_index: int, lam: float = 0.0,
              prior: torch.Tensor | None = None, gamma: float = 0.0) -> torch.Tensor:
    """OPTQ column walk over scaled weights `w` with U (H⁻¹ = UᵀU); with λ > 0 the choice adds λ U_jj² (R(q) - γ/2 q²).

    λ = 0 is plain OPTQ/GPTQ: each column is rounded to nearest (half to even, clipped to the
    grid) and its error (x - q) / U_jj is subtracted, times U_j,k, from every later column k.
    With λ > 0 each weight takes the index minimizing ½ (x - q)² + λ U_jj² (R(q) - γ/2 q²),
    where R is the code length under `prior` (counts of -K..K) plus the counts of the
    columns chosen so far (refit after every column). Returns int64 indices of w's shape.
    """
    wn = np.ascontiguousarray(w.detach().to(torch.float64).numpy()).copy()
    un = np.ascontiguousarray(u.detach().to(torch.float64).numpy())
    counts = (np.ascontiguousarray(prior.to(torch.float64).numpy()).copy() if prior is not None
              else np.zeros(2 * max_index + 1))
    out = np.empty(wn.shape, dtype=np.int64)
    _walk_kernel(wn, un, int(max_index), float(lam), counts, float(gamma), SMOOTHING, out)
    return torch.from_numpy(out)


def quantize_layer(method: str, ws: torch.Tensor, hs: torch.Tensor | None, max_index: int,
                   lam: float = 0.0, passes: int = 2) -> torch.Tensor:
    """Indices (int64, ws's shape) of one layer's scaled weights by `method` (rtn, optq, cerwu) at λ.

    `hs` is the dampened Hessian of the scaled weights (unused by rtn). CERWU runs `passes`
    walks: the first with the round-to-nearest histogram of w' as the prior counts, each
    later one with the previous walk's histogram, so the rate model approaches the one
    histogram the tensor's tANS table is built from.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if method == "rtn":
        return round_to_nearest(ws, max_index)
    if hs is None:
        raise ValueError(f"{method} needs the layer's Hessian (calibration inputs)")
    if method == "optq" or lam <= 0:
        return optq_walk(ws, inverse_cholesky(hs), max_index)
    gamma = gamma_of(ws)
    wp, hp = rate_transform(ws, hs, gamma * lam)
    u = inverse_cholesky(hp)
    prior = histogram(round_to_nearest(wp, max_index), max_index)
    q = None
    for _ in range(max(1, passes)):
        q = optq_walk(wp, u, max_index, lam, prior, gamma)
        prior = histogram(q, max_index)
    return q

