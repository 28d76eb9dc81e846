"""Weight quantization for entropy coding: zero-point quantizers, Fracbits precisions, entropy loss."""
from .entropy import EntropyCriterion, entropy_bits_per_symbol, entropy_loss, row_entropies
from .fracbits import FracQuantizer
from .qmodel import QuantConfig, QuantizedModel, quantizable_weights
from .quantizers import midrise_quantize, ste_round, zero_point_indices, zero_point_quantize

__all__ = ["EntropyCriterion", "entropy_bits_per_symbol", "entropy_loss", "row_entropies",
           "FracQuantizer", "QuantConfig", "QuantizedModel", "quantizable_weights",
           "midrise_quantize", "ste_round", "zero_point_indices", "zero_point_quantize"]
