"""Checkpoints: atomic writes, and reads that reject anything `train` did not write."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

CHECKPOINT_FORMAT = "sw-model-checkpoint-1"


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write a checkpoint atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="ckpt-tmp-", suffix=".pt")
    os.close(fd)
    try:
        # through a file object: torch names the zip's folder "archive" instead of after the
        # (random) temporary file, so equal states give byte-equal checkpoints
        with open(tmp, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by `train`; ValueError with a clear message otherwise."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "no such file", str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds on damaged files
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a checkpoint written by `python -m sw train`")
    return state
