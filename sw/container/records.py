"""The `.tans` container: named tensors, their quantizers and their tANS payloads.

Byte layout in docs/FORMAT.md; constants in sw/tans/format.py. Every record carries
a CRC32, the file ends with a CRC32 of everything before it, and each payload has
tANS's own final-state check, so damage is reported rather than decoded.
"""
from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sw.tans import format as fmt
from sw.tans.codec import Coded, decode, encode
from sw.tans.reference import decode_reference
from sw.tans.errors import FormatError, InputError
from sw.tans.lanes import check_lanes


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
            flat = decode_reference(self.coded) if golden else decode(self.coded)
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
        """Signed quantized integers: symbol - zero_point, or the int8 values."""
        sym = self.symbols(golden).astype(np.int64)
        return sym - self.zero_point if self.quant == fmt.QUANT_ZERO_POINT else sym

    def values(self, golden: bool = False) -> np.ndarray:
        """The tensor as it is reconstructed, in `dtype` (see symbols for `golden`)."""
        if self.kind == fmt.KIND_RAW_F32:
            return self.raw.reshape(self.shape).astype(self.dtype)
        if self.quant == fmt.QUANT_NONE:
            return self.symbols(golden).astype(self.dtype)
        ints = self.integers(golden).astype(np.float64)
        steps = self.steps.astype(np.float64)
        if self.step_axis != fmt.NO_AXIS:
            view = [1] * len(self.shape)
            view[self.step_axis] = -1
            steps = steps.reshape(view)
        return (ints * steps).astype(self.dtype)

    def stats(self) -> dict:
        """Figures for `inspect`: symbols, entropy bound, coded, table and header bits."""
        total = 8 * len(encode_record(self))
        out = {"name": self.name, "kind": fmt.KINDS[self.kind], "shape": list(self.shape),
               "symbols": self.size, "total_bits": total}
        if self.kind == fmt.KIND_TANS:
            c = self.coded
            counts = np.bincount(self.symbols().reshape(-1).astype(np.int64), minlength=1)
            entropy = entropy_bits(counts)
            table = 32 + 16 * c.alphabet
            padding = 8 * len(c.payload) - c.payload_bits
            out.update(alphabet=int(np.count_nonzero(counts)), states=c.states, lanes=c.lanes,
                       entropy_bits=entropy, payload_bits=c.payload_bits, table_bits=table,
                       header_bits=total - table - c.payload_bits,
                       padding_bits=padding,
                       gap_percent=100.0 * (c.payload_bits / entropy - 1) if entropy > 0 else None,
                       total_gap_percent=100.0 * (total / entropy - 1) if entropy > 0 else None)
        else:
            width = 8 if self.kind == fmt.KIND_RAW_INT8 else 32
            out.update(payload_bits=width * self.size, header_bits=total - width * self.size)
        return out


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon bound H x N in bits for a histogram."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    p = counts[counts > 0] / n if n else counts[:0]
    return float(-(counts[counts > 0] * np.log2(p)).sum())


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
                bins: int = 0, zero_point: int = 0, steps=None, step_axis: int = fmt.NO_AXIS) -> Tensor:
    """Code an integer array with tANS; `lane_axis` moves that axis first before flattening."""
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
        if bins < 1 or bins % 2 == 0 or zero_point != (bins - 1) // 2:
            raise InputError(f"a zero-point quantizer has an odd number of bins and zero point "
                             f"(bins-1)/2, got bins={bins}, zero_point={zero_point}")
        if arr.size and (arr.min() < 0 or arr.max() >= bins):
            raise InputError(f"tensor {name!r}: symbols outside 0..{bins - 1} for {bins} bins")
        steps = _check_steps(steps, step_axis, shape)
    elif quant == fmt.QUANT_NONE:
        steps = np.zeros(0, np.float32)
    else:
        raise InputError(f"quantizer kind {quant} does not apply to a tANS-coded tensor")
    coded = encode(arr, log2_states, lanes)
    return Tensor(name, shape, np.dtype(dtype), fmt.KIND_TANS, quant, bins, zero_point, step_axis,
                  steps, lane_axis, coded, None)


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


def encode_record(t: Tensor) -> bytes:
    """The record body of one tensor (without its length and CRC)."""
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


def decode_record(body: bytes, index: int) -> Tensor:
    """Parse one record body (its CRC already checked) and validate every field."""
    r = _Reader(body, f"tensor record {index}")
    name = r.take(r.get("H")).decode("utf-8", errors="strict")
    kind, dcode, ndim = r.get("BBB")
    if kind not in fmt.KINDS:
        raise FormatError(f"tensor {name!r}: unknown tensor kind {kind}")
    if dcode not in fmt.DTYPES:
        raise FormatError(f"tensor {name!r}: unknown dtype code {dcode}")
    if ndim > fmt.MAX_NDIM:
        raise FormatError(f"tensor {name!r}: {ndim} dimensions (at most {fmt.MAX_NDIM})")
    shape = tuple(int(d) for d in r.array("u8", ndim)) if ndim else ()
    lane_axis, quant = r.get("bB")
    if quant not in fmt.QUANTS:
        raise FormatError(f"tensor {name!r}: unknown quantizer kind {quant}")
    if lane_axis != fmt.NO_AXIS and not 0 <= lane_axis < ndim:
        raise FormatError(f"tensor {name!r}: lane axis {lane_axis} outside {ndim} dimensions")
    bins = zero_point = 0
    step_axis, steps = fmt.NO_AXIS, np.zeros(0, np.float32)
    if quant == fmt.QUANT_ZERO_POINT:
        bins, zero_point = r.get("HH")
    if quant in (fmt.QUANT_ZERO_POINT, fmt.QUANT_SCALE):
        step_axis, n_steps = r.get("bI")
        steps = r.array("f4", n_steps).astype(np.float32)
        try:
            _check_steps(steps, step_axis, shape)
        except InputError as e:
            raise FormatError(f"tensor {name!r}: {e}") from None
    n = math.prod(shape)
    coded = raw = None
    if kind == fmt.KIND_TANS:
        log2_states, lanes, alphabet = r.get("BII")
        if not fmt.MIN_LOG2_STATES <= log2_states <= fmt.MAX_LOG2_STATES:
            raise FormatError(f"tensor {name!r}: unsupported table size 2**{log2_states}")
        if alphabet > fmt.MAX_ALPHABET:
            raise FormatError(f"tensor {name!r}: alphabet of {alphabet} symbols is too large")
        norm = r.array("u2", alphabet).astype(np.int64)
        payload_bits = r.get("Q")
        payload = r.take(fmt.payload_bytes(payload_bits))
        if n == 0:
            if lanes or alphabet or payload_bits:
                raise FormatError(f"tensor {name!r}: an empty tensor with a payload")
        else:
            try:
                check_lanes(n, lanes)
            except InputError as e:
                raise FormatError(f"tensor {name!r}: {e}") from None
            if int(norm.sum()) != 1 << log2_states:
                raise FormatError(f"tensor {name!r}: table counts sum to {int(norm.sum())}, "
                                  f"not {1 << log2_states} (inconsistent table)")
            if quant == fmt.QUANT_ZERO_POINT and alphabet > bins:
                raise FormatError(f"tensor {name!r}: table has {alphabet} symbols for {bins} bins")
        coded = Coded(log2_states, lanes, n, norm, payload, payload_bits)
    elif kind == fmt.KIND_RAW_INT8:
        raw = r.array("i1", n)
    else:
        raw = r.array("f4", n).astype(np.float32)
    if r.pos != len(body):
        raise FormatError(f"tensor {name!r}: {len(body) - r.pos} unexpected bytes at the end of its record")
    return Tensor(name, shape, fmt.DTYPES[dcode], kind, quant, bins, zero_point, step_axis, steps,
                  lane_axis, coded, raw)


def to_bytes(c: Container) -> bytes:
    """Serialize a container (header, records, trailing CRC)."""
    w = _Writer()
    meta = json.dumps(c.metadata, sort_keys=True).encode("utf-8")
    w.raw(fmt.MAGIC)
    w.put("HHII", fmt.VERSION_MAJOR, fmt.VERSION_MINOR, len(c.tensors), len(meta))
    w.raw(meta)
    head = w.bytes()
    w.put("I", zlib.crc32(head))
    for t in c.tensors:
        body = encode_record(t)
        w.put("I", len(body))
        w.raw(body)
        w.put("I", zlib.crc32(body))
    data = w.bytes()
    return data + struct.pack(fmt.ENDIAN + "I", zlib.crc32(data))


def from_bytes(data: bytes) -> Container:
    """Parse and check a container; FormatError on any damage (payloads decode lazily)."""
    if len(data) < len(fmt.MAGIC) or data[:len(fmt.MAGIC)] != fmt.MAGIC:
        raise FormatError("not a .tans file (wrong magic bytes)")
    r = _Reader(data, "file")
    r.take(len(fmt.MAGIC))
    major, minor, n_tensors, meta_len = r.get("HHII")
    if major != fmt.VERSION_MAJOR or minor > fmt.VERSION_MINOR:
        raise FormatError(f".tans version {major}.{minor} is not supported by this reader "
                          f"(it reads {fmt.VERSION_MAJOR}.0 to {fmt.VERSION_MAJOR}.{fmt.VERSION_MINOR})")
    meta = r.take(meta_len)
    head_end = r.pos
    if r.get("I") != zlib.crc32(data[:head_end]):
        raise FormatError("file header CRC mismatch (damaged file)")
    if len(data) < 4 or struct.unpack(fmt.ENDIAN + "I", data[-4:])[0] != zlib.crc32(data[:-4]):
        raise FormatError("file CRC mismatch (truncated or damaged file)")
    try:
        metadata = json.loads(meta.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FormatError("metadata is not valid JSON (damaged file)") from None
    tensors = []
    for i in range(n_tensors):
        body = r.take(r.get("I"))
        if r.get("I") != zlib.crc32(body):
            raise FormatError(f"tensor record {i}: CRC mismatch (damaged file)")
        tensors.append(decode_record(body, i))
    if r.pos != len(data) - 4:
        raise FormatError(f"{len(data) - 4 - r.pos} unexpected bytes after the last tensor")
    return Container(tensors, metadata)


def write(path: str | os.PathLike, c: Container) -> None:
    """Write a container atomically (a failed write leaves no partial file)."""
    data = to_bytes(c)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".tans-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read(path: str | os.PathLike) -> Container:
    """Read and check a container from disk."""
    return from_bytes(Path(path).read_bytes())
