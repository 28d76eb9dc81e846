"""Wrap any torch module so its conv/linear weights are fake-quantized (Fracbits + zero point)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.func import functional_call

from sw.quant.entropy import entropy_loss, mixed_entropy_bits
from sw.quant.fracbits import FracQuantizer

QUANTIZABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass
class QuantConfig:
    """How a model's weights are quantized and which layers are entropy coded."""

    init_bins: int = 15              #: starting bins of the coded layers (odd)
    learn_bins: bool = True          #: Fracbits: learn the precision lambda
    per_channel_bins: bool = False   #: one lambda per output channel instead of per layer
    per_channel_scale: bool = True   #: one learned clip per output channel
    dead_zone: float = 0.0           #: Pareto-paper dead zone beta, in steps (0: plain rounding)
    min_bins: int = 3
    max_bins: int = 255
    soft_entropy: bool = True        #: also drive weights and clips by a smooth entropy estimate
    code_first_last: bool = False    #: code the first and last layers too (default: 8-bit, uncoded)
    first_last_bins: int = 255       #: bins of the uncoded first/last layers: 8-bit, -127..127
    step_bits: int = 8               #: coded layers' steps rounded to 8-bit mantissas (cheap side info; 0: f32)
    per_channel_min_weights: int = 4096  #: coded layers with fewer weights get one clip (their steps cost more than they save)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "QuantConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known.setdefault("step_bits", 0)      # configurations from before step rounding quantized with f32 steps
        known.setdefault("per_channel_min_weights", 0)   # and before this, every layer had per-channel clips
        return cls(**known)


def quantizable_weights(model: nn.Module) -> list[str]:
    """Names of the conv/linear weight parameters, in registration order."""
    return [f"{m_name}.weight" if m_name else "weight" for m_name, m in model.named_modules()
            if isinstance(m, QUANTIZABLE) and getattr(m, "weight", None) is not None]


def key_of(param_name: str) -> str:
    """ModuleDict key for a parameter name (dots are not allowed there)."""
    return param_name.replace(".", "__")


class QuantizedModel(nn.Module):
    """A base model whose conv/linear weights pass through FracQuantizers in forward()."""

    def __init__(self, base: nn.Module, config: QuantConfig | None = None) -> None:
        super().__init__()
        self.base = base
        self.config = config or QuantConfig()
        names = quantizable_weights(base)
        if not names:
            raise ValueError("the model has no conv or linear weights to quantize")
        params = dict(base.named_parameters())
        self.names = names
        self.coded: dict[str, bool] = {}
        self.quantizers = nn.ModuleDict()
        c = self.config
        for i, n in enumerate(names):
            edge = i in (0, len(names) - 1) and len(names) > 1
            coded = c.code_first_last or not edge
            self.coded[n] = coded
            shape = tuple(params[n].shape)
            if coded:
                per_channel = c.per_channel_scale and math.prod(shape) >= c.per_channel_min_weights
                q = FracQuantizer(shape, c.init_bins, c.learn_bins, c.per_channel_bins,
                                  per_channel, c.dead_zone, c.min_bins, c.max_bins, c.step_bits)
            else:
                q = FracQuantizer(shape, c.first_last_bins, False, False, c.per_channel_scale,
                                  0.0, c.first_last_bins, c.first_last_bins)
            self.quantizers[key_of(n)] = q

    def quantizer(self, name: str) -> FracQuantizer:
        return self.quantizers[key_of(name)]

    def weight(self, name: str) -> torch.Tensor:
        return dict(self.base.named_parameters())[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        params = dict(self.base.named_parameters())
        qw = {n: self.quantizer(n)(params[n]) for n in self.names}
        return functional_call(self.base, qw, (x,), strict=False)

    def clamp_(self) -> None:
        for q in self.quantizers.values():
            q.clamp_()

    def coded_names(self) -> list[str]:
        return [n for n in self.names if self.coded[n]]

    def coded_weights(self) -> int:
        return sum(self.weight(n).numel() for n in self.coded_names())

    def entropy_terms(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(lambda, H_W(floor), H_W(floor+1), |W|) concatenated over the coded layers' groups."""
        lams, los, his, sizes = [], [], [], []
        for n in self.coded_names():
            q = self.quantizer(n)
            w = self.weight(n)
            q.init_clip(w)
            lo, hi, _ = q.bounds()
            lams.append(q.lam.clamp(q.min_half, q.max_half))
            los.append(q.group_entropies(w, lo))
            his.append(q.group_entropies(w, hi))
            sizes.append(q.group_sizes())
        return torch.cat(lams), torch.cat(los), torch.cat(his), torch.cat(sizes)

    def entropy_loss(self, target_bits: float) -> tuple[torch.Tensor, float]:
        """(Eq. 3 loss, the current mixed entropy estimate in bits) over the coded layers."""
        lam, lo, hi, sizes = self.entropy_terms()
        loss = entropy_loss(lam, lo, hi, sizes, target_bits)
        estimate = mixed_entropy_bits(lam, lo, hi, sizes)
        if self.config.soft_entropy:
            loss = loss + self.soft_entropy_term(target_bits, estimate)
        return loss, estimate

    def soft_entropy_term(self, target_bits: float, estimate: float) -> torch.Tensor:
        """Zero-valued term whose gradient moves weights and clips along the smooth entropy estimate.

        It leaves Eq. 3's value and the lambda gradient of Eq. 4 unchanged (the mixing weights
        are detached) and extends the same criterion to the parameters Eq. 4 treats as fixed.
        """
        sign = 1.0 if estimate > target_bits else -1.0 if estimate < target_bits else 0.0
        names = self.coded_names()
        device = self.weight(names[0]).device if names else None
        term = torch.zeros((), dtype=torch.float64, device=device)
        for n in names:
            q, w = self.quantizer(n), self.weight(n)
            lo, hi, frac = q.bounds()
            f = frac.detach().to(torch.float64)
            sizes = q.group_sizes()
            for half, mix in ((lo, 1 - f), (hi, f)):
                h = q.soft_group_entropies(w, half).to(torch.float64)
                term = term + (sizes * mix * (h - h.detach())).sum()
        return sign * term / target_bits

    def hard_entropy_bits(self) -> float:
        """Entropy bound (bits) of the coded layers with their rounded precisions (per-layer histograms)."""
        from sw.quant.entropy import entropy_bits_per_symbol
        total = 0.0
        for n in self.coded_names():
            _, q, _ = self.quantizer(n).quantize(self.weight(n).detach())
            total += entropy_bits_per_symbol(q) * q.numel()
        return total

    def bins(self) -> dict[str, int]:
        """Bins of each quantized layer (the largest group's, with per-channel precision)."""
        return {n: int(2 * self.quantizer(n).hard_half().max() + 1) for n in self.names}

    def freeze_bins(self) -> None:
        """Stop learning precisions: use the rounded bins from now on (fine-tuning phase)."""
        for n in self.names:
            q = self.quantizer(n)
            with torch.no_grad():
                q.lam.copy_(q.hard_half().to(q.lam.dtype))
            q.lam.requires_grad_(False)
            q.mixing = False

    def export(self) -> dict[str, dict]:
        """Per quantized layer: integers, steps, bins and whether it is coded."""
        out = {}
        for n in self.names:
            e = self.quantizer(n).export(self.weight(n).detach())
            e["coded"] = self.coded[n]
            out[n] = e
        return out

    @torch.no_grad()
    def quantized_state_dict(self) -> dict[str, torch.Tensor]:
        """The base model's state dict with each quantized weight replaced by its reconstruction."""
        sd = {k: v.detach().clone() for k, v in self.base.state_dict().items()}
        for n, e in self.export().items():
            sd[n] = torch.from_numpy(e["values"]).to(sd[n].dtype)
        return sd
