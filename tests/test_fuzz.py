"""Seeded mutation fuzzing of the `.tans` reader (benchmarks/fuzz.py, bounded to ~12 s here): every mutated
file, CRCs repaired so that the parser meets the damage, decodes (fast and golden decoders agreeing) or raises
FormatError, and `inspect` answers it with exit 0 or one error line, under a memory cap (RLIMIT_AS)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sw.tans import FormatError

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "benchmarks" / "fuzz.py"


def load_fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_bench", FUZZ)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_seeded_campaign_under_a_memory_cap(tmp_path):
    out = tmp_path / "fuzz.json"
    res = subprocess.run([sys.executable, str(FUZZ), "campaign", "--seed", "20261201", "--seconds", "12",
                          "--cases", "20000", "--memory-cap", "3G", "--max-bytes", "16M", "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    summary = json.loads(out.read_text())
    assert res.returncode == 0 and summary["failures"] == 0, summary["failure_examples"][:3]
    assert summary["cases"] >= 1000
    # every kind of outcome occurs, so the mutations reach past the framing into the decoders
    assert summary["rejected"] > 0 and summary["decoded_different"] > 0 and summary["decoded_same"] > 0
    assert summary["slowest_case_s"] < 5


def test_the_harness_reports_other_errors_and_disagreements(tmp_path, monkeypatch):
    """The fuzz verdicts can fail: a non-FormatError, or a golden decoder that disagrees, is a Failure."""
    fuzz = load_fuzz()
    data = (ROOT / "tests" / "golden" / "tiny_l32_1lane.tans").read_bytes()
    for command in fuzz.CLI_COMMANDS:
        assert fuzz.run_case(data, 1 << 20, tmp_path, command) == "decoded"
        assert fuzz.run_case(data[:-1] + bytes([data[-1] ^ 1]), 1 << 20, tmp_path, command) == "rejected"
    real = fuzz.decode_all

    def disagree(d, golden, max_bytes):
        out = real(d, golden, max_bytes)
        return out[:0] if golden else out
    monkeypatch.setattr(fuzz, "decode_all", disagree)
    with pytest.raises(fuzz.Failure, match="different"):
        fuzz.run_case(data, 1 << 20, tmp_path, None)

    def crash(d, golden, max_bytes):
        raise ValueError("not the project's error")
    monkeypatch.setattr(fuzz, "decode_all", crash)
    with pytest.raises(fuzz.Failure, match="ValueError"):
        fuzz.run_case(data, 1 << 20, tmp_path, None)

    def refuse_golden(d, golden, max_bytes):
        if golden:
            raise FormatError("golden says no")
        return real(d, golden, max_bytes)
    monkeypatch.setattr(fuzz, "decode_all", refuse_golden)
    with pytest.raises(fuzz.Failure, match="disagree"):
        fuzz.run_case(data, 1 << 20, tmp_path, None)
