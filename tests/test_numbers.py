"""One set of numbers (docs/NUMBERS.md): encode, inspect, report and sim.system agree on bits/symbol,
gap, bins, entropy and KiB; plots come in the shared style and formats; quiet outputs stay quiet."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sw import container as ct
from sw.cli.main import inspect_summary, main
from sw.evaluation import plotstyle
from sw.evaluation.report import RAW_INT8_BINS, plot, summarize
from sw.tans import format as fmt

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A small model file: two tANS-coded layers (zero-point, 7 and 5 bins) and a raw 8-bit one."""
    rng = np.random.default_rng(0)
    a = np.clip(np.rint(rng.normal(3, 1.0, (16, 40))), 0, 6).astype(np.int64)
    b = np.clip(np.rint(rng.normal(2, 0.6, (8, 64))), 0, 4).astype(np.int64)
    c = ct.Container([
        ct.int8_tensor("first.weight", rng.integers(-127, 128, (6, 25)), np.full(6, 0.01, np.float32), 0),
        ct.tans_tensor("mid.weight", a, lanes=8, lane_axis=1, quant=fmt.QUANT_ZERO_POINT, bins=7, zero_point=3,
                       steps=[0.05]),
        ct.tans_tensor("last.weight", b, lanes=8, lane_axis=1, quant=fmt.QUANT_ZERO_POINT, bins=5, zero_point=2,
                       steps=[0.1]),
    ], {"model": "test"})
    path = tmp_path_factory.mktemp("numbers") / "m.tans"
    ct.write(path, c)
    return path


def run_cli(capsys, *argv) -> str:
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 0
    return capsys.readouterr().out


def test_encode_and_inspect_print_the_same_bits_per_symbol(tmp_path, capsys):
    sym = np.random.default_rng(4).geometric(0.4, 3000) - 1
    np.save(tmp_path / "s.npy", sym)
    out = run_cli(capsys, "encode", tmp_path / "s.npy", "-o", tmp_path / "s.tans", "--lanes", 5)
    record = float(re.search(r"([\d.]+) bits/symbol \(whole record", out).group(1))
    whole = float(re.search(r"= ([\d.]+) bits/symbol with the file header", out).group(1))
    info = json.loads(run_cli(capsys, "inspect", tmp_path / "s.tans", "--json"))
    assert info["total_bits"] == 8 * (tmp_path / "s.tans").stat().st_size
    assert round(info["record_bits_per_symbol"], 4) == record
    assert round(info["bits_per_symbol"], 4) == whole and whole > record
    table = run_cli(capsys, "inspect", tmp_path / "s.tans")
    assert f" {record:.4f} " in table.splitlines()[2] and f"{whole:.4f} bits/symbol" in table
    gap = info["tensors"][0]["gap_percent"]
    assert f"gap {gap:.1f}%" in out and f" {gap:.1f} " in table.splitlines()[2]


def test_a_constant_tensor_has_entropy_zero_and_no_gap(tmp_path, capsys):
    np.save(tmp_path / "c.npy", np.full(500, 3, np.int64))
    out = run_cli(capsys, "encode", tmp_path / "c.npy", "-o", tmp_path / "c.tans")
    assert "entropy bound 0.0000, gap -)" in out and "-0.0" not in out
    info = json.loads(run_cli(capsys, "inspect", tmp_path / "c.tans", "--json"))
    e = info["tensors"][0]["entropy_bits"]
    assert e == 0.0 and math.copysign(1.0, e) == 1.0 and info["tensors"][0]["gap_percent"] is None
    assert "-0.0" not in run_cli(capsys, "inspect", tmp_path / "c.tans")


def test_inspect_shows_stored_alphabet_and_used_symbols(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.array([0, 6] * 40 + [2] * 20))      # A = 7 stored, 3 used
    run_cli(capsys, "encode", tmp_path / "a.npy", "-o", tmp_path / "a.tans")
    t = json.loads(run_cli(capsys, "inspect", tmp_path / "a.tans", "--json"))["tensors"][0]
    assert (t["alphabet"], t["used_symbols"]) == (7, 3)
    row = run_cli(capsys, "inspect", tmp_path / "a.tans").splitlines()[2].split()
    assert row[3:5] == ["7", "3"]


def test_report_and_sim_system_agree_on_bins_and_gap(demo):
    from sim.system import analyse
    c = ct.read(demo)
    s = summarize(c, demo)
    ins = {t["name"]: t for t in inspect_summary(c)["tensors"]}
    sysrows = {r["name"]: r for r in analyse(demo, 1, 4)["layers"]}
    kinds = set()
    for r in s["layers"]:
        t = c[r["name"]]
        kinds.add(r["kind"])
        assert sysrows[r["name"]]["bins"] == r["bins"]
        overhead = r["step_bits"] + r["header_bits"]
        assert r["int8_bits"] == 8 * r["weights"] + overhead
        if t.kind == fmt.KIND_TANS:
            assert r["gap_percent"] == pytest.approx(ins[r["name"]]["gap_percent"])
            assert r["coding_gap_percent"] == pytest.approx(ins[r["name"]]["coding_gap_percent"])
            assert r["uncoded_bits"] == r["weights"] * math.ceil(math.log2(r["bins"])) + overhead
            assert r["alphabet"] == t.coded.alphabet and r["bits_per_weight"] == r["total_bits"] / r["weights"]
        else:
            assert r["bins"] == RAW_INT8_BINS == 255 and r["gap_percent"] is None and r["entropy_bits"] is None
            assert r["uncoded_bits"] == r["int8_bits"] == r["total_bits"]
    assert kinds == {"tans", "raw_int8"}


def test_plots_share_the_style_units_and_formats(demo, tmp_path):
    """SVG keeps text as text: the labels say KiB (never KB) and name the stacked parts in a legend."""
    from sim.system import analyse, plot as system_plot
    files = plot(summarize(ct.read(demo), demo), tmp_path / "r", ("svg", "png"))
    assert sorted(Path(f).name for f in files) == ["bins_per_layer.png", "bins_per_layer.svg",
                                                  "memory_per_layer.png", "memory_per_layer.svg"]
    mem = (tmp_path / "r" / "memory_per_layer.svg").read_text()
    for label in ("KiB", "8-bit", "quantized, uncoded", "tANS coded: payload", "tANS coded: header", "entropy bound"):
        assert label in mem, label
    assert "bits per weight" in (tmp_path / "r" / "bins_per_layer.svg").read_text()
    sysfiles = system_plot(analyse(demo, 1, 4), tmp_path / "sys.png", ("svg", "pdf"))
    assert [Path(f).name for f in sysfiles] == ["sys.svg", "sys.pdf"]
    text = (tmp_path / "sys.svg").read_text()
    assert "KiB" in text and "KB)" not in text and "stall" in text and "cycles per layer" in text
    assert (tmp_path / "sys.pdf").read_bytes()[:5] == b"%PDF-"
    assert (tmp_path / "r" / "bins_per_layer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_format_option():
    assert plotstyle.parse_formats("png,PDF") == ("png", "pdf")
    with pytest.raises(Exception, match="png, pdf, svg"):
        plotstyle.parse_formats("gif")


def test_a_closed_pipe_ends_quietly(demo):
    """`python -m sw inspect ... | head -0`: the reader is gone before the first write; no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "sw", "inspect", str(demo), "--json"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert err == "" and proc.returncode in (0, 1), err


class _ClosedPipe:
    """A stdout whose reader has gone."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        pass

    def fileno(self):
        import io
        raise io.UnsupportedOperation("no file descriptor")


def test_sim_system_ends_quietly_on_a_closed_pipe(demo, monkeypatch, capsys):
    from sim import system
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert system.main([str(demo), "-B", "1", "-W", "4"]) == 1
    assert capsys.readouterr().err == ""


def test_run_quiet_prints_only_the_summary(monkeypatch, capsys):
    """`run --quiet` hands the pipeline a silent log and no progress bars."""
    import sw.pipeline
    seen = {}

    def fake(out, cfg, progress, log, plots, hardware, plot_formats):
        seen.update(progress=progress, plot_formats=plot_formats)
        log("a step message")
        return {"decoded_equals_quantized": True, "hardware_check": None}
    monkeypatch.setattr(sw.pipeline, "run_pipeline", fake)
    monkeypatch.setattr(sw.pipeline, "format_summary", lambda s: "== summary ==")
    capsys.readouterr()
    assert main(["run", "--quiet", "--no-hw"]) == 0
    assert capsys.readouterr().out == "== summary ==\n" and seen["progress"] is False
    assert main(["run", "--no-hw", "--plot-format", "svg"]) == 0
    assert "a step message" in capsys.readouterr().out and seen["plot_formats"] == ("svg",)


def test_a_failed_hardware_check_keeps_its_log_off_the_terminal(tmp_path):
    """The simulator side's output goes to a log file named in the one-line error."""
    from sw.pipeline import hardware_check
    c = ct.Container([ct.f32_tensor("b", np.ones(4))], {})
    ct.write(tmp_path / "raw.tans", c)
    with pytest.raises(RuntimeError, match="no tANS-coded tensor.*simulator log: .*hw.log"):
        hardware_check(tmp_path / "raw.tans", tmp_path / "hw.log")
    assert "no tANS-coded tensor" in (tmp_path / "hw.log").read_text()
