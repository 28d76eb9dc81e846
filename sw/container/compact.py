"""Compact side information for version-2 records: varints, bit-packed counts, exact steps and codebook levels.

Every encoding here is exact: a reader recovers the same integers and the same float32 steps
bit for bit, so the golden decoder, the dequantizer and the hardware export see what the
writer saw. Readers bound every length before allocating (FORMAT.md 2.6).
"""
from __future__ import annotations

import math

import numpy as np

from sw.tans.errors import FormatError
from sw.tans.format import MAX_LEVEL_BITS

VARINT_MAX_BYTES = 10            #: a u64 needs at most 10 LEB128 bytes
STEPS_F32 = 0                    #: steps as n × f32
STEPS_SCALED = 1                 #: steps as integers M_i · 2^e (shared exponent, b-bit M_i)
STEP_EXP_MIN, STEP_EXP_MAX = -160, 127   #: f32 values are m · 2^e with e in this range
MAX_STEP_BITS = 24               #: a finite f32 mantissa has at most 24 significant bits
STEP_BLOCK = 1 << 17             #: scaled steps are decoded 8 x this many at a time
UNPACK_BLOCK_BITS = 1 << 19      #: bits unpacked at a time by unpack_bits (bounds its temporaries)


def varint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, low group first, high bit = more follows."""
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(data: bytes | memoryview, pos: int, what: str) -> tuple[int, int]:
    """(value, next position); FormatError on truncation, an over-long or non-minimal encoding."""
    value, shift = 0, 0
    for i in range(VARINT_MAX_BYTES):
        if pos + i >= len(data):
            raise FormatError(f"{what}: truncated varint")
        b = data[pos + i]
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            if i and b == 0:
                raise FormatError(f"{what}: non-minimal varint")
            if value >= 1 << 64:
                raise FormatError(f"{what}: varint above 2^64")
            return value, pos + i + 1
    raise FormatError(f"{what}: varint longer than {VARINT_MAX_BYTES} bytes")


def pack_bits(values: np.ndarray, width: int) -> bytes:
    """`values` (each < 2^width) as `width`-bit fields, LSB-first, padded with zeros to a byte."""
    v = np.asarray(values, dtype=np.uint64)
    if width == 0 or v.size == 0:
        return b""
    if width > 64 or (width < 64 and (v >> np.uint64(width)).any()):
        raise ValueError("a value does not fit its field")
    bits = ((v[:, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits.reshape(-1), bitorder="little").tobytes()


def packed_bytes(n: int, width: int) -> int:
    """Bytes that `pack_bits` writes for n fields of `width` bits."""
    return (n * width + 7) // 8


def unpack_bits(data: bytes | memoryview, n: int, width: int, what: str) -> np.ndarray:
    """Inverse of `pack_bits`: n fields as uint64; the padding bits must be zero."""
    nbytes = packed_bytes(n, width)
    if len(data) != nbytes:
        raise FormatError(f"{what}: {len(data)} bytes of packed fields, expected {nbytes}")
    if n == 0 or width == 0:
        return np.zeros(n, np.uint64)
    raw = np.frombuffer(bytes(data), np.uint8)
    if (n * width) % 8 and raw[-1] >> ((n * width) % 8):
        raise FormatError(f"{what}: nonzero padding bits")
    # blocks of 8k fields start on a byte: the bit and uint64 temporaries stay a few MiB
    # however many fields a (hostile) file declares, instead of 64 bytes per stored byte
    per = 8 * max(1, UNPACK_BLOCK_BITS // (8 * width))
    weights = np.arange(width, dtype=np.uint64)
    out = np.empty(n, np.uint64)
    for i in range(0, n, per):
        j = min(n, i + per)
        bits = np.unpackbits(raw[i * width // 8:(j * width + 7) // 8], bitorder="little")[:(j - i) * width]
        out[i:j] = (bits.reshape(j - i, width).astype(np.uint64) << weights).sum(axis=1, dtype=np.uint64)
    return out


def count_bits(log2_states: int) -> int:
    """Width of one stored count: counts run 0..l, so k + 1 bits."""
    return log2_states + 1


def encode_counts(norm: np.ndarray, log2_states: int) -> bytes:
    """The first A - 1 normalized counts in k + 1 bits each (the last is l minus their sum)."""
    norm = np.asarray(norm, np.int64)
    return pack_bits(norm[:-1], count_bits(log2_states)) if norm.size else b""


def counts_bytes(alphabet: int, log2_states: int) -> int:
    """Bytes of the packed counts of an alphabet of A symbols."""
    return packed_bytes(max(0, alphabet - 1), count_bits(log2_states))


def decode_counts(data: bytes | memoryview, alphabet: int, log2_states: int, what: str) -> np.ndarray:
    """Counts back from `encode_counts`; FormatError if they cannot sum to l."""
    if alphabet == 0:
        if len(data):
            raise FormatError(f"{what}: counts stored for an empty alphabet")
        return np.zeros(0, np.int64)
    head = unpack_bits(data, alphabet - 1, count_bits(log2_states), what).astype(np.int64)
    last = (1 << log2_states) - int(head.sum())
    if (head > 1 << log2_states).any() or last < 0:
        raise FormatError(f"{what}: counts sum past the table size {1 << log2_states}")
    return np.append(head, last)


def _exponent_and_mantissa(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each positive finite f32 as odd integer m times 2^e (exact, via frexp on float64)."""
    m, e = np.frexp(x.astype(np.float64))            # x = m · 2^e, 0.5 <= m < 1
    mi = np.ldexp(m, 53).astype(np.int64)             # exact: f32 mantissas have 24 bits
    e = e.astype(np.int64) - 53
    tz = np.zeros_like(mi)
    for sh in (32, 16, 8, 4, 2, 1):                   # strip trailing zero bits
        mask = (mi & ((1 << sh) - 1)) == 0
        mi = np.where(mask, mi >> sh, mi)
        tz = np.where(mask, tz + sh, tz)
    return mi, e + tz


def scaled_steps(steps: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    """(e, b, M) with steps == M · 2^e exactly and every M < 2^b, or None when the steps are not
    all positive finite f32 or need more than MAX_STEP_BITS + 8 bits (f32 storage is then smaller)."""
    s = np.asarray(steps, np.float32)
    if s.size == 0 or not np.isfinite(s).all() or (s <= 0).any():
        return None
    m, e = _exponent_and_mantissa(s)
    e0 = int(e.min())
    shift = e - e0
    if int((np.ceil(np.log2(m + 1)) + shift).max()) > MAX_STEP_BITS + 8:
        return None
    big = m << shift
    b = int(max(int(v).bit_length() for v in big))
    if not STEP_EXP_MIN <= e0 <= STEP_EXP_MAX:
        return None
    return e0, b, big.astype(np.uint64)


def encode_steps(steps: np.ndarray) -> bytes:
    """The smaller exact coding of float32 steps: shared-exponent integers or plain f32."""
    s = np.asarray(steps, np.float32)
    raw = bytes([STEPS_F32]) + s.astype("<f4").tobytes()
    sc = scaled_steps(s)
    if sc is None:
        return raw
    e, b, big = sc
    scaled = bytes([STEPS_SCALED]) + int(e).to_bytes(2, "little", signed=True) + bytes([b]) + pack_bits(big, b)
    return scaled if len(scaled) < len(raw) else raw


def decode_steps(data: bytes | memoryview, pos: int, n: int, what: str) -> tuple[np.ndarray, int]:
    """(float32 steps, next position) from `encode_steps` output of n steps at `pos`."""
    if pos >= len(data):
        raise FormatError(f"{what}: truncated steps")
    code = data[pos]
    pos += 1
    if code == STEPS_F32:
        end = pos + 4 * n
        if end > len(data):
            raise FormatError(f"{what}: truncated steps")
        return np.frombuffer(bytes(data[pos:end]), "<f4").astype(np.float32), end
    if code != STEPS_SCALED:
        raise FormatError(f"{what}: unknown step coding {code}")
    if pos + 3 > len(data):
        raise FormatError(f"{what}: truncated steps")
    e = int.from_bytes(bytes(data[pos:pos + 2]), "little", signed=True)
    b = data[pos + 2]
    pos += 3
    if not STEP_EXP_MIN <= e <= STEP_EXP_MAX or not 1 <= b <= MAX_STEP_BITS + 8:
        raise FormatError(f"{what}: step exponent {e} or width {b} out of range")
    end = pos + packed_bytes(n, b)
    if end > len(data):
        raise FormatError(f"{what}: truncated steps")
    out = np.empty(n, np.float32)
    per = 8 * STEP_BLOCK        # blocks start on a byte: temporaries stay small, only `out` grows
    for i in range(0, n, per):
        j = min(n, i + per)
        big = unpack_bits(data[pos + i * b // 8:pos + (j * b + 7) // 8], j - i, b, what)
        vals = np.ldexp(big.astype(np.float64), e)
        with np.errstate(over="ignore"):
            block = vals.astype(np.float32)
        if (block.astype(np.float64) != vals).any() or not np.isfinite(block).all() or (block <= 0).any():
            raise FormatError(f"{what}: a step is not a positive finite float32")
        out[i:j] = block
    return out, end


def round_steps(steps: np.ndarray, bits: int = 8) -> np.ndarray:
    """Steps rounded to `bits`-bit mantissas on one shared exponent (the largest step keeps `bits`
    significant bits): what a quantizer should use so that its steps cost `bits` bits each."""
    s = np.asarray(steps, np.float64)
    if s.size == 0:
        return s.astype(np.float32)
    top = float(s.max())
    if not math.isfinite(top) or top <= 0:
        raise ValueError("steps must be positive and finite")
    e = math.frexp(top)[1] - bits                    # top / 2^e in [2^(bits-1), 2^bits)
    m = np.clip(np.rint(s / 2.0 ** e), 1, (1 << bits) - 1)
    return np.ldexp(m, e).astype(np.float32)


def level_bits(levels: np.ndarray) -> int:
    """Narrowest two's-complement field that holds every codebook level (at least 1 bit)."""
    lv = np.asarray(levels, np.int64)
    if lv.size == 0:
        return 1
    hi, lo = int(lv.max()), int(lv.min())
    return max(1, hi.bit_length() + 1 if hi > 0 else 1, (-lo - 1).bit_length() + 1 if lo < 0 else 1)


def encode_levels(levels: np.ndarray) -> bytes:
    """A codebook's levels (FORMAT.md 2.3c): u8 width b, then the levels as b-bit two's-complement fields."""
    lv = np.asarray(levels, np.int64)
    b = level_bits(lv)
    if b > MAX_LEVEL_BITS:
        raise ValueError(f"codebook levels need {b} bits, at most {MAX_LEVEL_BITS}")
    return bytes([b]) + pack_bits(lv & ((1 << b) - 1), b)


def decode_levels(data: bytes | memoryview, pos: int, n: int, what: str) -> tuple[np.ndarray, int]:
    """(int64 levels, next position) from `encode_levels` output of n levels at `pos`."""
    if pos >= len(data):
        raise FormatError(f"{what}: truncated codebook")
    b = data[pos]
    pos += 1
    if not 1 <= b <= MAX_LEVEL_BITS:
        raise FormatError(f"{what}: codebook level width {b} bits (1..{MAX_LEVEL_BITS} allowed)")
    end = pos + packed_bytes(n, b)
    if end > len(data):
        raise FormatError(f"{what}: truncated codebook")
    raw = unpack_bits(data[pos:end], n, b, what).astype(np.int64)
    return np.where(raw >= 1 << (b - 1), raw - (1 << b), raw), end
