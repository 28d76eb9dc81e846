"""Feed calibration inputs through a model and hand each named layer's input to a callback."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


@torch.no_grad()
def observe_inputs(model: nn.Module, modules: dict[str, nn.Module], x: torch.Tensor,
                   see: Callable[[str, torch.Tensor], None], batch_size: int = 256) -> None:
    """Run `x` through `model` in eval mode, `batch_size` at a time, calling `see(name, input)`
    with the first input of every module in `modules`; hooks and the training mode are restored."""
    handles = []
    for name, mod in modules.items():
        def hook(_m: nn.Module, args: tuple, name: str = name) -> None:
            see(name, args[0])
        handles.append(mod.register_forward_pre_hook(hook))
    was = model.training
    model.eval()
    try:
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size])
    finally:
        for h in handles:
            h.remove()
        model.train(was)
