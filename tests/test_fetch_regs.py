"""The register block's C side: the generated header matches REGISTERS, and the C driver
(hw/fetch/driver/tans_fetch.c) compiles against it and runs the programming sequence on a
simulated register file that follows the RTL's rules (tests/test_fetch.py drives the RTL itself
through the register block with the same sequence)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hw.fetch.export import DESC_WORDS
from hw.fetch.regs import REG, REG_ID_VALUE, REGISTERS, c_header

DRIVER = Path(__file__).resolve().parent.parent / "hw" / "fetch" / "driver"


def test_register_map_is_consistent():
    addrs = [r.addr for r in REGISTERS]
    assert len(set(addrs)) == len(addrs) and all(a % 4 == 0 and a < 256 for a in addrs)
    for r in REGISTERS:
        bits = [b for f in r.fields for b in range(f.offset, f.offset + f.width)]
        assert len(bits) == len(set(bits)) and all(b < 32 for b in bits), r.name
    assert [REG[f"DESC{j}"].addr for j in range(DESC_WORDS)] == \
        [REG["DESC0"].addr + 4 * j for j in range(DESC_WORDS)]


def test_header_defines_every_register_and_field():
    h = c_header()
    defs = dict(re.findall(r"#define (\w+) (0x[0-9a-f]+|\d+)u", h))
    for r in REGISTERS:
        assert int(defs[f"TANS_REG_{r.name}"], 0) == r.addr
        for f in r.fields:
            assert int(defs[f"TANS_{r.name}_{f.name}_MASK"], 0) == ((1 << f.width) - 1) << f.offset
    assert int(defs["TANS_REG_ID_VALUE"], 0) == REG_ID_VALUE and int(defs["TANS_DESC_WORDS"]) == DESC_WORDS


# A register file in C that behaves like the RTL for the driver's accesses: PUSH copies the staged
# words to a log, STATUS reports busy for a few polls, then an error on layer 1 with code CRC.
HARNESS = r"""
#include <stdio.h>
#include <string.h>
#include "tans_fetch.h"
static uint32_t mem[64], pushed[8][TANS_DESC_WORDS]; static unsigned n_pushed;
/* the driver writes through a volatile pointer; this harness checks its effects afterwards */
int main(void) {
  volatile uint32_t *r = mem;
  static const uint32_t model[2][TANS_DESC_WORDS] = {{1, 2, 3}, {4, 5, 6, 7, 8, 9, 10, 11, 12}};
  mem[TANS_REG_ID / 4] = TANS_REG_ID_VALUE;
  if (tans_fetch_init(r, 1)) return 1;
  if (mem[TANS_REG_CTRL / 4] != (TANS_CTRL_CLEAR_MASK | TANS_CTRL_IRQ_ENABLE_MASK)) return 2;
  for (unsigned i = 0; i < 2; i++) {
    tans_fetch_enqueue(r, model[i]);
    if (mem[TANS_REG_PUSH / 4] != 1) return 3;
    memcpy(pushed[n_pushed++], (const void *)&mem[TANS_REG_DESC(0) / 4], 4 * TANS_DESC_WORDS);
  }
  for (unsigned i = 0; i < 2; i++)
    if (memcmp(pushed[i], model[i], sizeof model[i])) return 4;
  mem[TANS_REG_STATUS / 4] = TANS_STATUS_BUSY_MASK;
  if (tans_fetch_wait(r, 5) != -1) return 5;              /* still busy: times out */
  mem[TANS_REG_STATUS / 4] = TANS_STATUS_ERROR_MASK | TANS_STATUS_CRC_ERROR_MASK;
  mem[TANS_REG_ERROR / 4] = (1u << TANS_ERROR_LAYER_SHIFT) | (TANS_ERR_CRC << TANS_ERROR_CODE_SHIFT)
                          | (1u << TANS_ERROR_CRC_LAYER_SHIFT);
  mem[TANS_REG_LAYERS / 4] = 2u | (1u << TANS_LAYERS_FAILED_SHIFT);
  if (tans_fetch_wait(r, 0) != 0) return 6;
  tans_fetch_result res;
  if (tans_fetch_result_read(r, &res) != 1) return 7;
  printf("%u %u %u %u %u %u %u\n", res.error, res.layer, res.code, res.crc_error, res.crc_layer,
         res.done, res.failed);
  return 0;
}
"""


def test_c_driver_compiles_and_sequences(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler")
    (tmp_path / "tans_fetch_regs.h").write_text(c_header())
    (tmp_path / "harness.c").write_text(HARNESS)
    r = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(DRIVER), "-I", str(tmp_path),
                        "-o", str(tmp_path / "h"), str(tmp_path / "harness.c"), str(DRIVER / "tans_fetch.c")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(tmp_path / "h")], capture_output=True, text=True)
    assert r.returncode == 0, (r.returncode, r.stdout)
    assert r.stdout.split() == ["1", "1", "7", "1", "1", "2", "1"]


def test_fetch_doc_register_table_is_generated():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "FETCH.md").read_text()
    table = doc.split("<!-- registers: begin -->\n")[1].split("<!-- registers: end -->")[0]
    from hw.fetch.regs import markdown_table
    assert table == markdown_table()
