"""Constants of the tANS code and the `.tans` container: the one source of truth.

Everything that reads or writes the format (the encoder, both software decoders,
the container, the hardware generator and the testbenches) imports these names.
`docs/FORMAT.md` documents each of them.
"""
from __future__ import annotations

import numpy as np

# --- the code -------------------------------------------------------------
MIN_LOG2_STATES = 5          #: smallest table, l = 32
MAX_LOG2_STATES = 12         #: largest table, l = 4096
DEFAULT_LOG2_STATES = 8      #: l = 256, the paper's 3l-byte table
DEFAULT_LANES = 64
MAX_ALPHABET = 1 << 16      #: symbol values are < 65536 (u16 counts table, u16 decoded symbols)
MAX_LANES = 1 << 20          #: lanes are stored as u32; this caps a file's work
FINAL_STATE = 0              #: every lane's encoder starts (decoder ends) in state index 0
PAYLOAD_ALIGN_BYTES = 8      #: payloads are zero-padded to whole 64-bit words
BIT_ORDER = "lsb-first"      #: stream bit j = (byte[j >> 3] >> (j & 7)) & 1; reads are LSB-first
SPREAD_KEY_SHIFT = 32        #: symbol spread key = ((2*i + 1) << 32) // count, see table.spread_symbols

# --- the container ---------------------------------------------------------
MAGIC = b"\x89TANS\r\n\x1a"  #: 8 bytes, PNG-style: catches text-mode and truncation damage
VERSION_MAJOR = 2            #: what the writer writes: 2.0 has compact record bodies (FORMAT.md 2.3)
VERSION_MINOR = 0            #: 2.0 unless a tensor uses a 2.1 feature (a codebook or tuple coding): see file_minor
VERSION_MINOR_TUPLES = 1     #: 2.1: codebook quantizers (QUANT_CODEBOOK) and n-tuple coding (FORMAT.md 2.3c)
READ_VERSIONS = {1: 1, 2: 1}  #: major -> newest minor this reader reads (1.0, 1.1, 2.0 and 2.1)
DTYPE_BOOL = 12              #: dtype code of numpy bool (symbols 0 and 1), valid from version 1.1 and in 2.0
DTYPE_MIN_MINOR = {DTYPE_BOOL: 1}  #: version 1 only: dtype code -> first minor version that defines it
ENDIAN = "<"                 #: every integer and float field is little-endian

# tensor kinds
KIND_TANS = 0                #: symbols coded with tANS
KIND_RAW_INT8 = 1            #: 8-bit integers stored uncoded (first/last layers)
KIND_RAW_F32 = 2             #: float32 values stored as they are (biases, norms)
KINDS = {KIND_TANS: "tans", KIND_RAW_INT8: "raw_int8", KIND_RAW_F32: "raw_f32"}

# quantizer kinds
QUANT_NONE = 0               #: the symbols are the data (reconstruct as-is in `dtype`)
QUANT_ZERO_POINT = 1         #: value = (symbol - zero_point) * step[channel]
QUANT_SCALE = 2              #: value = int8 * step[channel] (raw 8-bit layers)
QUANT_CODEBOOK = 3           #: value = level[symbol] * step[channel] (version 2.1: per-tensor integer levels)
QUANTS = {QUANT_NONE: "none", QUANT_ZERO_POINT: "zero_point", QUANT_SCALE: "scale", QUANT_CODEBOOK: "codebook"}
MAX_LEVEL_BITS = 16          #: codebook levels are signed integers of at most 16 bits (|level| <= 32768)
MAX_TUPLE = 4                #: n-tuple coding: at most 4 weights per tANS symbol (version 2.1)
TUPLE_SHIFT = 4              #: 2.1: the log2_states byte holds k in bits 0-3 and tuple size - 1 in bits 4-5

NO_AXIS = -1                 #: lane_axis / step_axis value meaning "none"

# reconstruction dtypes: code -> numpy dtype
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<u1"), 2: np.dtype("<u2"), 3: np.dtype("<u4"), 4: np.dtype("<u8"),
    5: np.dtype("<i1"), 6: np.dtype("<i2"), 7: np.dtype("<i4"), 8: np.dtype("<i8"),
    9: np.dtype("<f2"), 10: np.dtype("<f4"), 11: np.dtype("<f8"), DTYPE_BOOL: np.dtype("?"),
}
DTYPE_CODES: dict[np.dtype, int] = {v: k for k, v in DTYPES.items()}
FLOAT_DTYPE_CODES = (9, 10, 11)  #: the dtypes a quantized (quant 1/2) or float (kind 2) tensor may have

MAX_NAME_BYTES = 0xFFFF
MAX_BINS = 0xFFFF            #: widest zero-point quantizer: bins are a u16 in 1.x, odd, so at most 65535
MAX_NDIM = 32
MAX_ELEMENTS = 1 << 60       #: the product of a shape's non-zero entries is below this (numpy's index range)
MAX_META_DEPTH = 64          #: deepest nesting of arrays/objects a reader accepts in the metadata JSON
DEFAULT_MAX_BYTES = 1 << 30  #: default reader limit on a file and on its decoded tensors (`--max-bytes`)


def dtype_code(dtype: np.dtype) -> int:
    """Code of a numpy dtype in the container; ValueError for unsupported dtypes."""
    dt = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).byteorder == ">" else np.dtype(dtype)
    dt = np.dtype(dt.str.replace("=", "<").replace("|", "<"))
    try:
        return DTYPE_CODES[dt]
    except KeyError:
        raise ValueError(f"dtype {np.dtype(dtype)} cannot be stored in a .tans container") from None


def max_exact_symbol(dtype: np.dtype) -> int:
    """Largest symbol value a quant-0 tensor of this dtype reconstructs exactly (docs/FORMAT.md 2.5)."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return 1
    if dt.kind in "iu":
        return int(np.iinfo(dt).max)
    return (1 << (np.finfo(dt).nmant + 1)) if dt.itemsize < 4 else MAX_ALPHABET - 1


def payload_bytes(payload_bits: int) -> int:
    """Length of a payload of `payload_bits` coded bits, zero-padded to PAYLOAD_ALIGN_BYTES."""
    align_bits = 8 * PAYLOAD_ALIGN_BYTES
    return (payload_bits + align_bits - 1) // align_bits * PAYLOAD_ALIGN_BYTES


def states_of(log2_states: int) -> int:
    """Number of states l for a table of 2**log2_states entries."""
    return 1 << log2_states


def table_field_bits(log2_states: int, alphabet: int) -> dict[str, int]:
    """Widths of one hardware decode-table entry: symbol, nb_bits, base.

    For l <= 256 each fits a byte: the paper's 3l-byte table.
    """
    return {
        "symbol": max(1, (max(alphabet, 1) - 1).bit_length()),
        "nb_bits": max(1, log2_states.bit_length()),
        "base": log2_states,
    }
