"""Pareto-optimal bit allocation across layers (weights and activations) from rate-distortion curves.

The paper (../shared/papers/pareto-optimal-bit-allocation.txt) measures, for every layer, the
mean squared error of the logits (its Eq. 3: E||V - V̂||² / dim V over a calibration set) with
only that layer quantized, against the layer's rate; the errors of several layers add up
(its Eq. 4), so the best allocation of a total budget puts every layer on the same slope of
its curve (the Lagrangian of Eq. 5-7), found in O(K·M·N) (K multipliers tried, M points per
curve, N curves) instead of O(M^N).

Here a weight curve's points are the layer's actual container records (`sw.container`
zero-point tANS records built by `sw.methods.posttrain.coded_record`, the whole record counted,
plus the raw 8-bit record as a fallback), over the number of bins t (3..31) and the step
(a factor of the weights' std), with round-to-nearest or OPTQ indices, or for CERWU over the
step and its walk λ. An activation curve (`sw.quant.activations`, q = i·Δ, 0 <= i <= t-1, on
the input of every quantizable layer but the first, where it is non-negative: after a ReLU)
has one point per t, its step Δ chosen by the output error, its rate the entropy of the
indices times the activations per example (bits per inference). `allocate` works on the lower
convex hulls: bisection over the hull slopes for the smallest multiplier whose choice fits the
budget, then a greedy pass spending what is left. The result is an ordinary `.tans` file.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from sw import container as ct
from sw.methods.compress import CONTAINER_KIND, checkpoint_ref
from sw.methods.hessian import collect_hessians, dampen
from sw.methods.optq import gamma_of, quantize_layer
from sw.methods.posttrain import (CERWU_STRENGTHS, DEFAULT_CALIBRATION, MAX_BINS,
                                  calibration_inputs, coded_record, int8_point, load_float_model, record_bits,
                                  weight_loss)
from sw.methods import deadzone
from sw.quant.activations import ActivationQuantizer, capture_inputs, fake_quantized, index_entropy
from sw.quant.qmodel import quantizable_weights
from sw.tans import format as fmt
from sw.train import set_threads

METHODS = {"pareto": "rtn", "pareto-optq": "optq", "pareto-cerwu": "cerwu"}   #: method -> index choice
STEP_FACTORS = tuple(float(c) for c in np.geomspace(0.1, 6.0, 20))           #: step = c x std(w)
CERWU_STEP_FACTORS = tuple(float(c) for c in np.geomspace(0.25, 3.0, 8))     #: pareto-cerwu grids
HALVES = (1, 2, 3, 4, 5, 7, 10, 15)                   #: bins t = 2k+1: 3, 5, 7, 9, 11, 15, 21, 31 (<= MAX_BINS)
ACT_LEVELS = (2, 3, 4, 6, 8, 12, 16, 32, 64, 256)     #: activation levels t searched
ACT_CLIPS = tuple(float(c) for c in np.geomspace(0.08, 1.0, 8))   #: (t-1)·Δ = c x max activation


# --- curves and their hulls (pure) -------------------------------------------------------------

def lower_convex_hull(bits: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Indices of the points on the lower convex hull of (bits, dist), by increasing bits and decreasing dist.

    Only these points can minimize dist + λ·bits for some λ >= 0; dominated points and points
    above a chord are dropped.
    """
    bits, dist = np.asarray(bits, dtype=np.float64), np.asarray(dist, dtype=np.float64)
    hull: list[int] = []
    for i in np.lexsort((dist, bits)):
        if hull and dist[i] >= dist[hull[-1]]:
            continue
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (dist[b] - dist[a]) * (bits[i] - bits[a]) >= (dist[i] - dist[a]) * (bits[b] - bits[a]):
                hull.pop()
            else:
                break
        hull.append(int(i))
    return np.array(hull, dtype=np.int64)


@dataclass
class Allocation:
    """One point per curve: `choice[i]` indexes curve i's points (all of them, not only the hull)."""

    choice: list[int]
    lam: float | None          #: the multiplier of the Lagrangian choice before the fill (None: target missed)
    bits: float
    dist: float
    met: bool
    lagrangian_bits: float = 0.0
    lagrangian_dist: float = 0.0


class Allocator:
    """The hulls of N curves, prepared once; `allocate(budget)` in O(log(N·M) · N log M + fill)."""

    def __init__(self, curves: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.hulls, self.hb, self.hd, self.slopes = [], [], [], []
        for b, d in curves:
            b, d = np.asarray(b, dtype=np.float64), np.asarray(d, dtype=np.float64)
            if b.size == 0 or b.shape != d.shape:
                raise ValueError("every curve needs at least one point and as many rates as distortions")
            h = lower_convex_hull(b, d)
            self.hulls.append(h)
            self.hb.append(b[h])
            self.hd.append(d[h])
            self.slopes.append((d[h][:-1] - d[h][1:]) / (b[h][1:] - b[h][:-1]))   # decreasing, > 0
        self.neg_slopes = [-s for s in self.slopes]
        allsl = np.concatenate([s for s in self.slopes] + [np.zeros(0)])
        self.breaks = np.unique(allsl)              # B(λ) only changes at these λ

    def vertices(self, lam: float) -> list[int]:
        """Each curve's hull vertex minimizing dist + lam·bits (ties: fewer bits)."""
        return [int(np.searchsorted(ns, -lam, side="left")) for ns in self.neg_slopes]

    def _total(self, v: list[int]) -> tuple[float, float]:
        return (float(sum(b[j] for b, j in zip(self.hb, v))), float(sum(d[j] for d, j in zip(self.hd, v))))

    def sweep(self, lams: np.ndarray) -> np.ndarray:
        """(len(lams), 2) array of the (total bits, total dist) each multiplier's choice gives."""
        return np.array([self._total(self.vertices(float(l))) for l in lams])

    def allocate(self, budget: float, fill: bool = True) -> Allocation:
        """The Lagrangian choice of least total dist whose total bits <= budget, then a greedy fill."""
        lowest = [0] * len(self.hb)
        if self._total(lowest)[0] > budget:
            b, d = self._total(lowest)
            return Allocation(self._to_points(lowest), None, b, d, False, b, d)
        # B(λ) is non-increasing; B(λ) at the largest break is the all-lowest choice, which fits
        cands = np.concatenate([[0.0], self.breaks])
        lo, hi = 0, len(cands) - 1
        if self._total(self.vertices(0.0))[0] <= budget:
            hi = 0
        while lo < hi:                              # smallest index whose choice fits
            mid = (lo + hi) // 2
            if self._total(self.vertices(float(cands[mid])))[0] <= budget:
                hi = mid
            else:
                lo = mid + 1
        lam = float(cands[hi])
        v = self.vertices(lam)
        lb, ld = self._total(v)
        if fill:
            v = self._fill(v, budget)
        b, d = self._total(v)
        return Allocation(self._to_points(v), lam, b, d, True, lb, ld)

    def _fill(self, v: list[int], budget: float) -> list[int]:
        """Move curves one hull vertex up, steepest slope first, while the total stays within budget."""
        v = list(v)
        slack = budget - self._total(v)[0]
        while True:
            best, best_slope = -1, 0.0
            for i, (s, hb) in enumerate(zip(self.slopes, self.hb)):
                j = v[i]
                if j < len(s) and hb[j + 1] - hb[j] <= slack and s[j] > best_slope:
                    best, best_slope = i, float(s[j])
            if best < 0:
                return v
            slack -= self.hb[best][v[best] + 1] - self.hb[best][v[best]]
            v[best] += 1

    def _to_points(self, v: list[int]) -> list[int]:
        return [int(h[j]) for h, j in zip(self.hulls, v)]


def allocate(curves: list[tuple[np.ndarray, np.ndarray]], budget: float, fill: bool = True) -> Allocation:
    """Pareto allocation of `budget` bits over curves [(bits, dist), ...] (see `Allocator`)."""
    return Allocator(curves).allocate(budget, fill)


# --- rate-distortion curves of a model ---------------------------------------------------------

@dataclass
class RDPoint:
    """One operating point: its rate, the logits' MSE with only it quantized, and what it is."""

    bits: float                  #: weights: whole record bits; activations: bits per example (entropy)
    mse: float                   #: Eq. 3 on the calibration inputs
    config: dict = field(default_factory=dict)
    tensor: ct.Tensor | None = None          #: weights: the container record
    integers: np.ndarray | None = None       #: weights: signed indices (int16)
    quantizer: ActivationQuantizer | None = None
    layer_loss: float = 0.0


@dataclass
class Curve:
    """A layer's weights or activations: its points and the size they cover."""

    name: str                    #: weight parameter name, or the module whose input is quantized
    kind: str                    #: "weight" or "activation"
    count: int                   #: weights of the layer, or activations per example
    points: list[RDPoint]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([p.bits for p in self.points], dtype=np.float64),
                np.array([p.mse for p in self.points], dtype=np.float64))

    def hull(self) -> list[RDPoint]:
        """The points on the lower convex hull of (bits, mse)."""
        return [self.points[i] for i in lower_convex_hull(*self.arrays())]


def logit_mse(out: torch.Tensor, ref: torch.Tensor) -> float:
    """Eq. 3: mean over examples of the squared distance of the outputs, divided by their dimension."""
    return float(((out.to(torch.float64) - ref) ** 2).mean())


class ParetoCurves:
    """Rate-distortion curves of every coded layer's weights (and activations) of one float model."""

    def __init__(self, model: nn.Module, calib_x: torch.Tensor, index_method: str = "rtn",
                 activations: bool = False, code_first_last: bool = False,
                 log2_states: int = fmt.DEFAULT_LOG2_STATES, max_lanes: int = fmt.DEFAULT_LANES,
                 prefilter: bool = False, progress: bool = False, dead_zone: float = 0.0) -> None:
        if index_method not in ("rtn", "optq", "cerwu"):
            raise ValueError(f"index choice is rtn, optq or cerwu, got {index_method!r}")
        if calib_x is None or len(calib_x) == 0:
            raise ValueError("Pareto curves need calibration inputs")
        set_threads()
        t0 = time.time()
        self.model, self.calib, self.method = model, calib_x, index_method
        self.log2_states, self.max_lanes, self.prefilter = log2_states, max_lanes, prefilter
        self.dead_zone = float(dead_zone)        #: Eq. 1's beta in steps: dead-zone points too (0: none)
        if self.dead_zone:
            deadzone.grid_of(self.dead_zone)
        self.names = quantizable_weights(model)
        edge = {self.names[0], self.names[-1]} if len(self.names) > 1 and not code_first_last else set()
        self.coded = [n for n in self.names if n not in edge]
        self.edges = [n for n in self.names if n in edge]
        params = dict(model.named_parameters())
        self._dtypes = {n: params[n].dtype for n in self.names}
        self.weights = {n: params[n].detach().to(torch.float64) for n in self.names}
        self.hessians = collect_hessians(model, self.coded, calib_x) if index_method != "rtn" and self.coded else {}
        self.ref = self.outputs({}, {})
        self.edge_points = {n: int8_point(n, self.weights[n], None) for n in self.edges}
        self.weight_curves: dict[str, Curve] = {}
        bar = tqdm(self.coded, desc="weight curves", disable=not progress, leave=False, dynamic_ncols=True)
        for n in bar:
            self.weight_curves[n] = Curve(n, "weight", self.weights[n].numel(), self._weight_points(n))
        self.act_curves: dict[str, Curve] = {}
        self.skipped_activations: dict[str, str] = {}
        if activations:
            mods = [n.rpartition(".")[0] for n in self.names[1:]]
            seen = capture_inputs(model, mods, calib_x)
            for m in tqdm(mods, desc="activation curves", disable=not progress, leave=False, dynamic_ncols=True):
                a = seen[m]
                if float(a.min()) < 0:
                    self.skipped_activations[m] = "negative inputs (not after a ReLU)"
                    continue
                if not float(a.max()) > 0:
                    self.skipped_activations[m] = "all inputs zero"
                    continue
                self.act_curves[m] = Curve(m, "activation", int(a[0].numel()), self._activation_points(m, a))
        self.seconds = time.time() - t0

    # the model with some layers quantized
    @torch.no_grad()
    def outputs(self, weights: dict[str, np.ndarray | torch.Tensor], acts: dict[str, ActivationQuantizer],
                batch_size: int = 256) -> torch.Tensor:
        """float64 outputs on the calibration inputs with `weights` swapped in and `acts` fake-quantized."""
        from torch.func import functional_call
        params = {n: torch.as_tensor(np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v
                                     ).to(self._dtypes[n]) for n, v in weights.items()}
        was = self.model.training
        self.model.eval()
        try:
            with fake_quantized(self.model, acts):
                outs = [functional_call(self.model, params, (self.calib[i:i + batch_size],), strict=False)
                        for i in range(0, len(self.calib), batch_size)]
        finally:
            self.model.train(was)
        return torch.cat(outs).to(torch.float64)

    def mse(self, weights: dict[str, np.ndarray | torch.Tensor], acts: dict[str, ActivationQuantizer]) -> float:
        """Eq. 3 against the float model's outputs."""
        return logit_mse(self.outputs(weights, acts), self.ref)

    def _index_candidates(self, name: str) -> list[tuple[dict, np.ndarray, torch.Tensor, torch.Tensor]]:
        """(config, float32 step, 2-d indices, scaled step) of every grid point of one layer."""
        w2 = self.weights[name].reshape(self.weights[name].shape[0], -1)
        h = self.hessians.get(name)
        hd = dampen(h)[0] if h is not None else None
        std = float(w2.std()) or 1.0
        out = []
        if self.method == "cerwu":
            for c in CERWU_STEP_FACTORS:   # fewer grids than posttrain: every point costs an output MSE
                steps = np.array([c * std], dtype=np.float32)
                s = float(steps[0])
                ws, hs = w2 / s, hd * s ** 2
                g = gamma_of(ws)
                scale = float(torch.diagonal(hs).mean()) / g if g > 0 else 0.0
                for lam in [0.0] + [t * scale for t in CERWU_STRENGTHS]:
                    q = quantize_layer("cerwu", ws, hs, (MAX_BINS - 1) // 2, lam)
                    out.append(({"step_factor": c, "walk_lam": lam, "max_bins": MAX_BINS}, steps, q, s))
            return out
        for c in STEP_FACTORS:
            steps = np.array([c * std], dtype=np.float32)
            s = float(steps[0])
            ws = w2 / s
            hs = None if hd is None else hd * s ** 2
            reach = int(torch.round(ws).abs().max())
            halves = sorted({k for k in HALVES if k < reach} | {max(1, min(reach, HALVES[-1]))})
            for k in halves:
                q = quantize_layer(self.method, ws, hs, k)
                out.append(({"step_factor": c, "max_bins": 2 * k + 1, "walk_lam": 0.0}, steps, q, s))
        return out

    def _weight_points(self, name: str) -> list[RDPoint]:
        """Every distinct operating point of one coded layer, each measured end to end, plus raw 8-bit."""
        w = self.weights[name]
        w2 = w.reshape(w.shape[0], -1)
        h = self.hessians.get(name)
        cands, seen = [], set()
        grid = self._index_candidates(name)
        for cfg, steps, q, s in grid:
            key = (float(steps[0]), q.numpy().tobytes())
            if key in seen:
                continue
            seen.add(key)
            ints = q.numpy().reshape(tuple(w.shape)).astype(np.int16)
            t = coded_record(name, ints, steps, False, self.log2_states, self.max_lanes)
            cands.append(RDPoint(record_bits(t), math.nan, dict(cfg, bins=t.bins, step=float(steps[0])), t, ints,
                                 layer_loss=weight_loss(w2, q, torch.tensor(s, dtype=torch.float64), h)))
        if self.dead_zone:       # Eq. 1's dead zone on every plain grid (rtn decisions): the curve spans t and beta
            for cfg, steps, q, s in grid:
                if cfg.get("walk_lam", 0.0) != 0.0:
                    continue
                half = int(cfg["max_bins"]) // 2
                key = ("dz", float(steps[0]), half)
                if key in seen:
                    continue
                seen.add(key)
                p = deadzone.point(name, w2, w2 / s, steps, torch.tensor(s, dtype=torch.float64), h, self.dead_zone,
                                   half, False, self.log2_states, self.max_lanes, tuple(w.shape))
                cands.append(RDPoint(p.bits, math.nan, dict(cfg, **p.config), p.tensor, p.integers, layer_loss=p.loss))
        p8 = int8_point(name, w, h)
        cands.append(RDPoint(p8.bits, math.nan, dict(p8.config, kind="int8"), p8.tensor, p8.integers,
                             layer_loss=p8.loss))
        if self.prefilter:      # keep the hull by layer loss only (fewer end-to-end runs)
            keep = lower_convex_hull(np.array([p.bits for p in cands]), np.array([p.layer_loss for p in cands]))
            cands = [cands[i] for i in sorted(keep)]
        for p in cands:
            p.mse = self.mse({name: p.tensor.values()}, {})
        return cands

    def _activation_points(self, module: str, a: torch.Tensor) -> list[RDPoint]:
        """One point per level count t: the step of least output error among ACT_CLIPS of the peak."""
        peak = float(a.max())
        pts = []
        for t in ACT_LEVELS:
            best = None
            for c in ACT_CLIPS:
                q = ActivationQuantizer(c * peak / (t - 1), t)
                e = self.mse({}, {module: q})
                if best is None or e < best[0]:
                    best = (e, q, c)
            e, q, c = best
            ent = index_entropy(q.indices(a), t)
            pts.append(RDPoint(ent * a[0].numel(), e, {"levels": t, "step": q.step, "clip_factor": c,
                                                      "entropy_bits": ent, "fixed_bits": q.fixed_bits},
                               quantizer=q))
        return pts

    # allocations
    def curves(self, activations: bool = True) -> list[Curve]:
        """Weight curves of the coded layers, then (if asked and measured) the activation curves."""
        return list(self.weight_curves.values()) + (list(self.act_curves.values()) if activations else [])

    def n_coded_weights(self) -> int:
        return sum(c.count for c in self.weight_curves.values())

    def n_activations(self) -> int:
        return sum(c.count for c in self.act_curves.values())

    def pareto(self, target_bits_per_weight: float, activation_bits: float | None = None) -> tuple[dict, Allocation]:
        """({curve name: point index}, Allocation) meeting T bits/weight (plus A bits/activation, one joint budget)."""
        if not target_bits_per_weight > 0:
            raise ValueError(f"the target must be positive, got {target_bits_per_weight}")
        use_act = activation_bits is not None
        if use_act and not self.act_curves:
            raise ValueError("no activation curves: build ParetoCurves(..., activations=True)")
        cs = self.curves(use_act)
        budget = target_bits_per_weight * self.n_coded_weights() + (activation_bits * self.n_activations()
                                                                    if use_act else 0.0)
        al = allocate([c.arrays() for c in cs], budget)
        return {c.name: i for c, i in zip(cs, al.choice)}, al

    def equal(self, target_bits_per_weight: float, activation_bits: float | None = None) -> dict:
        """Equal allocation: every curve at most the same bits per weight (activation), least MSE under it."""
        choice = {}
        for c in self.curves(activation_bits is not None):
            rate = target_bits_per_weight if c.kind == "weight" else activation_bits
            ok = [i for i, p in enumerate(c.points) if p.bits <= rate * c.count]
            choice[c.name] = (min(ok, key=lambda i: c.points[i].mse) if ok else
                              min(range(len(c.points)), key=lambda i: c.points[i].bits))
        return choice

    def measured_mse(self, choice: dict[str, int]) -> float:
        """The logits' MSE with every chosen weight and activation point applied together."""
        w = {n: self.weight_curves[n].points[i].tensor.values() for n, i in choice.items() if n in self.weight_curves}
        a = {n: self.act_curves[n].points[i].quantizer for n, i in choice.items() if n in self.act_curves}
        return self.mse(w, a)

    def activation_quantizers(self, choice: dict[str, int]) -> dict[str, ActivationQuantizer]:
        return {n: self.act_curves[n].points[i].quantizer for n, i in choice.items() if n in self.act_curves}

    def container(self, choice: dict[str, int], metadata: dict | None = None, method: str = "pareto"
                  ) -> tuple[ct.Container, dict]:
        """An ordinary `.tans` container of the chosen weight records (edges raw 8-bit, the rest float32)."""
        chosen = {n: self.weight_curves[n].points[choice[n]] for n in self.coded}
        tensors = []
        state = self.model.state_dict()
        for name, value in state.items():
            if name in chosen:
                tensors.append(chosen[name].tensor)
            elif name in self.edge_points:
                tensors.append(self.edge_points[name].tensor)
            else:
                tensors.append(ct.f32_tensor(name, value.detach().cpu().numpy()))
        layers = []
        for n in self.names:
            if n in chosen:
                p = chosen[n]
                kind = "int8" if p.tensor.kind == fmt.KIND_RAW_INT8 else "tans"
                cfg = {k: v for k, v in p.config.items() if k != "kind"}
                layers.append({"name": n, "kind": kind, "coded_layer": True, "weights": int(p.integers.size),
                               "bits": int(p.bits), "bits_per_weight": p.bits / max(1, p.integers.size),
                               "output_mse": p.mse, "layer_loss": p.layer_loss, **cfg})
            else:
                e = self.edge_points[n]
                layers.append({"name": n, "kind": "int8", "coded_layer": False, "weights": int(e.integers.size),
                               "bits": int(e.bits), "bits_per_weight": e.bits / max(1, e.integers.size),
                               **e.config})
        acts = []
        for n, i in choice.items():
            if n in self.act_curves:
                c = self.act_curves[n]
                p = c.points[i]
                acts.append({"module": n, "activations": c.count, "output_mse": p.mse, **p.config})
        n_w = self.n_coded_weights()
        bits = sum(int(chosen[n].bits) for n in self.coded)
        info = {"method": method, "index_choice": self.method, "coded_bits": bits, "coded_weights": n_w,
                "coded_bits_per_weight": bits / n_w if n_w else None, "layers": layers,
                "activations": acts, "calibration_examples": int(len(self.calib)),
                "predicted_output_mse": float(sum(self.weight_curves[n].points[i].mse for n, i in choice.items()
                                                  if n in self.weight_curves) +
                                              sum(self.act_curves[n].points[i].mse for n, i in choice.items()
                                                  if n in self.act_curves)),
                "points": {c.name: len(c.points) for c in self.curves()},
                "curve_seconds": round(self.seconds, 2)}
        if acts:
            n_a = sum(a["activations"] for a in acts)
            info["activation_entropy_bits_per_activation"] = sum(a["entropy_bits"] * a["activations"]
                                                                 for a in acts) / n_a
            info["activation_fixed_bits_per_activation"] = sum(a["fixed_bits"] * a["activations"]
                                                               for a in acts) / n_a
        meta = dict(metadata or {})
        meta.update(kind=CONTAINER_KIND, post_training=True, log2_states=self.log2_states, method=method,
                    coded_bits_per_weight=info["coded_bits_per_weight"],
                    calibration_examples=info["calibration_examples"], layers=layers,
                    coded=[n for n in self.names if n in chosen and chosen[n].tensor.kind == fmt.KIND_TANS],
                    int8=[n for n in self.names if n not in chosen or chosen[n].tensor.kind != fmt.KIND_TANS],
                    state_dtypes={k: str(v.dtype).replace("torch.", "") for k, v in state.items()})
        if acts:
            meta["activation_quantizers"] = {a["module"]: {"step": a["step"], "levels": a["levels"],
                                                           "entropy_bits": a["entropy_bits"],
                                                           "fixed_bits": a["fixed_bits"]} for a in acts}
        return ct.Container(tensors, meta), info


def compress_file(source: str | Path, output: str | Path, method: str = "pareto",
                  target_bits_per_weight: float = 0.8, activation_bits: float | None = None,
                  model: str | None = None, model_config: dict | None = None, data: str | None = None,
                  seed: int = 0, n_train: int | None = None, n_test: int | None = None,
                  calibration: int = DEFAULT_CALIBRATION, log2_states: int = fmt.DEFAULT_LOG2_STATES,
                  max_lanes: int = fmt.DEFAULT_LANES, code_first_last: bool = False,
                  progress: bool = True, dead_zone: float = 0.0) -> tuple[ct.Container, dict]:
    """`compress --method pareto|pareto-optq|pareto-cerwu`: curves, allocation, the .tans file."""
    from sw.data.datasets import load_dataset
    from sw.train import accuracy
    if method not in METHODS:
        raise ValueError(f"unknown Pareto method {method!r}: use one of {', '.join(METHODS)}")
    set_threads()
    net, meta = load_float_model(source, model, model_config, data, seed, n_train, n_test)
    split = meta["data"]
    if not split:
        raise ValueError(f"{method} needs calibration data: pass --data SPEC (the split the model was trained on)")
    ds = load_dataset(split["spec"], split["n_train"], split["n_test"], split["seed"])
    split.update(n_train=split["n_train"] or len(ds.x_train), n_test=split["n_test"] or len(ds.x_test))
    calib = calibration_inputs(ds.x_train, min(calibration, len(ds.x_train)), split["seed"])
    if "float_accuracy" not in meta["results"]:
        meta["results"]["float_accuracy"] = accuracy(net, ds.x_test, ds.y_test)
    meta["source"] = checkpoint_ref(source, output)
    pc = ParetoCurves(net, calib, METHODS[method], activations=activation_bits is not None,
                      code_first_last=code_first_last, log2_states=log2_states, max_lanes=max_lanes,
                      progress=progress, dead_zone=dead_zone)
    choice, al = pc.pareto(target_bits_per_weight, activation_bits)
    c, info = pc.container(choice, meta, method)
    info.update(target_bits_per_weight=target_bits_per_weight, activation_bits=activation_bits,
                lam=al.lam, target_met=al.met, skipped_activations=pc.skipped_activations)
    if activation_bits is not None:
        info["measured_output_mse"] = pc.measured_mse(choice)
        qs = pc.activation_quantizers(choice)
        with fake_quantized(net, qs):
            info["accuracy_with_quantized_activations"] = _decoded_accuracy(net, c, ds)
    c.metadata.update(pareto={"lam": al.lam, "target_met": al.met, "activation_bits": activation_bits})
    ct.write(output, c, (source,))            # never over its own input
    return c, info


def _decoded_accuracy(net: nn.Module, c: ct.Container, ds) -> float:
    """Test accuracy of `net` with the container's (golden-decoded) weights loaded into a copy's state."""
    import copy
    from sw.train import accuracy
    state = {t.name: torch.from_numpy(np.ascontiguousarray(t.values(golden=True))) for t in c.tensors}
    saved = copy.deepcopy(net.state_dict())
    try:
        net.load_state_dict({k: v.to(saved[k].dtype) for k, v in state.items()})
        return accuracy(net, ds.x_test, ds.y_test)
    finally:
        net.load_state_dict(saved)
