"""`python -m sw encode/decode/inspect`: round trips and one-line errors without tracebacks."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "golden"


def sw(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sw", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def assert_clean_error(res, *words):
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    sym = rng.choice(9, size=(50, 60), p=[.01, .04, .1, .15, .4, .15, .1, .04, .01]).astype(np.int32)
    np.save(d / "s.npy", sym)
    res = sw("encode", d / "s.npy", "-o", d / "s.tans", "--states", 128, "--lanes", 10)
    assert res.returncode == 0, res.stderr
    return d, sym


def test_encode_decode_roundtrip(encoded):
    d, sym = encoded
    res = sw("decode", d / "s.tans", "-o", d / "back.npy")
    assert res.returncode == 0, res.stderr
    back = np.load(d / "back.npy")
    assert back.dtype == sym.dtype and back.shape == sym.shape and np.array_equal(back, sym)


def test_inspect_json(encoded):
    d, sym = encoded
    res = sw("inspect", d / "s.tans", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    (t,) = info["tensors"]
    p = np.bincount(sym.reshape(-1)) / sym.size
    h = -(p[p > 0] * np.log2(p[p > 0])).sum() * sym.size
    assert t["symbols"] == sym.size and t["alphabet"] == 9 and t["lanes"] == 10 and t["states"] == 128
    assert abs(t["entropy_bits"] - h) < 1e-6 * h
    coded = t["payload_bits"] + t["lane_state_bits"]
    assert t["lane_state_bits"] == 10 * 7 and coded >= h
    assert t["coding_gap_percent"] == pytest.approx(100 * (coded / h - 1))
    assert t["gap_percent"] == pytest.approx(100 * (t["total_bits"] / h - 1))
    assert info["total_bits"] == 8 * (d / "s.tans").stat().st_size
    assert info["entropy_bits"] == pytest.approx(h)
    assert coded + t["table_bits"] + t["step_bits"] + t["header_bits"] == t["total_bits"]
    assert t["header_bits"] > 64 and t["table_bits"] == 8 * (1 + (8 * 8 + 7) // 8)    # 8 counts of k + 1 bits


def test_inspect_table(encoded):
    res = sw("inspect", encoded[0] / "s.tans")
    assert res.returncode == 0 and "gap%" in res.stdout and "total:" in res.stdout


def test_decode_golden_multi_tensor(tmp_path):
    res = sw("decode", GOLDEN / "weights.tans", "-o", tmp_path / "w.npy")
    assert_clean_error(res, "--tensor")
    assert sw("decode", GOLDEN / "weights.tans", "-o", tmp_path / "w.npz").returncode == 0
    assert sw("decode", GOLDEN / "weights.tans", "-o", tmp_path / "w.npy", "--tensor", "fc.bias").returncode == 0
    assert np.load(tmp_path / "w.npy").tolist() == [0.5, -1.25]


@pytest.mark.parametrize("array,words", [
    (np.array([1, -1, 2]), ["non-negative"]),
    (np.array([0.5, 1.0]), ["integers"]),
    (np.arange(300), ["distinct symbols", "states"]),
])
def test_encode_bad_input(tmp_path, array, words):
    np.save(tmp_path / "a.npy", array)
    res = sw("encode", tmp_path / "a.npy", "-o", tmp_path / "a.tans", "--states", 256, "--lanes", 1)
    assert_clean_error(res, *words)
    assert not (tmp_path / "a.tans").exists()


def test_encode_too_many_lanes(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(10) % 3)
    assert_clean_error(sw("encode", tmp_path / "a.npy", "-o", tmp_path / "a.tans", "--lanes", 11), "lanes")


@pytest.mark.parametrize("states", ["100", "16", "8192", "x"])
def test_encode_bad_states(tmp_path, states):
    np.save(tmp_path / "a.npy", np.arange(10) % 3)
    res = sw("encode", tmp_path / "a.npy", "-o", tmp_path / "a.tans", "--states", states)
    assert res.returncode != 0 and "Traceback" not in res.stderr and "--states" in res.stderr


def test_missing_and_non_npy_files(tmp_path):
    assert_clean_error(sw("encode", tmp_path / "nope.npy", "-o", tmp_path / "a.tans"), "no such file")
    (tmp_path / "junk.npy").write_bytes(b"hello")
    assert_clean_error(sw("encode", tmp_path / "junk.npy", "-o", tmp_path / "a.tans"), "junk.npy")
    assert_clean_error(sw("decode", tmp_path / "nope.tans", "-o", tmp_path / "a.npy"), "no such file")


def _damage_cases(data: bytes):
    yield "truncated", data[: len(data) // 2], "truncated"
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    yield "flipped", bytes(flipped), "CRC"
    yield "magic", b"XXXXXXXX" + data[8:], "magic"
    yield "version", data[:8] + b"\x07\x00" + data[10:], "version"


@pytest.mark.parametrize("case", ["truncated", "flipped", "magic", "version"])
@pytest.mark.parametrize("command", ["decode", "inspect"])
def test_damaged_file(encoded, tmp_path, case, command):
    d, _ = encoded
    data = dict((k, (v, w)) for k, v, w in _damage_cases((d / "s.tans").read_bytes()))[case]
    (tmp_path / "bad.tans").write_bytes(data[0])
    args = [command, tmp_path / "bad.tans"] + (["-o", tmp_path / "out.npy"] if command == "decode" else [])
    assert_clean_error(sw(*args), data[1])
    assert not (tmp_path / "out.npy").exists()
