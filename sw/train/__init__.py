"""Training infrastructure shared by the methods (loop helpers, checkpoints); imports torch and sw.data/sw.models only."""
from sw.train.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from sw.train.loop import accuracy, batches, set_threads

__all__ = ["CHECKPOINT_FORMAT", "accuracy", "batches", "load_checkpoint", "save_checkpoint", "set_threads"]
