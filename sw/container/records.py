"""The `.tans` container: named tensors, their quantizers and their tANS payloads.

Byte layout in docs/FORMAT.md; constants in sw/tans/format.py. Every record carries
a CRC32, the file ends with a CRC32 of everything before it, and each payload has
tANS's own final-state check, so damage is reported rather than decoded. A reader
treats a file as untrusted data: every field is checked (FORMAT.md 2.6) before anything
is allocated for it, and every problem, damage or crafted value, raises FormatError.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from sw.container.codebook import check_levels
from sw.container.compact import (counts_bytes, decode_counts, decode_levels, decode_steps, encode_counts,
                                  encode_levels, encode_steps, read_varint, varint)
from sw.container.files import atomic_write, read_regular
from sw.tans import format as fmt
from sw.tans import kernels
from sw.tans.codec import Coded, decode, encode, max_symbols
from sw.tans.reference import decode_reference
from sw.tans.errors import FormatError, InputError, LimitError, quote
from sw.tans.lanes import check_lanes
from sw.tans.table import zero_run_bound
from sw.container.tuples import check_tuple, pack_tuples, tuple_count, unpack_tuples

DEQUANT_BLOCK = 1 << 20      #: elements dequantized at a time (bounds float64 temporaries)


@dataclass
class Tensor:
    """One tensor of a container: its shape, quantizer, and coded or raw data."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    kind: int
    quant: int = fmt.QUANT_NONE
    bins: int = 0
    zero_point: int = 0
    step_axis: int = fmt.NO_AXIS
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    lane_axis: int = fmt.NO_AXIS
    coded: Coded | None = None
    raw: np.ndarray | None = None
    levels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  #: codebook levels (quant 3)
    tuple_size: int = 1                      #: weights per tANS symbol (FORMAT.md 2.3c)
    source: str = field(default="", repr=False, compare=False)   #: the file it was read from (for messages)
    major: int = field(default=fmt.VERSION_MAJOR, repr=False, compare=False)  #: record layout it was read in

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def _coded_shape(self) -> tuple[int, ...]:
        """Shape of the array whose C-order flattening the lanes split."""
        if self.lane_axis == fmt.NO_AXIS:
            return self.shape
        rest = tuple(d for i, d in enumerate(self.shape) if i != self.lane_axis)
        return (self.shape[self.lane_axis],) + rest

    def symbols(self, golden: bool = False) -> np.ndarray:
        """Decoded symbols in `shape` (fast decoder, or the scalar golden model if `golden`);
        the int8 values for raw int8 tensors."""
        if self.kind == fmt.KIND_TANS:
            with in_file(self.source) if self.source else contextlib.nullcontext():
                flat = decode_reference(self.coded) if golden else decode(self.coded)
                if self.tuple_size > 1:
                    try:
                        flat = unpack_tuples(flat, self.size, self.coded.lanes, self.tuple_size, self.bins)
                    except FormatError as e:
                        raise FormatError(f"tensor {quote(self.name)}: {e}") from None
        elif self.kind == fmt.KIND_RAW_INT8:
            flat = self.raw
        else:
            raise InputError(f"tensor {self.name!r} holds float values, not symbols")
        return self.unflatten(flat)

    def unflatten(self, flat: np.ndarray) -> np.ndarray:
        """Put a flat array in coded order (lane axis first) back into `shape`."""
        arr = np.asarray(flat).reshape(self._coded_shape())
        if self.lane_axis != fmt.NO_AXIS:
            arr = np.moveaxis(arr, 0, self.lane_axis)
        return arr

    def integers(self, golden: bool = False) -> np.ndarray:
        """Signed quantized integers: symbol - zero_point, the codebook level of each index, or the int8 values."""
        sym = self.symbols(golden).astype(np.int64)
        if self.quant == fmt.QUANT_CODEBOOK:
            return self.levels[sym]
        return sym - self.zero_point if self.quant == fmt.QUANT_ZERO_POINT else sym

    def values(self, golden: bool = False) -> np.ndarray:
        """The tensor as it is reconstructed, in `dtype` (see symbols for `golden`).

        Casts round to nearest; a value beyond a float dtype's range becomes +-inf (FORMAT.md 2.5).
        """
        with np.errstate(over="ignore"):
            if self.kind == fmt.KIND_RAW_F32:
                return self.raw.reshape(self.shape).astype(self.dtype)
            if self.quant == fmt.QUANT_NONE:
                return self.symbols(golden).astype(self.dtype)
            if self.quant == fmt.QUANT_CODEBOOK:
                return dequantize(self.integers(golden), 0, self.steps, self.step_axis, self.dtype)
            zp = self.zero_point if self.quant == fmt.QUANT_ZERO_POINT else 0
            return dequantize(self.symbols(golden), zp, self.steps, self.step_axis, self.dtype)

    def stats(self, major: int | None = None) -> dict:
        """Figures for `inspect` and `report` (FORMAT.md 2.7): the whole record's bits split into
        lane states, payload, table, steps and header, and the entropy bound; in the record layout
        the tensor was read in (or `major`)."""
        major = self.major if major is None else major
        total = record_bits(self, major)
        out = {"name": self.name, "kind": fmt.KINDS[self.kind], "shape": list(self.shape),
               "symbols": self.size, "total_bits": total, "step_bits": _step_field_bits(self, major)}
        if self.kind == fmt.KIND_TANS:
            c = self.coded
            with in_file(self.source) if self.source else contextlib.nullcontext():
                flat = decode(c)
            counts = kernels.histogram_kernel(flat, fmt.MAX_ALPHABET)[0] if flat.size else np.zeros(1, np.int64)
            entropy = entropy_bits(counts)
            lane_states = c.lanes * c.log2_states
            if major == 1:
                table = 32 + 16 * c.alphabet
            else:
                table = 8 * (len(varint(c.alphabet)) + counts_bytes(c.alphabet, c.log2_states))
            out.update(alphabet=c.alphabet, used_symbols=int(np.count_nonzero(counts)), states=c.states,
                       tuple_size=self.tuple_size, coded_symbols=c.n_symbols,
                       lanes=c.lanes, entropy_bits=entropy, lane_state_bits=lane_states,
                       payload_bits=c.payload_bits - lane_states, table_bits=table,
                       header_bits=total - table - c.payload_bits - out["step_bits"],
                       gap_percent=100.0 * (total / entropy - 1) if entropy > 0 else None,
                       coding_gap_percent=100.0 * (c.payload_bits / entropy - 1) if entropy > 0 else None)
        else:
            width = 8 if self.kind == fmt.KIND_RAW_INT8 else 32
            out.update(lane_state_bits=0, table_bits=0, payload_bits=width * self.size,
                       header_bits=total - width * self.size - out["step_bits"])
        return out


def record_bits(t: Tensor, major: int | None = None) -> int:
    """Every bit a tensor's record takes in a file: its body, length and CRC (FORMAT.md 2.7), in
    the layout it was read in (a new tensor: the current one) or `major`."""
    return 8 * (len(encode_record(t, t.major if major is None else major)) + 8)


def _step_field_bits(t: Tensor, major: int) -> int:
    """Bits of the step fields (step_axis, n_steps in 1.x, the steps or their coding)."""
    if t.quant not in STEP_QUANTS:
        return 0
    if major == 1:
        return 40 + 32 * t.steps.size
    return 8 * (1 + len(encode_steps(t.steps)))


def dequantize(symbols: np.ndarray, zero_point: int, steps: np.ndarray, step_axis: int,
               dtype: np.dtype) -> np.ndarray:
    """(symbols - zero_point) * step computed in float64 and cast to `dtype` (FORMAT.md 2.5).

    Works through blocks of rows so that the float64 temporaries stay small next to the result.
    """
    sym = np.asarray(symbols)
    if sym.ndim == 0:
        return dequantize(sym.reshape(1), zero_point, steps, fmt.NO_AXIS, dtype).reshape(())
    st = np.asarray(steps, dtype=np.float64)
    if step_axis != fmt.NO_AXIS:
        view = [1] * sym.ndim
        view[step_axis] = -1
        st = st.reshape(view)
    out = np.empty(sym.shape, dtype=dtype)
    rows = sym.shape[0]
    block = max(1, DEQUANT_BLOCK // max(1, sym.size // max(1, rows)))
    for i in range(0, rows, block):
        part = sym[i:i + block].astype(np.float64)
        part -= zero_point
        part *= st[i:i + block] if step_axis == 0 else st
        out[i:i + block] = part
    return out


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon bound H x N in bits for a histogram."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    p = counts[counts > 0] / n if n else counts[:0]
    return float(-(counts[counts > 0] * np.log2(p)).sum()) + 0.0   # no -0.0 for an empty histogram


@dataclass
class Container:
    """A list of tensors plus free-form JSON metadata (model name, configuration...)."""

    tensors: list[Tensor]
    metadata: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> Tensor:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)


def _check_steps(steps, step_axis: int, shape: tuple[int, ...]) -> np.ndarray:
    steps = np.asarray(steps, dtype=np.float32).reshape(-1)
    if step_axis == fmt.NO_AXIS:
        if steps.size != 1:
            raise InputError(f"a per-tensor quantizer has one step, got {steps.size}")
    else:
        if not 0 <= step_axis < len(shape):
            raise InputError(f"step axis {step_axis} is outside a {len(shape)}-d tensor")
        if steps.size != shape[step_axis]:
            raise InputError(f"{steps.size} steps for axis {step_axis} of length {shape[step_axis]}")
    if not np.all(np.isfinite(steps)):
        raise InputError("quantizer steps must be finite")
    return steps


def tans_tensor(name: str, symbols: np.ndarray, *, log2_states: int = fmt.DEFAULT_LOG2_STATES,
                lanes: int = 1, lane_axis: int = fmt.NO_AXIS, dtype=None, quant: int = fmt.QUANT_NONE,
                bins: int = 0, zero_point: int = 0, steps=None, step_axis: int = fmt.NO_AXIS, levels=None,
                tuple_size: int = 1) -> Tensor:
    """Code an integer array with tANS; `lane_axis` moves that axis first before flattening.

    quant = QUANT_CODEBOOK: `symbols` are indices into `levels` (bins = len(levels)); `tuple_size`
    N > 1 codes N consecutive weights of a lane as one symbol (quant 1 or 3; FORMAT.md 2.3c).
    """
    arr = np.asarray(symbols)
    shape = tuple(int(d) for d in arr.shape)
    if dtype is None:
        dtype = arr.dtype if quant == fmt.QUANT_NONE else np.float32
    fmt.dtype_code(dtype)
    if lane_axis != fmt.NO_AXIS:
        if not 0 <= lane_axis < arr.ndim:
            raise InputError(f"lane axis {lane_axis} is outside a {arr.ndim}-d tensor")
        arr = np.moveaxis(arr, lane_axis, 0)
    if quant == fmt.QUANT_ZERO_POINT:
        if bins < 1 or bins % 2 == 0 or bins > fmt.MAX_BINS or zero_point != (bins - 1) // 2:
            raise InputError(f"a zero-point quantizer has an odd number of bins (at most {fmt.MAX_BINS}) and zero point "
                             f"(bins-1)/2, got bins={bins}, zero_point={zero_point}")
        if arr.size and (arr.min() < 0 or arr.max() >= bins):
            raise InputError(f"tensor {name!r}: symbols outside 0..{bins - 1} for {bins} bins")
        steps = _check_steps(steps, step_axis, shape)
    elif quant == fmt.QUANT_CODEBOOK:
        try:
            levels = check_levels(levels if levels is not None else [])
        except ValueError as e:
            raise InputError(f"tensor {quote(name)}: {e}") from None
        if bins and bins != levels.size:
            raise InputError(f"tensor {quote(name)}: {bins} bins for a codebook of {levels.size} levels")
        bins, zero_point = int(levels.size), 0
        if arr.size and (arr.min() < 0 or arr.max() >= bins):
            raise InputError(f"tensor {name!r}: indices outside 0..{bins - 1} for {bins} codebook levels")
        steps = _check_steps(steps, step_axis, shape)
    elif quant == fmt.QUANT_NONE:
        steps = np.zeros(0, np.float32)
    else:
        raise InputError(f"quantizer kind {quant} does not apply to a tANS-coded tensor")
    code = fmt.dtype_code(dtype)
    if quant != fmt.QUANT_NONE and code not in fmt.FLOAT_DTYPE_CODES:
        raise InputError(f"tensor {quote(name)}: a quantized tensor is reconstructed as floats, not {np.dtype(dtype)}")
    if quant != fmt.QUANT_CODEBOOK:
        levels = np.zeros(0, np.int64)
    if tuple_size != 1:
        if quant not in (fmt.QUANT_ZERO_POINT, fmt.QUANT_CODEBOOK):
            raise InputError(f"tensor {quote(name)}: tuple coding needs a zero-point or codebook quantizer")
        check_tuple(tuple_size, bins)
        if arr.size:
            check_lanes(arr.size, lanes)
            arr = pack_tuples(arr.reshape(-1), lanes, int(tuple_size), bins)
    coded = encode(arr, log2_states, lanes)
    if quant == fmt.QUANT_NONE and coded.alphabet - 1 > fmt.max_exact_symbol(dtype):
        raise InputError(f"tensor {quote(name)}: symbol {coded.alphabet - 1} does not fit dtype {np.dtype(dtype)}")
    return Tensor(name, shape, np.dtype(dtype), fmt.KIND_TANS, quant, bins, zero_point, step_axis,
                  steps, lane_axis, coded, None, levels, int(tuple_size))


def codebook_tensor(name: str, indices: np.ndarray, levels, steps, step_axis: int = fmt.NO_AXIS, *,
                    lanes: int = 1, lane_axis: int = fmt.NO_AXIS, log2_states: int = fmt.DEFAULT_LOG2_STATES,
                    tuple_size: int = 1) -> Tensor:
    """A tANS-coded tensor with a codebook quantizer: value = levels[index] * step (FORMAT.md 2.3c)."""
    return tans_tensor(name, indices, log2_states=log2_states, lanes=lanes, lane_axis=lane_axis,
                       dtype=np.float32, quant=fmt.QUANT_CODEBOOK, levels=levels, steps=steps,
                       step_axis=step_axis, tuple_size=tuple_size)


def needs_minor(t: Tensor) -> int:
    """The version-2 minor a tensor's record needs: 1 for a codebook or tuple coding, else 0."""
    return fmt.VERSION_MINOR_TUPLES if t.quant == fmt.QUANT_CODEBOOK or t.tuple_size != 1 else 0


def int8_tensor(name: str, q: np.ndarray, steps, step_axis: int = fmt.NO_AXIS) -> Tensor:
    """An uncoded 8-bit tensor: value = q * step (per tensor or along `step_axis`)."""
    arr = np.asarray(q)
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < -128 or arr.max() > 127):
        raise InputError(f"tensor {name!r}: raw 8-bit values must be integers in -128..127")
    shape = tuple(int(d) for d in arr.shape)
    steps = _check_steps(steps, step_axis, shape)
    return Tensor(name, shape, np.dtype(np.float32), fmt.KIND_RAW_INT8, fmt.QUANT_SCALE, 0, 0,
                  step_axis, steps, fmt.NO_AXIS, None, arr.astype(np.int8).reshape(-1))


def f32_tensor(name: str, values: np.ndarray) -> Tensor:
    """A float tensor stored as float32 (biases, normalization parameters)."""
    arr = np.asarray(values, dtype=np.float32)
    return Tensor(name, tuple(int(d) for d in arr.shape), np.dtype(np.float32), fmt.KIND_RAW_F32,
                  raw=arr.reshape(-1))


# --- byte layout -------------------------------------------------------------

class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def put(self, f: str, *values) -> None:
        self.parts.append(struct.pack(fmt.ENDIAN + f, *values))

    def raw(self, b: bytes) -> None:
        self.parts.append(b)

    def bytes(self) -> bytes:
        return b"".join(self.parts)


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError(f"{self.what} is truncated")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def get(self, f: str):
        size = struct.calcsize(fmt.ENDIAN + f)
        vals = struct.unpack(fmt.ENDIAN + f, self.take(size))
        return vals[0] if len(vals) == 1 else vals

    def array(self, dtype: str, n: int) -> np.ndarray:
        dt = np.dtype(fmt.ENDIAN + dtype)
        return np.frombuffer(self.take(n * dt.itemsize), dtype=dt).copy()


def encode_record(t: Tensor, major: int = fmt.VERSION_MAJOR) -> bytes:
    """The record body of one tensor (without its length and CRC), in the layout of version `major`."""
    if major == 2:
        return encode_record_v2(t)
    if major != 1:
        raise InputError(f"no record layout for version {major}")
    if needs_minor(t):
        raise InputError(f"tensor {quote(t.name)}: a codebook or tuple coding needs version 2.1, not 1.x")
    w = _Writer()
    name = t.name.encode("utf-8")
    if len(name) > fmt.MAX_NAME_BYTES:
        raise InputError(f"tensor name longer than {fmt.MAX_NAME_BYTES} bytes")
    if len(t.shape) > fmt.MAX_NDIM:
        raise InputError(f"tensors have at most {fmt.MAX_NDIM} dimensions")
    w.put("H", len(name))
    w.raw(name)
    w.put("BBB", t.kind, fmt.dtype_code(t.dtype), len(t.shape))
    w.put(f"{len(t.shape)}Q", *t.shape)
    w.put("bB", t.lane_axis, t.quant)
    if t.quant == fmt.QUANT_ZERO_POINT:
        w.put("HH", t.bins, t.zero_point)
    if t.quant in (fmt.QUANT_ZERO_POINT, fmt.QUANT_SCALE):
        w.put("bI", t.step_axis, t.steps.size)
        w.raw(t.steps.astype(fmt.ENDIAN + "f4").tobytes())
    if t.kind == fmt.KIND_TANS:
        c = t.coded
        w.put("BII", c.log2_states, c.lanes, c.alphabet)
        w.raw(np.asarray(c.norm).astype(fmt.ENDIAN + "u2").tobytes())
        w.put("Q", c.payload_bits)
        w.raw(c.payload)
    elif t.kind == fmt.KIND_RAW_INT8:
        w.raw(t.raw.astype(np.int8).tobytes())
    else:
        w.raw(t.raw.astype(fmt.ENDIAN + "f4").tobytes())
    return w.bytes()


def _axis_ok(axis: int, ndim: int) -> bool:
    return axis == fmt.NO_AXIS or 0 <= axis < ndim


def _check_read_steps(what: str, steps: np.ndarray, step_axis: int, shape: tuple[int, ...]) -> None:
    """The writer's step checks, as reader checks (FormatError)."""
    try:
        _check_steps(steps, step_axis, shape)
    except InputError as e:
        raise FormatError(f"{what}: {e}") from None


def _checked_coded(what: str, n: int, log2_states: int, lanes: int, norm: np.ndarray, payload: bytes,
                   payload_bits: int, quant: int, bins: int, dcode: int, tuple_size: int = 1) -> Coded:
    """A record's coded stream of n weights once its fields pass the checks of FORMAT.md 2.6 (every
    version); with tuples, the stream holds tuple_count(n, L, N) symbols."""
    if n == 0:
        if lanes or len(norm) or payload_bits:
            raise FormatError(f"{what}: an empty tensor with lanes, a table or a payload")
        return Coded(log2_states, lanes, 0, norm, payload, payload_bits)
    if tuple_size > 1:
        try:
            check_lanes(n, lanes)
        except InputError as e:
            raise FormatError(f"{what}: {e}") from None
        n = tuple_count(n, lanes, tuple_size)
    _check_coded(what, n, log2_states, lanes, norm, payload_bits, quant, bins, dcode, tuple_size)
    return Coded(log2_states, lanes, n, norm, payload, payload_bits)


def _raw_values(r: _Reader, kind: int, n: int) -> np.ndarray:
    """The stored values of an uncoded record: N int8 or N float32."""
    return r.array("i1", n) if kind == fmt.KIND_RAW_INT8 else r.array("f4", n).astype(np.float32)


def _check_layout(what: str, kind: int, dcode: int, shape: tuple[int, ...], lane_axis: int, quant: int,
                  codebook_ok: bool = False) -> None:
    """The checks of a record's shape, quantizer kind, dtype and lane axis (every version, FORMAT.md 2.6;
    a codebook quantizer only where `codebook_ok`, version 2.1 on)."""
    if math.prod(d for d in shape if d) >= fmt.MAX_ELEMENTS:
        raise FormatError(f"{what}: shape {shape} is too large for any array (non-zero entries multiply to 2**60 "
                          "or more)")
    if quant not in fmt.QUANTS:
        raise FormatError(f"{what}: unknown quantizer kind {quant}")
    if quant == fmt.QUANT_CODEBOOK and not codebook_ok:
        raise FormatError(f"{what}: a codebook quantizer (kind {quant}) needs version 2.1")
    if quant not in ALLOWED_QUANTS[kind]:
        raise FormatError(f"{what}: a {fmt.KINDS[kind]} tensor cannot have quantizer {fmt.QUANTS[quant]}")
    if (quant != fmt.QUANT_NONE or kind == fmt.KIND_RAW_F32) and dcode not in fmt.FLOAT_DTYPE_CODES:
        raise FormatError(f"{what}: dtype {fmt.DTYPES[dcode]} for float values (a float dtype is required)")
    if not _axis_ok(lane_axis, len(shape)) or (kind != fmt.KIND_TANS and lane_axis != fmt.NO_AXIS):
        raise FormatError(f"{what}: lane axis {lane_axis} is not allowed for a {fmt.KINDS[kind]} tensor "
                          f"of {len(shape)} dimensions")


def decode_record(body: bytes, index: int, minor: int = fmt.VERSION_MINOR, major: int = fmt.VERSION_MAJOR,
                  budget: int | None = None) -> Tensor:
    """Parse one record body (its CRC already checked) of a version `major`.`minor` file; check every field.

    FormatError for anything FORMAT.md 2.6 lists; nothing is allocated for a tensor's data
    before its sizes are known to fit the bytes that hold them.
    """
    if major == 2:
        return decode_record_v2(body, index, budget, minor)
    r = _Reader(body, f"tensor record {index}")
    try:
        name = r.take(r.get("H")).decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise FormatError(f"tensor record {index}: its name is not valid UTF-8") from None
    what = f"tensor {quote(name)}"
    kind, dcode, ndim = r.get("BBB")
    if kind not in fmt.KINDS:
        raise FormatError(f"{what}: unknown tensor kind {kind}")
    if dcode not in fmt.DTYPES or fmt.DTYPE_MIN_MINOR.get(dcode, 0) > minor:
        raise FormatError(f"{what}: unknown dtype code {dcode} (in a version 1.{minor} file)")
    if ndim > fmt.MAX_NDIM:
        raise FormatError(f"{what}: {ndim} dimensions (at most {fmt.MAX_NDIM})")
    shape = tuple(int(d) for d in r.array("u8", ndim)) if ndim else ()
    lane_axis, quant = r.get("bB")
    _check_layout(what, kind, dcode, shape, lane_axis, quant)
    bins = zero_point = 0
    step_axis, steps = fmt.NO_AXIS, np.zeros(0, np.float32)
    if quant == fmt.QUANT_ZERO_POINT:
        bins, zero_point = r.get("HH")
        if bins % 2 == 0 or zero_point != (bins - 1) // 2:
            raise FormatError(f"{what}: a zero-point quantizer needs an odd bin count and zero point "
                              f"(bins-1)/2, got bins={bins}, zero_point={zero_point}")
    if quant in (fmt.QUANT_ZERO_POINT, fmt.QUANT_SCALE):
        step_axis, n_steps = r.get("bI")
        steps = r.array("f4", n_steps).astype(np.float32)
        _check_read_steps(what, steps, step_axis, shape)
    n = math.prod(shape)
    coded = raw = None
    if kind == fmt.KIND_TANS:
        log2_states, lanes, alphabet = r.get("BII")
        if not fmt.MIN_LOG2_STATES <= log2_states <= fmt.MAX_LOG2_STATES:
            raise FormatError(f"{what}: unsupported table size 2**{log2_states}")
        if alphabet > fmt.MAX_ALPHABET:
            raise FormatError(f"{what}: alphabet of {alphabet} symbols is too large")
        norm = r.array("u2", alphabet).astype(np.int64)
        payload_bits = r.get("Q")
        payload = r.take(fmt.payload_bytes(payload_bits))
        coded = _checked_coded(what, n, log2_states, lanes, norm, payload, payload_bits, quant, bins, dcode)
    else:
        raw = _raw_values(r, kind, n)
    if r.pos != len(body):
        raise FormatError(f"{what}: {len(body) - r.pos} unexpected bytes at the end of its record")
    return Tensor(name, shape, fmt.DTYPES[dcode], kind, quant, bins, zero_point, step_axis, steps,
                  lane_axis, coded, raw)


# --- version 2.0 record bodies (FORMAT.md 2.3): derived fields dropped, varints, packed counts, exact
# short steps, payload padded to a byte only (read back to the 8-byte padding Part 1 decoders use) ---

def encode_record_v2(t: Tensor) -> bytes:
    """The compact record body of one tensor."""
    name = t.name.encode("utf-8")
    if len(name) > fmt.MAX_NAME_BYTES:
        raise InputError(f"tensor name longer than {fmt.MAX_NAME_BYTES} bytes")
    if len(t.shape) > fmt.MAX_NDIM:
        raise InputError(f"tensors have at most {fmt.MAX_NDIM} dimensions")
    out = [varint(len(name)), name, struct.pack("<BBB", t.kind, fmt.dtype_code(t.dtype), len(t.shape))]
    out += [varint(d) for d in t.shape]
    out.append(struct.pack("<bB", t.lane_axis, t.quant))
    if t.quant in (fmt.QUANT_ZERO_POINT, fmt.QUANT_CODEBOOK):
        out.append(varint(t.bins))
    if t.quant == fmt.QUANT_CODEBOOK:
        out.append(encode_levels(t.levels))
    if t.quant in STEP_QUANTS:
        out += [struct.pack("<b", t.step_axis), encode_steps(t.steps)]
    if t.kind == fmt.KIND_TANS:
        c = t.coded
        out += [struct.pack("<B", c.log2_states | (t.tuple_size - 1) << fmt.TUPLE_SHIFT), varint(c.lanes),
                varint(c.alphabet),
                encode_counts(c.norm, c.log2_states), varint(c.payload_bits),
                bytes(c.payload[:(c.payload_bits + 7) // 8])]
    elif t.kind == fmt.KIND_RAW_INT8:
        out.append(t.raw.astype(np.int8).tobytes())
    else:
        out.append(t.raw.astype(fmt.ENDIAN + "f4").tobytes())
    return b"".join(out)


class _Reader2(_Reader):
    """A record reader with the varint fields of version 2."""

    def varint(self) -> int:
        value, self.pos = read_varint(self.data, self.pos, self.what)
        return value


def decode_record_v2(body: bytes, index: int, budget: int | None = None, minor: int = 0) -> Tensor:
    """Parse and check one version-2.`minor` record body (the same reader checks as version 1, FORMAT.md 2.6;
    2.1 adds codebooks and tuple coding, 2.3c)."""
    r = _Reader2(body, f"tensor record {index}")
    name_len = r.varint()
    if name_len > fmt.MAX_NAME_BYTES:
        raise FormatError(f"tensor record {index}: a name of {name_len} bytes (at most {fmt.MAX_NAME_BYTES})")
    try:
        name = r.take(name_len).decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise FormatError(f"tensor record {index}: its name is not valid UTF-8") from None
    what = f"tensor {quote(name)}"
    r.what = what
    kind, dcode, ndim = r.get("BBB")
    if kind not in fmt.KINDS:
        raise FormatError(f"{what}: unknown tensor kind {kind}")
    if dcode not in fmt.DTYPES:
        raise FormatError(f"{what}: unknown dtype code {dcode}")
    if ndim > fmt.MAX_NDIM:
        raise FormatError(f"{what}: {ndim} dimensions (at most {fmt.MAX_NDIM})")
    shape = tuple(r.varint() for _ in range(ndim))
    lane_axis, quant = r.get("bB")
    _check_layout(what, kind, dcode, shape, lane_axis, quant, codebook_ok=minor >= fmt.VERSION_MINOR_TUPLES)
    bins = zero_point = 0
    step_axis, steps = fmt.NO_AXIS, np.zeros(0, np.float32)
    levels = np.zeros(0, np.int64)
    if quant == fmt.QUANT_ZERO_POINT:
        bins = r.varint()
        if bins % 2 == 0 or bins > fmt.MAX_BINS:
            raise FormatError(f"{what}: a zero-point quantizer needs an odd bin count up to {fmt.MAX_BINS}, "
                              f"got {bins}")
        zero_point = (bins - 1) // 2
    if quant == fmt.QUANT_CODEBOOK:
        bins = r.varint()
        if not 1 <= bins <= fmt.MAX_BINS:
            raise FormatError(f"{what}: a codebook of {bins} levels (1..{fmt.MAX_BINS} allowed)")
        levels, r.pos = decode_levels(r.data, r.pos, bins, what)
    if quant in STEP_QUANTS:
        step_axis = r.get("b")
        if not _axis_ok(step_axis, ndim):
            raise FormatError(f"{what}: step axis {step_axis} is outside a {ndim}-d tensor")
        n_steps = 1 if step_axis == fmt.NO_AXIS else shape[step_axis]
        if budget is not None and 4 * n_steps > budget:       # 8 steps a byte: count them before decoding
            raise LimitError(f"{what}: {n_steps} steps take more than the {budget} bytes left under the limit: "
                             "raise --max-bytes if you trust the file")
        steps, r.pos = decode_steps(r.data, r.pos, n_steps, what)
        _check_read_steps(what, steps, step_axis, shape)
    n = math.prod(shape)
    coded = raw = None
    tuple_size = 1
    if kind == fmt.KIND_TANS:
        log2_states = r.get("B")
        if minor >= fmt.VERSION_MINOR_TUPLES:
            log2_states, tuple_size = log2_states & ((1 << fmt.TUPLE_SHIFT) - 1), (log2_states >> fmt.TUPLE_SHIFT) + 1
            if tuple_size > fmt.MAX_TUPLE:
                raise FormatError(f"{what}: tuple size {tuple_size} (1..{fmt.MAX_TUPLE} allowed; the top bits of "
                                  "the table-size byte must be zero)")
            if tuple_size > 1 and quant not in (fmt.QUANT_ZERO_POINT, fmt.QUANT_CODEBOOK):
                raise FormatError(f"{what}: tuple coding without a zero-point or codebook quantizer")
            if tuple_size > 1 and bins ** tuple_size > fmt.MAX_ALPHABET:
                raise FormatError(f"{what}: tuples of {tuple_size} over {bins} bins need {bins}^{tuple_size} "
                                  f"symbols, more than {fmt.MAX_ALPHABET}")
        if not fmt.MIN_LOG2_STATES <= log2_states <= fmt.MAX_LOG2_STATES:
            raise FormatError(f"{what}: unsupported table size 2**{log2_states}")
        lanes, alphabet = r.varint(), r.varint()
        if alphabet > fmt.MAX_ALPHABET:
            raise FormatError(f"{what}: alphabet of {alphabet} symbols is too large")
        norm = decode_counts(r.take(counts_bytes(alphabet, log2_states)), alphabet, log2_states, what)
        payload_bits = r.varint()
        stored = r.take((payload_bits + 7) // 8)
        if payload_bits % 8 and stored[-1] >> (payload_bits % 8):
            raise FormatError(f"{what}: nonzero padding bits after the payload (damaged stream)")
        payload = stored + bytes(fmt.payload_bytes(payload_bits) - len(stored))
        coded = _checked_coded(what, n, log2_states, lanes, norm, payload, payload_bits, quant, bins, dcode,
                               tuple_size)
    else:
        raw = _raw_values(r, kind, n)
    if r.pos != len(body):
        raise FormatError(f"{what}: {len(body) - r.pos} unexpected bytes at the end of its record")
    return Tensor(name, shape, fmt.DTYPES[dcode], kind, quant, bins, zero_point, step_axis, steps,
                  lane_axis, coded, raw, levels, tuple_size)


#: the quantizers each kind allows (FORMAT.md 2.3; QUANT_CODEBOOK from version 2.1)
ALLOWED_QUANTS = {fmt.KIND_TANS: (fmt.QUANT_NONE, fmt.QUANT_ZERO_POINT, fmt.QUANT_CODEBOOK),
                  fmt.KIND_RAW_INT8: (fmt.QUANT_SCALE,), fmt.KIND_RAW_F32: (fmt.QUANT_NONE,)}
STEP_QUANTS = (fmt.QUANT_ZERO_POINT, fmt.QUANT_SCALE, fmt.QUANT_CODEBOOK)   #: quantizers with steps


def _check_coded(what: str, n: int, log2_states: int, lanes: int, norm: np.ndarray, payload_bits: int,
                 quant: int, bins: int, dcode: int, tuple_size: int = 1) -> None:
    """The checks of a non-empty coded tensor that need no decoding (FORMAT.md 2.6); `n` counts symbols."""
    try:
        check_lanes(n, lanes)
    except InputError as e:
        raise FormatError(f"{what}: {e}") from None
    if int(norm.sum()) != 1 << log2_states:
        raise FormatError(f"{what}: table counts sum to {int(norm.sum())}, "
                          f"not {1 << log2_states} (inconsistent table)")
    if quant in (fmt.QUANT_ZERO_POINT, fmt.QUANT_CODEBOOK) and norm.size > bins ** tuple_size:
        raise FormatError(f"{what}: table has {norm.size} symbols for {bins} bins"
                          + (f" in tuples of {tuple_size}" if tuple_size > 1 else ""))
    top = int(np.flatnonzero(norm)[-1])
    if quant == fmt.QUANT_NONE and top > fmt.max_exact_symbol(fmt.DTYPES[dcode]):
        raise FormatError(f"{what}: symbol {top} has table slots but does not fit dtype {fmt.DTYPES[dcode]}")
    cap = max_symbols(lanes, log2_states, payload_bits, zero_run_bound(norm, log2_states))
    if cap is not None and n > cap:
        raise FormatError(f"{what}: {n} symbols declared, but its {payload_bits}-bit payload can hold at most "
                          f"{max(cap, 0)} with this table (damaged or crafted file)")


def _json_depth_ok(obj: object, limit: int) -> bool:
    """True when no array/object nests deeper than `limit` (an explicit stack: no recursion)."""
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (dict, list)):
            if d > limit:
                return False
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return True


def parse_metadata(meta: bytes) -> dict:
    """The metadata JSON object; FormatError unless it is UTF-8 JSON, an object, at most MAX_META_DEPTH deep."""
    try:
        metadata = json.loads(meta.decode("utf-8", errors="strict"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FormatError("metadata is not valid UTF-8 JSON (damaged file)") from None
    if not isinstance(metadata, dict):
        raise FormatError(f"metadata is a JSON {type(metadata).__name__}, not an object")
    if not _json_depth_ok(metadata, fmt.MAX_META_DEPTH):
        raise FormatError(f"metadata nests deeper than {fmt.MAX_META_DEPTH} levels")
    return metadata


def file_minor(c: Container, major: int = 1) -> int:
    """The minor version a container needs: the lowest that defines every dtype (1.x) or feature (2.x) it uses."""
    if major == 2:
        return max([needs_minor(t) for t in c.tensors], default=0)
    return max([fmt.DTYPE_MIN_MINOR.get(fmt.dtype_code(t.dtype), 0) for t in c.tensors], default=0)


def to_bytes(c: Container, major: int = fmt.VERSION_MAJOR) -> bytes:
    """Serialize a container (header, records, trailing CRC): version 2.0 by default; with `major=1`,
    the lowest 1.x that holds it (what readers before version 2 read)."""
    names = [t.name for t in c.tensors]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"two tensors are named {quote(dup)}: tensor names must be unique")
    if not isinstance(c.metadata, dict):
        raise InputError("container metadata must be a dict (a JSON object)")
    if major not in fmt.READ_VERSIONS:
        raise InputError(f"no container layout for version {major} (writers write {sorted(fmt.READ_VERSIONS)})")
    w = _Writer()
    meta = json.dumps(c.metadata, sort_keys=True).encode("utf-8")
    w.raw(fmt.MAGIC)
    w.put("HHII", major, file_minor(c, major), len(c.tensors), len(meta))
    w.raw(meta)
    head = w.bytes()
    w.put("I", zlib.crc32(head))
    for t in c.tensors:
        body = encode_record(t, major)
        w.put("I", len(body))
        w.raw(body)
        w.put("I", zlib.crc32(body))
    data = w.bytes()
    return data + struct.pack(fmt.ENDIAN + "I", zlib.crc32(data))


def decoded_bytes(t: Tensor) -> int:
    """Bytes of a tensor's reconstruction in its dtype and of its float32 steps (what `--max-bytes` counts)."""
    return t.size * t.dtype.itemsize + 4 * t.steps.size


def from_bytes(data: bytes, max_bytes: int | None = fmt.DEFAULT_MAX_BYTES) -> Container:
    """Parse and check a container; FormatError on any damage (payloads decode lazily).

    LimitError (a FormatError) when the tensors would decode to more than `max_bytes`
    bytes in all (None: no limit).
    """
    if len(data) < len(fmt.MAGIC) or data[:len(fmt.MAGIC)] != fmt.MAGIC:
        raise FormatError("not a .tans file (wrong magic bytes)")
    r = _Reader(data, "file")
    r.take(len(fmt.MAGIC))
    major, minor, n_tensors, meta_len = r.get("HHII")
    if major not in fmt.READ_VERSIONS or minor > fmt.READ_VERSIONS[major]:
        raise FormatError(f".tans version {major}.{minor} is not supported by this reader "
                          f"(it reads {', '.join(f'{a}.0-{a}.{b}' if b else f'{a}.0' for a, b in fmt.READ_VERSIONS.items())})")
    meta = r.take(meta_len)
    head_end = r.pos
    if r.get("I") != zlib.crc32(data[:head_end]):
        raise FormatError("file header CRC mismatch (damaged file)")
    if len(data) < 4 or struct.unpack(fmt.ENDIAN + "I", data[-4:])[0] != zlib.crc32(data[:-4]):
        raise FormatError("file CRC mismatch (truncated or damaged file)")
    metadata = parse_metadata(meta)
    tensors: list[Tensor] = []
    names: set[str] = set()
    total = 0
    for i in range(n_tensors):
        body = r.take(r.get("I"))
        if r.get("I") != zlib.crc32(body):
            raise FormatError(f"tensor record {i}: CRC mismatch (damaged file)")
        t = decode_record(body, i, minor, major, None if max_bytes is None else max_bytes - total)
        t.major = major
        if t.name in names:
            raise FormatError(f"two tensors are named {quote(t.name)}")
        names.add(t.name)
        total += decoded_bytes(t)
        if max_bytes is not None and total > max_bytes:
            raise LimitError(f"the tensors decode to more than {max_bytes} bytes (tensor {quote(t.name)} has "
                             f"{t.size} elements): raise --max-bytes if you trust the file")
        tensors.append(t)
    if r.pos != len(data) - 4:
        raise FormatError(f"{len(data) - 4 - r.pos} unexpected bytes after the last tensor")
    return Container(tensors, metadata)


def write(path: str | os.PathLike, c: Container, inputs: tuple[str | os.PathLike, ...] = ()) -> None:
    """Write a container atomically and durably (files.atomic_write: no partial file, mode kept).

    `inputs` are files the output must not replace (PathError when it is one of them).
    """
    data = to_bytes(c)
    atomic_write(path, lambda f: f.write(data), inputs)


def read(path: str | os.PathLike, max_bytes: int | None = fmt.DEFAULT_MAX_BYTES) -> Container:
    """Read and check a container from a regular file; FormatError messages start with the path."""
    data = read_regular(path, max_bytes)
    with in_file(path):
        c = from_bytes(data, max_bytes)
    for t in c.tensors:
        t.source = os.fspath(path)
    return c


@contextlib.contextmanager
def in_file(path: str | os.PathLike) -> Iterator[None]:
    """Prefix FormatErrors raised inside (by lazy decoding, say) with the file's path, once."""
    where = os.fspath(path)
    try:
        yield
    except FormatError as e:
        if str(e).startswith(where + ": "):
            raise
        raise type(e)(f"{where}: {e}") from None
