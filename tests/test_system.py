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


# --- the compute side (sim/model/compute.py) ---------------------------------------------------

def _rows(rep: dict, scheme: str = "compressed") -> list[dict]:
    return [dict(r[scheme], name=r["name"]) for r in rep["layers"]]


def test_compute_side_keeps_the_fetch_model_as_weight_side(demo: Path) -> None:
    """With compute for free and every activation on chip, a layer takes its fetch-path cycles (the
    figures tests/test_fetch.py holds within 5% of the RTL), plus the network input's read."""
    from sim.model import compute
    c = ctr.read(demo)
    rep = analyse(demo, 1, 4)
    shapes = compute.shapes_of_container(c)
    assert [s.macs for s in shapes.values()] == [64 * 128, 128 * 64, 64 * 10]       # linear layers of the MLP
    inf = compute.inference(c, _rows(rep), shapes, compute.Platform("free", 1, 1e12, 1e12))
    for lay, row in zip(inf["layers"], rep["layers"]):
        assert lay["weight_cycles"] == row["compressed"]["cycles"] and lay["bound"] == "traffic"
        assert lay["weight_decode_cycles"] + lay["weight_stall_cycles"] == lay["weight_cycles"]
    assert inf["cycles"] == rep["total"]["compressed"]["cycles"] + 64        # 64 8-bit inputs at 1 byte/cycle
    # compute-bound everywhere: ceil(MACs / M) per layer, storage does not matter
    slow = compute.Platform("slow", 1, 0.5, 1e12)
    a = compute.inference(c, _rows(rep), shapes, slow)
    b = compute.inference(c, _rows(rep, "int8"), shapes, slow, "int8")
    assert a["cycles"] == b["cycles"] == sum(2 * s.macs for s in shapes.values())
    assert a["compute_bound_layers"] == 3
    # no buffer: every activation after the input is written to DRAM and read back (8 bits here)
    spill = compute.inference(c, _rows(rep), shapes, compute.Platform("nobuf", 1, 1e12, 0))
    assert [l["activation_bytes"] for l in spill["layers"]] == [64, 2 * 128, 2 * 64]


def test_scaled_platforms_and_lenet_shapes() -> None:
    """The paper's Table 2 scaled by arithmetic intensity and activations; LeNet-5's MACs from its shapes."""
    from sim.model import compute
    from sw.models.zoo import build_model
    shapes = compute.layer_shapes(build_model("lenet5", {"image_size": 28}), (1, 28, 28))
    assert [s.macs for s in shapes] == [6 * 25 * 28 * 28, 16 * 6 * 25 * 10 * 10, 400 * 120, 120 * 84, 84 * 10]
    assert [s.in_activations for s in shapes] == [784, 6 * 14 * 14, 400, 120, 84]
    r50 = compute.RESNET50
    same = compute.scaled_platform("tpu", r50["macs"], r50["weights"], r50["activations"], 13.0)
    assert same.clock_hz == pytest.approx(1e9) and same.macs_per_cycle == pytest.approx(48e3)
    assert same.buffer_bytes == pytest.approx(28 * 1024 ** 2)
    e = compute.scaled_platform("eyeriss", 4e5, 6e4, 2.5e3, 1.0)
    t = compute.scaled_platform("tpu", 4e5, 6e4, 2.5e3, 1.0)
    assert t.macs_per_cycle / e.macs_per_cycle == pytest.approx((48e12 / 13e9) / 34.0)
    assert e.buffer_bytes == pytest.approx(181.5 * 1024 * 2.5e3 / 9.6e6)


def test_cli_platform(demo: Path, capsys) -> None:
    """`--macs-per-cycle` adds the per-layer compute side to the report; a bad value is one error line."""
    from sim.system import main
    assert main([str(demo), "-B", "1", "-W", "4", "--macs-per-cycle", "2", "--buffer-bytes", "1024", "--json"]) == 0
    inf = json.loads(capsys.readouterr().out)["inference"]
    assert inf["platform"]["macs_per_cycle"] == 2 and inf["speedup_vs_int8"] > 0
    assert {"cycles", "weight_cycles", "weight_stall_cycles", "activation_cycles", "compute_cycles",
            "bound"} <= set(inf["compressed"]["layers"][0])
    assert main([str(demo), "-B", "1", "-W", "4", "--platform", "tpu"]) == 0     # shapes from its 2-d weights
    assert "inference on tpu" in capsys.readouterr().out
    assert main([str(demo), "-B", "1", "-W", "4", "--macs-per-cycle", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --macs-per-cycle") and len(err.strip().splitlines()) == 1
