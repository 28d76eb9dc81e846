"""Compress a trained model into a `.tans` container: coded layers with tANS, 8-bit edges, raw f32 rest."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sw import container as ct
from sw.quant import QuantConfig, QuantizedModel
from sw.tans import format as fmt
from sw.tans.errors import InputError
from sw.methods.layout import lanes_for, lanes_for_units
from sw.methods.qat import restore

from sw.train import load_checkpoint, load_torch_file

CONTAINER_KIND = "sw-model-1"


def smallest_tans_tensor(name: str, symbols: np.ndarray, max_log2_states: int, **kw) -> ct.Tensor:
    """The tANS record of `symbols` whose table size 2^k (k <= max_log2_states) gives the fewest
    bytes in all: small tables cost fewer bits per lane state and count, large ones code closer
    to the entropy. `kw` go to `ct.tans_tensor` (lanes, lane_axis, quantizer, levels, tuple_size)."""
    arr = np.asarray(symbols)
    alphabet = int(arr.max()) + 1 if arr.size else 1
    lo = max(fmt.MIN_LOG2_STATES, (alphabet - 1).bit_length())
    best, best_len = None, None
    if kw.get("tuple_size", 1) != 1:        # tuples: the table needs a slot per tuple that occurs
        best = ct.tans_tensor(name, arr, log2_states=max_log2_states, **kw)
        best_len = len(ct.encode_record(best))
        used = int(np.count_nonzero(best.coded.norm))
        lo = max(fmt.MIN_LOG2_STATES, (max(used, 1) - 1).bit_length())
    for k in range(min(lo, max_log2_states), max_log2_states + 1):
        if best is not None and k == max_log2_states and best.coded.log2_states == k:
            continue
        t = ct.tans_tensor(name, arr, log2_states=k, **kw)
        n = len(ct.encode_record(t))
        if best_len is None or n < best_len:
            best, best_len = t, n
    return best


def quantized_tensor(name: str, e: dict, log2_states: int, max_lanes: int, tuple_size: int = 1) -> ct.Tensor:
    """Container tensor of one quantized layer: tANS zero-point symbols (table size chosen per layer,
    at most 2^log2_states), codebook indices when `e` has "levels" (then `e["indices"]` are 0..bins-1),
    or raw int8; coded layers in tuples of `tuple_size` weights (FORMAT.md 2.3c)."""
    steps = e["steps"]
    step_axis = 0 if e["per_channel"] else fmt.NO_AXIS
    if e.get("levels") is not None:
        idx = np.asarray(e["indices"], np.int64)
        lanes, axis = lanes_for(idx.shape, max_lanes)
        return smallest_tans_tensor(name, idx, log2_states, lanes=lanes, lane_axis=axis, dtype=np.float32,
                                    quant=fmt.QUANT_CODEBOOK, levels=e["levels"], steps=steps,
                                    step_axis=step_axis, tuple_size=tuple_size)
    ints = e["integers"]
    if e["coded"]:
        bins = int(e["bins"])
        zp = (bins - 1) // 2
        lanes, axis = lanes_for(ints.shape, max_lanes)
        return smallest_tans_tensor(name, (ints + zp).astype(np.int64), log2_states, lanes=lanes,
                                    lane_axis=axis, dtype=np.float32, quant=fmt.QUANT_ZERO_POINT, bins=bins,
                                    zero_point=zp, steps=steps, step_axis=step_axis, tuple_size=tuple_size)
    return ct.int8_tensor(name, ints.astype(np.int8), steps, step_axis)


def recode(c: ct.Container, tuple_size: int | None = None, units: int = 0,
           max_log2_states: int = fmt.DEFAULT_LOG2_STATES, max_lanes: int = fmt.DEFAULT_LANES) -> ct.Container:
    """The same container with every zero-point or codebook tANS tensor re-coded: in tuples of
    `tuple_size` weights (None: each keeps its own) and, with `units` P > 0, over enough lanes for
    a P-unit core to run at full rate (sw.methods.layout.lanes_for_units, at most `max_lanes`).
    Symbols, lane axis, quantizer and steps are kept; the table size is chosen again (at most
    2^max_log2_states). InputError naming the layer when bins^N exceeds the alphabet limit."""
    from sw.container.tuples import check_tuple

    out = []
    for t in c.tensors:
        if t.kind != fmt.KIND_TANS or t.quant not in (fmt.QUANT_ZERO_POINT, fmt.QUANT_CODEBOOK):
            out.append(t)
            continue
        n = t.tuple_size if tuple_size is None else tuple_size
        try:
            check_tuple(n, t.bins)
        except InputError as e:
            raise InputError(f"layer {t.name}: {e}") from None
        lanes = t.coded.lanes
        if units:
            lanes = lanes_for_units(t.shape, units, lanes, max_lanes, n)
        if n == t.tuple_size and lanes == t.coded.lanes:
            out.append(t)
            continue
        kw = dict(lanes=lanes, lane_axis=t.lane_axis, dtype=t.dtype, quant=t.quant, bins=t.bins,
                  zero_point=t.zero_point, steps=t.steps, step_axis=t.step_axis, tuple_size=n)
        if t.quant == fmt.QUANT_CODEBOOK:
            kw["levels"] = t.levels
        out.append(smallest_tans_tensor(t.name, t.symbols(), max_log2_states, **kw))
    return ct.Container(out, dict(c.metadata))


def build_container(qmodel: QuantizedModel, metadata: dict, log2_states: int = fmt.DEFAULT_LOG2_STATES,
                    max_lanes: int = fmt.DEFAULT_LANES, tuple_size: int = 1) -> ct.Container:
    """Every state-dict entry of the model: quantized weights coded/int8, the rest float32; coded
    layers in tuples of `tuple_size` weights."""
    exported = qmodel.export()
    tensors = []
    for name, value in qmodel.base.state_dict().items():
        if name in exported:
            try:
                tensors.append(quantized_tensor(name, exported[name], log2_states, max_lanes, tuple_size))
            except InputError as e:
                raise InputError(f"layer {name}: {e}") from None
        else:
            tensors.append(ct.f32_tensor(name, value.detach().cpu().numpy()))
    meta = dict(metadata)
    meta.update(kind=CONTAINER_KIND, log2_states=log2_states,
                coded=[n for n in qmodel.names if qmodel.coded[n]],
                int8=[n for n in qmodel.names if not qmodel.coded[n]],
                state_dtypes={k: str(v.dtype).replace("torch.", "") for k, v in qmodel.base.state_dict().items()})
    return ct.Container(tensors, meta)


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def checkpoint_ref(checkpoint: str | Path, output: str | Path) -> str:
    """The checkpoint's path relative to the .tans file's folder (absolute if on another drive),
    so the same run in another folder writes the same bytes; `resolve_checkpoint` reverses it."""
    ckpt, folder = Path(checkpoint).resolve(), Path(output).resolve().parent
    try:
        return os.path.relpath(ckpt, folder)
    except ValueError:
        return str(ckpt)


def resolve_checkpoint(ref: str | Path, tans_path: str | Path) -> Path:
    """The checkpoint named in a .tans file's metadata: relative paths are from the file's folder."""
    ref = Path(ref)
    return ref if ref.is_absolute() else Path(tans_path).resolve().parent / ref


def compress_checkpoint(checkpoint: str | Path, output: str | Path,
                        log2_states: int = fmt.DEFAULT_LOG2_STATES,
                        max_lanes: int = fmt.DEFAULT_LANES, tuple_size: int = 1) -> ct.Container:
    """Compress a `train` checkpoint (coded layers in tuples of `tuple_size`); the metadata lets
    `evaluate` rebuild model and data."""
    state = load_checkpoint(checkpoint)
    if state["phase"] == "float":
        raise ValueError(f"{checkpoint}: training stopped in the float phase; finish it with "
                         "`python -m sw train --resume` before compressing, or post-train its float model "
                         "with `python -m sw compress --method cerwu|optq|rtn`")
    cfg, qmodel = restore(state)
    meta = {"model": cfg.model, "model_config": cfg.model_config, "quant": cfg.quant,
            "data": {"spec": cfg.data, "n_train": cfg.n_train, "n_test": cfg.n_test, "seed": cfg.seed},
            "checkpoint": checkpoint_ref(checkpoint, output), "checkpoint_sha256": sha256_of(checkpoint),
            "results": state.get("results", {}), "phase": state["phase"]}
    c = build_container(qmodel, meta, log2_states, max_lanes, tuple_size)
    ct.write(output, c, (checkpoint,))        # never over its own input
    return c


def compress_module(model: nn.Module, output: str | Path, bins: int = 15, model_name: str = "",
                    model_config: dict | None = None, code_first_last: bool = False,
                    log2_states: int = fmt.DEFAULT_LOG2_STATES, max_lanes: int = fmt.DEFAULT_LANES,
                    data: dict | None = None, tuple_size: int = 1) -> tuple[ct.Container, QuantizedModel]:
    """Post-training compression of any module (or its state_dict loaded into one) at fixed bins."""
    qmodel = QuantizedModel(model, QuantConfig(init_bins=bins, learn_bins=False,
                                               code_first_last=code_first_last,
                                               min_bins=min(3, bins), max_bins=max(255, bins)))
    qmodel.eval()
    meta = {"model": model_name, "model_config": model_config or {}, "quant": qmodel.config.to_dict(),
            "data": data or {}, "post_training": True}
    c = build_container(qmodel, meta, log2_states, max_lanes, tuple_size)
    ct.write(output, c)
    return c, qmodel


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state_dict (.pt) or a `train` checkpoint's base-model weights."""
    obj = load_torch_file(path)
    if isinstance(obj, dict) and "model" in obj and "format" in obj:
        return {k[len("base."):]: v for k, v in obj["model"].items() if k.startswith("base.")}
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state_dict (a dict of tensors)")
    return obj
