"""Memory image layout (hw/fetch/image.py) and descriptor packing (hw/fetch/descriptor.py), no simulator."""
from __future__ import annotations

import numpy as np
import pytest

from hw.fetch.descriptor import DESCRIPTOR, Descriptor
from hw.fetch.image import SECTION_ALIGN, build_image, expected_stream, unpack_entry
from sw import container as ctr
from sw.tans import format as fmt
from sw.tans.reference import steps


def small_container() -> ctr.Container:
    rng = np.random.default_rng(1)
    w = np.clip(np.round(rng.laplace(0, 0.8, (12, 10))), -2, 2).astype(np.int64) + 2
    wide = rng.integers(0, 40, (6, 70))            # 40 symbols: needs 32-bit entries
    return ctr.Container([
        ctr.tans_tensor("a", w, log2_states=6, lanes=10, lane_axis=1, quant=fmt.QUANT_ZERO_POINT,
                        bins=5, zero_point=2, steps=[0.25]),
        ctr.f32_tensor("a.bias", np.ones(12)),
        ctr.int8_tensor("b", rng.integers(-128, 128, (3, 7)), steps=[0.1, 0.2, 0.3], step_axis=0),
        ctr.tans_tensor("c", wide, log2_states=7, lanes=3),
    ])


def test_regions_hold_table_then_payload() -> None:
    c = small_container()
    im = build_image(c)
    assert im.names == ["a", "b", "c"]
    for d, name in zip(im.descriptors, im.names):
        t = c[name]
        assert d.addr % SECTION_ALIGN == 0 and d.total_bytes % 8 == 0
        region = im.region(im.names.index(name))
        if t.kind == fmt.KIND_TANS:
            eb = d.table_bytes >> d.log2_states
            assert eb == (4 if d.wide_entries else 2) and d.log2_states == t.coded.log2_states
            words = np.frombuffer(region[:d.table_bytes], dtype="<u4" if eb == 4 else "<u2")
            assert [unpack_entry(int(x), eb) for x in words] == \
                [tuple(map(int, e)) for e in t.coded.decode_table().entries()]
            assert region[d.table_bytes:] == t.coded.payload
            assert (d.lanes, d.n_symbols, d.payload_bits) == (t.coded.lanes, t.size, t.coded.payload_bits)
        else:
            assert region[:t.size] == t.raw.astype(np.int8).tobytes()
    assert im.descriptors[2].wide_entries and not im.descriptors[0].wide_entries
    assert im.descriptors[1].steps_addr == im.extras["b.steps"][0]   # per-channel steps placed
    addr, n = im.extras["a.bias"]
    assert bytes(im.data[addr:addr + n]) == np.ones(12, "<f4").tobytes()


def test_expected_stream_is_decode_step_order() -> None:
    """The delivered order equals the golden decoder's step order (reference model)."""
    c = small_container()
    t = c["a"]
    ref = [sym - t.zero_point for _, _, _, sym in steps(t.coded, t.coded.decode_table())]
    assert expected_stream(t).tolist() == ref
    assert expected_stream(c["b"]).tolist() == c["b"].raw.tolist()


def test_descriptor_pack_fields_and_overflow() -> None:
    d = Descriptor(kind=0, addr=0x1240, table_bytes=128, payload_bytes=4096, log2_states=6,
                   wide_entries=False, lanes=300, n_symbols=123456, payload_bits=32000,
                   zero_point=7, step_bits=0x3E800000, layer=9, steps_addr=0x2000)
    raw = d.pack()
    for name, f in DESCRIPTOR:
        assert (raw >> f.offset) & ((1 << f.width) - 1) == int(getattr(d, name))
    d.lanes = 1 << 16
    with pytest.raises(ValueError):
        d.pack()
