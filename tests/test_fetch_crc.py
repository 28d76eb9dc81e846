"""The fetch path's parallel CRC-32 (hw/fetch/crc.py) against zlib, in software and in the Amaranth simulator."""
from __future__ import annotations

import random
import zlib

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.fetch.crc import Crc32, XOR_OUT, crc32_words, update_masks
from hw.fetch.image import build_image
from tests.test_fetch_image import small_container


@pytest.mark.parametrize("bits", [8, 32, 64])
def test_generated_update_is_zlib(bits):
    rnd = random.Random(bits)
    for n in (0, 1, 7, 64):
        blob = bytes(rnd.randrange(256) for _ in range(n * bits // 8))
        words = [int(w) for w in np.frombuffer(blob, f"<u{bits // 8}")]
        assert crc32_words(words, bits) ^ XOR_OUT == zlib.crc32(blob)


def test_masks_are_linear_in_state_and_data():
    """A changed data bit always changes the CRC (no data bit is ignored by the network)."""
    masks = update_masks(64)
    assert all(any(dm >> j & 1 for _, dm in masks) for j in range(64))


def test_crc32_component_matches_zlib():
    """The RTL: random enable gaps, a clear between two messages."""
    rnd = random.Random(5)
    msgs = [bytes(rnd.randrange(256) for _ in range(8 * n)) for n in (37, 5)]
    dut = Crc32(64)
    seen = []

    async def tb(ctx):
        for msg in msgs:
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            for w in np.frombuffer(msg, "<u8"):
                while rnd.random() < 0.3:
                    ctx.set(dut.en, 0)
                    ctx.set(dut.data, rnd.getrandbits(64))   # ignored without en
                    await ctx.tick()
                ctx.set(dut.data, int(w))
                ctx.set(dut.en, 1)
                await ctx.tick()
            ctx.set(dut.en, 0)
            seen.append(ctx.get(dut.crc))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert seen == [zlib.crc32(m) for m in msgs]


def test_image_carries_region_crc():
    im = build_image(small_container())
    for i, d in enumerate(im.descriptors):
        assert d.crc == zlib.crc32(im.region(i)) and d.crc != 0
