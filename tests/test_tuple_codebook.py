"""Version 2.1 (docs/FORMAT.md 2.3c): codebook quantizers and n-tuple coding, in software.

Round trips of every tuple size over ragged lanes and every lane layout (fast and golden decoder),
exact codebook dequantization, the delivery order the hardware follows, and the reader's checks:
every bad or truncated new field raises FormatError.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sw import container as ct
from sw.container.codebook import dead_zone_levels, grid_levels, uniform_levels
from sw.container.compact import encode_counts, encode_levels, encode_steps, varint
from sw.container.tuples import pack_tuples, tail_counts, tuple_count, tuple_weight_order, unpack_tuples
from sw.methods.compress import recode, smallest_tans_tensor
from sw.tans import encode, format as fmt
from sw.tans.errors import FormatError, InputError
from sw.tans.lanes import decode_order, lane_lengths


def file_of(bodies: list[bytes], minor: int) -> bytes:
    """A version-2.`minor` file around raw record bodies, every CRC right."""
    head = fmt.MAGIC + struct.pack("<HHII", 2, minor, len(bodies), 2) + b"{}"
    out = head + struct.pack("<I", zlib.crc32(head))
    for b in bodies:
        out += struct.pack("<I", len(b)) + b + struct.pack("<I", zlib.crc32(b))
    return out + struct.pack("<I", zlib.crc32(out))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 7), st.lists(st.integers(1, 9), min_size=1, max_size=3),
       st.integers(0, 2**32 - 1), st.booleans())
def test_tuple_round_trip_every_layout(tup, bins, shape, seed, codebook):
    """Any shape, lane count (ragged tails included) and lane axis: symbols, levels and values come back."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    idx = rng.integers(0, bins, shape)
    axis = int(rng.integers(-1, len(shape)))
    lanes = int(rng.integers(1, idx.size + 1))
    steps = np.float32([0.125])
    if codebook:
        levels = rng.integers(-40, 40, bins)
        t = ct.codebook_tensor("w", idx, levels, steps, lanes=lanes, lane_axis=axis, log2_states=9, tuple_size=tup)
    else:
        if bins % 2 == 0:
            bins += 1
        t = ct.tans_tensor("w", idx, log2_states=9, lanes=lanes, lane_axis=axis, quant=1, bins=bins,
                           zero_point=(bins - 1) // 2, steps=steps, tuple_size=tup)
    assert t.coded.n_symbols == tuple_count(idx.size, lanes, tup)
    back = ct.from_bytes(ct.to_bytes(ct.Container([t]))).tensors[0]
    assert back.tuple_size == tup
    assert np.array_equal(back.symbols(), idx) and np.array_equal(back.symbols(golden=True), idx)
    want = (levels[idx] if codebook else idx - (bins - 1) // 2) * np.float64(steps[0])
    assert np.array_equal(back.values(), want.astype(np.float32))


@pytest.mark.parametrize("n,lanes", [(10, 3), (11, 3), (9, 2), (8, 4), (1, 1), (17, 5), (64, 7)])
@pytest.mark.parametrize("tup", [1, 2, 3, 4])
def test_tuple_layout_is_part1_and_order_covers_every_weight(n, lanes, tup):
    """Tuple counts per lane are a Part 1 lane split of S symbols; the delivery order visits every
    weight once, tuple by tuple in decode-step order; the tail figures match the lanes."""
    per_lane = -(-lane_lengths(n, lanes) // tup)
    s = tuple_count(n, lanes, tup)
    assert np.array_equal(per_lane, lane_lengths(s, lanes))
    order = tuple_weight_order(n, lanes, tup)
    assert np.array_equal(np.sort(order), np.arange(n))
    if tup == 1:
        assert np.array_equal(order, decode_order(n, lanes))
    tc = tail_counts(n, lanes, tup)
    lens = lane_lengths(n, lanes)
    for j in range(lanes):
        last = tc["last_round_long"] if j < tc["long_lanes"] else tc["last_round_short"]
        tail = tc["tail_long"] if j < tc["long_lanes"] else tc["tail_short"]
        assert last * tup + tail == lens[j] and 1 <= tail <= tup
    idx = np.random.default_rng(n).integers(0, 3, n)
    assert np.array_equal(unpack_tuples(pack_tuples(idx, lanes, tup, 3), n, lanes, tup, 3), idx)


def test_codebook_dequantization_is_exact_per_channel():
    """level[index] * step per output channel in float64, rounded once to float32 (FORMAT.md 2.5)."""
    rng = np.random.default_rng(3)
    levels = np.array([-32768, -1000, -3, 0, 2, 77, 32767])
    idx = rng.integers(0, levels.size, (8, 6, 3, 3))
    steps = rng.uniform(1e-4, 1e-2, 8).astype(np.float32)
    t = ct.codebook_tensor("w", idx, levels, steps, 0, lanes=6, lane_axis=1, tuple_size=2)
    back = ct.from_bytes(ct.to_bytes(ct.Container([t]))).tensors[0]
    want = (levels[idx].astype(np.float64) * steps.astype(np.float64)[:, None, None, None]).astype(np.float32)
    assert back.values().tobytes() == want.tobytes()
    assert np.array_equal(back.integers(), levels[idx])


def test_level_helpers():
    assert uniform_levels(5).tolist() == [-2, -1, 0, 1, 2]
    assert dead_zone_levels(5, 1).tolist() == [-5, -3, 0, 3, 5]           # ±(2|j| + 1) on a half step
    assert grid_levels([-0.31, 0.0, 0.52], 0.01).tolist() == [-31, 0, 52]
    with pytest.raises(ValueError):
        grid_levels([1.0], 1e-6)                                            # needs more than 16 bits


def test_writer_refuses_what_the_format_cannot_hold():
    idx = np.zeros((4, 4), np.int64)
    with pytest.raises(InputError, match="65536"):
        ct.tans_tensor("w", idx, quant=1, bins=17, zero_point=8, steps=[1.0], tuple_size=4)
    with pytest.raises(InputError, match="tuple size"):
        ct.tans_tensor("w", idx, quant=1, bins=3, zero_point=1, steps=[1.0], tuple_size=5)
    with pytest.raises(InputError, match="zero-point or codebook"):
        ct.tans_tensor("w", idx, tuple_size=2)
    with pytest.raises(InputError, match="16-bit"):
        ct.codebook_tensor("w", idx, [0, 40000], [1.0])
    with pytest.raises(InputError, match="indices"):
        ct.codebook_tensor("w", idx + 2, [0, 1], [1.0])
    t = ct.codebook_tensor("w", idx, [0, 1], [1.0])
    with pytest.raises(InputError, match="2.1"):
        ct.to_bytes(ct.Container([t]), major=1)


def test_plain_files_stay_version_2_0():
    idx = np.random.default_rng(0).integers(0, 5, (6, 4))
    t = ct.tans_tensor("w", idx, lanes=4, lane_axis=1, quant=1, bins=5, zero_point=2, steps=[0.5])
    data = ct.to_bytes(ct.Container([t]))
    assert struct.unpack_from("<HH", data, 8) == (2, 0)
    t2 = ct.tans_tensor("w", idx, lanes=4, lane_axis=1, quant=1, bins=5, zero_point=2, steps=[0.5], tuple_size=2)
    data2 = ct.to_bytes(ct.Container([t2, ct.f32_tensor("b", np.ones(3))]))
    assert struct.unpack_from("<HH", data2, 8) == (2, 1)
    assert ct.encode_record(ct.f32_tensor("b", np.ones(3))) in data2      # other records as in 2.0


def test_recode_in_tuples():
    rng = np.random.default_rng(5)
    idx = rng.choice(5, (16, 8, 3, 3), p=[0.05, 0.15, 0.6, 0.15, 0.05])
    t = smallest_tans_tensor("w", idx, 8, lanes=8, lane_axis=1, dtype=np.float32, quant=1, bins=5, zero_point=2,
                             steps=np.full(16, 0.25, np.float32), step_axis=0)
    c = ct.Container([t, ct.f32_tensor("b", np.ones(3))], {"x": 1})
    c2 = recode(c, 2)
    assert c2["w"].tuple_size == 2 and c2["w"].coded.lanes == 8
    assert np.array_equal(c2["w"].values(), t.values()) and c2.metadata == {"x": 1}
    with pytest.raises(InputError, match="layer w"):
        recode(c, 4) if 5 ** 4 > fmt.MAX_ALPHABET else recode(ct.Container([
            ct.tans_tensor("w", idx, quant=1, bins=17, zero_point=8, steps=[1.0], lanes=8, lane_axis=1)]), 4)


# --- crafted records: every new field checked --------------------------------------------------

def body(*, quant=3, bins=3, levels_field=None, k_byte=None, tup=1, idx=None, zp_bins=None, lanes=2,
         syms=None, alphabet=None) -> bytes:
    """A version-2.1 record body of a 6-weight tensor built field by field (FORMAT.md 2.3b/2.3c)."""
    idx = np.array([0, 1, 2, 2, 1, 0]) if idx is None else idx
    if syms is None:
        syms = pack_tuples(idx, lanes, tup, bins)
    coded = encode(syms, 5, lanes)
    out = varint(1) + b"w" + struct.pack("<BBB", fmt.KIND_TANS, 10, 1) + varint(idx.size)
    out += struct.pack("<bB", -1, quant)
    if quant in (1, 3):
        out += varint(bins)
    if quant == 3:
        out += encode_levels(np.arange(bins) - 1) if levels_field is None else levels_field
    if quant in (1, 3):
        out += struct.pack("<b", -1) + encode_steps(np.float32([0.5]))
    a = coded.alphabet if alphabet is None else alphabet
    norm = coded.norm if alphabet is None else np.append(coded.norm, np.zeros(a - coded.alphabet, np.int64))
    out += bytes([5 | (tup - 1) << 4 if k_byte is None else k_byte]) + varint(lanes) + varint(a)
    out += encode_counts(norm, 5) + varint(coded.payload_bits) + coded.payload[:(coded.payload_bits + 7) // 8]
    return out


def test_crafted_good_record_reads():
    c = ct.from_bytes(file_of([body(tup=2)], 1))
    assert c.tensors[0].integers().tolist() == [-1, 0, 1, 1, 0, -1]


@pytest.mark.parametrize("name,data,match", [
    ("codebook in 2.0", lambda: file_of([body()], 0), "needs version 2.1"),
    ("tuple in 2.0", lambda: file_of([body(quant=1, bins=3, tup=2)], 0), "table size"),
    ("tuple size 5", lambda: file_of([body(k_byte=5 | 4 << 4)], 1), "tuple size"),
    ("top bits", lambda: file_of([body(k_byte=5 | 0x80)], 1), "tuple size"),
    ("tuple without quantizer", lambda: file_of([body(quant=0, tup=2)], 1), "tuple coding without"),
    ("bins^N too large", lambda: file_of([body(bins=300, tup=2, syms=np.array([0, 1, 2]),
                                               idx=np.array([0, 1, 2, 0, 1, 2]))], 1), "65536"),
    ("alphabet past bins", lambda: file_of([body(alphabet=4)], 1), "symbols for 3 bins"),
    ("alphabet past bins^N", lambda: file_of([body(tup=2, alphabet=10)], 1), "in tuples of 2"),
    ("zero bins", lambda: file_of([body(bins=0, levels_field=b"\x01", syms=np.array([0, 0]))], 1), "codebook of 0"),
    ("level width 0", lambda: file_of([body(levels_field=b"\x00\x00")], 1), "level width"),
    ("level width 17", lambda: file_of([body(levels_field=bytes([17]) + bytes(7))], 1), "level width"),
    ("truncated levels", lambda: file_of([body(levels_field=bytes([16, 1, 2]))], 1), None),
])
def test_bad_new_fields_are_refused(name, data, match):
    with pytest.raises(FormatError, match=match):
        c = ct.from_bytes(data())
        for t in c.tensors:
            t.values()


def test_level_padding_bit_is_refused():
    # 3 levels of 2 bits = 6 bits: the byte's top two bits are padding
    good = encode_levels(np.array([-1, 0, 1]))
    ct.from_bytes(file_of([body(levels_field=good)], 1))
    with pytest.raises(FormatError, match="padding"):
        ct.from_bytes(file_of([body(levels_field=bytes([good[0], good[1] | 0x80]))], 1))


def test_nonzero_padding_digit_is_refused_on_decode():
    # 6 weights over 4 lanes in pairs: lanes 0, 1 hold 2 weights, lanes 2, 3 one (a padded pair each)
    idx = np.array([0, 1, 2, 2, 1, 0])
    syms = pack_tuples(idx, 4, 2, 3)
    assert syms.tolist() == [0 + 3 * 1, 2 + 3 * 2, 1, 0]
    ct.from_bytes(file_of([body(tup=2, lanes=4, syms=syms)], 1)).tensors[0].values()
    bad = syms.copy()
    bad[3] = 0 + 3 * 2                                  # lane 3's padding digit set
    c = ct.from_bytes(file_of([body(tup=2, lanes=4, syms=bad)], 1))
    for golden in (False, True):
        with pytest.raises(FormatError, match="padding digit"):
            c.tensors[0].values(golden)


def test_every_truncation_and_byte_flip_of_a_21_record_is_an_error_or_a_value():
    """Truncated at every byte and each byte XORed (CRCs recomputed): FormatError or a clean decode."""
    rng = np.random.default_rng(9)
    idx = rng.integers(0, 5, (5, 4))
    t = ct.codebook_tensor("w", idx, dead_zone_levels(5, 1), rng.uniform(0.1, 1, 5).astype(np.float32), 0,
                           lanes=3, lane_axis=1, log2_states=6, tuple_size=3)
    rec = ct.encode_record(t)
    cases = [rec[:i] for i in range(len(rec))]
    cases += [rec[:i] + bytes([rec[i] ^ x]) + rec[i + 1:] for i in range(len(rec)) for x in (1, 0x10, 0x80)]
    refused = 0
    for b in cases:
        try:
            c = ct.from_bytes(file_of([b], 1))
            c.tensors[0].values()
            c.tensors[0].values(golden=True)
        except FormatError:
            refused += 1
    assert refused >= len(rec)                 # every truncation at least


def test_cycle_model_counts_symbols_for_tuples():
    """sim/model/cycles.py: a tuple-coded layer's rounds count its symbols (N weights each), and its
    codebook section is fetched and loaded one entry per cycle."""
    from sim.model.cycles import HwModel, layer_traffic, simulate
    rng = np.random.default_rng(2)
    idx = rng.choice(5, (64, 16, 3), p=[0.05, 0.15, 0.6, 0.15, 0.05])
    kw = dict(lanes=16, lane_axis=1, quant=1, bins=5, zero_point=2, steps=[0.5])
    one = ct.tans_tensor("w", idx, **kw)
    two = ct.tans_tensor("w", idx, tuple_size=2, **kw)
    hw = HwModel(bytes_per_cycle=64, weights_per_cycle=2)
    (a,), (b,) = layer_traffic(ct.Container([one])), layer_traffic(ct.Container([two]))
    assert a.weights == b.weights == idx.size and b.coded_symbols == idx.size // 2 and b.cb_entries > 0
    ca, cb = simulate([a], "compressed", hw)[0].cycles, simulate([b], "compressed", hw)[0].cycles
    rounds = idx.size // 16 * 8            # 16 lanes, P = 2: 8 cycles a round
    assert ca - cb == pytest.approx(rounds / 2 - b.cb_entries, abs=40)


def test_compress_tuple_option_codes_the_same_values(tmp_path):
    """`python -m sw compress --tuple 2` (sw.api.compress_file): the same reconstruction as scalar
    coding, written as a 2.1 file with every coded layer in pairs; bins^N too large is one clear error."""
    import torch
    from sw.api import compress_file
    from sw.models.zoo import build_model
    torch.manual_seed(0)
    torch.save(build_model("lenet5").state_dict(), tmp_path / "sd.pt")
    one, _ = compress_file(tmp_path / "sd.pt", tmp_path / "one.tans", model="lenet5", bins=5)
    two, _ = compress_file(tmp_path / "sd.pt", tmp_path / "two.tans", model="lenet5", bins=5, tuple_size=2)
    back = ct.read(tmp_path / "two.tans")
    assert struct.unpack_from("<HH", (tmp_path / "two.tans").read_bytes(), 8) == (2, 1)
    coded = [t for t in back.tensors if t.kind == fmt.KIND_TANS]
    assert coded and all(t.tuple_size == 2 for t in coded)
    for t in back.tensors:
        assert np.array_equal(t.values(), one[t.name].values()), t.name
    with pytest.raises(InputError, match="layer .*31\\^4"):
        compress_file(tmp_path / "sd.pt", tmp_path / "bad.tans", model="lenet5", bins=31, tuple_size=4)
    assert not (tmp_path / "bad.tans").exists()
