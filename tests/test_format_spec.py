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


def spec_varint(body, p):
    v = s = 0
    while True:
        b = body[p]
        p += 1
        v |= (b & 0x7F) << s
        s += 7
        if not b & 0x80:
            return v, p


def spec_fields(data, p, n, width):
    """n fields of `width` bits, LSB-first, from byte p; returns them and the byte after the padding."""
    out = [sum(((data[p + ((i * width + t) >> 3)] >> ((i * width + t) & 7)) & 1) << t for t in range(width))
           for i in range(n)]
    end = p + (n * width + 7) // 8
    assert all(((data[p + (q >> 3)] >> (q & 7)) & 1) == 0 for q in range(n * width, 8 * (end - p)))
    return out, end


def spec_read(data):
    assert data[:8] == b"\x89TANS\r\n\x1a"
    major, minor, n_t, meta_len = struct.unpack_from("<HHII", data, 8)
    assert (major, minor) in ((1, 0), (2, 0), (2, 1))
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

        def var():
            nonlocal p
            v, p = spec_varint(body, p)
            return v
        if major == 1:
            name = body[2:2 + get("H")].decode()
        else:
            ln = var()
            name = body[p:p + ln].decode()
        p += len(name.encode())
        kind, dcode, ndim = get("BBB")
        if major == 1:
            shape = tuple(get(f"{ndim}Q")) if ndim > 1 else ((get("Q"),) if ndim == 1 else ())
        else:
            shape = tuple(var() for _ in range(ndim))
        lane_axis, quant = get("bB")
        zp, step_axis, steps, bins, levels = 0, -1, None, 0, None
        assert quant != 3 or (major, minor) == (2, 1)
        if quant == 1:
            if major == 1:
                bins, zp = get("HH")
            else:
                bins = var()
                zp = (bins - 1) // 2
        if quant == 3:                       # 2.3c: bins, level_bits, two's-complement levels
            bins = var()
            lb = get("B")
            fields, p = spec_fields(body, p, bins, lb)
            levels = np.array([v - (1 << lb) if v >= 1 << (lb - 1) else v for v in fields], np.int64)
        if quant in (1, 2, 3):
            if major == 1:
                step_axis, n_steps = get("bI")
            else:
                step_axis = get("b")
                n_steps = 1 if step_axis < 0 else shape[step_axis]
            code = get("B") if major == 2 else 0
            if code == 0:
                steps = np.frombuffer(body, "<f4", n_steps, p).astype(np.float64)
                p += 4 * n_steps
            else:
                assert code == 1
                e, b = get("hB")
                ints, p = spec_fields(body, p, n_steps, b)
                steps = np.array([m * 2.0 ** e for m in ints])
        n = int(np.prod(shape))
        if kind == 0:
            if major == 1:
                k, lanes, a = get("BII")
                counts = [int(c) for c in np.frombuffer(body, "<u2", a, p)]
                p += 2 * a
                bits = get("Q")
                payload = body[p:p + (bits + 63) // 64 * 8]
            else:
                k = get("B")
                tup = (k >> 4) + 1 if minor == 1 else 1        # 2.3c: tuple size in bits 4-5
                k &= 15 if minor == 1 else 255
                lanes, a = var(), var()
                counts, p = spec_fields(body, p, max(a - 1, 0), k + 1)
                if a:
                    counts.append((1 << k) - sum(counts))
                bits = var()
                payload = body[p:p + (bits + 7) // 8]
            p += len(payload)
            if major == 1:
                tup = 1
            if n and tup > 1:                                   # 2.3c: lanes of tuples
                q, r = divmod(n, lanes)
                length = [q + (j < r) for j in range(lanes)]
                start = [j * q + min(j, r) for j in range(lanes)]
                ntup = [-(-ln // tup) for ln in length]
                y = spec_decode(payload, bits, sum(ntup), lanes, k, counts)
                w = np.zeros(n, np.int64)
                g = 0
                for j in range(lanes):
                    for t in range(ntup[j]):
                        for i in range(tup):
                            d = (y[g] // bins ** i) % bins
                            if t * tup + i < length[j]:
                                w[start[j] + t * tup + i] = d
                            else:
                                assert d == 0, "padding digit"
                        g += 1
            else:
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
        if quant == 3:
            arr = levels[arr]
        if quant in (1, 2, 3):
            view = [1] * len(shape)
            if step_axis >= 0:
                view[step_axis] = -1
            arr = arr * steps.reshape(view)
        out[name] = arr.astype(DTYPES[dcode])
    assert o == len(data) - 4
    return meta, out


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.tans")), ids=lambda p: p.stem)
def test_spec_decoder_reads_version2_rewrites(path):
    """The golden files rewritten by the library as version 2.0 (compact records) read the same."""
    from sw import container as ct
    v1 = spec_read(path.read_bytes())
    v2 = spec_read(ct.to_bytes(ct.from_bytes(path.read_bytes())))
    assert v1[0] == v2[0] and v1[1].keys() == v2[1].keys()
    for name in v1[1]:
        assert v1[1][name].dtype == v2[1][name].dtype and np.array_equal(v1[1][name], v2[1][name]), name


def test_spec_decoder_reads_compact_steps():
    """Rounded per-channel steps take the shared-exponent coding; the spec decoder rebuilds them exactly."""
    from sw import container as ct
    from sw.container.compact import round_steps
    rng = np.random.default_rng(1)
    sym = rng.integers(0, 5, (12, 6, 3))
    steps = round_steps(rng.uniform(0.01, 0.05, 12), 8)
    t = ct.tans_tensor("w", sym, log2_states=6, lanes=6, lane_axis=1, quant=1, bins=5, zero_point=2,
                       steps=steps, step_axis=0)
    _meta, out = spec_read(ct.to_bytes(ct.Container([t])))
    assert np.array_equal(out["w"], t.values())


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


@pytest.mark.parametrize("tup", [1, 2, 3, 4])
def test_spec_decoder_reads_codebook_and_tuples(tup):
    """Version 2.1 (FORMAT.md 2.3c): codebook levels (a dead zone on a half step, negative and
    wide levels) and tuple-coded tensors with ragged lane tails, every lane layout, decode from the
    document's rules alone to the library's values."""
    from sw import container as ct
    from sw.container.codebook import dead_zone_levels
    rng = np.random.default_rng(tup)
    tensors = []
    for i, (shape, lanes, axis) in enumerate([((7, 5, 3), 5, 1), ((13,), 3, -1), ((6, 4, 3), 2, 1), ((11, 3), 1, -1)]):
        idx = rng.integers(0, 5, shape)
        tensors.append(ct.tans_tensor(f"z{i}", idx, log2_states=7, lanes=lanes, lane_axis=axis, quant=1, bins=5,
                                      zero_point=2, steps=np.float32([0.5]), tuple_size=tup))
        steps = rng.uniform(0.01, 0.1, shape[0]).astype(np.float32)
        levels = dead_zone_levels(5, 1) if i % 2 else np.array([-300, -7, 0, 5, 9000])
        tensors.append(ct.codebook_tensor(f"c{i}", idx, levels, steps, 0, lanes=lanes, lane_axis=axis,
                                          log2_states=7, tuple_size=tup))
    data = ct.to_bytes(ct.Container(tensors))
    assert struct.unpack_from("<HH", data, 8) == (2, 1)
    _meta, out = spec_read(data)
    for t in tensors:
        assert out[t.name].dtype == np.float32 and np.array_equal(out[t.name], t.values()), t.name
