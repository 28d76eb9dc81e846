"""The Python API (docs/API.md): compress a torch model, load a `.tans` file back into one, read its figures.

The command line (`python -m sw train|compress|evaluate`) calls these same functions:

- `compress(model, ...)`: an `nn.Module` in memory, by any method of `compress --method` or
  by entropy-driven QAT (`method="qat"`, which trains it on your data);
- `compress_file(source, output, ...)`: a `train` checkpoint or a state_dict file (the CLI's
  `compress`), refusing checkpoints whose training did not finish unless `allow_unfinished`;
- `train(config, checkpoint, ...)`: the CLI's `train`, checkpointed and resumable;
- `load_state_dict(path)`, `load_into(model, path)`: golden-decoded weights back into PyTorch;
- `layers(path)`, `summary(path)`: the per-layer figures `report` prints (bits, entropy, gap);
- `evaluate(path, ...)`: the CLI's `evaluate`.

Files are data: reading a `.tans` file never imports code or opens a path it names.
"""
from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from sw import container as ct
from sw.tans import format as fmt

POST_METHODS = ("rtn", "optq", "cerwu")
PARETO_METHODS = ("pareto", "pareto-optq", "pareto-cerwu")
METHODS = ("qat",) + POST_METHODS + PARETO_METHODS
DEFAULT_POST_TARGET = 0.8       #: post-training methods without a target or λ
DEFAULT_CALIBRATION = 512       #: calibration examples taken from a loader


# --- data ----------------------------------------------------------------------------------------

def as_dataset(data, name: str = "user", seed: int = 0, n_train: int | None = None, n_test: int | None = None):
    """A sw.data.Dataset from a Dataset, a data spec string, or a (train, test) pair (torch Datasets,
    DataLoaders or (inputs, labels) tensors; see sw.data.datasets.from_torch)."""
    from sw.data.datasets import Dataset, from_torch, load_dataset
    if isinstance(data, Dataset):
        return data
    if isinstance(data, str):
        return load_dataset(data, n_train, n_test, seed)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return from_torch(data[0], data[1], name)
    raise TypeError("data must be a sw.data.Dataset, a data spec string or a (train, test) pair")


def calibration_tensor(calibration, n: int = DEFAULT_CALIBRATION) -> torch.Tensor:
    """Up to `n` calibration inputs (on the CPU) from a tensor, a torch Dataset of (input, label) pairs or a DataLoader."""
    from torch.utils.data import DataLoader
    if isinstance(calibration, torch.Tensor):
        return calibration[:n].detach().cpu()
    xs, count = [], 0
    if isinstance(calibration, DataLoader):
        for batch in calibration:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            xs.append(torch.as_tensor(x).detach().cpu())
            count += len(xs[-1])
            if count >= n:
                break
    else:
        for i in range(min(n, len(calibration))):
            item = calibration[i]
            xs.append(torch.as_tensor(item[0] if isinstance(item, (tuple, list)) else item).unsqueeze(0))
    if not xs:
        raise ValueError("the calibration data is empty")
    return torch.cat(xs)[:n].float()


# --- devices -------------------------------------------------------------------------------------

def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """cpu, cuda[:N] or auto (cuda when available); a clear ValueError for a device that is not there."""
    name = "cpu" if device is None else str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}: use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA GPU (torch {torch.__version__}, "
                         f"built with CUDA {torch.version.cuda}): use --device cpu or auto")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r} is not supported: use cpu, cuda, cuda:N or auto")
    return dev


# --- training ------------------------------------------------------------------------------------

def train(config, checkpoint: str | Path, *, data=None, model: nn.Module | None = None, resume: bool = False,
          force: bool = False, stop_after: str | None = None, progress: bool = True,
          log: Callable[..., Any] = print, device: str = "cpu", workers: int = 0):
    """Run (or resume) float baseline, entropy-driven QAT and fine-tuning into `checkpoint`: (Trainer, results).

    config: a sw.methods.qat.TrainConfig or a dict of its fields. data: what `as_dataset` takes
    (default: the config's data spec). model: your own nn.Module instead of config.model (it is
    copied, not changed). stop_after="float" ends after the float baseline. device: cpu, cuda, auto.
    Started by torchrun with several processes, it trains data-parallel (sw.train.distributed).
    workers: DataLoader processes that build (decode) the training batches ahead.
    """
    from sw.methods.qat import TrainConfig, Trainer
    from sw.train import distributed
    ckpt = Path(checkpoint)
    dev = resolve_device(device)
    distributed.init(dev)          # joins the torchrun job if this process is one of several
    ds = None if data is None else as_dataset(data)
    module = copy.deepcopy(model) if model is not None else None
    if resume:
        if not ckpt.exists():
            raise FileNotFoundError(2, "no such file", str(ckpt))
        trainer = Trainer.resume(ckpt, ds, progress=progress, log=log, module=module)
        if trainer.phase == "done":
            log(f"{ckpt}: training already finished")
    else:
        if ckpt.exists() and not force:
            raise ValueError(f"{ckpt} exists: pass --resume to continue it or --force to start over")
        cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(dict(config or {}))
        trainer = Trainer(cfg, ckpt, ds, progress=progress, log=log, module=module)
    trainer.device, trainer.workers = dev, int(workers)
    if trainer.phase != "done":
        check_runs(trainer.qmodel.base, trainer.data, trainer.cfg.model)
    return trainer, trainer.run(stop_after=stop_after)


def trusted_checkpoint(state: dict, src: Path, model: str | None, data: str | None, loads_data: bool) -> None:
    """TrustError unless every factory the checkpoint names (model; data when it is loaded) is also named by
    the caller: a file never chooses code to import (the rule of sw.evaluation.evaluate)."""
    from sw.models.zoo import MODELS
    from sw.tans.errors import TrustError, quote
    cfg = state.get("config") if isinstance(state.get("config"), dict) else {}
    name = cfg.get("model")
    if isinstance(name, str) and name not in MODELS and name != model:
        raise TrustError(f"{src}: the checkpoint names model {quote(name)}, which is not built in; a file cannot "
                         f"make compress import code: pass --model {quote(name)} if you trust that factory")
    spec = cfg.get("data")
    if loads_data and isinstance(spec, str) and ":" in spec and \
            spec.partition(":")[0] not in ("mnist", "cifar10", "imagefolder") and spec != data:
        raise TrustError(f"{src}: the checkpoint names data factory {quote(spec)}; a file cannot make compress "
                         f"import code: pass --data {quote(spec)} if you trust it")


def check_runs(net: nn.Module, data, name: str) -> None:
    """One ValueError line unless the model maps two training inputs to (2, classes) outputs."""
    from sw.data.datasets import take
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(take(data.x_train, torch.arange(min(2, len(data.x_train))))[:2])
    except (RuntimeError, TypeError, ValueError, IndexError) as e:
        raise ValueError(f"model {name!r} does not run on data set {data.name!r} (inputs "
                         f"{tuple(data.x_train.shape[1:])}): {' '.join(str(e).split())[:200]}") from None
    finally:
        net.train(was)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] < data.num_classes:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"model {name!r} gives outputs of shape {shape} on data set {data.name!r}; "
                         f"training needs (batch, {data.num_classes}) class scores")


def _unfinished(state: dict, src: Path, post_training: bool) -> str | None:
    """Why a `train` checkpoint is not finished for this use (None when it is)."""
    phase, epoch = state.get("phase"), state.get("epoch")
    cfg = state.get("config") or {}
    if post_training:     # the float model is what is used: its phase must have run all its epochs
        if phase != "float" or "float_accuracy" in (state.get("results") or {}):
            return None
        return (f"{src}: its float phase stopped at epoch {epoch} of {cfg.get('float_epochs')}; finish it with "
                f"`python -m sw train --resume --float-only -o {src}`, or pass --allow-unfinished")
    if phase == "done":
        return None
    if phase == "float":
        return (f"{src}: training stopped in the float phase; finish it with `python -m sw train --resume -o "
                f"{src}`, or post-train its float model with `python -m sw compress --method cerwu|optq|rtn`")
    return (f"{src}: training stopped in phase {phase!r} (epoch {epoch}), before it finished, so its bins and "
            f"rate are not final; finish it with `python -m sw train --resume -o {src}`, or pass "
            "--allow-unfinished to compress it as it is")


# --- compression ---------------------------------------------------------------------------------

def _weights_of(src: Path, model: str, config: dict):
    """The user's model `model` (built from `config`) with the state_dict file `src` loaded."""
    from sw.methods.compress import load_state_dict_file
    from sw.models.zoo import build_model, load_weights
    net = build_model(model, config)
    return load_weights(net, load_state_dict_file(src), str(src), model)


def raw_where_cheaper(c: ct.Container, names: list[str] | None = None) -> list[dict]:
    """Swap every coded layer whose record costs more than its raw 8-bit record (post_train's
    per-channel int8) for that record, in place; returns what was swapped (name, coded and raw bits)."""
    from sw.methods.posttrain import int8_point
    swapped = []
    for i, t in enumerate(c.tensors):
        if t.kind != fmt.KIND_TANS or (names is not None and t.name not in names):
            continue
        w = torch.from_numpy(t.values(golden=True).astype("float64"))
        raw = int8_point(t.name, w, None)
        coded = ct.record_bits(t)
        if raw.bits < coded:
            c.tensors[i] = raw.tensor
            swapped.append({"name": t.name, "coded_bits": coded, "raw_bits": raw.bits, "weights": t.size})
    if swapped:
        gone = {s["name"] for s in swapped}
        meta = c.metadata
        meta["coded"] = [n for n in meta.get("coded", []) if n not in gone]
        meta["int8"] = list(meta.get("int8", [])) + sorted(gone)
        meta["raw_fallback"] = sorted(gone)
    return swapped


def compress_file(source: str | Path, output: str | Path, *, method: str | None = None,
                  target_bits_per_weight: float | None = None, lam: float | None = None, bins: int | None = None,
                  model: str | None = None, model_config: dict | None = None, data: str | None = None,
                  seed: int = 0, n_train: int | None = None, n_test: int | None = None,
                  calibration: int = DEFAULT_CALIBRATION, log2_states: int = fmt.DEFAULT_LOG2_STATES,
                  max_lanes: int = fmt.DEFAULT_LANES, code_first_last: bool = False,
                  per_channel_steps: bool = False, activation_bits: float | None = None,
                  allow_unfinished: bool = False, progress: bool = False, dead_zone: float = 0.0,
                  tuple_size: int = 1, units: int = 0) -> tuple[ct.Container, dict]:
    """The CLI's `compress`: a `train` checkpoint or a state_dict file into a `.tans` file; (Container, info).

    Without `method` a checkpoint is packed as trained (it must have reached phase "done" unless
    `allow_unfinished`), and a state_dict (with `model`) is quantized at `bins` (default 15) with
    every layer whose coding does not pay kept raw 8-bit (info["raw_fallback"]). With a method
    (rtn, optq, cerwu, pareto*) the float model is post-trained at `target_bits_per_weight` or `lam`.
    `tuple_size` N > 1 codes every coded layer in tuples of N weights (FORMAT.md 2.3c); after a
    method, its rate choices are made on scalar records and the file is then re-coded in tuples.
    `units` P > 0 re-codes every coded layer over at least 7·P lanes where it has the symbols, so
    a core with P decode units runs at full rate (sw.methods.layout.lanes_for_units).
    """
    if units < 0:
        raise ValueError(f"--decoder-units must be 0 (the lanes the method chose) or positive, got {units}")
    if (tuple_size != 1 and method is not None) or units:
        scalar = 1 if method is not None else tuple_size
        with tempfile.TemporaryDirectory() as scratch:   # nothing reaches `output` unless the re-code works
            c, info = compress_file(source, Path(scratch) / "scalar.tans", method=method, tuple_size=scalar,
                                    target_bits_per_weight=target_bits_per_weight,
                                    lam=lam, bins=bins, model=model, model_config=model_config, data=data,
                                    seed=seed, n_train=n_train, n_test=n_test, calibration=calibration,
                                    log2_states=log2_states, max_lanes=max_lanes, code_first_last=code_first_last,
                                    per_channel_steps=per_channel_steps, activation_bits=activation_bits,
                                    allow_unfinished=allow_unfinished, progress=progress, dead_zone=dead_zone)
        from sw.methods.compress import recode
        c = recode(c, tuple_size, units, log2_states, max_lanes)
        ct.write(output, c, (source,))
        coded = [t for t in c.tensors if t.kind == fmt.KIND_TANS]
        weights = sum(t.size for t in coded)
        bpw = sum(ct.record_bits(t) for t in coded) / weights if weights else None
        if tuple_size != 1:
            info = dict(info, tuple_size=tuple_size, tuple_coded_bits_per_weight=bpw)
        if units:
            info = dict(info, units=units, recoded_bits_per_weight=bpw,
                        lanes={t.name: t.coded.lanes for t in coded})
        return c, info
    from sw.methods.compress import compress_checkpoint, compress_module
    from sw.train import CHECKPOINT_FORMAT, load_torch_file
    src = Path(source)
    if not src.exists():
        raise FileNotFoundError(2, "no such file", str(src))
    if method is not None and method not in METHODS[1:]:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS[1:])}")
    if activation_bits is not None and (method or "") not in PARETO_METHODS:
        raise ValueError("--activation-bits needs --method pareto, pareto-optq or pareto-cerwu")
    obj = load_torch_file(src)
    is_ckpt = isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT
    if is_ckpt and not allow_unfinished:
        why = _unfinished(obj, src, post_training=method is not None)
        if why:
            raise ValueError(why)
    if is_ckpt:
        trusted_checkpoint(obj, src, model, data, loads_data=method is not None)
    if method is not None and not is_ckpt and model:
        _weights_of(src, model, model_config or {})      # a wrong --model: one clear line, before any work
    if method in PARETO_METHODS:
        from sw.methods.pareto import compress_file as pareto_file
        if lam is not None or bins or per_channel_steps:
            raise ValueError(f"--method {method} takes --target-bits-per-weight (and --activation-bits), "
                             "not --lam, --bins or --per-channel-steps")
        target = target_bits_per_weight or DEFAULT_POST_TARGET
        return pareto_file(src, output, method, target, activation_bits, model, model_config, data, seed,
                           n_train, n_test, calibration, log2_states, max_lanes, code_first_last, progress=progress,
                           dead_zone=dead_zone)
    if method is not None:
        from sw.methods.posttrain import compress_file as post_file
        target = target_bits_per_weight
        if target is None and lam is None:
            target = DEFAULT_POST_TARGET
        return post_file(src, output, method, target, lam, bins, model, model_config, data, seed, n_train, n_test,
                         calibration, log2_states, max_lanes, code_first_last, per_channel_steps, progress=progress,
                         dead_zone=dead_zone)
    if target_bits_per_weight is not None or lam is not None:
        raise ValueError("--target-bits-per-weight and --lam need a post-training --method (rtn, optq, cerwu)")
    if dead_zone:
        raise ValueError("--dead-zone needs a post-training --method (a `train` checkpoint takes the dead zone it "
                         "was trained with: train --dead-zone)")
    if is_ckpt and not bins:
        return compress_checkpoint(src, output, log2_states, max_lanes, tuple_size), {"raw_fallback": []}
    if not model:
        raise ValueError(f"{src} is not a `train` checkpoint: post-training compression of a state_dict "
                         "needs --model NAME (lenet5, resnet18, package.module:factory)")
    config = dict(model_config or {})
    net = _weights_of(src, model, config)
    split = {"spec": data, "n_train": n_train, "n_test": n_test, "seed": seed} if data else {}
    with tempfile.TemporaryDirectory() as tmp:   # compress_module writes; the fallback rewrites the final file
        c, _ = compress_module(net, Path(tmp) / "m.tans", bins or 15, model, config, code_first_last,
                               log2_states, max_lanes, split, tuple_size)
    swapped = raw_where_cheaper(c)
    ct.write(output, c, (src,))
    return c, {"raw_fallback": swapped}


def compress(model: nn.Module, output: str | Path | None = None, *, method: str = "cerwu",
             calibration=None, data=None, target_bits_per_weight: float | None = None, lam: float | None = None,
             bins: int | None = None, activation_bits: float | None = None,
             log2_states: int = fmt.DEFAULT_LOG2_STATES, max_lanes: int = fmt.DEFAULT_LANES,
             code_first_last: bool = False, per_channel_steps: bool = False, n_calibration: int = DEFAULT_CALIBRATION,
             train_config: dict | None = None, checkpoint: str | Path | None = None, model_name: str = "",
             model_config: dict | None = None, device: str = "cpu", progress: bool = False,
             log: Callable[..., Any] = lambda *a, **k: None, tuple_size: int = 1,
             units: int = 0) -> tuple[ct.Container, dict]:
    """Compress an nn.Module (not changed) into a Container, also written to `output` if given; (Container, info).

    method "rtn" | "optq" | "cerwu" | "pareto" | "pareto-optq" | "pareto-cerwu": post-training,
    with `calibration` (a tensor, a torch Dataset or a DataLoader; its first `n_calibration`
    inputs; None only for rtn) at `target_bits_per_weight` (default 0.8) or a fixed `lam`.
    method "qat": entropy-driven QAT on `data` (see `as_dataset`) at `target_bits_per_weight`
    (default 0.7); `train_config` sets TrainConfig fields (epochs, lr, ...; float_epochs
    defaults to 0: your model is the float baseline), `checkpoint` keeps the training state.
    model_name / model_config are stored in the metadata (for `evaluate --model`).
    `tuple_size` and `units` re-code the result as `compress --tuple N --decoder-units P` does.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if units < 0:
        raise ValueError(f"units must be 0 (the lanes the method chose) or positive, got {units}")
    meta = {"model": model_name, "model_config": dict(model_config or {}), "data": {}}
    if method == "qat":
        c, info = _compress_qat(model, data, target_bits_per_weight, log2_states, max_lanes, code_first_last,
                                train_config, checkpoint, output, meta, device, progress, log)
    else:
        from sw.methods.posttrain import post_train
        net = copy.deepcopy(model).cpu().float()
        calib = None if calibration is None else calibration_tensor(calibration, n_calibration)
        if method in PARETO_METHODS:
            c, info = _compress_pareto(net, calib, method, target_bits_per_weight or DEFAULT_POST_TARGET,
                                       activation_bits, log2_states, max_lanes, code_first_last, meta, progress)
        else:
            if target_bits_per_weight is None and lam is None:
                target_bits_per_weight = DEFAULT_POST_TARGET
            c, info = post_train(net, calib, method, target_bits_per_weight, lam, bins, log2_states, max_lanes,
                                 code_first_last, meta, per_channel_steps=per_channel_steps, progress=progress)
    if tuple_size != 1 or units:
        from sw.methods.compress import recode
        c = recode(c, tuple_size, units, log2_states, max_lanes)
        info = dict(info, tuple_size=tuple_size, units=units)
    if output is not None:
        ct.write(output, c)
    return c, info


def _compress_pareto(net, calib, method, target, activation_bits, log2_states, max_lanes, code_first_last,
                     meta, progress):
    """pareto* on an in-memory model (the steps of sw.methods.pareto.compress_file after loading)."""
    from sw.methods.pareto import METHODS as PM, ParetoCurves
    if calib is None:
        raise ValueError(f"{method} needs calibration inputs")
    pc = ParetoCurves(net, calib, PM[method], activations=activation_bits is not None,
                      code_first_last=code_first_last, log2_states=log2_states, max_lanes=max_lanes,
                      progress=progress)
    choice, al = pc.pareto(target, activation_bits)
    c, info = pc.container(choice, meta, method)
    info.update(target_bits_per_weight=target, activation_bits=activation_bits, lam=al.lam, target_met=al.met)
    c.metadata.update(pareto={"lam": al.lam, "target_met": al.met, "activation_bits": activation_bits})
    return c, info


def _compress_qat(model, data, target, log2_states, max_lanes, code_first_last, train_config, checkpoint,
                  output, meta, device, progress, log):
    """Entropy-driven QAT of an in-memory model, then packing (sw.methods.compress.build_container)."""
    from sw.methods.compress import build_container, checkpoint_ref, sha256_of
    from sw.methods.qat import TrainConfig
    from sw.quant import QuantConfig
    if data is None:
        raise ValueError("method 'qat' trains: give data (a sw.data.Dataset, a spec, or (train, test))")
    ds = as_dataset(data)
    fields = {"float_epochs": 0, "target_bits_per_weight": target or 0.7, "log2_states": log2_states,
              "model": meta["model"] or "user", "model_config": meta["model_config"] or ds.model_config(),
              "data": ds.name, "n_train": len(ds.x_train), "n_test": len(ds.x_test)}
    fields.update(train_config or {})
    quant = QuantConfig.from_dict({**QuantConfig().to_dict(), "code_first_last": code_first_last,
                                   **fields.get("quant", {})})
    fields["quant"] = quant.to_dict()
    cfg = TrainConfig.from_dict(fields)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(checkpoint) if checkpoint is not None else Path(tmp) / "qat.ckpt"
        trainer, results = train(cfg, ckpt, data=ds, model=model, force=True, progress=progress, log=log,
                                 device=device)
        trainer.qmodel.cpu().eval()
        meta.update(quant=cfg.quant, results=results, phase=trainer.phase,
                    data={"spec": ds.name, "n_train": cfg.n_train, "n_test": cfg.n_test, "seed": cfg.seed})
        if checkpoint is not None:
            meta["checkpoint_sha256"] = sha256_of(ckpt)
            if output is not None:
                meta["checkpoint"] = checkpoint_ref(ckpt, output)
        c = build_container(trainer.qmodel, meta, log2_states, max_lanes)
    return c, {"method": "qat", **results, "config": asdict(cfg)}


# --- reading .tans files back --------------------------------------------------------------------

def _container(source: str | Path | ct.Container, max_bytes: int | None = fmt.DEFAULT_MAX_BYTES) -> ct.Container:
    return source if isinstance(source, ct.Container) else ct.read(source, max_bytes)


def load_state_dict(source: str | Path | ct.Container, max_bytes: int | None = fmt.DEFAULT_MAX_BYTES
                    ) -> dict[str, torch.Tensor]:
    """Every tensor of a `.tans` file (or Container), golden-decoded, as a state_dict in its stored dtypes."""
    from sw.evaluation.evaluate import decoded_state_dict
    c = _container(source, max_bytes)
    if isinstance(source, ct.Container):
        return decoded_state_dict(c)
    with ct.in_file(source):
        return decoded_state_dict(c)


def load_into(model: nn.Module, source: str | Path | ct.Container,
              max_bytes: int | None = fmt.DEFAULT_MAX_BYTES) -> nn.Module:
    """Load the decoded weights into your `model` (in place, on its device and dtypes); returns it.
    The names and shapes must match the model's state_dict exactly (one ValueError line otherwise)."""
    from sw.models.zoo import load_weights
    where = "container" if isinstance(source, ct.Container) else os.fspath(source)
    sd = load_state_dict(source, max_bytes)
    ref = model.state_dict()
    sd = {k: v.to(ref[k].device, ref[k].dtype) if k in ref else v for k, v in sd.items()}
    return load_weights(model, sd, where, type(model).__name__)


def summary(source: str | Path | ct.Container) -> dict:
    """The totals and per-layer rows `report --json` prints (sw.evaluation.report.summarize)."""
    from sw.evaluation.report import summarize
    c = _container(source)
    return summarize(c, None if isinstance(source, ct.Container) else source)


def layers(source: str | Path | ct.Container) -> list[dict]:
    """Per quantized layer, as `report` counts it: name, kind ("tans"/"int8"), weights, bins,
    total_bits (the whole record), bits_per_weight, entropy_bits, gap_percent, payload/table/... bits."""
    return summary(source)["layers"]


def evaluate(path: str | Path, *, checkpoint: str | Path | None = None, data: str | None = None,
             model: str | None = None, max_bytes: int | None = fmt.DEFAULT_MAX_BYTES,
             device: str = "cpu") -> dict:
    """The CLI's `evaluate`: golden decode, accuracy and the exactness check (sw.evaluation.evaluate)."""
    from sw.evaluation.evaluate import evaluate_container
    dev = resolve_device(device)
    return evaluate_container(path, checkpoint, data, model, max_bytes, device=dev)
