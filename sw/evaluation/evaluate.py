"""Evaluate a `.tans` model: golden-decode every tensor, load the model, check exactness, measure accuracy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sw import container as ct
from sw.data.datasets import Dataset, load_dataset
from sw.models.zoo import build_model
from sw.methods.compress import resolve_checkpoint
from sw.methods.qat import restore


from sw.train import accuracy, load_checkpoint, set_threads


def decoded_state_dict(c: ct.Container, golden: bool = True) -> dict[str, torch.Tensor]:
    """The model state dict of a container (golden decoder by default)."""
    dtypes = c.metadata.get("state_dtypes", {})
    out = {}
    for t in c.tensors:
        v = t.values(golden=golden)
        dt = getattr(torch, dtypes.get(t.name, "float32"), torch.float32)
        out[t.name] = torch.from_numpy(np.ascontiguousarray(v)).to(dt)
    return out


def model_of(c: ct.Container, model: str | None = None) -> torch.nn.Module:
    """Rebuild the container's model from its metadata (or the given name) and load the decoded weights."""
    name = model or c.metadata.get("model")
    if not name:
        raise ValueError("the container does not name its model: pass --model NAME or package.module:factory")
    net = build_model(name, c.metadata.get("model_config", {}))
    sd = decoded_state_dict(c)
    try:
        net.load_state_dict(sd)
    except RuntimeError as e:
        raise ValueError(f"the container's tensors do not fit model {name!r}: {str(e).splitlines()[0]}") from None
    return net


def data_of(c: ct.Container, spec: str | None = None) -> Dataset:
    """The test data named in the metadata (or by `spec`)."""
    d = c.metadata.get("data") or {}
    spec = spec or d.get("spec")
    if not spec:
        raise ValueError("the container does not name its data set: pass --data")
    return load_dataset(spec, d.get("n_train"), d.get("n_test"), d.get("seed", 0))


def check_against_checkpoint(c: ct.Container, checkpoint: str | Path) -> dict:
    """Compare the decoded integers with those the checkpoint's quantized model evaluates with."""
    cfg, qmodel = restore(load_checkpoint(checkpoint))
    exported = qmodel.export()
    mismatched, compared = [], 0
    for name, e in exported.items():
        try:
            t = c[name]
        except KeyError:
            mismatched.append(name)
            continue
        compared += 1
        if not np.array_equal(t.integers(golden=True), e["integers"]) or \
                not np.array_equal(t.values(golden=True), e["values"]):
            mismatched.append(name)
    return {"compared_layers": compared, "mismatched_layers": mismatched,
            "exact": not mismatched and compared == len(exported), "qmodel": qmodel}


def evaluate_container(path: str | Path, checkpoint: str | Path | None = None,
                       data_spec: str | None = None, model: str | None = None) -> dict:
    """Decode (golden), evaluate accuracy, and check exactness against the checkpoint if available."""
    set_threads()
    c = ct.read(path)
    net = model_of(c, model)
    data = data_of(c, data_spec)
    out = {"container": str(path), "model": model or c.metadata.get("model"),
           "decoded_accuracy": accuracy(net, data.x_test, data.y_test), "test_examples": len(data.x_test)}
    ckpt = checkpoint
    if ckpt is None and c.metadata.get("checkpoint"):
        ckpt = resolve_checkpoint(c.metadata["checkpoint"], path)
    if ckpt and Path(ckpt).exists():
        chk = check_against_checkpoint(c, ckpt)
        out["checkpoint"] = str(ckpt)
        out["exact"] = chk["exact"]
        out["mismatched_layers"] = chk["mismatched_layers"]
        out["quantized_accuracy"] = accuracy(chk["qmodel"], data.x_test, data.y_test)
    else:
        out["exact"] = None
    res = c.metadata.get("results", {})
    if "float_accuracy" in res:
        out["float_accuracy"] = res["float_accuracy"]
    return out
