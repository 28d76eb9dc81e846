"""Training infrastructure shared by the methods (loop helpers, checkpoints); imports torch, sw.data/sw.models and the
safe file access of sw.container.files only."""
from sw.train.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, load_torch_file, save_checkpoint
from sw.train.loop import accuracy, batches, set_threads

__all__ = ["CHECKPOINT_FORMAT", "accuracy", "batches", "load_checkpoint", "load_torch_file", "save_checkpoint", "set_threads"]
