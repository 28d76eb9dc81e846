"""Hardware tANS decoder in Amaranth: the core (`TansDecoder`), its parameters and wire protocol.

`python -m hw.build` writes the Verilog, synthesizes it (`--synth ice40|ecp5`) or builds a board
demo (`--board icebreaker|ulx3s`). See `hw.core.decoder.TansDecoder` for the ports and protocol.
"""
from hw.core.decoder import PIPELINE_DEPTH, TansDecoder
from hw.core.layouts import ErrorCode
from hw.core.params import DecoderParams, ParamError

__all__ = ["TansDecoder", "DecoderParams", "ParamError", "ErrorCode", "PIPELINE_DEPTH"]
