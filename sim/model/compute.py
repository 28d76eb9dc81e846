"""Compute side of the system model: MACs per cycle and an on-chip buffer, per layer max(traffic, compute).

A platform is the fetch path's bus (B bytes per cycle, the cycle model of sim/model/cycles.py
for the weights) plus `macs_per_cycle` multiply-accumulates and `buffer_bytes` of on-chip
activation memory. Per layer (one conv or linear weight tensor of the container, in
container order):

* weight traffic: the layer's cycles in the fetch-path model (table load, decode, DRAM
  stalls; the part the RTL checks within 5%);
* activation traffic: the layer's input activations at their stored bits (the file's
  activation quantizer for that layer: entropy or fixed-width bits; 8 bits without one).
  They stay on chip when they fit in half the buffer (the other half holds the layer's
  output); otherwise the producer writes them to DRAM and the layer reads them back, 2x
  their bytes over the same bus. The network input is always read from DRAM once;
* compute: ceil(MACs / macs_per_cycle).

The layer takes max(weight + activation traffic, compute) cycles (fetch overlaps compute,
as the paper's Section 6 assumes). Inferences per second = clock / total cycles.

The paper's two platforms (its Table 2) are scaled to a network by `scaled_platform`: the
clock makes B bytes per cycle the platform's DRAM bandwidth; the MACs per DRAM byte are the
platform's times the network's arithmetic intensity relative to ResNet-50's (MACs per weight
and activation, so the same platform stays compute- or bandwidth-bound); the buffer is the
platform's times the network's activations relative to ResNet-50's 9.6 M.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

#: The paper's Table 2. Eyeriss: 168 PEs x 200 MHz = 34 G MAC/s (its "GOPs" count one MAC as an op).
#: TPU: 92-96 "TOPs" count a MAC as two ops: 48 T MAC/s.
PAPER_PLATFORMS: dict[str, dict[str, float]] = {
    "eyeriss": {"buffer_bytes": 181.5 * 1024, "dram_bytes_per_s": 1e9, "macs_per_s": 34e9},
    "tpu": {"buffer_bytes": 28 * 1024 ** 2, "dram_bytes_per_s": 13e9, "macs_per_s": 96e12 / 2},
}
#: ResNet-50 at 224x224 (the paper's Section 5: 22.7 M weights, 9.6 M activations; He et al. 2016:
#: 3.8 G multiply-adds).
RESNET50 = {"weights": 22.7e6, "activations": 9.6e6, "macs": 3.8e9}
STORES = ("entropy", "fixed", "int8")   #: how stored activations are counted
MAX_SHAPE_ELEMENTS = 1 << 31      #: bound of any activation count a file's model may claim


@dataclass(frozen=True)
class Platform:
    """An accelerator in fetch-path cycles."""

    name: str
    dram_bytes_per_cycle: float
    macs_per_cycle: float
    buffer_bytes: float
    clock_hz: float = 1e9            #: cycles per second, for inferences per second

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LayerShape:
    """What one conv/linear layer computes per inference."""

    weight: str                      #: its weight tensor's name
    module: str
    macs: int
    in_activations: int
    out_activations: int


def _count(mod: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """MACs of one conv or linear call (batch of one)."""
    if isinstance(mod, nn.Conv2d):
        kh, kw = mod.kernel_size
        return out[0].numel() * (mod.in_channels // mod.groups) * kh * kw
    return out[0].numel() * mod.in_features


def layer_shapes(net: nn.Module, input_shape: tuple[int, ...]) -> list[LayerShape]:
    """Per conv/linear layer in call order: MACs and activations, from one forward pass on the meta device."""
    seen: list[LayerShape] = []
    handles = []
    for name, mod in net.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            def hook(m, args, out, name=name):
                seen.append(LayerShape(f"{name}.weight", name, int(_count(m, args[0], out)),
                                       int(args[0][0].numel()), int(out[0].numel())))
            handles.append(mod.register_forward_hook(hook))
    try:
        net = net.to("meta").eval()
        with torch.no_grad():
            net(torch.zeros((1, *input_shape), device="meta"))
    finally:
        for h in handles:
            h.remove()
    for s in seen:
        if max(s.macs, s.in_activations, s.out_activations) > MAX_SHAPE_ELEMENTS:
            raise ValueError(f"layer {s.module}: {s.macs} MACs is beyond what the model handles")
    return seen


def shapes_of_container(c) -> dict[str, LayerShape]:
    """{weight name: shape} of a container's network.

    A built-in model the file names (sw.models.zoo, its arguments checked as `evaluate` checks
    them) is built on the meta device and run once; otherwise every 2-D weight is taken as a
    linear layer on a flat input (the demo MLP), and anything else is an error.
    """
    from sw.evaluation.evaluate import checked_model_config
    from sw.models.zoo import MODELS, build_model
    from sw.tans.errors import FormatError

    name = c.metadata.get("model")
    if isinstance(name, str) and name in MODELS:
        cfg = checked_model_config(name, c.metadata.get("model_config", {}), "container")
        try:
            with torch.device("meta"):
                net = build_model(name, cfg)
        except (TypeError, ValueError, RuntimeError) as e:
            raise FormatError(f"model {name!r} cannot be built from the file's model_config ({e})") from None
        side = int(cfg.get("image_size", 28))
        shape = (int(cfg.get("in_channels", 1)), side, side)
        if name == "mlp":
            shape = (shape[0] * side * side,)
        try:
            return {s.weight: s for s in layer_shapes(net, shape)}
        except RuntimeError as e:
            raise FormatError(f"model {name!r} does not run on its own input shape {shape} ({e})") from None
    out = {}
    for t in c.tensors:
        if t.name.endswith(".weight") and len(t.shape) == 2:
            o, i = (int(x) for x in t.shape)
            out[t.name] = LayerShape(t.name, t.name.removesuffix(".weight"), o * i, i, o)
    return out


def scaled_platform(kind: str, macs: float, weights: float, activations: float,
                    dram_bytes_per_cycle: float) -> Platform:
    """The paper's platform `kind` scaled to a network of `macs`, `weights`, `activations` (see module doc)."""
    p = PAPER_PLATFORMS[kind]
    if min(macs, weights + activations, activations) <= 0:
        raise ValueError("scaling needs a network with MACs, weights and activations")
    clock = p["dram_bytes_per_s"] / dram_bytes_per_cycle
    intensity = (macs / (weights + activations)) / (RESNET50["macs"] / (RESNET50["weights"] + RESNET50["activations"]))
    mpc = p["macs_per_s"] / p["dram_bytes_per_s"] * intensity * dram_bytes_per_cycle
    return Platform(kind, dram_bytes_per_cycle, mpc, p["buffer_bytes"] * activations / RESNET50["activations"], clock)


def activation_bits(c, module: str, store: str) -> tuple[float, str]:
    """(bits per activation, source) of a layer's input: its quantizer in the file's metadata, else 8 bits.

    `store`: "entropy" (the quantizer's index entropy, the paper's rate), "fixed" (ceil(log2 t))
    or "int8" (8 bits whatever the file says: the full-precision baseline).
    """
    if store not in STORES:
        raise ValueError(f"activation store is one of {', '.join(STORES)}, got {store!r}")
    qs = c.metadata.get("activation_quantizers") or {}
    if store == "int8":
        return 8.0, "8-bit"
    q = qs.get(module) if isinstance(qs, dict) else None
    if not isinstance(q, dict):
        return 8.0, "8-bit"
    key = "entropy_bits" if store == "entropy" else "fixed_bits"
    v = q.get(key)
    if store == "fixed" and not isinstance(v, (int, float)) and isinstance(q.get("levels"), int) and q["levels"] >= 2:
        v = math.ceil(math.log2(q["levels"]))
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 32:
        raise ValueError(f"activation quantizer of {module!r} has no usable {key}")
    return float(v), f"{store} {q.get('levels')} levels"


def inference(c, weight_rows: list, shapes: dict[str, LayerShape], platform: Platform,
              store: str = "entropy") -> dict:
    """Per-layer and total cycles of one inference: max(weight + activation traffic, compute)."""
    layers, total, first = [], 0, True
    for row in weight_rows:
        s = shapes.get(row["name"])
        if s is None:
            continue
        bits, src = activation_bits(c, s.module, store)
        in_bytes = s.in_activations * bits / 8
        if first:
            act_bytes, where = in_bytes, "network input (DRAM)"
        elif in_bytes <= platform.buffer_bytes / 2:
            act_bytes, where = 0.0, "on chip"
        else:
            act_bytes, where = 2 * in_bytes, "spilled (DRAM write + read)"
        first = False
        act_cycles = math.ceil(act_bytes / platform.dram_bytes_per_cycle)
        compute = math.ceil(s.macs / platform.macs_per_cycle)
        traffic = row["cycles"] + act_cycles
        cyc = max(traffic, compute)
        layers.append({"name": row["name"], "module": s.module, "macs": s.macs, "in_activations": s.in_activations,
                       "activation_bits": bits, "activation_source": src, "activations": where,
                       "weight_bytes": row["bytes"], "weight_cycles": row["cycles"],
                       "weight_stall_cycles": row["stall_cycles"],
                       "weight_decode_cycles": row["cycles"] - row["stall_cycles"],
                       "activation_bytes": act_bytes, "activation_cycles": act_cycles,
                       "traffic_cycles": traffic, "compute_cycles": compute, "cycles": cyc,
                       "compute_idle_cycles": cyc - compute,
                       "bound": "compute" if compute >= traffic else "traffic"})
        total += cyc
    if not layers:
        raise ValueError("no layer of the container has a known shape (conv or linear weights)")
    return {"platform": platform.as_dict(), "activation_store": store, "layers": layers, "cycles": total,
            "inferences_per_second": platform.clock_hz / total,
            "compute_bound_layers": sum(l["bound"] == "compute" for l in layers)}


def network_totals(c, shapes: dict[str, LayerShape]) -> dict[str, int]:
    """MACs, weights and activations (inputs of every conv/linear layer) of the container's network."""
    ws = {t.name: t.size for t in c.tensors}
    used = [s for s in shapes.values() if s.weight in ws]
    return {"macs": sum(s.macs for s in used), "weights": sum(ws[s.weight] for s in used),
            "activations": sum(s.in_activations for s in used)}
