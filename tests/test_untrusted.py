"""Untrusted `.tans` files (issue 11): no code runs from a file, decoding is bounded, every bad input gets one
clean error (FormatError from Python, one `error:` line from the CLI), outputs are safe, dtypes and sizes
are as promised. One section per class of the issue."""
from __future__ import annotations

import json
import os
import pickle
import signal
import stat
import struct
import subprocess
import sys
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from sw import container as ct
from sw.cli.main import main
from sw.container.files import atomic_write, check_npz_names, read_npy
from sw.tans import Coded, FormatError, InputError, LimitError, PathError, TrustError, decode, encode
from sw.tans import format as fmt
from sw.tans.codec import max_symbols
from sw.tans.reference import steps
from sw.tans.table import build_tables, longest_zero_run, zero_run_bound

GOLDEN = Path(__file__).parent / "golden"


def pack(meta: bytes, bodies: list[bytes], minor: int = 0) -> bytes:
    """A version-1.`minor` file from raw metadata and record bodies (v1_body) with every CRC right
    (what a hostile writer makes)."""
    head = fmt.MAGIC + struct.pack("<HHII", 1, minor, len(bodies), len(meta)) + meta
    out = head + struct.pack("<I", zlib.crc32(head))
    for b in bodies:
        out += struct.pack("<I", len(b)) + b + struct.pack("<I", zlib.crc32(b))
    return out + struct.pack("<I", zlib.crc32(out))


def v1_body(t: ct.Tensor) -> bytes:
    """A record body in the version-1 layout of docs/FORMAT.md 2.3 (the layout the crafted files use)."""
    try:
        return ct.encode_record(t, major=1)
    except TypeError:        # a writer with the version-1 layout only
        return ct.encode_record(t)


def golden_tensor(name: str) -> ct.Tensor:
    return ct.read(GOLDEN / f"{name}.tans").tensors[0]


def cli(capsys, *argv) -> tuple[int, str, str]:
    """Run `python -m sw` in-process; (exit code, stdout, stderr)."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def assert_one_line(rc: int, err: str, *words: str) -> None:
    assert rc == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for w in words:
        assert w in lines[0], lines[0]


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging (SIGALRM interrupts a blocking open of a FIFO)."""
    def fire(*_):
        raise TimeoutError("hung")
    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def lenet(tmp_path_factory) -> Path:
    """A real (post-training) LeNet-5 model file on 8x8 digits that `evaluate` accepts."""
    import torch
    from sw.methods.compress import compress_module
    from sw.models.zoo import build_model
    d = tmp_path_factory.mktemp("lenet")
    torch.manual_seed(0)
    compress_module(build_model("lenet5", {"image_size": 8}), d / "m.tans", bins=5, model_name="lenet5",
                    model_config={"image_size": 8}, data={"spec": "sklearn-digits", "n_train": 200, "n_test": 60})
    return d / "m.tans"


def with_meta(src: Path, dst: Path, **changes) -> Path:
    c = ct.read(src)
    c.metadata.update(changes)
    ct.write(dst, c)
    return dst


# --- 1. trust comes from the command line --------------------------------------------------------

@pytest.mark.parametrize("model,config", [("subprocess:run", {"args": ["touch", "MARKER"]}),
                                          ("os:system", {"command": "touch MARKER"})])
def test_metadata_cannot_run_code(lenet, tmp_path, capsys, model, config):
    from sw.evaluation.evaluate import evaluate_container
    marker = tmp_path / "marker"
    cfg = json.loads(json.dumps(config).replace("MARKER", str(marker)))
    f = with_meta(lenet, tmp_path / "evil.tans", model=model, model_config=cfg)
    with pytest.raises(TrustError, match="--model"):
        evaluate_container(f)
    assert_one_line(*cli(capsys, "evaluate", f)[::2], "not built in", "--model")
    if model == "subprocess:run":       # end to end, as a user would run it
        res = subprocess.run([sys.executable, "-m", "sw", "evaluate", str(f)], capture_output=True, text=True,
                             timeout=120)
        assert_one_line(res.returncode, res.stderr, "--model")
    assert not marker.exists()


def test_checkpoint_cannot_run_code(lenet, tmp_path, capsys):
    from sw.train import CHECKPOINT_FORMAT, save_checkpoint
    marker = tmp_path / "marker"
    save_checkpoint(tmp_path / "ck.pt", {"format": CHECKPOINT_FORMAT, "phase": "done", "model": {},
                                         "config": {"model": "subprocess:run",
                                                    "model_config": {"args": ["touch", str(marker)]}}})
    f = with_meta(lenet, tmp_path / "m.tans", checkpoint="ck.pt")
    assert_one_line(*cli(capsys, "evaluate", f)[::2], "checkpoint names model", "--model")
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["cifar10", "mnist"])
def test_data_folders_only_from_the_command_line(lenet, tmp_path, capsys, kind):
    marker = tmp_path / "marker"
    evil = tmp_path / "data"
    evil.mkdir()

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)
    for name in ("data_batch_1", "test_batch"):
        (evil / name).write_bytes(pickle.dumps({b"data": Payload(), b"labels": [0]}))
    f = with_meta(lenet, tmp_path / "m.tans", data={"spec": f"{kind}:{evil}"})
    assert_one_line(*cli(capsys, "evaluate", f)[::2], "--data", str(f))
    if kind == "cifar10":   # the user names the folder: the restricted unpickler still refuses the payload
        assert_one_line(*cli(capsys, "evaluate", f, "--data", f"cifar10:{evil}")[::2], "posix.system", "may not")
    assert not marker.exists()


def test_restricted_unpickler_reads_real_batches(tmp_path):
    from sw.data.datasets import load_array_pickle
    arr = np.arange(24, dtype=np.uint8).reshape(2, 12)
    for proto in (2, 4, 5):
        p = tmp_path / f"batch{proto}"
        p.write_bytes(pickle.dumps({b"data": arr, b"labels": [1, 2], b"batch_label": b"x"}, protocol=proto))
        d = load_array_pickle(p)
        assert np.array_equal(d[b"data"], arr) and d[b"labels"] == [1, 2]


def test_checkpoint_outside_the_folder_is_not_used(lenet, tmp_path, capsys):
    from sw.evaluation.evaluate import evaluate_container
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "ck.pt").write_bytes(b"not a checkpoint: an error if it were opened")
    sub = tmp_path / "d"
    sub.mkdir()
    os.symlink(outside / "ck.pt", sub / "link.pt")
    for ref in ("../elsewhere/ck.pt", str(outside / "ck.pt"), "link.pt"):
        f = with_meta(lenet, sub / "m.tans", checkpoint=ref)
        r = evaluate_container(f)
        assert r["exact"] is None and "--checkpoint" in r["checkpoint_note"], ref
    rc, out, _ = cli(capsys, "evaluate", f)
    assert rc == 0 and "outside its folder" in out
    # named on the command line it is used (and found not to be a checkpoint)
    assert_one_line(*cli(capsys, "evaluate", f, "--checkpoint", outside / "ck.pt")[::2], "not a checkpoint or state_dict readable by torch")


def test_fifos_never_hang(lenet, tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    os.mkfifo(d / "ck.pt")
    f = with_meta(lenet, d / "m.tans", checkpoint="ck.pt")
    res = subprocess.run([sys.executable, "-m", "sw", "evaluate", str(f)], capture_output=True, text=True, timeout=120)
    assert_one_line(res.returncode, res.stderr, "ck.pt", "a FIFO, not a regular file")
    os.mkfifo(tmp_path / "in.tans")
    os.mkfifo(tmp_path / "in.npy")
    with deadline(30):
        assert_one_line(*cli(capsys, "decode", tmp_path / "in.tans", "-o", tmp_path / "x.npy")[::2], "FIFO")
        assert_one_line(*cli(capsys, "encode", tmp_path / "in.npy", "-o", tmp_path / "x.tans")[::2], "FIFO")
        with pytest.raises(PathError):
            ct.read(tmp_path / "in.tans")


# --- 2. bounded decoding ---------------------------------------------------------------------

def test_zero_bit_steps_go_down_and_the_payload_bound_holds():
    """A 0-bit step moves to a lower state unless one symbol holds every state; the longest run of
    them (from the table) and its count-only bound 2 n_max - l; N <= (P - L k)(Z + 1) + L Z on real streams."""
    rng = np.random.default_rng(3)
    for trial in range(40):
        k = int(rng.integers(5, 10))
        l = 1 << k
        a = int(rng.integers(2, min(l, 40)))
        n = int(rng.integers(50, 3000))
        p_top = float(rng.uniform(0.5, 0.995))
        sym = np.where(rng.random(n) < p_top, int(rng.integers(0, a)), rng.integers(0, a, n))
        c = encode(sym, log2_states=k, lanes=int(rng.integers(1, 20)))
        table = c.decode_table()
        zero = np.flatnonzero(table.nb_bits == 0)
        assert np.all(table.base[zero] < zero)
        z = longest_zero_run(table)
        bound = zero_run_bound(c.norm, k)
        assert z is not None and bound is not None and z <= bound < l
        run, longest = [0] * c.lanes, 0   # the runs of the real decode never exceed z
        for lane, _r, x, _s in steps(c, table):
            run[lane] = run[lane] + 1 if table.nb_bits[x] == 0 else 0
            longest = max(longest, run[lane])
        assert longest <= z
        cap = max_symbols(c.lanes, k, c.payload_bits, z)
        assert c.n_symbols <= cap
        over = Coded(c.log2_states, c.lanes, cap + 1, c.norm, c.payload, c.payload_bits)
        with pytest.raises(FormatError, match="at most"):
            decode(over)
    full = np.zeros(4, np.int64)
    full[2] = 32
    assert longest_zero_run(build_tables(full, 5)[0]) is None and zero_run_bound(full, 5) is None


def test_declared_symbols_beyond_the_payload_are_refused_before_allocating(tmp_path, capsys):
    t = golden_tensor("peaked_l256_7lanes")
    for n in (2 ** 40, 2 ** 31, 2 ** 28):
        t.shape = (n,)
        data = pack(b"{}", [v1_body(t)])
        assert len(data) < 200
        t0 = time.perf_counter()
        with pytest.raises(FormatError, match="at most"):
            ct.from_bytes(data, max_bytes=None)      # no size limit at all: the payload bound alone
        assert time.perf_counter() - t0 < 2
        with pytest.raises(FormatError, match="at most"):    # the same tensor as the writer lays it out
            ct.from_bytes(ct.to_bytes(ct.Container([t])), max_bytes=None)
    (tmp_path / "bomb.tans").write_bytes(data)
    assert_one_line(*cli(capsys, "decode", tmp_path / "bomb.tans", "-o", tmp_path / "b.npy")[::2], "at most")
    assert not (tmp_path / "b.npy").exists()


def test_constant_tensors_are_bounded_by_max_bytes(tmp_path, capsys):
    t = golden_tensor("single_symbol_l64")      # one symbol holds every state: 0 bits per symbol
    t.shape = (2 ** 40,)
    with pytest.raises(LimitError, match="--max-bytes"):
        ct.from_bytes(pack(b"{}", [v1_body(t)]))
    t.shape = (1 << 20,)                         # 4 MiB of int32
    f = tmp_path / "c.tans"
    f.write_bytes(pack(b"{}", [v1_body(t)]))
    assert_one_line(*cli(capsys, "decode", f, "-o", tmp_path / "c.npy", "--max-bytes", "1M")[::2], str(f),
                    "--max-bytes")
    assert cli(capsys, "decode", f, "-o", tmp_path / "c.npy", "--max-bytes", "8M")[0] == 0
    back = np.load(tmp_path / "c.npy")
    assert back.shape == (1 << 20,) and back.dtype == np.int32 and np.all(back == 4)
    big = tmp_path / "big.tans"
    big.write_bytes(b"\0" * 5000)
    with pytest.raises(LimitError):
        ct.read(big, max_bytes=4096)


def npy_header_only(path: Path, shape: tuple, descr: str, data: bytes = b"") -> None:
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
        f.write(data)


def test_npy_headers_are_checked_before_reading(tmp_path, capsys):
    p = tmp_path / "bomb.npy"
    npy_header_only(p, (2 ** 40,), "<i4")
    assert p.stat().st_size < 300
    with pytest.raises(LimitError):
        read_npy(p, fmt.DEFAULT_MAX_BYTES)
    assert_one_line(*cli(capsys, "encode", p, "-o", tmp_path / "x.tans")[::2], "bomb.npy", "--max-bytes")
    npy_header_only(p, (1000,), "<i4", b"\0" * 12)
    assert_one_line(*cli(capsys, "encode", p, "-o", tmp_path / "x.tans")[::2], "truncated")
    np.save(p, np.array([1, None], dtype=object), allow_pickle=True)
    assert_one_line(*cli(capsys, "encode", p, "-o", tmp_path / "x.tans")[::2], "objects")
    np.savez(tmp_path / "a.npz", a=np.arange(3))
    assert_one_line(*cli(capsys, "encode", tmp_path / "a.npz", "-o", tmp_path / "x.tans")[::2], ".npz", "one .npy")
    assert not (tmp_path / "x.tans").exists()


@pytest.mark.parametrize("dtype", [">i4", ">u2", ">i8", "<i2"])
def test_big_endian_and_fortran_arrays_encode(tmp_path, capsys, dtype):
    arr = (np.arange(60) % 7).astype(dtype).reshape(6, 10)
    for a in (arr, np.asfortranarray(arr)):
        np.save(tmp_path / "a.npy", a)
        assert cli(capsys, "encode", tmp_path / "a.npy", "-o", tmp_path / "a.tans")[0] == 0
        assert cli(capsys, "decode", tmp_path / "a.tans", "-o", tmp_path / "b.npy")[0] == 0
        back = np.load(tmp_path / "b.npy")
        assert back.dtype == np.dtype(dtype).newbyteorder("<") and np.array_equal(back, arr)


# --- 3. one error class, one line --------------------------------------------------------------

@pytest.mark.parametrize("meta,words", [
    (b"[" * 100000 + b"]" * 100000, "JSON"),                            # RecursionError in json
    (b'{"a": ' + b"[" * 70 + b"]" * 70 + b"}", "deeper"),
    (b"[1, 2]", "not an object"),
    (b"\xff{}", "UTF-8"),
    (b'{"a": ' + b"9" * 5000 + b"}", "JSON"),                           # ValueError: too many digits
])
def test_bad_metadata_is_a_format_error_everywhere(tmp_path, capsys, meta, words):
    f = tmp_path / "m.tans"
    f.write_bytes(pack(meta, [v1_body(golden_tensor("tiny_l32_1lane"))]))
    with pytest.raises(FormatError, match=words):
        ct.read(f)
    for cmd in (["decode", f, "-o", tmp_path / "o.npy"], ["inspect", f], ["report", f], ["evaluate", f]):
        assert_one_line(*cli(capsys, *cmd)[::2], str(f), words)


def _raw(name: bytes, kind: int, dcode: int, shape: tuple, tail: bytes, lane_axis: int = -1, quant: int = 0) -> bytes:
    return struct.pack("<H", len(name)) + name + struct.pack("<BBB", kind, dcode, len(shape)) + \
        struct.pack(f"<{len(shape)}Q", *shape) + struct.pack("<bB", lane_axis, quant) + tail


def _tensor(change, base=None) -> bytes:
    t = base() if base else ct.read(GOLDEN / "weights.tans")["conv.weight"]
    change(t)
    return v1_body(t)


def _coded(**kw):
    def change(t):
        c = t.coded
        d = {f: getattr(c, f) for f in ("log2_states", "lanes", "n_symbols", "norm", "payload", "payload_bits")}
        d.update(kw)
        t.coded = Coded(**d)
    return change


def _set(**kw):
    return lambda t: [setattr(t, k, v) for k, v in kw.items()]


CRAFTED = {
    "name not UTF-8": ([_raw(b"\xff\xfe", 2, 10, (1,), b"\0\0\0\0")], "UTF-8"),
    "unknown kind": ([_raw(b"x", 7, 10, (1,), b"")], "kind"),
    "unknown dtype": ([_raw(b"x", 2, 99, (1,), b"\0\0\0\0")], "dtype"),
    "ndim 33": ([_raw(b"x", 2, 10, (1,) * 33, b"\0\0\0\0")], "dimensions"),
    "alphabet > 65536": ([_raw(b"x", 0, 1, (4,), struct.pack("<BII", 8, 1, 65537))], "alphabet"),
    "f32 with a quantizer": ([_tensor(_set(quant=fmt.QUANT_ZERO_POINT, bins=3, zero_point=1,
                                           steps=np.ones(1, np.float32)),
                                      lambda: ct.f32_tensor("b", np.ones(3)))], "quantizer"),
    "int8 without its scale": ([_tensor(_set(quant=fmt.QUANT_NONE, steps=np.zeros(0, np.float32)),
                                        lambda: ct.int8_tensor("q", np.ones(3, np.int8), 1.0))], "quantizer"),
    "lane axis on raw values": ([_tensor(_set(lane_axis=0), lambda: ct.int8_tensor("q", np.ones((2, 3), np.int8),
                                                                                     1.0))], "lane axis"),
    "lane axis outside": ([_tensor(_set(lane_axis=4))], "lane axis"),
    "step axis outside": ([_tensor(_set(step_axis=5))], "axis"),
    "non-finite step": ([_tensor(_set(steps=np.array([1, np.inf, 1, 1], np.float32)))], "finite"),
    "even bins": ([_tensor(_set(bins=8, zero_point=4))], "odd"),
    "wrong zero point": ([_tensor(_set(zero_point=2))], "zero point"),
    "integer dtype for a quantizer": ([_tensor(_set(dtype=np.dtype("i4")))], "float dtype"),
    "more symbols than bins": ([_tensor(_set(bins=5, zero_point=2))], "bins"),
    "table size 2**13": ([_tensor(_coded(log2_states=13))], "table size"),
    "counts do not sum to l": ([_tensor(_coded(norm=np.array([1, 2, 3, 4, 5, 6, 7])))], "sum"),
    "more lanes than symbols": ([_tensor(_coded(lanes=200))], "lanes"),
    "payload shorter than the initial states": ([_tensor(_coded(lanes=3, payload_bits=16))], "payload"),
    "empty tensor with a payload": ([_tensor(_set(shape=(4, 0, 3, 3)))], "empty"),
    "bytes left over": ([_tensor(lambda t: None) + b"\0"], "unexpected bytes"),
    "duplicate names": ([_tensor(lambda t: None)] * 2, "two tensors"),
    "symbol 300 in uint8": ([_tensor(_set(dtype=np.dtype("u1")),
                                     lambda: ct.tans_tensor("s", np.array([0, 300, 5, 300]), dtype=np.uint16))],
                            "does not fit"),
    "bool code in a 1.0 file": ([_tensor(lambda t: None, lambda: ct.tans_tensor("m", np.array([True, False])))],
                                "dtype code 12"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_records_are_format_errors(tmp_path, capsys, case):
    bodies, words = CRAFTED[case]
    data = pack(b"{}", bodies)
    with pytest.raises(FormatError, match=words):
        ct.from_bytes(data)
    f = tmp_path / "x.tans"
    f.write_bytes(data)
    assert_one_line(*cli(capsys, "decode", f, "-o", tmp_path / "x.npz")[::2], str(f), words)
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("changes,words", [
    ({"model_config": {"image_size": 8, "bogus": 1}}, "no argument 'bogus'"),
    ({"model_config": {"image_size": 8, "num_classes": 10 ** 12}}, "not allowed"),
    ({"model_config": {"image_size": "8"}}, "not allowed"),
    ({"model_config": [8]}, "not an object"),
    ({"model_config": {"image_size": 28}}, "do not fit"),            # caught on the meta device, before decoding
    ({"state_dtypes": ["float32"]}, "state_dtypes"),
    ({"state_dtypes": {"fc3.bias": "load"}}, "state dtype 'load'"),
    ({"model": 5}, "not a string"),
    ({"data": {"spec": "sklearn-digits", "n_train": -5}}, "n_train"),
    ({"data": {"spec": "sklearn-digits", "seed": "x"}}, "seed"),
    ({"data": {"spec": ["sklearn-digits"]}}, "not a string"),
    ({"data": [1]}, "data entry"),
    ({"checkpoint": 7}, "checkpoint entry"),
])
def test_crafted_metadata_in_evaluate(lenet, tmp_path, capsys, changes, words):
    f = with_meta(lenet, tmp_path / "m.tans", **changes)
    assert_one_line(*cli(capsys, "evaluate", f)[::2], str(f), words)


def test_broken_pipe_exits_quietly():
    p = subprocess.Popen([sys.executable, "-m", "sw", "inspect", str(GOLDEN / "weights.tans")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()          # before the command writes: its output meets a closed pipe
    err = p.stderr.read()
    p.wait(timeout=120)
    assert p.returncode == 1 and err == b""


def test_errors_name_the_users_path(tmp_path):
    target = tmp_path / "out.bin"

    def full(_f):
        raise OSError(28, "No space left on device", str(tmp_path / ".out.bin.x.tmp"))
    with pytest.raises(OSError) as e:
        atomic_write(target, full)
    assert e.value.filename == str(target) and not list(tmp_path.iterdir())
    with pytest.raises(PathError, match="does not exist"):
        atomic_write(tmp_path / "no" / "x", lambda f: None)


# --- 4. outputs are safe ---------------------------------------------------------------------------

def test_output_equal_to_an_input_is_refused(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.arange(10) % 3)
    before = (tmp_path / "a.npy").read_bytes()
    assert_one_line(*cli(capsys, "encode", tmp_path / "a.npy", "-o", tmp_path / "a.npy")[::2], "input file")
    assert (tmp_path / "a.npy").read_bytes() == before
    assert cli(capsys, "encode", tmp_path / "a.npy", "-o", tmp_path / "a.tans")[0] == 0
    os.link(tmp_path / "a.tans", tmp_path / "hard.tans")
    coded = (tmp_path / "a.tans").read_bytes()
    for out in ("a.tans", "hard.tans"):
        assert_one_line(*cli(capsys, "decode", tmp_path / "a.tans", "-o", tmp_path / out)[::2], "input file")
    assert (tmp_path / "a.tans").read_bytes() == coded


def test_outputs_are_regular_files_only(tmp_path, capsys):
    target = tmp_path / "real.npy"
    target.write_bytes(b"keep")
    os.symlink(target, tmp_path / "link.npy")
    os.mkfifo(tmp_path / "fifo.npy")
    (tmp_path / "dir.npy").mkdir()
    src = GOLDEN / "tiny_l32_1lane.tans"
    for out, words in ((tmp_path / "link.npy", "symbolic link"), (tmp_path / "fifo.npy", "a FIFO"),
                       (tmp_path / "dir.npy", "a directory"), ("/dev/null", "a character device")):
        assert_one_line(*cli(capsys, "decode", src, "-o", out)[::2], str(out), words)
    assert target.read_bytes() == b"keep" and (tmp_path / "link.npy").is_symlink()
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo.npy").st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    from sw.train import save_checkpoint
    with pytest.raises(PathError, match="symbolic link"):
        save_checkpoint(tmp_path / "link.npy", {"x": 1})


def test_overwrites_keep_the_mode_new_files_follow_the_umask(tmp_path):
    from sw.train import save_checkpoint
    c = ct.read(GOLDEN / "tiny_l32_1lane.tans")
    for p, write in ((tmp_path / "x.tans", lambda p: ct.write(p, c)),
                     (tmp_path / "x.ckpt", lambda p: save_checkpoint(p, {"x": 1}))):
        p.write_bytes(b"old")
        os.chmod(p, 0o600)
        write(p)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600 and p.read_bytes() != b"old"
    old = os.umask(0o027)
    try:
        ct.write(tmp_path / "new.tans", c)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.tans").st_mode) == 0o640
    assert (tmp_path / "new.tans").read_bytes() == ct.to_bytes(c)


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(a, b):
        events.append(("replace", os.fspath(a)))
        return real_replace(a, b)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    ct.write(tmp_path / "x.tans", ct.read(GOLDEN / "tiny_l32_1lane.tans"))
    kinds = [k for k, _ in events]
    assert kinds[:2] == ["fsync", "replace"] and events[0][1] == events[1][1]
    assert kinds[2:] == ["fsync"] and events[2][1] == str(tmp_path)       # then the folder


def test_temp_files_are_removed_on_errors(tmp_path):
    def boom(f):
        f.write(b"partial")
        raise RuntimeError("disk on fire")

    def interrupt(f):
        f.write(b"partial")
        raise KeyboardInterrupt
    for fn, exc in ((boom, RuntimeError), (interrupt, KeyboardInterrupt)):
        with pytest.raises(exc):
            atomic_write(tmp_path / "x", fn)
        assert not list(tmp_path.iterdir())


SLOW_WRITE = """
import sys, time
from sw.container.files import atomic_write
def slow(f):
    f.write(b"partial")
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
atomic_write(sys.argv[1], slow)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_temp_files_are_removed_on_signals(tmp_path, sig):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    # a shell without job control starts background jobs with SIGINT ignored, and a child inherits
    # that: give it the default disposition, as an interactive user's process has
    p = subprocess.Popen([sys.executable, "-c", SLOW_WRITE, str(target)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert p.stdout.readline() == b"writing\n"
    assert len(list(tmp_path.iterdir())) == 2          # the target and the hidden temporary file
    p.send_signal(sig)
    p.wait(timeout=60)
    assert p.returncode != 0 and (sig != signal.SIGTERM or p.returncode == -signal.SIGTERM)
    assert [x.name for x in tmp_path.iterdir()] == ["out.bin"] and target.read_bytes() == b"old"


def test_npz_names_round_trip_or_are_refused(tmp_path, capsys):
    names = ["file", "allow_pickle", "a/b", "x.npy", "", "ünï", "..", "/abs", "sp ace"]
    f = tmp_path / "n.tans"
    ct.write(f, ct.Container([ct.f32_tensor(n, np.array([i], np.float32)) for i, n in enumerate(names)]))
    assert cli(capsys, "decode", f, "-o", tmp_path / "n.npz")[0] == 0
    back = np.load(tmp_path / "n.npz")
    assert sorted(back.files) == sorted(names) and all(back[n][0] == i for i, n in enumerate(names))
    first = (tmp_path / "n.npz").read_bytes()
    assert cli(capsys, "decode", f, "-o", tmp_path / "n.npz")[0] == 0
    assert (tmp_path / "n.npz").read_bytes() == first                   # reproducible bytes
    for bad, words in (("a\0b", "NUL"), ("x" * 65535, "longer")):
        ct.write(f, ct.Container([ct.f32_tensor(bad, np.zeros(1, np.float32))]))
        assert_one_line(*cli(capsys, "decode", f, "-o", tmp_path / "bad.npz")[::2], words)
        assert not (tmp_path / "bad.npz").exists()
    with pytest.raises(InputError, match="two tensors"):
        check_npz_names(["a", "b", "a"])


# --- 5. dtypes and sizes as promised ----------------------------------------------------------------

def test_bool_round_trips_as_bool(tmp_path, capsys):
    arr = np.random.default_rng(0).random((5, 7)) < 0.3
    np.save(tmp_path / "b.npy", arr)
    assert cli(capsys, "encode", tmp_path / "b.npy", "-o", tmp_path / "b.tans")[0] == 0
    assert cli(capsys, "decode", tmp_path / "b.tans", "-o", tmp_path / "back.npy")[0] == 0
    back = np.load(tmp_path / "back.npy")
    assert back.dtype == np.bool_ and np.array_equal(back, arr)
    c = ct.read(tmp_path / "b.tans")
    v1 = pack(b"{}", [v1_body(c.tensors[0])], minor=1)
    assert ct.from_bytes(v1).tensors[0].values().dtype == np.bool_     # bool is dtype code 12, from 1.1 on
    with pytest.raises(FormatError, match="dtype code 12"):
        ct.from_bytes(pack(b"{}", [v1_body(c.tensors[0])], minor=0))
    if "major" in ct.to_bytes.__code__.co_varnames:                    # a writer that can write version 1
        assert struct.unpack_from("<HH", ct.to_bytes(c, major=1), 8) == (1, 1)
        ints = ct.Container([ct.tans_tensor("i", arr.astype(np.uint8))])
        assert struct.unpack_from("<HH", ct.to_bytes(ints, major=1), 8) == (1, 0)     # the rest stays 1.0


def test_symbols_must_fit_their_dtype():
    with pytest.raises(InputError, match="does not fit"):
        ct.tans_tensor("t", np.array([0, 300]), dtype=np.uint8)
    with pytest.raises(InputError, match="does not fit"):
        ct.tans_tensor("t", np.array([0, 2049]), dtype=np.float16)
    assert ct.tans_tensor("t", np.array([0, 2048]), dtype=np.float16).values().tolist() == [0, 2048]
    t = ct.tans_tensor("t", np.array([0, 1, 1]), dtype=np.int64)
    t.dtype = np.dtype(np.bool_)
    assert ct.from_bytes(pack(b"{}", [v1_body(t)], minor=1)).tensors[0].values().tolist() == [0, 1, 1]


@pytest.mark.parametrize("n,lanes", [(1, 1), (10, 10), (64, 64), (1000, 64)])
def test_lanes_default_to_min_64_n(tmp_path, capsys, n, lanes):
    np.save(tmp_path / "a.npy", np.arange(n) % 3)
    assert cli(capsys, "encode", tmp_path / "a.npy", "-o", tmp_path / "a.tans")[0] == 0
    assert ct.read(tmp_path / "a.tans").tensors[0].coded.lanes == lanes


@pytest.mark.parametrize("shape,dtype", [((0,), "u1"), ((0, 3), "i8"), ((4, 0, 2), "?")])
def test_empty_arrays_encode_and_decode(tmp_path, capsys, shape, dtype):
    np.save(tmp_path / "e.npy", np.zeros(shape, dtype))
    rc, out, err = cli(capsys, "encode", tmp_path / "e.npy", "-o", tmp_path / "e.tans")
    assert rc == 0 and "0 symbols" in out, err
    assert cli(capsys, "decode", tmp_path / "e.tans", "-o", tmp_path / "back.npy")[0] == 0
    back = np.load(tmp_path / "back.npy")
    assert back.shape == shape and back.dtype == np.dtype(dtype)
    assert cli(capsys, "inspect", tmp_path / "e.tans")[0] == 0
