"""An independent decoder written from docs/FORMAT.md alone (no sw imports) must read
every golden file exactly: the document leaves nothing to the code."""
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "golden"
DTYPES = {1: "<u1", 2: "<u2", 3: "<u4", 4: "<u8", 5: "<i1", 6: "<i2", 7: "<i4", 8: "<i8",
          9: "<f2", 10: "<f4", 11: "<f8"}


def spec_table(n, k):
    l = 1 << k
    single = [s for s in range(len(n)) if n[s] == 1]
    pairs = sorted((((2 * i + 1) << 32) // n[s], s) for s in range(len(n)) if n[s] >= 2 for i in range(n[s]))
    symbol = [s for _, s in pairs] + single
    c = list(n)
    nb, base = [], []
    for x in range(l):
        s = symbol[x]
        X = c[s]
        c[s] += 1
        b = k - (X.bit_length() - 1)
        nb.append(b)
        base.append((X << b) - l)
    return symbol, nb, base


def spec_decode(payload, payload_bits, n_sym, lanes, k, counts):
    symbol, nb, base = spec_table(counts, k)
    pos = 0

    def read(m):
        nonlocal pos
        assert pos + m <= 8 * len(payload)
        v = sum(((payload[(pos + t) >> 3] >> ((pos + t) & 7)) & 1) << t for t in range(m))
        pos += m
        return v
    q, r = divmod(n_sym, lanes)
    length = [q + (j < r) for j in range(lanes)]
    start = [j * q + min(j, r) for j in range(lanes)]
    state = [read(k) for _ in range(lanes)]
    y = [0] * n_sym
    for t in range(length[0]):
        for j in range(lanes):
            if t < length[j]:
                x = state[j]
                y[start[j] + t] = symbol[x]
                state[j] = base[x] + read(nb[x])
    assert all(s == 0 for s in state) and pos == payload_bits
    assert all(((payload[p >> 3] >> (p & 7)) & 1) == 0 for p in range(pos, 8 * len(payload)))
    return y


def spec_read(data):
    assert data[:8] == b"\x89TANS\r\n\x1a"
    major, minor, n_t, meta_len = struct.unpack_from("<HHII", data, 8)
    assert (major, minor) == (1, 0)
    o = 20 + meta_len
    meta = json.loads(data[20:o])
    assert struct.unpack_from("<I", data, o)[0] == zlib.crc32(data[:o])
    assert struct.unpack_from("<I", data, len(data) - 4)[0] == zlib.crc32(data[:-4])
    o += 4
    out = {}
    for _ in range(n_t):
        (blen,) = struct.unpack_from("<I", data, o)
        body = data[o + 4:o + 4 + blen]
        assert struct.unpack_from("<I", data, o + 4 + blen)[0] == zlib.crc32(body)
        o += blen + 8
        p = 0

        def get(f):
            nonlocal p
            v = struct.unpack_from("<" + f, body, p)
            p += struct.calcsize("<" + f)
            return v if len(v) > 1 else v[0]
        name = body[2:2 + get("H")].decode()
        p += len(name.encode())
        kind, dcode, ndim = get("BBB")
        shape = tuple(get(f"{ndim}Q")) if ndim > 1 else ((get("Q"),) if ndim == 1 else ())
        lane_axis, quant = get("bB")
        zp, step_axis, steps = 0, -1, None
        if quant == 1:
            _bins, zp = get("HH")
        if quant in (1, 2):
            step_axis, n_steps = get("bI")
            steps = np.frombuffer(body, "<f4", n_steps, p).astype(np.float64)
            p += 4 * n_steps
        n = int(np.prod(shape))
        if kind == 0:
            k, lanes, a = get("BII")
            counts = [int(c) for c in np.frombuffer(body, "<u2", a, p)]
            p += 2 * a
            bits = get("Q")
            payload = body[p:p + (bits + 63) // 64 * 8]
            p += len(payload)
            w = np.array(spec_decode(payload, bits, n, lanes, k, counts) if n else [], np.int64)
        elif kind == 1:
            w = np.frombuffer(body, "<i1", n, p).astype(np.int64)
            p += n
        else:
            w = np.frombuffer(body, "<f4", n, p)
            p += 4 * n
        assert p == len(body)
        if kind == 0 and lane_axis >= 0:
            moved = (shape[lane_axis],) + tuple(d for i, d in enumerate(shape) if i != lane_axis)
            arr = np.moveaxis(w.reshape(moved), 0, lane_axis)
        else:
            arr = w.reshape(shape)
        if quant == 1:
            arr = arr - zp
        if quant in (1, 2):
            view = [1] * len(shape)
            if step_axis >= 0:
                view[step_axis] = -1
            arr = arr * steps.reshape(view)
        out[name] = arr.astype(DTYPES[dcode])
    assert o == len(data) - 4
    return meta, out


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.tans")), ids=lambda p: p.stem)
def test_spec_decoder_reads_golden_files(path):
    meta, tensors = spec_read(path.read_bytes())
    if path.stem == "weights":
        expect = np.load(GOLDEN / "weights.npz")
        for name, arr in tensors.items():
            assert arr.dtype == expect[name].dtype and np.array_equal(arr, expect[name]), name
    else:
        (arr,) = tensors.values()
        expect = np.load(path.with_suffix(".npy"))
        assert arr.dtype == expect.dtype and np.array_equal(arr, expect)


def test_spec_table_matches_library_on_many_tables():
    from sw.tans import build_tables, normalize_counts
    rng = np.random.default_rng(0)
    for _ in range(25):
        k = int(rng.integers(5, 11))
        a = int(rng.integers(1, 40))
        n = normalize_counts(rng.integers(0, 300, a) + (np.arange(a) == 0), k)
        dec, _ = build_tables(n, k)
        sym, nb, base = spec_table([int(c) for c in n], k)
        assert dec.symbol.tolist() == sym and dec.nb_bits.tolist() == nb and dec.base.tolist() == base
