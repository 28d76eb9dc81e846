"""Loaders: IDX and CIFAR-10 files written by the tests, the bundled digit sets, splits."""
from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from sw.data.datasets import cifar10_dir, load_dataset, mnist_dir, read_idx


def write_idx(path, arr: np.ndarray, gz: bool = False) -> None:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    head = bytes([0, 0, codes[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = head + arr.tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def make_mnist(folder, n_train=30, n_test=10, gz=False):
    rng = np.random.default_rng(0)
    folder.mkdir(exist_ok=True)
    sfx = ".gz" if gz else ""
    xs = {}
    for stem, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / f"{stem}-images-idx3-ubyte{sfx}", x, gz)
        write_idx(folder / f"{stem}-labels-idx1-ubyte{sfx}", y, gz)
        xs[stem] = (x, y)
    return xs


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_folder(tmp_path, gz):
    xs = make_mnist(tmp_path / "mnist", gz=gz)
    d = mnist_dir(tmp_path / "mnist")
    assert d.x_train.shape == (30, 1, 28, 28) and d.x_test.shape == (10, 1, 28, 28)
    assert torch.equal(d.y_train, torch.from_numpy(xs["train"][1].astype(np.int64)))
    assert abs(float(d.x_train.mean())) < 1e-4        # standardized with training statistics
    # the ordering of pixels is kept: standardization is monotone
    raw = xs["train"][0][0].reshape(-1)
    got = d.x_train[0, 0].reshape(-1).numpy()
    assert np.array_equal(np.argsort(raw, kind="stable"), np.argsort(got, kind="stable"))
    assert load_dataset(f"mnist:{tmp_path / 'mnist'}", n_train=12).x_train.shape[0] == 12


def test_read_idx_big_endian_ints(tmp_path):
    arr = np.arange(-6, 6, dtype=">i4").reshape(3, 4)
    write_idx(tmp_path / "a.idx", arr)
    assert np.array_equal(read_idx(tmp_path / "a.idx"), arr.astype(np.int32))


def test_read_idx_rejects_damage(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX"):
        read_idx(tmp_path / "bad")
    arr = np.zeros((4, 4), np.uint8)
    write_idx(tmp_path / "short", arr)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(ValueError, match="needs"):
        read_idx(tmp_path / "short")


def test_mnist_missing_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        mnist_dir(tmp_path / "empty")


def test_cifar10_batches(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    labels = []
    for name, n in (("data_batch_1", 8), ("data_batch_2", 6), ("test_batch", 5)):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        lab = rng.integers(0, 10, n).tolist()
        labels.append(lab)
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": lab}, f)
    d = cifar10_dir(root)
    assert d.x_train.shape == (14, 3, 32, 32) and d.x_test.shape == (5, 3, 32, 32)
    assert d.y_train.tolist() == labels[0] + labels[1] and d.y_test.tolist() == labels[2]
    assert d.in_channels == 3 and d.image_size == 32
    assert torch.allclose(d.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)


def test_bundled_digits_are_reproducible():
    a = load_dataset("sklearn-digits", 200, 50, seed=3)
    b = load_dataset("sklearn-digits", 200, 50, seed=3)
    assert torch.equal(a.x_train, b.x_train) and a.x_train.shape == (200, 1, 8, 8)
    m = load_dataset("mnist-digits", 100, 20)
    assert m.x_train.shape == (100, 1, 28, 28) and m.num_classes == 10


def test_unknown_spec_and_oversized_split():
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="examples"):
        load_dataset("sklearn-digits", 2000, 100)
