"""Post-training compression with a rate target: rtn, OPTQ or CERWU indices, the grid and λ searched per layer.

For every coded layer (all conv/linear weights but the first and last, which stay 8-bit
unless `code_first_last`) the driver builds operating points: for each grid (a step of
c x the weights' std, per tensor or per output channel, or with `bins` the fixed grid
step = max|w| / ((bins-1)/2)) and, for CERWU, each λ of the walk, it chooses the indices
(`sw.methods.optq`), builds the layer's actual container record and notes its size in bits
(the whole record: payload with lane states, table, steps and header) and its layer-wise
loss on the calibration inputs. Raw 8-bit (per-channel step, the way the edge layers are
stored) is one more point, so a layer whose coding does not pay falls back to it. The
points on each layer's lower convex hull of (bits, layer loss) are then scored end to end:
the KL divergence of the model's outputs on the calibration inputs from the float model's,
with only that layer quantized (allocation "output"; "layer" keeps the layer loss). One
global Lagrange multiplier picks each layer's point minimizing score + λ·bits (bisection on
λ to meet `target_bits_per_weight` over the coded layers, then a greedy pass that spends
what is left of the budget, then a local search on the divergence of the whole model with
every coded layer quantized, since the per-layer divergences do not simply add up); with
`lam` the walks and the choice use that λ directly, in layer-loss units. Hessians come from
the float model's inputs (all layers at once). The result is an ordinary `.tans` container
(zero-point records, lanes of whole input channels) that the golden decoder and the hardware
read like every other file.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from tqdm import tqdm

from sw import container as ct
from sw.methods.compress import (CONTAINER_KIND, checkpoint_ref, load_state_dict_file, sha256_of,
                                 smallest_tans_tensor)
from sw.methods.layout import lanes_for
from sw.methods.hessian import collect_hessians, dampen
from sw.methods.optq import METHODS, gamma_of, quantize_layer
from sw.methods import deadzone
from sw.quant.qmodel import quantizable_weights
from sw.tans import format as fmt
from sw.train import set_threads

MAX_BINS = 31                 #: widest searched grid: symbols fit the default core's 5 symbol bits
INT8_HALF = 127               #: raw 8-bit layers: indices -127..127, step max|w|/127 per output channel
#: step = c x std(w). OPTQ's error feedback keeps coarse grids busy (the rounding errors of the first
#: columns pile up in the later ones), so its rate falls slowly with the step: at 6 std an MLP layer
#: still took 0.57 bits/weight; the range runs to 20 std so that OPTQ and CERWU reach low rates
STEP_FACTORS = tuple(float(c) for c in np.geomspace(0.12, 20.0, 36))
CERWU_STRENGTHS = tuple(float(t) for t in np.geomspace(0.005, 4.0, 12))   #: cerwu walk λ as γλ / mean diag(hs)
DEFAULT_CALIBRATION = 512     #: calibration examples drawn from the training split


@dataclass
class Point:
    """One operating point of a layer: its record, size in bits and layer-wise loss."""

    kind: str                 #: "tans" or "int8"
    bits: int                 #: whole record body in bits (what `report`/`inspect` count)
    loss: float               #: ½ Σ ΔW H ΔWᵀ on the calibration inputs (½ ||ΔW||² without them)
    tensor: ct.Tensor
    integers: np.ndarray      #: signed indices (int16), the weight's shape
    config: dict = field(default_factory=dict)
    output_kl: float | None = None   #: KL(float outputs || outputs with this layer so), calibration mean
    score: float = 0.0        #: what the allocation adds up over layers: `loss` or `output_kl`


def record_bits(t: ct.Tensor) -> int:
    """Every bit of a tensor's record: payload (lane states included), table, steps, header, length, CRC."""
    return ct.record_bits(t)


def coded_record(name: str, ints: np.ndarray, steps: np.ndarray, per_channel: bool, log2_states: int,
                 max_lanes: int) -> ct.Tensor:
    """A zero-point tANS record of signed indices; bins = the narrowest odd count covering them,
    the table size the one with the smallest record (at most 2^log2_states)."""
    half = max(1, int(np.abs(ints).max()) if ints.size else 1)
    bins = 2 * half + 1
    lanes, axis = lanes_for(ints.shape, max_lanes)
    return smallest_tans_tensor(name, (ints.astype(np.int64) + half), log2_states, lanes=lanes,
                                lane_axis=axis, dtype=np.float32, quant=fmt.QUANT_ZERO_POINT, bins=bins,
                                zero_point=half, steps=steps, step_axis=0 if per_channel else fmt.NO_AXIS)


def int8_point(name: str, w: torch.Tensor, h: torch.Tensor | None) -> Point:
    """Raw 8-bit point: per-output-channel step max|w|/127, round to nearest (how edge layers are stored)."""
    w2 = w.detach().to(torch.float64).reshape(w.shape[0], -1)
    peak = w2.abs().amax(dim=1)
    steps = np.where(peak.numpy() > 0, peak.numpy() / INT8_HALF, 1.0).astype(np.float32)
    s = torch.from_numpy(steps.astype(np.float64))[:, None]
    q = torch.clamp(torch.round(w2 / s), -INT8_HALF, INT8_HALF).to(torch.int64)
    ints = q.numpy().reshape(tuple(w.shape)).astype(np.int8)
    t = ct.int8_tensor(name, ints, steps, 0)
    return Point("int8", record_bits(t), weight_loss(w2, q, s, h), t, ints.astype(np.int16),
                 {"bins": 2 * INT8_HALF + 1, "step": "per-channel"})


def lower_hull(points: list[Point]) -> list[Point]:
    """The points on the lower convex hull of (bits, loss): the only ones a Lagrangian choice can pick."""
    hull: list[Point] = []
    for p in sorted(points, key=lambda p: (p.bits, p.loss)):
        if hull and p.loss >= hull[-1].loss:
            continue
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (b.loss - a.loss) * (p.bits - a.bits) >= (p.loss - a.loss) * (b.bits - a.bits):
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def output_divergence(out: torch.Tensor, ref: torch.Tensor) -> float:
    """Mean KL divergence of (N, classes) outputs from the float model's log-probabilities `ref`; else the mean squared difference."""
    out = out.to(torch.float64)
    if out.dim() == 2:
        return float(F.kl_div(F.log_softmax(out, dim=1), ref, log_target=True, reduction="sum") / out.shape[0])
    return float(((out - ref) ** 2).mean())


def weight_loss(w2: torch.Tensor, q: torch.Tensor, steps: torch.Tensor, h: torch.Tensor | None) -> float:
    """Layer-wise loss ½ Σ_rows (w - q·step) H (w - q·step)ᵀ in weight units (H = I without calibration)."""
    d = w2 - q.to(torch.float64) * steps
    if h is None:
        return 0.5 * float((d * d).sum())
    return 0.5 * float(((d @ h) * d).sum())


class PostTraining:
    """Operating points of every coded layer of one float model for one method; `container` cuts any rate from them."""

    def __init__(self, model: nn.Module, calib_x: torch.Tensor | None, method: str = "cerwu",
                 bins: int | None = None, walk_lams: list[float] | None = None,
                 log2_states: int = fmt.DEFAULT_LOG2_STATES, max_lanes: int = fmt.DEFAULT_LANES,
                 code_first_last: bool = False, per_channel_steps: bool = False, passes: int = 2,
                 allocation: str = "output", progress: bool = True, refine_rounds: int = 10,
                 refine_window: int = 1, dead_zone: float = 0.0) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
        if bins is not None and (bins < 3 or bins % 2 == 0 or bins > 255):
            raise ValueError(f"bins must be odd, from 3 to 255, got {bins}")
        if method != "rtn" and calib_x is None:
            raise ValueError(f"{method} needs calibration inputs")
        if method == "cerwu" and per_channel_steps:
            raise ValueError("cerwu uses one step per tensor (its transform needs one Hessian scale per tensor)")
        if allocation not in ("output", "layer"):
            raise ValueError(f"allocation is 'output' or 'layer', got {allocation!r}")
        self.allocation = allocation if calib_x is not None else "layer"
        set_threads()   # one thread: the walks and small factorizations are fastest so on the shared cores
        self.model, self.method, self.bins = model, method, bins
        self.log2_states, self.max_lanes = log2_states, max_lanes
        self.per_channel, self.passes = per_channel_steps, passes
        self.refine_rounds, self.refine_window = refine_rounds, refine_window
        self.dead_zone = float(dead_zone)       #: Eq. 1's beta in steps: grids also get dead-zone points (0: none)
        if self.dead_zone:
            deadzone.grid_of(self.dead_zone)      # a beta the codebook can store, or ValueError now
        self.calibration = 0 if calib_x is None else int(len(calib_x))
        t0 = time.time()
        self.names = quantizable_weights(model)
        edge = {self.names[0], self.names[-1]} if len(self.names) > 1 and not code_first_last else set()
        self.coded = [n for n in self.names if n not in edge]
        self.edges = [n for n in self.names if n in edge]
        params = dict(model.named_parameters())
        self.weights = {n: params[n].detach().to(torch.float64) for n in self.names}
        self.hessians: dict[str, torch.Tensor] = {}
        if calib_x is not None and self.coded:
            self.hessians = collect_hessians(model, self.coded, calib_x)
        self.points: dict[str, list[Point]] = {}
        self._calib, self._ref = calib_x, None
        self._values: dict[int, tuple[Point, torch.Tensor]] | None = None
        if self.allocation == "output":
            self._ref = self._outputs({})
            if self._ref.dim() == 2:
                self._ref = F.log_softmax(self._ref, dim=1)
        bar = tqdm(self.coded, desc=f"{method:5} layers", disable=not progress, dynamic_ncols=True, leave=False)
        for n in bar:
            bar.set_postfix_str(n)
            pts = self._layer_points(n, walk_lams)
            if self.allocation == "output":    # the hull by layer loss, then each kept point scored end to end
                pts = lower_hull(pts)
                for p in pts:
                    p.output_kl = output_divergence(self._outputs({n: p}), self._ref)
                    p.score = p.output_kl
            else:
                for p in pts:
                    p.score = p.loss
            self.points[n] = pts
        bar.close()
        if self.allocation != "output":
            self._calib = None     # "output" keeps it: `select` refines the choice on the joint divergence
        self._joint_kl: dict[tuple, float] = {}
        self.edge_points = {n: int8_point(n, self.weights[n], None) for n in self.edges}
        self.seconds = time.time() - t0

    @torch.no_grad()
    def _outputs(self, layers: dict[str, Point], batch_size: int = 256) -> torch.Tensor:
        """The model's float64 outputs on the calibration inputs with the given layers' decoded weights swapped in."""
        from torch.func import functional_call
        dtypes = {n: v.dtype for n, v in self.model.named_parameters()}
        params = {n: self._decoded(p).to(dtypes[n]) for n, p in layers.items()}
        was = self.model.training
        self.model.eval()
        try:
            outs = [functional_call(self.model, params, (self._calib[i:i + batch_size],), strict=False)
                    for i in range(0, len(self._calib), batch_size)]
        finally:
            self.model.train(was)
        return torch.cat(outs).to(torch.float64)

    def _decoded(self, p: Point) -> torch.Tensor:
        """The weights a point's record decodes to (kept while `_refine` runs, which revisits points)."""
        if self._values is not None and id(p) in self._values:
            return self._values[id(p)][1]
        v = torch.from_numpy(np.ascontiguousarray(p.tensor.values()))
        if self._values is not None:
            self._values[id(p)] = (p, v)
        return v

    def _grids(self, w2: torch.Tensor) -> list[tuple[dict, np.ndarray]]:
        """(description, float32 steps) of every grid searched for a layer's 2-d weights."""
        std = w2.std(dim=1) if self.per_channel else w2.std().reshape(1)
        peak = w2.abs().amax(dim=1) if self.per_channel else w2.abs().max().reshape(1)
        std = torch.where(std > 0, std, torch.ones_like(std))
        peak = torch.where(peak > 0, peak, torch.ones_like(peak))
        if self.bins is not None:
            half = (self.bins - 1) // 2
            return [({"grid": f"{self.bins} bins over max|w|"}, (peak / half).numpy().astype(np.float32))]
        # cerwu walks every optq grid (its λ = 0 points are optq's), so it never has fewer choices
        return [({"step_factor": c}, (c * std).numpy().astype(np.float32)) for c in STEP_FACTORS]

    def _layer_points(self, name: str, walk_lams: list[float] | None) -> list[Point]:
        """Every operating point of one layer (plus the raw 8-bit one)."""
        w = self.weights[name]
        w2 = w.reshape(w.shape[0], -1)
        h = self.hessians.get(name)
        hd = dampen(h)[0] if h is not None else None
        half = (self.bins - 1) // 2 if self.bins is not None else (MAX_BINS - 1) // 2
        points = []
        for desc, steps in self._grids(w2):
            s = torch.from_numpy(steps.astype(np.float64))
            scol = s[:, None] if self.per_channel else s.reshape(())
            ws = w2 / scol
            hs = None if hd is None else (hd if self.per_channel else hd * float(s) ** 2)
            lams = [0.0]
            if self.method == "cerwu":
                if walk_lams is not None:
                    lams = list(walk_lams)
                else:   # walk λ as the transform's strength γλ relative to the Hessian's mean diagonal
                    g = gamma_of(ws)
                    scale = float(torch.diagonal(hs).mean()) / g if g > 0 else 0.0
                    lams = [0.0] + [t * scale for t in CERWU_STRENGTHS]
            for lam in lams:
                q = quantize_layer(self.method, ws, hs, half, lam, self.passes)
                ints = q.numpy().reshape(tuple(w.shape)).astype(np.int16)
                t = coded_record(name, ints, steps, self.per_channel, self.log2_states, self.max_lanes)
                cfg = dict(desc, walk_lam=lam, bins=t.bins,
                           step=float(steps[0]) if steps.size == 1 else "per-channel")
                points.append(Point("tans", record_bits(t), weight_loss(w2, q, scol, h), t, ints, cfg))
            if self.dead_zone:      # the same grid with Eq. 1's dead zone (rtn decisions, sw.quant.deadzone)
                points.append(deadzone.point(name, w2, ws, steps, scol, h, self.dead_zone, half, self.per_channel,
                                             self.log2_states, self.max_lanes, tuple(w.shape), desc))
        points.append(int8_point(name, w, h))
        return points

    def n_coded_weights(self) -> int:
        """Weights of the coded layers (the ones the rate target covers)."""
        return sum(self.weights[n].numel() for n in self.coded)

    def select(self, target_bits_per_weight: float | None = None, lam: float | None = None
               ) -> tuple[dict[str, int], float, bool]:
        """(point index per coded layer, the Lagrange multiplier λ, whether the target is met)."""
        if (target_bits_per_weight is None) == (lam is None):
            raise ValueError("give exactly one of target_bits_per_weight and lam")
        pts = self.points
        if not pts:
            return {}, 0.0 if lam is None else float(lam), True
        if lam is not None:
            if lam < 0:
                raise ValueError(f"lam must be non-negative, got {lam}")
            return self._lagrangian(lam), float(lam), True
        if not target_bits_per_weight > 0:
            raise ValueError(f"the target must be positive, got {target_bits_per_weight}")
        budget = target_bits_per_weight * self.n_coded_weights()
        smallest = {n: min(range(len(p)), key=lambda i: (p[i].bits, p[i].score)) for n, p in pts.items()}
        if self._bits(smallest) > budget:
            return smallest, math.inf, False
        choice = self._lagrangian(0.0)
        mu = 0.0
        if self._bits(choice) > budget:
            hi = 1e-12
            for _ in range(200):
                if self._bits(self._lagrangian(hi)) <= budget:
                    break
                hi *= 4.0
            else:
                return self._fill(smallest, budget), math.inf, True
            lo = hi / 4.0
            for _ in range(60):
                mid = math.sqrt(lo * hi)
                if self._bits(self._lagrangian(mid)) > budget:
                    lo = mid
                else:
                    hi = mid
            mu, choice = hi, self._lagrangian(hi)
        return self._refine(self._fill(choice, budget), budget), mu, True

    def joint_divergence(self, choice: dict[str, int]) -> float:
        """KL divergence of the outputs with every coded layer at its chosen point (cached per choice)."""
        key = tuple(choice[n] for n in self.coded)
        if key not in self._joint_kl:
            layers = {n: self.points[n][i] for n, i in choice.items()}
            self._joint_kl[key] = output_divergence(self._outputs(layers), self._ref)
        return self._joint_kl[key]

    def _refine(self, choice: dict[str, int], budget: float) -> dict[str, int]:
        """Local search on the joint output divergence (allocation "output"): the per-layer scores add
        up only approximately (quantizing two layers costs more than the sum of each alone), so move one
        layer to another hull point, or one up and another down, within `refine_window` hull positions, while
        the whole model's divergence on the calibration inputs drops and the bits stay within budget."""
        if self.allocation != "output" or self._calib is None or self.refine_rounds <= 0 or len(choice) == 0:
            return choice
        w = self.refine_window
        self._values = {}
        try:
            return self._local_search(choice, budget, w)
        finally:
            self._values = None

    def _local_search(self, choice: dict[str, int], budget: float, w: int) -> dict[str, int]:
        """The moves of `_refine`, best improvement first, for at most `refine_rounds` rounds."""
        best, best_kl = dict(choice), self.joint_divergence(choice)
        for _ in range(self.refine_rounds):
            moves = []
            for n, i in best.items():
                moves += [{n: j} for j in range(max(0, i - w), min(len(self.points[n]), i + w + 1)) if j != i]
            for a, ia in best.items():      # a up (hull points are sorted by bits), b down
                for b, ib in best.items():
                    if a != b:
                        moves += [{a: ja, b: jb} for ja in range(ia + 1, min(len(self.points[a]), ia + w + 1))
                                  for jb in range(max(0, ib - w), ib)]
            step = None
            for mv in moves:
                cand = {**best, **mv}
                if self._bits(cand) > budget:
                    continue
                kl = self.joint_divergence(cand)
                if kl < best_kl - 1e-12:
                    step, best_kl = cand, kl
            if step is None:
                break
            best = step
        return best

    def _lagrangian(self, mu: float) -> dict[str, int]:
        """Each layer's point minimizing score + mu·bits (ties: fewer bits)."""
        return {n: min(range(len(p)), key=lambda i: (p[i].score + mu * p[i].bits, p[i].bits))
                for n, p in self.points.items()}

    def _bits(self, choice: dict[str, int]) -> int:
        return sum(self.points[n][i].bits for n, i in choice.items())

    def _fill(self, choice: dict[str, int], budget: float) -> dict[str, int]:
        """Greedily move layers to lower-score points while the total stays within the budget."""
        choice = dict(choice)
        while True:
            slack = budget - self._bits(choice)
            best, best_score = None, 0.0
            for n, p in self.points.items():
                cur = p[choice[n]]
                for i, cand in enumerate(p):
                    extra = cand.bits - cur.bits
                    gain = cur.score - cand.score
                    if gain <= 0 or extra > slack:
                        continue
                    score = math.inf if extra <= 0 else gain / extra
                    if score > best_score:
                        best, best_score = (n, i), score
            if best is None:
                return choice
            choice[best[0]] = best[1]

    def container(self, target_bits_per_weight: float | None = None, lam: float | None = None,
                  metadata: dict | None = None) -> tuple[ct.Container, dict]:
        """The `.tans` container and the info dict at a rate target (or a fixed λ)."""
        choice, mu, met = self.select(target_bits_per_weight, lam)
        chosen = {n: self.points[n][i] for n, i in choice.items()}
        chosen.update(self.edge_points)
        tensors = []
        state = self.model.state_dict()
        for name, value in state.items():
            tensors.append(chosen[name].tensor if name in chosen else
                           ct.f32_tensor(name, value.detach().cpu().numpy()))
        layers = []
        for n in self.names:
            p = chosen[n]
            layers.append({"name": n, "kind": p.kind, "coded_layer": n in self.coded, "weights": int(p.integers.size),
                           "bits": p.bits, "bits_per_weight": p.bits / max(1, p.integers.size),
                           "layer_loss": p.loss, "output_kl": p.output_kl, **p.config})
        n_w = self.n_coded_weights()
        bits = sum(chosen[n].bits for n in self.coded)
        info = {"method": self.method, "target_bits_per_weight": target_bits_per_weight,
                "lam": None if math.isinf(mu) else mu, "target_met": met,
                "coded_bits": bits, "coded_weights": n_w,
                "coded_bits_per_weight": bits / n_w if n_w else None,
                "calibration_examples": self.calibration, "bins": self.bins, "allocation": self.allocation,
                "per_channel_steps": self.per_channel, "layers": layers,
                "points": {n: len(p) for n, p in self.points.items()},
                "search_seconds": round(self.seconds, 2)}
        meta = dict(metadata or {})
        meta.update(kind=CONTAINER_KIND, post_training=True, log2_states=self.log2_states,
                    method=self.method, lam=info["lam"], allocation=self.allocation,
                    target_bits_per_weight=target_bits_per_weight,
                    coded_bits_per_weight=info["coded_bits_per_weight"],
                    calibration_examples=self.calibration, layers=layers,
                    coded=[n for n in self.names if chosen[n].kind == "tans"],
                    int8=[n for n in self.names if chosen[n].kind == "int8"],
                    state_dtypes={k: str(v.dtype).replace("torch.", "") for k, v in state.items()})
        return ct.Container(tensors, meta), info


def post_train(model: nn.Module, calib_x: torch.Tensor | None, method: str = "cerwu",
               target_bits_per_weight: float | None = None, lam: float | None = None, bins: int | None = None,
               log2_states: int = fmt.DEFAULT_LOG2_STATES, max_lanes: int = fmt.DEFAULT_LANES,
               code_first_last: bool = False, metadata: dict | None = None, *,
               per_channel_steps: bool = False, progress: bool = False, dead_zone: float = 0.0
               ) -> tuple[ct.Container, dict]:
    """Post-training compression of a float model: `(Container, info)` at a rate target or a fixed λ.

    post_train(model, calib_x, method="cerwu"|"optq"|"rtn", target_bits_per_weight=T | lam=L,
               bins=None, log2_states=8, max_lanes=64, code_first_last=False, metadata=None,
               *, per_channel_steps=False, progress=False) -> (sw.container.Container, dict)

    model: the float nn.Module (not modified); its conv/linear weights are quantized, the
      first and last stay raw 8-bit unless code_first_last, every other state entry float32.
    calib_x: calibration inputs (a batch tensor the model accepts, from the training split);
      None only for "rtn" (then the grid is chosen by the weight error alone).
    method: "rtn" round to nearest, "optq" GPTQ/OPTQ, "cerwu" OPTQ with the rate term.
    target_bits_per_weight: bits of the coded layers' whole records (payload, lane states,
      table, steps, header) per coded weight, at most this; the layers' points are then
      compared by the KL divergence of the model's outputs on calib_x from the float
      model's (one layer quantized at a time, summed over layers; the choice then refined on the
      divergence with all of them quantized together). Or lam: a fixed Lagrange
      multiplier in layer-loss units (mean squared output error of the layer per bit), for
      cerwu also the walk's λ. Exactly one of the two.
    bins: fix each coded layer's grid to `bins` bins over ±max|w| instead of searching the step.
    log2_states, max_lanes: the tANS table size and the lane cap of every coded record.
    metadata: merged into the container's metadata (put "model", "model_config" and the
      split "data": {"spec", "n_train", "n_test", "seed"} there so `evaluate` can rebuild it).
    info: "coded_bits_per_weight", "coded_bits", "coded_weights", "lam" (the multiplier the
      choice used, None if even the smallest records miss the target), "target_met",
      "allocation" ("output" or "layer"), "layers" (per layer, in model order: name, kind
      "tans"/"int8", bits, bits_per_weight, bins, step, step_factor, walk_lam, layer_loss,
      output_kl), "method", "calibration_examples", "points", "search_seconds".
    To cut several rates from one model, build `PostTraining(...)` once and call its `container`.
    """
    pt = PostTraining(model, calib_x, method, bins, None if lam is None or method != "cerwu" else [float(lam)],
                      log2_states, max_lanes, code_first_last, per_channel_steps,
                      allocation="output" if lam is None else "layer", progress=progress, dead_zone=dead_zone)
    return pt.container(target_bits_per_weight, lam, metadata)


def calibration_inputs(x_train: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """`n` training examples drawn without replacement by a generator seeded with the split's seed."""
    if n <= 0:
        raise ValueError(f"the calibration set needs at least one example, got {n}")
    idx = np.random.default_rng(seed).permutation(len(x_train))[:n]
    return x_train[torch.from_numpy(np.sort(idx))]


def load_float_model(source: str | Path, model: str | None = None, model_config: dict | None = None,
                     data: str | None = None, seed: int = 0, n_train: int | None = None,
                     n_test: int | None = None) -> tuple[nn.Module, dict]:
    """(float model, metadata with model, model_config, the split "data" and the source) of a checkpoint or state_dict."""
    from sw.methods.qat import restore
    from sw.models.zoo import build_model
    from sw.train import CHECKPOINT_FORMAT, load_checkpoint, load_torch_file
    src = Path(source)
    obj = load_torch_file(src)
    meta: dict = {"source_sha256": sha256_of(src)}
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        state = load_checkpoint(src)
        cfg, qmodel = restore(state)
        for given, have, what in ((model, cfg.model, "model"), (data, cfg.data, "data set")):
            if given and given != have:
                raise ValueError(f"{src} was trained as {what} {have!r}, not {given!r}")
        net = qmodel.base
        meta.update(model=cfg.model, model_config=cfg.model_config, source_phase=state["phase"],
                    data={"spec": cfg.data, "n_train": cfg.n_train, "n_test": cfg.n_test, "seed": cfg.seed},
                    results={k: v for k, v in state.get("results", {}).items() if k == "float_accuracy"})
        return net, meta
    if not model:
        raise ValueError(f"{src} is not a `train` checkpoint: post-training compression of a state_dict "
                         "needs --model NAME (lenet5, resnet18, package.module:factory)")
    sd = load_state_dict_file(src)
    net = build_model(model, model_config or {})
    try:
        net.load_state_dict(sd)
    except RuntimeError as e:
        raise ValueError(f"{src}: weights do not fit model {model!r}: {str(e).splitlines()[0]}") from None
    meta.update(model=model, model_config=model_config or {}, results={},
                data={"spec": data, "n_train": n_train, "n_test": n_test, "seed": seed} if data else {})
    return net, meta


def compress_file(source: str | Path, output: str | Path, method: str = "cerwu",
                  target_bits_per_weight: float | None = None, lam: float | None = None,
                  bins: int | None = None, model: str | None = None, model_config: dict | None = None,
                  data: str | None = None, seed: int = 0, n_train: int | None = None, n_test: int | None = None,
                  calibration: int = DEFAULT_CALIBRATION, log2_states: int = fmt.DEFAULT_LOG2_STATES,
                  max_lanes: int = fmt.DEFAULT_LANES, code_first_last: bool = False,
                  per_channel_steps: bool = False, progress: bool = True, dead_zone: float = 0.0
                  ) -> tuple[ct.Container, dict]:
    """`compress --method`: post-train a checkpoint's float model (or a state_dict) and write the .tans file."""
    from sw.data.datasets import load_dataset
    from sw.train import accuracy, set_threads
    set_threads()
    net, meta = load_float_model(source, model, model_config, data, seed, n_train, n_test)
    split = meta["data"]
    calib = None
    if split:
        ds = load_dataset(split["spec"], split["n_train"], split["n_test"], split["seed"])
        split.update(n_train=split["n_train"] or len(ds.x_train), n_test=split["n_test"] or len(ds.x_test))
        calib = calibration_inputs(ds.x_train, min(calibration, len(ds.x_train)), split["seed"])
        if "float_accuracy" not in meta["results"]:
            meta["results"]["float_accuracy"] = accuracy(net, ds.x_test, ds.y_test)
    elif method != "rtn":
        raise ValueError(f"{method} needs calibration data: pass --data SPEC (the split the model was trained on)")
    meta["source"] = checkpoint_ref(source, output)
    c, info = post_train(net, calib, method, target_bits_per_weight, lam, bins, log2_states, max_lanes,
                         code_first_last, meta, per_channel_steps=per_channel_steps, progress=progress,
                         dead_zone=dead_zone)
    ct.write(output, c, (source,))            # never over its own input
    return c, info
