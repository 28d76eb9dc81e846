"""tANS codec: tables, lane-interleaved encoder, fast and reference decoders."""
from .codec import Coded, decode, encode
from .errors import FormatError, InputError, TableError, TansError
from .reference import decode_reference
from .table import DecodeTable, build_tables, normalize_counts, spread_symbols

__all__ = ["Coded", "encode", "decode", "decode_reference", "DecodeTable", "build_tables",
           "normalize_counts", "spread_symbols", "TansError", "FormatError", "InputError", "TableError"]
