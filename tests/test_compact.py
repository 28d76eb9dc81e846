"""Compact side information (sw/container/compact.py): every coding is exact and every bad byte string is refused."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sw.container.compact import (STEPS_F32, STEPS_SCALED, decode_counts, decode_steps, encode_counts,
                                  encode_steps, read_varint, round_steps, scaled_steps, varint)
from sw.tans.errors import FormatError


@given(st.integers(0, 2**64 - 1))
def test_varint_round_trip(v):
    b = varint(v)
    assert read_varint(b + b"\x99", 0, "t") == (v, len(b))


@pytest.mark.parametrize("bad", [b"", b"\x80", b"\x80\x00", b"\xff" * 11, b"\xff" * 9 + b"\x7f"])
def test_varint_refuses_truncated_long_or_padded(bad):
    with pytest.raises(FormatError):
        read_varint(bad, 0, "t")


@settings(max_examples=60)
@given(st.integers(5, 12), st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_counts_round_trip(k, alphabet, seed):
    rng = np.random.default_rng(seed)
    norm = rng.multinomial(1 << k, rng.dirichlet(np.ones(alphabet)))
    data = encode_counts(norm, k)
    assert len(data) == ((alphabet - 1) * (k + 1) + 7) // 8
    assert (decode_counts(data, alphabet, k, "t") == norm).all()


def test_counts_that_overflow_the_table_are_refused():
    data = encode_counts(np.array([200, 100, 0]), 8)   # the first two already sum past 256
    with pytest.raises(FormatError, match="sum past"):
        decode_counts(data, 3, 8, "t")
    with pytest.raises(FormatError, match="padding"):
        decode_counts(bytes([0, 0, 0x80]), 3, 8, "t")      # 18 bits of fields, a padding bit set


@settings(max_examples=80)
@given(st.lists(st.floats(0.0009765625, 1024.0, width=32), min_size=1, max_size=200), st.sampled_from([None, 4, 8, 12]))
def test_steps_are_exact_float32(values, bits):
    s = np.array(values, np.float32)
    if bits:
        s = round_steps(s, bits)
    data = encode_steps(s)
    back, pos = decode_steps(data + b"tail", 0, s.size, "t")
    assert pos == len(data)
    assert back.dtype == np.float32 and back.tobytes() == s.tobytes()
    assert len(data) <= 1 + 4 * s.size


def test_rounded_steps_cost_their_mantissa_bits():
    s = np.linspace(0.011, 0.047, 120).astype(np.float32)
    r = round_steps(s, 8)
    assert np.abs(r / s - 1).max() < 2 ** -5           # the smallest keeps >= 6 significant bits
    e, b, _ = scaled_steps(r)
    assert b == 8
    data = encode_steps(r)
    assert data[0] == STEPS_SCALED and len(data) == 4 + 120
    assert encode_steps(np.float32([0.3]))[0] == STEPS_F32   # one odd step: plain f32 is smaller


@pytest.mark.parametrize("bad", [bytes([7]), bytes([STEPS_SCALED, 0, 0]), bytes([STEPS_SCALED, 0, 0, 0]),
                                 bytes([STEPS_SCALED, 0, 0, 40, 1]), bytes([STEPS_SCALED, 0, 0, 8]),
                                 bytes([STEPS_SCALED, 0, 0, 8, 0]), bytes([STEPS_F32, 0, 0])])
def test_bad_step_codings_are_refused(bad):
    with pytest.raises(FormatError):
        decode_steps(bad, 0, 1, "t")


def test_steps_of_an_empty_tensor_count_toward_the_limit():
    """8 scaled steps fit in a byte: a small file declaring millions of them along an axis of an
    empty tensor is refused by the size limit before they are decoded (they cost 4 bytes each)."""
    from sw import container as ct
    from sw.container.compact import pack_bits
    from sw.tans.errors import LimitError
    n = 8 << 20
    body = (varint(1) + b"x" + bytes([1, 10, 2]) + varint(0) + varint(n) + bytes([0xFF, 2]) + bytes([1])
            + bytes([STEPS_SCALED]) + (0).to_bytes(2, "little", signed=True) + bytes([1]) + pack_bits(np.ones(n), 1))
    with pytest.raises(LimitError):
        ct.decode_record(body, 0, 0, 2, budget=16 << 20)
    t = ct.decode_record(body, 0, 0, 2, budget=64 << 20)       # within the limit: decoded, exactly
    assert t.steps.size == n and (t.steps == 1.0).all()


def test_version2_reader_bounds_names_and_bins():
    from sw import container as ct
    long_name = varint(70000) + b"n" * 70000 + bytes([2, 10, 1]) + varint(1) + bytes([0xFF, 0]) + bytes(4)
    with pytest.raises(FormatError, match="name"):
        ct.decode_record(long_name, 0, 0, 2)
    from sw.tans.errors import InputError
    with pytest.raises(InputError, match="65535"):
        ct.tans_tensor("b", np.zeros(3, int), quant=1, bins=65537, zero_point=32768, steps=[0.5])
    with pytest.raises(InputError, match="version 3"):
        ct.to_bytes(ct.Container([]), major=3)


def test_stats_count_a_version1_file_in_its_own_layout():
    """`inspect`/`report` figures are the records as the file has them (here 1.0), not a rewrite."""
    from pathlib import Path
    from sw import container as ct
    path = Path(__file__).parent / "golden" / "weights.tans"
    data = path.read_bytes()
    meta_len = int.from_bytes(data[16:20], "little")
    records = len(data) - (20 + meta_len + 4) - 4          # header, metadata, header CRC ... file CRC
    c = ct.read(path)
    assert sum(t.stats()["total_bits"] for t in c.tensors) == 8 * records
    assert sum(ct.record_bits(t, 2) for t in c.tensors) < 8 * records     # the same tensors in 2.0


def test_codebook_levels_round_trip_and_bad_widths():
    """Codebook levels (FORMAT.md 2.3c): narrowest two's-complement width, exact back; width 0 or 17 refused."""
    from sw.container.compact import decode_levels, encode_levels, level_bits
    for lv in ([0], [-1, 0, 1], [-32768, 32767], [-5, -3, 0, 3, 5], [127, -128], [128]):
        data = encode_levels(np.array(lv))
        assert data[0] == level_bits(np.array(lv))
        back, pos = decode_levels(data + b"x", 0, len(lv), "t")
        assert back.tolist() == lv and pos == len(data)
    assert level_bits(np.array([127, -128])) == 8 and level_bits(np.array([128])) == 9
    for bad in (b"\x00", b"\x11" + bytes(8), b"\x10\x01"):
        with pytest.raises(FormatError):
            decode_levels(bad, 0, 2, "t")
