"""Evaluate a `.tans` model: golden-decode every tensor, load the model, check exactness, measure accuracy.

A `.tans` file is data, never a source of code or of paths to open (issue 11): its metadata
may name only a built-in model (`sw.models.zoo.MODELS`, with bounded integer arguments) and
a built-in data set. A model factory (`package.module:factory`), a data folder (`mnist:DIR`,
`cifar10:DIR`) or a checkpoint outside the file's own folder is used only when the caller
(the command line: `--model`, `--data`, `--checkpoint`) names it; a file that needs one
gets a TrustError saying which option to give. The same holds for the model a checkpoint names.
"""
from __future__ import annotations

import inspect
import math
import os
from pathlib import Path

import numpy as np
import torch

from sw import container as ct
from sw.data.datasets import Dataset, load_dataset
from sw.methods.qat import restore
from sw.models.zoo import MODELS, build_model
from sw.evaluation.activations import quantizers_from_metadata
from sw.quant.activations import fake_quantized
from sw.tans import format as fmt
from sw.tans.errors import FormatError, TansError, TrustError, quote
from sw.train import accuracy, load_checkpoint, set_threads

BUILTIN_DATA = ("mnist-digits", "sklearn-digits")   #: data sets a file may name (they ship in wheels)
MAX_CONFIG_INT = 1 << 16      #: bound of every integer model argument a file gives (channels, classes, widths)
MAX_CONFIG_LIST = 64          #: longest tuple argument (widths, hidden layers) a file gives
MAX_EXAMPLES = 10 ** 8        #: bound of n_train / n_test in a file
#: torch dtypes a file's state_dtypes may name
STATE_DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")


def _is_int(v: object, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def checked_model_config(name: str, config: object, where: str) -> dict:
    """A built-in model's keyword arguments taken from a file: known names, bounded integers only.

    Each argument must be one of the model class's parameters whose default is an int (or a
    tuple of ints); anything else (unknown keys, strings, huge values) is a FormatError.
    """
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise FormatError(f"{where}: model_config is a JSON {type(config).__name__}, not an object")
    params = inspect.signature(MODELS[name]).parameters
    for key, value in config.items():
        p = params.get(key)
        if p is None or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            raise FormatError(f"{where}: model {name!r} has no argument {quote(key)}")
        default = p.default
        if isinstance(default, int) and not isinstance(default, bool):
            ok = _is_int(value, 1, MAX_CONFIG_INT)
        elif isinstance(default, tuple) and all(isinstance(d, int) for d in default):
            ok = isinstance(value, list) and 1 <= len(value) <= MAX_CONFIG_LIST and \
                all(_is_int(v, 1, MAX_CONFIG_INT) for v in value)
        else:
            ok = False
        if not ok:
            raise FormatError(f"{where}: model argument {quote(key)} = {quote(value)} is not allowed "
                              f"(integers 1..{MAX_CONFIG_INT}, or lists of them)")
    return dict(config)


def _model_name(name: object, trusted: str | None, where: str) -> str:
    """The model to build: the caller's `trusted` name, else a built-in one named by the file."""
    if trusted:
        return trusted
    if not name:
        raise ValueError(f"{where}: the file does not name its model: pass --model NAME or package.module:factory")
    if not isinstance(name, str):
        raise FormatError(f"{where}: the model name is a JSON {type(name).__name__}, not a string")
    if name not in MODELS:
        raise TrustError(f"{where}: the file names model {quote(name)}, which is not built in "
                         f"({', '.join(MODELS)}); a file cannot make evaluate import code: pass --model "
                         f"{quote(name)} if you trust that factory")
    return name


def _build(name: str, config: object, where: str, meta: bool = False) -> torch.nn.Module:
    """Build model `name`; a built-in one with a checked config, on the meta device if `meta`."""
    if name in MODELS:
        config = checked_model_config(name, config, where)
        try:
            if meta:
                with torch.device("meta"):
                    return build_model(name, config)
            return build_model(name, config)
        except (TypeError, ValueError, RuntimeError) as e:
            raise FormatError(f"{where}: model {name!r} cannot be built from the file's model_config "
                              f"({' '.join(str(e).splitlines())[:200]})") from None
    if config is not None and not isinstance(config, dict):
        raise FormatError(f"{where}: model_config is a JSON {type(config).__name__}, not an object")
    try:
        return build_model(name, config)       # the caller's own factory: trusted code
    except TypeError as e:
        raise ValueError(f"{where}: model {quote(name)} does not take the file's model_config ({e})") from None


def _check_fits(c: ct.Container, net: torch.nn.Module, name: str) -> None:
    """ValueError unless the container holds exactly the model's state-dict entries, shape for shape."""
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    have = {t.name: tuple(t.shape) for t in c.tensors}
    if want == have:
        return
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    shape = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    detail = (f"missing {quote(missing[0])}" if missing else f"unexpected {quote(extra[0])}" if extra
              else f"{quote(shape[0])} is {have[shape[0]]}, the model has {want[shape[0]]}")
    raise ValueError(f"the container's tensors do not fit model {name!r}: {detail}")


def decoded_state_dict(c: ct.Container, golden: bool = True) -> dict[str, torch.Tensor]:
    """The model state dict of a container (golden decoder by default), in the dtypes its metadata names."""
    dtypes = c.metadata.get("state_dtypes", {})
    if not isinstance(dtypes, dict):
        raise FormatError(f"state_dtypes is a JSON {type(dtypes).__name__}, not an object")
    out = {}
    for t in c.tensors:
        dt = dtypes.get(t.name, "float32")
        if dt not in STATE_DTYPES:
            raise FormatError(f"tensor {quote(t.name)}: state dtype {quote(dt)} is not one of {', '.join(STATE_DTYPES)}")
        v = t.values(golden=golden)
        out[t.name] = torch.from_numpy(np.ascontiguousarray(v)).to(getattr(torch, dt))
    return out


def model_of(c: ct.Container, model: str | None = None, where: str = "container") -> torch.nn.Module:
    """Rebuild the container's model and load the decoded weights.

    `model` (the caller's choice, may be a factory) overrides the metadata, which may
    name only a built-in model. Names and shapes are compared before anything is decoded.
    """
    name = _model_name(c.metadata.get("model"), model, where)
    config = c.metadata.get("model_config", {})
    if name in MODELS:
        _check_fits(c, _build(name, config, where, meta=True), name)
    net = _build(name, config, where)
    _check_fits(c, net, name)
    try:
        net.load_state_dict(decoded_state_dict(c))
    except RuntimeError as e:
        raise ValueError(f"the container's tensors do not fit model {name!r}: {str(e).splitlines()[0]}") from None
    return net


def _split_sizes(d: dict, where: str) -> tuple[int | None, int | None, int]:
    """n_train, n_test and seed of the file's data entry, each checked."""
    n_train, n_test, seed = d.get("n_train"), d.get("n_test"), d.get("seed", 0)
    for key, v in (("n_train", n_train), ("n_test", n_test)):
        if v is not None and not _is_int(v, 1, MAX_EXAMPLES):
            raise FormatError(f"{where}: data {key} = {quote(v)} is not an integer in 1..{MAX_EXAMPLES}")
    if seed is None:
        seed = 0
    if not _is_int(seed, 0, 2 ** 63 - 1):
        raise FormatError(f"{where}: data seed = {quote(seed)} is not a non-negative integer")
    return n_train, n_test, seed


def data_of(c: ct.Container, spec: str | None = None, where: str = "container") -> Dataset:
    """The test data: `spec` (the caller's choice, may be a folder) or a built-in set the metadata names."""
    d = c.metadata.get("data") or {}
    if not isinstance(d, dict):
        raise FormatError(f"{where}: the data entry is a JSON {type(d).__name__}, not an object")
    n_train, n_test, seed = _split_sizes(d, where)
    if not spec:
        spec = d.get("spec")
        if not spec:
            raise ValueError(f"{where}: the file does not name its data set: pass --data")
        if not isinstance(spec, str):
            raise FormatError(f"{where}: the data spec is a JSON {type(spec).__name__}, not a string")
        if spec not in BUILTIN_DATA:
            raise TrustError(f"{where}: the file names data set {quote(spec)}; a file may only name "
                             f"{' or '.join(BUILTIN_DATA)}: pass --data {quote(spec)} to load it if you trust it")
    return load_dataset(spec, n_train, n_test, seed)


def checkpoint_in_folder(ref: object, tans_path: str | Path) -> tuple[Path | None, str | None]:
    """(path, note): the checkpoint a file names, if it is a regular file in the file's own folder.

    Symlinks are resolved first, so a link to elsewhere counts as elsewhere. The note says
    why a named checkpoint is not used (None when it is, or when it simply does not exist).
    """
    if not isinstance(ref, str) or not ref or "\0" in ref:
        raise FormatError(f"the checkpoint entry {quote(ref)} is not a file name")
    folder = os.path.realpath(os.path.dirname(os.path.abspath(tans_path)))
    cand = os.path.realpath(os.path.join(folder, ref))
    if os.path.dirname(cand) != folder:
        return None, (f"the file names checkpoint {quote(ref)} outside its folder; pass --checkpoint to "
                      "check against it")
    if not os.path.lexists(cand):
        return None, None
    return Path(cand), None


def _checkpoint_model(state: dict, model: str | None, where: str) -> None:
    """TrustError unless the checkpoint's model is built in (with a checked config) or the caller's `model`."""
    cfg = state.get("config")
    if not isinstance(cfg, dict):
        raise FormatError(f"{where}: the checkpoint has no configuration")
    name = cfg.get("model")
    if not isinstance(name, str):
        raise FormatError(f"{where}: the checkpoint's model name is not a string")
    if name in MODELS:
        checked_model_config(name, cfg.get("model_config", {}), where)
    elif name != model:
        raise TrustError(f"{where}: the checkpoint names model {quote(name)}, which is not built in; "
                         f"pass --model {quote(name)} if you trust that factory")


def check_against_checkpoint(c: ct.Container, checkpoint: str | Path, model: str | None = None) -> dict:
    """Compare the decoded integers with those the checkpoint's quantized model evaluates with.

    The checkpoint is read as data too: its model must be built in or be the caller's `model`.
    """
    where = os.fspath(checkpoint)
    state = load_checkpoint(checkpoint)
    _checkpoint_model(state, model, where)
    try:
        _cfg, qmodel = restore(state)
    except Exception as e:   # an untrusted file: any failure to rebuild it is a format error
        raise FormatError(f"{where}: not a usable checkpoint ({type(e).__name__}: "
                          f"{' '.join(str(e).splitlines())[:200]})") from None
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


def _accuracy(net: torch.nn.Module, data: Dataset, where: str) -> float:
    """Test accuracy; ValueError when the model does not run on the data (shapes disagree)."""
    try:
        return accuracy(net, data.x_test, data.y_test)
    except RuntimeError as e:
        raise ValueError(f"{where}: the model does not run on data set {data.name!r} "
                         f"({str(e).splitlines()[0][:200]})") from None


def evaluate_container(path: str | Path, checkpoint: str | Path | None = None,
                       data_spec: str | None = None, model: str | None = None,
                       max_bytes: int | None = fmt.DEFAULT_MAX_BYTES, device: str | torch.device = "cpu") -> dict:
    """Decode (golden), evaluate accuracy, and check exactness against the checkpoint if available.

    `checkpoint`, `data_spec` and `model` are the caller's (trusted) choices; without them
    only what a file may name is used (see the module docstring).
    """
    set_threads()
    where = os.fspath(path)
    c = ct.read(path, max_bytes)
    try:
        return _evaluate(c, path, checkpoint, data_spec, model, torch.device(device))
    except ValueError as e:          # name the file in every message (FormatErrors: ct.in_file)
        if isinstance(e, TansError) or str(e).startswith(where + ": "):
            raise
        raise ValueError(f"{where}: {e}") from None


def _evaluate(c: ct.Container, path: str | Path, checkpoint: str | Path | None, data_spec: str | None,
              model: str | None, device: torch.device = torch.device("cpu")) -> dict:
    """evaluate_container after reading the file (accuracy measured on `device`)."""
    where = os.fspath(path)
    with ct.in_file(path):
        net = model_of(c, model, where).to(device)
        data = data_of(c, data_spec, where)
        acts = quantizers_from_metadata(c.metadata.get("activation_quantizers"), net)
        with fake_quantized(net, acts):       # the file's activation quantizers, if it has any
            acc = _accuracy(net, data, where)
        out = {"container": str(path), "model": model or c.metadata.get("model"),
               "decoded_accuracy": acc, "test_examples": len(data.x_test)}
        if acts:
            out["activation_quantizers"] = {n: q.to_dict() for n, q in acts.items()}
            out["decoded_accuracy_float_activations"] = _accuracy(net, data, where)
        ckpt, note = (Path(checkpoint), None) if checkpoint is not None else (None, None)
        if ckpt is None and c.metadata.get("checkpoint") is not None:
            ckpt, note = checkpoint_in_folder(c.metadata["checkpoint"], path)
        if ckpt is not None:
            chk = check_against_checkpoint(c, ckpt, model)
            out["checkpoint"] = str(ckpt)
            out["exact"] = chk["exact"]
            out["mismatched_layers"] = chk["mismatched_layers"]
            out["quantized_accuracy"] = _accuracy(chk["qmodel"].to(device), data, os.fspath(ckpt))
        else:
            out["exact"] = None
            if note:
                out["checkpoint_note"] = note
    res = c.metadata.get("results", {})
    fa = res.get("float_accuracy") if isinstance(res, dict) else None
    if isinstance(fa, (int, float)) and not isinstance(fa, bool) and math.isfinite(fa):
        out["float_accuracy"] = fa
    return out
