"""Weight quantization for entropy coding: zero-point quantizers, Fracbits precisions, entropy loss."""
from sw.quant.entropy import EntropyCriterion, entropy_bits_per_symbol, entropy_loss, row_entropies
from sw.quant.fracbits import FracQuantizer
from sw.quant.qmodel import QuantConfig, QuantizedModel, quantizable_weights
from sw.quant.quantizers import midrise_quantize, ste_round, zero_point_indices, zero_point_quantize

__all__ = ["EntropyCriterion", "entropy_bits_per_symbol", "entropy_loss", "row_entropies",
           "FracQuantizer", "QuantConfig", "QuantizedModel", "quantizable_weights",
           "midrise_quantize", "ste_round", "zero_point_indices", "zero_point_quantize"]
