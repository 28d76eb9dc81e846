"""`python -m hw.fetch.image MODEL --format hex|mem|coe|bin|h`: every format read back equals the
image and descriptors the fetch path is built for; the C header compiles and its #defines slice
the descriptors correctly (a C program checks every tensor's CRC with them)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hw.fetch.descriptor import DESCRIPTOR
from hw.fetch.export import DESC_WORDS, desc_path
from hw.fetch.image import build_image
from sim.model.demo import cached_demo
from sw import container as ctr

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model() -> tuple[Path, object]:
    path = cached_demo()
    return path, build_image(ctr.read(path), base=0x1000)


def cli(*args: str) -> subprocess.CompletedProcess:
    """The command in this process (fast); test_damaged_model_one_line_error runs it for real."""
    import contextlib
    import io
    from hw.fetch.image import main
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def cli_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hw.fetch.image", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def words_of(text: str, comment: str) -> list[int]:
    body = [ln.split(comment)[0].strip() for ln in text.splitlines()]
    return [int(t.rstrip(",;"), 16) for ln in body for t in ln.split() if t and not t.startswith("@")
            and "=" not in t]


def image_bytes(words: list[int], nb: int) -> bytes:
    return b"".join(w.to_bytes(nb, "little") for w in words)


@pytest.mark.parametrize("fmt,comment", [("hex", "//"), ("mem", "//"), ("coe", ";")])
def test_text_formats_round_trip(model, tmp_path, fmt, comment):
    path, im = model
    out = tmp_path / f"m.{fmt}"
    r = cli(path, "--format", fmt, "-o", out, "--base", "0x1000", "--word-bits", "32")
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    if fmt == "coe":
        text = text.replace("memory_initialization_radix=16;", "").replace("memory_initialization_vector=", "")
    if fmt == "mem":
        assert "\n@0\n" in text
    data = image_bytes(words_of(text, comment), 4)
    assert data == bytes(im.data) + bytes(-len(im.data) % 4)
    dtext = desc_path(out).read_text()
    if fmt == "coe":
        dtext = re.sub(r"memory_initialization_\w+=(16;)?", "", dtext)
    assert words_of(dtext, comment) == [d.pack() for d in im.descriptors]


def test_bin(model, tmp_path):
    path, im = model
    out = tmp_path / "m.bin"
    assert cli(path, "--format", "bin", "-o", out, "--base", "4096").returncode == 0
    assert out.read_bytes() == bytes(im.data) + bytes(-len(im.data) % 8)
    raw = desc_path(out).read_bytes()
    n = 4 * DESC_WORDS
    assert [int.from_bytes(raw[i:i + n], "little") for i in range(0, len(raw), n)] == \
        [d.pack() for d in im.descriptors]


C_CHECK = r"""
#include <stdio.h>
#include "m.h"
static uint32_t field(const uint32_t *w, unsigned off, unsigned width) {
  uint64_t v = 0;
  for (unsigned b = 0; b < width; b++)
    v |= (uint64_t)((w[(off + b) / 32] >> ((off + b) % 32)) & 1u) << b;
  return (uint32_t)v;
}
static uint32_t crc32(const uint8_t *p, uint32_t n) {
  uint32_t c = 0xFFFFFFFFu;
  while (n--) { c ^= *p++; for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & -(c & 1u)); }
  return ~c;
}
int main(void) {
  for (unsigned i = 0; i < TANS_N_DESCRIPTORS; i++) {
    const uint32_t *d = tans_descriptors[i];
    uint32_t addr = field(d, TANS_DESC_ADDR_OFFSET, TANS_DESC_ADDR_WIDTH);
    uint32_t n = field(d, TANS_DESC_TABLE_BYTES_OFFSET, TANS_DESC_TABLE_BYTES_WIDTH)
               + field(d, TANS_DESC_PAYLOAD_BYTES_OFFSET, TANS_DESC_PAYLOAD_BYTES_WIDTH);
    uint32_t crc = field(d, TANS_DESC_CRC_OFFSET, TANS_DESC_CRC_WIDTH);
    if (crc32(tans_image + (addr - TANS_IMAGE_BASE), n) != crc) { printf("bad %u\n", i); return 1; }
    printf("%u %u %u %u\n", i, field(d, TANS_DESC_KIND_OFFSET, TANS_DESC_KIND_WIDTH),
           field(d, TANS_DESC_N_SYMBOLS_OFFSET, TANS_DESC_N_SYMBOLS_WIDTH), TANS_ERR_CRC);
  }
  return 0;
}
"""


def test_c_header_compiles_and_slices(model, tmp_path):
    path, im = model
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler")
    assert cli(path, "--format", "h", "-o", tmp_path / "m.h", "--base", "0x1000").returncode == 0
    (tmp_path / "check.c").write_text(C_CHECK)
    r = subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-o", "check", "check.c"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(tmp_path / "check")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    assert r.stdout.split("\n")[:-1] == [f"{i} {d.kind} {d.n_symbols} 7" for i, d in enumerate(im.descriptors)]
    assert DESCRIPTOR["crc"].offset + 32 <= 32 * DESC_WORDS


def test_damaged_model_one_line_error(model, tmp_path):
    path, _ = model
    bad = tmp_path / "bad.tans"
    bad.write_bytes(path.read_bytes()[:100])
    for args in ([bad, "--format", "hex", "-o", tmp_path / "x.hex"],
                 [tmp_path / "missing.tans", "--format", "h", "-o", tmp_path / "x.h"],
                 [path, "--format", "hex", "-o", tmp_path / "x.hex", "--base", "3"]):
        r = cli_process(*args) if args[0] == bad else cli(*args)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "x.hex").exists()
