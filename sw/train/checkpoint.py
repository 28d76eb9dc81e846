"""Checkpoints: atomic, durable writes (sw.container.files), and reads that reject anything `train` did not write."""
from __future__ import annotations

from pathlib import Path

import torch

from sw.container.files import atomic_write, open_regular

CHECKPOINT_FORMAT = "sw-model-checkpoint-1"


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write a checkpoint atomically (its folder is created; an existing file keeps its mode)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # through a file object: torch names the zip's folder "archive" instead of after the
    # (random) temporary file, so equal states give byte-equal checkpoints
    atomic_write(path, lambda f: torch.save(state, f))


def load_torch_file(path: str | Path) -> object:
    """A torch file (checkpoint or state_dict) from a regular file, with weights_only=True (no
    arbitrary pickles); a FIFO or device is refused before it is read (PathError, a ValueError),
    and every damaged file is one ValueError naming the path."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "no such file", str(path))
    with open_regular(path) as f:
        try:
            return torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many kinds on damaged files
            raise ValueError(f"{path}: not a checkpoint or state_dict readable by torch ({type(e).__name__})") from None


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by `train` (load_torch_file); ValueError with a clear message otherwise."""
    state = load_torch_file(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a checkpoint written by `python -m sw train`")
    return state
