"""tANS codec: tables, lane-interleaved encoder, fast and reference decoders."""
from sw.tans.codec import Coded, decode, encode
from sw.tans.errors import (FormatError, InputError, LimitError, PathError, StoredTableError, TableError, TansError,
                            TrustError)
from sw.tans.reference import decode_reference
from sw.tans.table import DecodeTable, build_tables, normalize_counts, spread_symbols

__all__ = ["Coded", "encode", "decode", "decode_reference", "DecodeTable", "build_tables",
           "normalize_counts", "spread_symbols", "TansError", "FormatError", "InputError", "LimitError", "PathError",
           "StoredTableError", "TableError", "TrustError"]
