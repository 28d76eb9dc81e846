"""Hardware tANS decoder in Amaranth: the core (`TansDecoder`), its parameters and wire protocol.

`python -m hw.build` writes the Verilog, synthesizes it (`--synth ice40|ecp5`) or builds a board
demo (`--board icebreaker|ulx3s`). See `hw.decoder.TansDecoder` for the ports and protocol.
"""
from .decoder import PIPELINE_DEPTH, TansDecoder
from .layouts import ErrorCode
from .params import DecoderParams, ParamError

__all__ = ["TansDecoder", "DecoderParams", "ParamError", "ErrorCode", "PIPELINE_DEPTH"]
