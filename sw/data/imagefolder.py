"""ImageFolder-style data (one folder per class), decoded lazily with Pillow: `imagefolder:PATH[:SIZE]`.

Layout: PATH/train/<class>/* and PATH/val/<class>/* (or PATH/test/), the ImageNet way; or
PATH/<class>/* alone, split into seeded train/test parts. Classes are the sorted folder
names (the same set in train and val). Images are decoded only when a batch asks for them
(`LazyImages`), so an ImageNet-sized folder costs its file list in memory, not its pixels.
Each image is converted to RGB, its shorter side resized to SIZE (bilinear) and centre-cropped
to SIZE x SIZE, then standardized per channel with the mean and std of up to 512 seeded
training images.

The files are untrusted: each must be a regular file of at most MAX_FILE_BYTES, its header
must declare at most MAX_PIXELS pixels (checked before decoding, so a decompression bomb
is refused, Pillow's own limit stays on too), and any image Pillow cannot decode ends in one
ValueError naming the file.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from sw.container.files import open_regular

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".webp", ".tif", ".tiff")
MAX_FILE_BYTES = 64 << 20          #: largest image file read
MAX_PIXELS = 40_000_000            #: largest declared width x height decoded (about 6300 x 6300)
MAX_SIZE = 1024                    #: largest SIZE (side of the decoded square)
DEFAULT_SIZE = 224
STATS_SAMPLE = 512                 #: training images the per-channel mean and std come from


def decode_image(path: str | Path, size: int) -> np.ndarray:
    """One image as float32 (3, size, size) in [0, 1]: RGB, shorter side resized to `size`, centre crop."""
    from PIL import Image
    with open_regular(path) as f:
        n = os.fstat(f.fileno()).st_size
        if n > MAX_FILE_BYTES:
            raise ValueError(f"{path}: {n} bytes, more than the {MAX_FILE_BYTES} an image file may hold")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                old = Image.MAX_IMAGE_PIXELS
                Image.MAX_IMAGE_PIXELS = MAX_PIXELS
                try:
                    img = Image.open(f)
                    w, h = img.size
                    if w * h > MAX_PIXELS or w < 1 or h < 1:
                        raise ValueError(f"{w}x{h} pixels, more than the limit of {MAX_PIXELS}")
                    img = img.convert("RGB")
                    # the centre square of the source, resized straight to size x size: the same
                    # picture as resizing the shorter side and cropping, without ever allocating
                    # the long side scaled up (a 40000x1 image would need gigabytes)
                    s = min(w, h)
                    left, top = (w - s) // 2, (h - s) // 2
                    img = img.resize((size, size), Image.BILINEAR, box=(left, top, left + s, top + s))
                    arr = np.asarray(img, dtype=np.float32)
                finally:
                    Image.MAX_IMAGE_PIXELS = old
        except Exception as e:   # Pillow raises many kinds on damaged or crafted files
            msg = " ".join(str(e).split())[:200] or type(e).__name__
            raise ValueError(f"{path}: not a readable image ({msg})") from None
    return np.ascontiguousarray(arr.transpose(2, 0, 1)) / 255.0


class LazyImages:
    """The images of a file list as an (N, 3, S, S) "tensor" decoded on indexing, standardized.

    `x[i]`, `x[a:b]` and `x[index_tensor]` decode those images into a float32 tensor;
    `subset(idx)` is a view of some files (what a validation split takes); `len` and
    `shape` are known without decoding.
    """

    def __init__(self, files: list[Path], size: int, mean: np.ndarray | None = None,
                 std: np.ndarray | None = None) -> None:
        self.files, self.size = list(files), int(size)
        self.mean = np.zeros((3, 1, 1), np.float32) if mean is None else mean.astype(np.float32)
        self.std = np.ones((3, 1, 1), np.float32) if std is None else std.astype(np.float32)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.files), 3, self.size, self.size)

    def _indices(self, idx) -> list[int]:
        if isinstance(idx, slice):
            return list(range(len(self.files)))[idx]
        if isinstance(idx, (int, np.integer)):
            return [int(idx)]
        return [int(i) for i in np.asarray(idx).reshape(-1)]

    def __getitem__(self, idx) -> torch.Tensor:
        ids = self._indices(idx)
        out = np.empty((len(ids), 3, self.size, self.size), np.float32)
        for j, i in enumerate(ids):
            out[j] = (decode_image(self.files[i], self.size) - self.mean) / self.std
        t = torch.from_numpy(out)
        return t[0] if isinstance(idx, (int, np.integer)) else t

    def subset(self, idx) -> "LazyImages":
        return LazyImages([self.files[i] for i in self._indices(idx)], self.size, self.mean, self.std)


def _class_files(root: Path, classes: list[str] | None = None) -> tuple[list[Path], list[int], list[str]]:
    """Files and labels of a folder of class folders (sorted names; hidden files skipped)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = classes if classes is not None else found
    extra = sorted(set(found) - set(classes))
    if extra:
        raise ValueError(f"{root}: class folder {extra[0]!r} is not among the training classes")
    if not classes:
        raise ValueError(f"{root}: no class folders (expected one folder of images per class)")
    files, labels = [], []
    for label, c in enumerate(classes):
        folder = root / c
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if not p.name.startswith(".") and p.suffix.lower() in EXTENSIONS:
                files.append(p)
                labels.append(label)
    if not files:
        raise ValueError(f"{root}: no images ({', '.join(EXTENSIONS)}) in its class folders")
    return files, labels, classes


def parse_spec(rest: str) -> tuple[str, int]:
    """PATH and SIZE of "PATH[:SIZE]" (SIZE a positive integer up to MAX_SIZE, default 224)."""
    path, sep, tail = rest.rpartition(":")
    if not sep or not tail.isdigit():
        return rest, DEFAULT_SIZE
    size = int(tail)
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"imagefolder size must be 1..{MAX_SIZE}, got {size}")
    return path, size


def imagefolder(rest: str, n_train: int | None = None, n_test: int | None = None, seed: int = 0):
    """The sw.data.Dataset of `imagefolder:PATH[:SIZE]` (see the module docstring)."""
    from sw.data.datasets import Dataset
    path, size = parse_spec(rest)
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    test_dir = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        f_tr, y_tr, classes = _class_files(root / "train")
        f_te, y_te, _ = _class_files(test_dir, classes)
        rng = np.random.default_rng(seed)
        tr = np.sort(rng.permutation(len(f_tr))[:n_train]) if n_train else np.arange(len(f_tr))
        te = np.sort(rng.permutation(len(f_te))[:n_test]) if n_test else np.arange(len(f_te))
    else:
        files, labels, classes = _class_files(root)
        f_tr = f_te = files
        y_tr = y_te = labels
        n = len(files)
        n_te = n_test or max(1, n // 5)
        n_tr = n_train or n - n_te
        if n_tr + n_te > n or n_tr < 1:
            raise ValueError(f"{root}: asked for {n_tr} + {n_te} images, the folder has {n}")
        perm = np.random.default_rng(seed).permutation(n)
        tr, te = np.sort(perm[:n_tr]), np.sort(perm[n_tr:n_tr + n_te])
    train = LazyImages([f_tr[i] for i in tr], size)
    sample = np.random.default_rng([seed, 0x57A7]).permutation(len(train))[:STATS_SAMPLE]
    raw = np.stack([decode_image(train.files[i], size) for i in np.sort(sample)])
    mean = raw.mean(axis=(0, 2, 3)).reshape(3, 1, 1)
    std = raw.std(axis=(0, 2, 3)).reshape(3, 1, 1) + 1e-6
    train.mean, train.std = mean.astype(np.float32), std.astype(np.float32)
    test = LazyImages([f_te[i] for i in te], size, train.mean, train.std)
    y_train = torch.tensor([y_tr[i] for i in tr], dtype=torch.int64)
    y_test = torch.tensor([y_te[i] for i in te], dtype=torch.int64)
    return Dataset("imagefolder", train, y_train, test, y_test, len(classes))
