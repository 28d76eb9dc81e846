"""System model (`python -m sim.system`): figures, regimes, plot, and bad-input handling."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.system import analyse
from sim.model.demo import cached_demo
from sim.model.cycles import HwModel, LayerTraffic, decode_cycles, simulate
from sw import container as ctr
from sw.tans import format as fmt


@pytest.fixture(scope="module")
def demo() -> Path:
    return cached_demo()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim.system", *args], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parent.parent)


def test_bytes_per_scheme(demo: Path) -> None:
    """Compressed = table + payload; quantized = ceil(log2 bins) bits; int8 = 8 bits per weight."""
    c = ctr.read(demo)
    rep = analyse(demo, 1, 4)
    for row in rep["layers"]:
        t = c[row["name"]]
        if t.kind == fmt.KIND_TANS:
            entry = 2 if row["compressed"]["bytes"] - len(t.coded.payload) == 2 * t.coded.states else 4
            assert row["compressed"]["bytes"] == entry * t.coded.states + len(t.coded.payload)
            bits = int(np.ceil(np.log2(t.bins)))
            assert row["quantized"]["bytes"] == -(-t.size * bits // 64) * 8
        else:
            assert row["compressed"]["bytes"] == row["quantized"]["bytes"] == row["int8"]["bytes"]
        assert row["int8"]["bytes"] == -(-t.size // 8) * 8


def test_bandwidth_bound_speedup_matches_compression(demo: Path) -> None:
    """When every scheme is bandwidth-bound, speed-up over int8 ~ the compression ratio (10%)."""
    rep = analyse(demo, 0.25, 4)
    s = rep["summary"]
    assert abs(s["speedup_vs_int8"] / s["compression_vs_int8"] - 1) < 0.10
    assert abs(s["speedup_vs_quantized"] / s["compression_vs_quantized"] - 1) < 0.10
    assert rep["total"]["int8"]["stall_cycles"] > 0.8 * rep["total"]["int8"]["cycles"]


def test_compute_bound_is_weights_over_w(demo: Path) -> None:
    """A fast bus leaves W weights per cycle (plus table loads for coded layers), no stalls."""
    rep = analyse(demo, 64, 4)
    n = sum(r["weights"] for r in rep["layers"])
    int8 = rep["total"]["int8"]
    assert n / 4 <= int8["cycles"] <= n / 4 * 1.02
    assert int8["stall_cycles"] <= 10
    assert rep["summary"]["speedup_vs_int8"] <= 1.0   # decoding cannot beat W weights/cycle


def test_more_bandwidth_never_slower(demo: Path) -> None:
    cycles = [analyse(demo, b, 4)["total"]["compressed"]["cycles"] for b in (0.5, 1, 2, 4, 8)]
    assert all(a >= b for a, b in zip(cycles, cycles[1:]))


def test_decode_cycles_rounds() -> None:
    """Rounds of g lane groups take max(g, depth) cycles; the short last round too."""
    assert decode_cycles(8192, 64, 4, 6) == 128 * 16
    assert decode_cycles(2400, 6, 4, 6) == 400 * 6
    assert decode_cycles(10, 4, 4, 6) == 2 * 6 + 6
    assert decode_cycles(24 * 10, 24, 4, 6) == 10 * 6


def test_fifo_lets_fetch_run_ahead() -> None:
    """A raw layer after a compute-bound one starts with its bytes already prefetched."""
    slow = LayerTraffic("a", "tans", 4096, 5, 1, 5, 64, 1024)    # 1 lane: 4 cycles per weight
    raw = LayerTraffic("b", "raw_int8", 512, 256, 1, 0, 0, 512)
    res = simulate([slow, raw], "compressed", HwModel(bytes_per_cycle=1, weights_per_cycle=4))
    assert res[1].cycles <= 512 / 4 + 10     # compute-bound (not 512 cycles): the FIFO holds it


def test_cli_table_json_and_plot(demo: Path, tmp_path: Path) -> None:
    png = tmp_path / "fig5.png"
    r = cli(str(demo), "--dram-bytes-per-cycle", "1", "--weights-per-cycle", "4", "--plot", str(png))
    assert r.returncode == 0, r.stderr
    assert "weight-fetch speed-up" in r.stdout and "fc1.weight" in r.stdout
    assert png.stat().st_size > 10_000
    r = cli(str(demo), "-B", "2", "-W", "4", "--json")
    rep = json.loads(r.stdout)
    assert [l["name"] for l in rep["layers"]] == ["fc1.weight", "fc2.weight", "fc3.weight"]
    for l in rep["layers"]:
        for s in ("compressed", "quantized", "int8"):
            assert {"bytes", "cycles", "stall_cycles", "peak_bandwidth"} <= set(l[s])


@pytest.mark.parametrize("args", [
    ["missing.tans", "-B", "1", "-W", "4"],
    ["{demo}", "-B", "0", "-W", "4"],
    ["{demo}", "-B", "-2", "-W", "4"],
    ["{demo}", "-B", "nan", "-W", "4"],
    ["{demo}", "-B", "1", "-W", "0"],
    ["{demo}", "-B", "1", "-W", "-3"],
    ["{demo}", "-B", "fast", "-W", "4"],
    ["{damaged}", "-B", "1", "-W", "4"],
    ["{truncated}", "-B", "1", "-W", "4"],
    ["{text}", "-B", "1", "-W", "4"],
])
def test_cli_bad_input(args: list[str], demo: Path, tmp_path: Path) -> None:
    """Bad input: one line on stderr, non-zero exit, no traceback."""
    data = bytearray(demo.read_bytes())
    data[len(data) // 2] ^= 0x10
    (tmp_path / "damaged.tans").write_bytes(bytes(data))
    (tmp_path / "truncated.tans").write_bytes(demo.read_bytes()[:200])
    (tmp_path / "text.tans").write_text("not a container\n")
    paths = {"demo": demo, "damaged": tmp_path / "damaged.tans",
             "truncated": tmp_path / "truncated.tans", "text": tmp_path / "text.tans"}
    r = cli(*[a.format(**paths) for a in args])
    assert r.returncode != 0
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.stderr
