"""The .tans container: round trips, golden vectors, and damage of every kind."""
import struct
from pathlib import Path

import numpy as np
import pytest

from sw import container as ct
from sw.tans import FormatError, InputError
from sw.tans import format as fmt

GOLDEN = Path(__file__).parent / "golden"
CASES = ["tiny_l32_1lane", "peaked_l256_7lanes", "single_symbol_l64", "wide_l1024_64lanes"]


@pytest.mark.parametrize("name", CASES)
def test_golden_vectors_decode(name):
    c = ct.read(GOLDEN / f"{name}.tans")
    expect = np.load(GOLDEN / f"{name}.npy")
    got = c.tensors[0].values()
    assert got.dtype == expect.dtype and got.shape == expect.shape
    assert np.array_equal(got, expect)


@pytest.mark.parametrize("name", CASES)
def test_golden_vectors_reencode_byte_exact(name):
    """Encoding the same symbols again gives the same bytes: any format change fails here."""
    t = ct.read(GOLDEN / f"{name}.tans").tensors[0]
    again = ct.tans_tensor(t.name, np.load(GOLDEN / f"{name}.npy"), log2_states=t.coded.log2_states,
                           lanes=t.coded.lanes)
    assert ct.to_bytes(ct.Container([again]), major=1) == (GOLDEN / f"{name}.tans").read_bytes()


@pytest.mark.parametrize("name", ["tiny_l32_1lane", "peaked_l256_7lanes", "single_symbol_l64", "wide_l1024_64lanes",
                                  "weights"])
def test_version1_files_rewrite_as_smaller_version2(name):
    """A 1.x file read and written again as 2.0: every field and value the same, fewer bytes."""
    old = (GOLDEN / f"{name}.tans").read_bytes()
    c = ct.from_bytes(old)
    new = ct.to_bytes(c)
    assert new[8:10] == b"\x02\x00" and len(new) < len(old)
    back = ct.from_bytes(new)
    for a, b in zip(c.tensors, back.tensors):
        assert (a.name, a.shape, a.dtype, a.kind, a.quant, a.bins, a.zero_point, a.step_axis, a.lane_axis) == \
               (b.name, b.shape, b.dtype, b.kind, b.quant, b.bins, b.zero_point, b.step_axis, b.lane_axis)
        assert a.steps.tobytes() == b.steps.tobytes()
        if a.coded is not None:
            assert a.coded.payload == b.coded.payload and a.coded.payload_bits == b.coded.payload_bits
            assert (a.coded.norm == b.coded.norm).all()
        assert np.array_equal(a.values(golden=True), b.values(golden=True))
    assert ct.to_bytes(back, major=1) == old


def test_version2_payload_padding_is_checked():
    """2.0 pads the payload to a byte: a set padding bit is damage, caught by the reader."""
    t = ct.tans_tensor("p", np.array([0, 1, 1, 0, 2, 1, 1]), log2_states=5, lanes=1)
    assert t.coded.payload_bits % 8
    body = bytearray(ct.encode_record(t))
    body[-1] |= 0x80
    with pytest.raises(FormatError, match="padding"):
        ct.decode_record(bytes(body), 0)


def test_golden_weights_container():
    c = ct.read(GOLDEN / "weights.tans")
    expect = np.load(GOLDEN / "weights.npz")
    assert c.metadata == {"model": "golden"}
    for t in c.tensors:
        assert np.array_equal(t.values(), expect[t.name]), t.name
    w = c["conv.weight"]
    assert w.coded.lanes == 3 and w.lane_axis == 1
    # per-output-channel steps and the zero point give the dequantized values
    assert np.allclose(w.values(), w.integers() * w.steps.reshape(-1, 1, 1, 1))
    assert np.all(np.abs(w.integers()) <= 3)


def test_reference_decoder_on_golden_vectors():
    from sw.tans import decode_reference
    for name in CASES:
        t = ct.read(GOLDEN / f"{name}.tans").tensors[0]
        assert np.array_equal(decode_reference(t.coded).reshape(t.shape), np.load(GOLDEN / f"{name}.npy"))


def test_lane_axis_groups_input_channels():
    rng = np.random.default_rng(0)
    sym = rng.integers(0, 5, (6, 4, 3, 3))
    t = ct.tans_tensor("w", sym, lanes=4, lane_axis=1, quant=fmt.QUANT_ZERO_POINT, bins=5, zero_point=2,
                       steps=[0.1])
    assert np.array_equal(t.symbols(), sym)
    # lane j holds input channel j: the coded order is the tensor with axis 1 first
    from sw.tans import decode
    assert np.array_equal(decode(t.coded).reshape(4, -1)[2], np.moveaxis(sym, 1, 0)[2].reshape(-1))


def test_all_dtypes_roundtrip(tmp_path):
    for dt in ["u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8"]:
        sym = np.arange(12, dtype=dt).reshape(3, 4) % 5
        ct.write(tmp_path / "a.tans", ct.Container([ct.tans_tensor("a", sym, lanes=2)]))
        back = ct.read(tmp_path / "a.tans").tensors[0].values()
        assert back.dtype == np.dtype(dt) and np.array_equal(back, sym)


def test_zero_point_requires_odd_bins():
    with pytest.raises(InputError, match="odd"):
        ct.tans_tensor("w", np.zeros(4, int), quant=fmt.QUANT_ZERO_POINT, bins=4, zero_point=2, steps=[1.0])
    with pytest.raises(InputError, match="outside"):
        ct.tans_tensor("w", np.array([0, 5]), quant=fmt.QUANT_ZERO_POINT, bins=5, zero_point=2, steps=[1.0])


@pytest.fixture
def data():
    return (GOLDEN / "weights.tans").read_bytes()


def test_every_truncation_is_rejected(data):
    for n in range(0, len(data)):
        with pytest.raises(FormatError):
            ct.from_bytes(data[:n])


def test_every_flipped_byte_is_rejected(data):
    for i in range(len(data)):
        d = bytearray(data)
        d[i] ^= 0xFF
        with pytest.raises(FormatError):
            c = ct.from_bytes(bytes(d))
            for t in c.tensors:
                t.values()


def test_wrong_magic_and_version(data):
    with pytest.raises(FormatError, match="magic"):
        ct.from_bytes(b"NOTATANS" + data[8:])
    bumped = data[:8] + struct.pack("<H", fmt.VERSION_MAJOR + 1) + data[10:]
    with pytest.raises(FormatError, match="version"):
        ct.from_bytes(bumped)


def _rebuild(tensor_bytes_fn):
    """A version-1.0 container whose record body was altered and whose CRCs were recomputed (a bad writer)."""
    import zlib
    c = ct.read(GOLDEN / "peaked_l256_7lanes.tans")
    body = tensor_bytes_fn(bytearray(ct.encode_record(c.tensors[0], 1)))
    meta = b"{}"
    head = fmt.MAGIC + struct.pack("<HHII", 1, 0, 1, len(meta)) + meta
    data = head + struct.pack("<I", zlib.crc32(head)) + struct.pack("<I", len(body)) + bytes(body) \
        + struct.pack("<I", zlib.crc32(bytes(body)))
    return data + struct.pack("<I", zlib.crc32(data))


def test_inconsistent_table_with_valid_crcs_is_rejected():
    t = ct.read(GOLDEN / "peaked_l256_7lanes.tans").tensors[0]
    name_len = len(t.name.encode())
    # offset of the counts: name, kind/dtype/ndim, shape, lane_axis/quant, log2/lanes/alphabet
    off = 2 + name_len + 3 + 8 * len(t.shape) + 2 + 9

    def bump(b):
        b[off] = (b[off] + 1) & 0xFF
        return b
    with pytest.raises(FormatError, match="table"):
        ct.from_bytes(_rebuild(bump))

    def swap(b):  # still sums to l, but a different table: the final-state check fires
        b[off] = (b[off] + 1) & 0xFF
        b[off + 2] = (b[off + 2] - 1) & 0xFF
        return b
    c = ct.from_bytes(_rebuild(swap))
    with pytest.raises(FormatError):
        c.tensors[0].values()


def test_write_is_atomic(tmp_path):
    target = tmp_path / "x.tans"
    with pytest.raises(InputError):
        ct.write(target, ct.Container([ct.Tensor("x" * 70000, (1,), np.dtype("u1"), fmt.KIND_RAW_F32,
                                                 raw=np.zeros(1, np.float32))]))
    assert not target.exists() and not list(tmp_path.iterdir())
