"""Dead-zone (Pareto paper Eq. 1) records and post-training operating points (sw.quant.deadzone's rule).

`grid_of` is re-exported for the methods that check a β before searching."""
from __future__ import annotations

import numpy as np
import torch

from sw import container as ct
from sw.container.codebook import dead_zone_levels
from sw.methods.compress import smallest_tans_tensor
from sw.methods.layout import lanes_for
from sw.quant.deadzone import grid_of, indices, reconstruct  # noqa: F401  (grid_of: re-export)
from sw.tans import format as fmt


def record(name: str, ints: np.ndarray, steps: np.ndarray, beta: float, step_axis: int, log2_states: int,
           max_lanes: int) -> ct.Tensor:
    """A codebook tANS record of signed dead-zone indices `ints` with steps Δ (per tensor or channel)."""
    ints = np.asarray(ints, np.int64)
    half = max(1, int(np.abs(ints).max()) if ints.size else 1)
    g, d = grid_of(beta)
    levels = dead_zone_levels(2 * half + 1, d, g)
    lanes, axis = lanes_for(ints.shape, max_lanes)
    fine = (np.asarray(steps, np.float32) / np.float32(g)).astype(np.float32)
    return smallest_tans_tensor(name, ints + half, log2_states, lanes=lanes, lane_axis=axis, dtype=np.float32,
                                quant=fmt.QUANT_CODEBOOK, levels=levels, steps=fine, step_axis=step_axis)


def point(name: str, w2: torch.Tensor, ws: torch.Tensor, steps: np.ndarray, scol: torch.Tensor,
          h: torch.Tensor | None, beta: float, half: int, per_channel: bool, log2_states: int, max_lanes: int,
          shape: tuple[int, ...], desc: dict | None = None):
    """The post-training operating point of one grid (steps Δ) with Eq. 1's dead zone β (rtn decisions).

    `ws` = w2 / Δ; the layer loss is measured on the dead-zone reconstruction; `desc` (the grid's
    description) goes into the point's config. A
    sw.methods.posttrain.Point whose record is the codebook form (`record`).
    """
    from sw.methods.posttrain import Point, record_bits, weight_loss
    j = indices(ws, beta, half)
    ints = j.numpy().reshape(shape).astype(np.int16)
    t = record(name, ints, steps, beta, 0 if per_channel else fmt.NO_AXIS, log2_states, max_lanes)
    cfg = {**(desc or {}), "dead_zone": beta, "walk_lam": 0.0, "bins": t.bins,
           "step": float(steps[0]) if steps.size == 1 else "per-channel"}
    return Point("tans", record_bits(t), weight_loss(w2, reconstruct(j, beta), scol, h), t, ints, cfg)
