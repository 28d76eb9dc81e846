"""The activation quantizers a `.tans` file names in its metadata, checked as untrusted data (for `evaluate`)."""
from __future__ import annotations

import math

from torch import nn

from sw.quant.activations import ActivationQuantizer
from sw.tans.errors import FormatError, quote

MAX_LEVELS = 1 << 16      #: most levels a file's activation quantizer may have


def quantizers_from_metadata(entry: object, model: nn.Module) -> dict[str, ActivationQuantizer]:
    """The activation quantizers a `.tans` file's metadata lists ({module: {step, levels, ...}}), checked.

    The entry is untrusted data: every module must be a submodule of `model`, every step a
    positive finite number and every level count an integer in 2..MAX_LEVELS; anything else
    is a FormatError. A missing entry (None) is no quantizers.
    """
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        raise FormatError(f"activation_quantizers is a JSON {type(entry).__name__}, not an object")
    modules = dict(model.named_modules())
    out = {}
    for name, q in entry.items():
        if not isinstance(name, str) or not name or name not in modules:
            raise FormatError(f"activation quantizer of {quote(name)}: the model has no such module")
        if not isinstance(q, dict):
            raise FormatError(f"activation quantizer of {quote(name)} is not an object")
        step, levels = q.get("step"), q.get("levels")
        if not isinstance(step, (int, float)) or isinstance(step, bool) or not math.isfinite(step) or not step > 0:
            raise FormatError(f"activation quantizer of {quote(name)}: step {quote(step)} is not a positive number")
        if not isinstance(levels, int) or isinstance(levels, bool) or not 2 <= levels <= MAX_LEVELS:
            raise FormatError(f"activation quantizer of {quote(name)}: levels {quote(levels)} is not an "
                              f"integer in 2..{MAX_LEVELS}")
        out[name] = ActivationQuantizer(float(step), levels)
    return out
