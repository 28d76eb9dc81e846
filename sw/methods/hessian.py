"""Layer-wise Hessians of the reconstruction loss, H = 2 X Xᵀ / n, from calibration inputs (forward hooks).

For a layer y = W x the squared output error of weights W + ΔW, averaged over the n
calibration examples, is (1/n) Σ ||ΔW x||² = ½ Σ_rows ΔW_r H ΔW_rᵀ with H = 2 X Xᵀ / n,
where the columns of X are every input vector the layer sees: one per example for a
Linear layer, one per output position (an unfolded patch) for a convolution. Columns of
H follow `weight.reshape(out_channels, -1)`, so a Conv2d's are (in_channel, kh, kw).
All sums run in float64.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from sw.quant.observe import observe_inputs

HESSIAN_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
DAMPENING = 0.01      #: diagonal dampening, as a fraction of the mean diagonal (GPTQ's percdamp)


def _pad_amounts(conv: nn.Conv1d | nn.Conv2d, spatial: int) -> tuple[int, ...]:
    """F.pad amounts (last dimension first) that a convolution applies before its kernel."""
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            return (0,) * (2 * spatial)
        out = []
        for k, d in reversed(list(zip(conv.kernel_size, conv.dilation))):   # "same"
            total = d * (k - 1)
            out += [total // 2, total - total // 2]
        return tuple(out)
    return tuple(p for p in reversed(conv.padding) for _ in range(2))


def layer_input_columns(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's input vectors as the columns of a (in_features, positions) float64 matrix."""
    x = x.detach().to(torch.float64)
    if isinstance(module, nn.Linear):
        return x.reshape(-1, module.in_features).T
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        if module.groups != 1:
            raise ValueError(f"grouped convolutions (groups={module.groups}) have one Hessian per group; "
                             "not supported")
        one_d = isinstance(module, nn.Conv1d)
        spatial = 1 if one_d else 2
        pad = _pad_amounts(module, spatial)
        mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
        if any(pad):
            x = F.pad(x, pad, mode=mode)
        kernel, dilation, stride = module.kernel_size, module.dilation, module.stride
        if one_d:   # a 1-d convolution is a 2-d one of height 1
            x = x.unsqueeze(2)
            kernel, dilation, stride = (1, kernel[0]), (1, dilation[0]), (1, stride[0])
        cols = F.unfold(x, kernel, dilation=dilation, stride=stride)     # (B, C*kh*kw, L)
        return cols.permute(1, 0, 2).reshape(cols.shape[1], -1)
    raise ValueError(f"no Hessian for a {type(module).__name__} layer (Linear, Conv1d and Conv2d have one)")


def module_of(model: nn.Module, weight_name: str) -> nn.Module:
    """The module that owns a weight parameter such as "fc1.weight"."""
    path = weight_name.rpartition(".")[0]
    return model.get_submodule(path) if path else model


@torch.no_grad()
def collect_hessians(model: nn.Module, weight_names: list[str], calib_x: torch.Tensor,
                     batch_size: int = 256) -> dict[str, torch.Tensor]:
    """H = 2 X Xᵀ / n (float64) of each named layer's input over the n calibration examples, float model in eval mode."""
    modules = {n: module_of(model, n) for n in weight_names}
    for n, m in modules.items():
        if not isinstance(m, HESSIAN_LAYERS):
            raise ValueError(f"{n}: no Hessian for a {type(m).__name__} layer")
        if isinstance(m, (nn.Conv1d, nn.Conv2d)) and m.groups != 1:
            raise ValueError(f"{n}: grouped convolutions (groups={m.groups}) are not supported")
    sums = {n: torch.zeros(m.weight[0].numel(), m.weight[0].numel(), dtype=torch.float64)
            for n, m in modules.items()}

    def see(name: str, inp: torch.Tensor) -> None:
        cols = layer_input_columns(modules[name], inp)
        sums[name].addmm_(cols, cols.T)
    observe_inputs(model, modules, calib_x, see, batch_size)
    n = max(1, len(calib_x))
    return {k: 2.0 * s / n for k, s in sums.items()}


def dampen(h: torch.Tensor, dampening: float = DAMPENING) -> tuple[torch.Tensor, torch.Tensor]:
    """(H with dead inputs on a unit diagonal plus `dampening` x mean diagonal, dead-input mask): invertible for Cholesky."""
    h = h.to(torch.float64).clone()
    dead = torch.diagonal(h) == 0
    h[dead, dead] = 1.0
    h.diagonal().add_(dampening * float(torch.diagonal(h).mean()))
    return h, dead
