"""Mutation fuzzing of the `.tans` reader, and the detection rate of the final-state check.

    python benchmarks/fuzz.py campaign [--cases 100000] [--seconds S] [--seed 0] [--max-bytes 16M]
                                       [--memory-cap 2G] [--json out.json]
    python benchmarks/fuzz.py flips FILE.tans [FILE.tans ...] [--synthetic] [--json out.json]

`campaign` mutates real `.tans` files (the golden vectors plus a few built here: a quantized
layer set, bool, empty, 0-d, dominant-symbol, constant and wide-alphabet tensors). Each case
applies one to three mutations (bit flips, byte and field overwrites with edge values, inserted
or deleted bytes, crafted metadata, dropped, duplicated or swapped records) and then repairs
every CRC and length (except in a few cases), so that the parser and the decoders, not the
CRCs, meet the damage. Every outcome must be either a decode or the project's FormatError:
with the fast decoder and with the golden (reference) decoder, which must agree exactly (the
scalar golden decoder only runs on files that declare at most GOLDEN_LIMIT coded symbols), and
from `python -m sw inspect` run in-process, which must exit 0 on a decodable file and 1 with
exactly one `error: ...` line naming the file otherwise. Anything else (another exception,
a disagreement, a case slower than `--slow` seconds) is a failure; the run stops with status 1.
`--memory-cap` sets RLIMIT_AS, so a decompression bomb shows up as a MemoryError failure.

`flips` flips every coded bit of every tANS tensor singly, on the payload directly (the CRCs
are bypassed), and counts how often the tANS checks alone (final states, bits consumed,
padding) detect it, and how many symbols come out wrong when they do not.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np

from sw import container as ct
from sw.tans import FormatError, LimitError, decode, encode
from sw.tans import format as fmt
from sw.tans.vectors import corrupt_bits

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
GOLDEN_LIMIT = 40_000     #: symbols up to which the slow golden decoder also decodes a case


# --- the seed corpus ----------------------------------------------------------------------------

def layouts(c: ct.Container) -> dict[str, bytes]:
    """The container as the writer writes it, and in the version-1 layout when the writer has another."""
    out = {"": ct.to_bytes(c)}
    try:
        v1 = ct.to_bytes(c, major=1)
    except TypeError:           # a writer with one layout only
        return out
    if v1 != out[""]:
        out["_v1"] = v1
    return out


def corpus() -> dict[str, bytes]:
    """Real files to mutate: the golden vectors (also as the writer writes them now) plus containers
    that reach every reader branch, in every record layout the writer knows."""
    files = {p.stem: p.read_bytes() for p in sorted(GOLDEN.glob("*.tans"))}
    for name in list(files):
        again = ct.to_bytes(ct.from_bytes(files[name]))
        if again != files[name]:
            files[name + "_rewritten"] = again
    rng = np.random.default_rng(5)
    sym = rng.choice(7, size=(6, 5, 3, 3), p=[.02, .08, .15, .5, .15, .08, .02])
    layers = ct.Container([
        ct.tans_tensor("conv.weight", sym, log2_states=7, lanes=5, lane_axis=1, quant=fmt.QUANT_ZERO_POINT,
                       bins=7, zero_point=3, steps=np.linspace(0.1, 0.6, 6).astype(np.float32), step_axis=0),
        ct.int8_tensor("fc.weight", rng.integers(-128, 128, (3, 4)), np.array([0.5, 0.25, 2.0], np.float32), 0),
        ct.f32_tensor("fc.bias", np.array([0.5, -1.25, 3.0], np.float32)),
        ct.tans_tensor("scalar", np.array(3), log2_states=5, lanes=1),
        ct.tans_tensor("empty", np.zeros((0, 4), np.int16)),
    ], {"model": "lenet5", "data": {"spec": "sklearn-digits", "n_train": 10}, "state_dtypes": {"fc.bias": "float32"}})
    dominant = np.where(rng.random(600) < 0.93, 2, rng.integers(0, 6, 600))
    wide = np.minimum(rng.geometric(0.03, 1500) - 1, 199)
    built = {"layers": layers,
             "bool": ct.Container([ct.tans_tensor("mask", rng.random((7, 9)) < 0.2, lanes=3)]),
             "dominant": ct.Container([ct.tans_tensor("d", dominant.astype(np.uint8), log2_states=6, lanes=4)]),
             "constant": ct.Container([ct.tans_tensor("c", np.full(50, 9, np.uint16), log2_states=5, lanes=3)]),
             "wide_k12": ct.Container([ct.tans_tensor("w", wide, log2_states=12, lanes=16)])}
    for name, c in built.items():
        for suffix, data in layouts(c).items():
            files[name + suffix] = data
    return files


# --- the byte layout, as fields -----------------------------------------------------------------

def split_file(data: bytes) -> tuple[dict, list[bytes]] | None:
    """(header fields, record bodies) of a well-formed file, None when the framing is broken."""
    try:
        major, minor, n, meta_len = struct.unpack_from("<HHII", data, 8)
        o = 20 + meta_len + 4
        bodies = []
        for _ in range(n):
            (blen,) = struct.unpack_from("<I", data, o)
            bodies.append(data[o + 4:o + 4 + blen])
            o += blen + 8
        if o != len(data) - 4:
            return None
        return {"major": major, "minor": minor, "meta": data[20:20 + meta_len]}, bodies
    except struct.error:
        return None


def join_file(head: dict, bodies: list[bytes], n_tensors: int | None = None) -> bytes:
    """A file from its parts with every CRC and length correct (what a buggy writer could produce)."""
    meta = head["meta"]
    h = fmt.MAGIC + struct.pack("<HHII", head["major"], head["minor"],
                                len(bodies) if n_tensors is None else n_tensors, len(meta)) + meta
    out = [h, struct.pack("<I", zlib.crc32(h))]
    for b in bodies:
        out += [struct.pack("<I", len(b)), b, struct.pack("<I", zlib.crc32(b))]
    data = b"".join(out)
    return data + struct.pack("<I", zlib.crc32(data))


def record_fields(body: bytes) -> list[tuple[str, int, str]]:
    """(name, offset, struct code) of each fixed-size field of a version-1 record body, as far as it parses.

    On a body of another layout the offsets are wrong but still inside the body: the mutation
    is then a structured overwrite at an arbitrary place, which is fine for fuzzing.
    """
    fields: list[tuple[str, int, str]] = []
    p = 0

    def get(name: str, code: str):
        nonlocal p
        v = struct.unpack_from("<" + code, body, p)[0]
        fields.append((name, p, code))
        p += struct.calcsize("<" + code)
        return v
    try:
        p = 2 + get("name_len", "H")
        kind, _dt, ndim = get("kind", "B"), get("dtype", "B"), get("ndim", "B")
        for i in range(min(ndim, fmt.MAX_NDIM)):
            get(f"shape{i}", "Q")
        get("lane_axis", "b")
        quant = get("quant", "B")
        if quant == 1:
            get("bins", "H")
            get("zero_point", "H")
        if quant in (1, 2):
            get("step_axis", "b")
            n_steps = get("n_steps", "I")
            for i in range(min(n_steps, 8)):
                get(f"step{i}", "f")
            p += 4 * max(0, n_steps - 8)
        if kind == 0:
            get("log2_states", "B")
            get("lanes", "I")
            a = get("alphabet", "I")
            for i in range(min(a, 16)):
                get(f"count{i}", "H")
            p += 2 * max(0, a - 16)
            get("payload_bits", "Q")
    except struct.error:
        pass
    return fields


EDGE = {"B": [0, 1, 2, 5, 12, 13, 32, 33, 127, 128, 255], "b": [-128, -2, -1, 0, 1, 2, 3, 31, 32, 127],
        "H": [0, 1, 2, 3, 4, 255, 256, 4095, 4096, 4097, 65535], "I": [0, 1, 2, 63, 64, 65, 4096, 65536, 65537,
                                                                      1 << 20, (1 << 20) + 1, (1 << 31), (1 << 32) - 1],
        "Q": [0, 1, 2, 7, 8, 63, 64, 65, 1 << 16, 1 << 20, 1 << 24, 1 << 31, 1 << 32, 1 << 40, 1 << 62, (1 << 63) - 1,
              1 << 63, (1 << 64) - 1],
        "f": [0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf"), float("nan"), 1e-45, 3.4e38]}

CRAFTED_META = [b"[]", b"[1, 2]", b"3", b'"x"', b"null", b"{", b"{}" + b" " * 3, b"\xff\xfe{}", b'{"a": NaN}',
                b'{"a": 1e999}', b'{"a": ' + b"9" * 5000 + b"}", b"[" * 100000 + b"]" * 100000,
                b'{"a": ' + b"[" * 63 + b"]" * 63 + b"}", b'{"a": ' + b"[" * 64 + b"]" * 64 + b"}",
                b'{"model": "os:system", "model_config": {"command": "touch marker"}}', b"\xef\xbb\xbf{}",
                b'{"x": "\\ud800"}', b'{"\\u0000": 1}']


def mutate(rng: random.Random, data: bytes, files: dict[str, bytes]) -> tuple[bytes, list[str]]:
    """One to three mutations of `data`, CRCs and lengths repaired unless the case says otherwise."""
    parts = split_file(data)
    if parts is None:
        return data, ["unsplittable"]
    head, bodies = parts
    head = dict(head)
    bodies = [bytearray(b) for b in bodies]
    done: list[str] = []
    n_override = None
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        op = rng.choice(["field", "field", "field", "bitflip", "payload", "byte", "insert", "delete",
                         "meta", "meta_edit", "records", "version", "count"])
        if op in ("field", "bitflip", "payload", "byte", "insert", "delete") and not bodies:
            op = "meta"
        if op == "field":
            i = rng.randrange(len(bodies))
            fields = record_fields(bytes(bodies[i]))
            if not fields:
                continue
            name, off, code = rng.choice(fields)
            size = struct.calcsize("<" + code)
            if off + size > len(bodies[i]):
                continue
            cur = struct.unpack_from("<" + code, bodies[i], off)[0]
            if code == "f":
                val = rng.choice(EDGE["f"] + [cur * rng.choice([-1, 0.5, 2])])
            else:
                lo, hi = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if code == "b" else (0, (1 << (8 * size)) - 1)
                val = rng.choice(EDGE[code] + [cur + 1, cur - 1, rng.randint(lo, hi)])
                val = min(hi, max(lo, val))
            struct.pack_into("<" + code, bodies[i], off, val)
            done.append(f"field {name}={val}")
        elif op == "bitflip":
            i = rng.randrange(len(bodies))
            if bodies[i]:
                bit = rng.randrange(8 * len(bodies[i]))
                bodies[i][bit >> 3] ^= 1 << (bit & 7)
                done.append(f"bitflip {i}:{bit}")
        elif op == "payload":      # flip bits near the end, where the payload is
            i = rng.randrange(len(bodies))
            n = len(bodies[i])
            if n:
                for _ in range(rng.choice([1, 1, 2, 3])):
                    bit = rng.randrange(max(0, 8 * n - 512), 8 * n)
                    bodies[i][bit >> 3] ^= 1 << (bit & 7)
                done.append(f"payload {i}")
        elif op == "byte":
            i = rng.randrange(len(bodies))
            if bodies[i]:
                j = rng.randrange(len(bodies[i]))
                bodies[i][j] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
                done.append(f"byte {i}:{j}")
        elif op == "insert":
            i = rng.randrange(len(bodies))
            j = rng.randrange(len(bodies[i]) + 1)
            bodies[i][j:j] = bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 4, 8, 9])))
            done.append(f"insert {i}:{j}")
        elif op == "delete":
            i = rng.randrange(len(bodies))
            if bodies[i]:
                j = rng.randrange(len(bodies[i]))
                del bodies[i][j:j + rng.choice([1, 2, 4, 8, 100])]
                done.append(f"delete {i}:{j}")
        elif op == "meta":
            head["meta"] = rng.choice(CRAFTED_META)
            done.append("meta crafted")
        elif op == "meta_edit":
            m = bytearray(head["meta"])
            if m:
                m[rng.randrange(len(m))] = rng.randrange(256)
            head["meta"] = bytes(m)
            done.append("meta edit")
        elif op == "records":
            choice = rng.choice(["drop", "dup", "swap", "foreign"])
            if choice == "drop" and bodies:
                del bodies[rng.randrange(len(bodies))]
            elif choice == "dup" and bodies:
                bodies.insert(rng.randrange(len(bodies) + 1), bytearray(rng.choice(bodies)))
            elif choice == "swap" and len(bodies) > 1:
                rng.shuffle(bodies)
            else:
                other = split_file(files[rng.choice(sorted(files))])
                if other and other[1]:
                    bodies.append(bytearray(rng.choice(other[1])))
            done.append(f"records {choice}")
        elif op == "version":
            head["major"], head["minor"] = rng.choice([(1, 0), (1, 1), (1, 2), (0, 0), (2, 0), (2, 1), (3, 0)])
            done.append(f"version {head['major']}.{head['minor']}")
        elif op == "count":
            n_override = rng.choice([0, len(bodies) + 1, max(0, len(bodies) - 1), (1 << 32) - 1])
            done.append(f"count {n_override}")
    out = join_file(head, [bytes(b) for b in bodies], n_override)
    if rng.random() < 0.03:             # now and then leave a CRC wrong, so that path is exercised too
        j = rng.randrange(len(out))
        out = out[:j] + bytes([out[j] ^ 0x01]) + out[j + 1:]
        done.append("crc broken")
    return out, done


# --- running one case ---------------------------------------------------------------------------

def decode_all(data: bytes, golden: bool, max_bytes: int) -> list[tuple[str, str, tuple, bytes]]:
    """Every tensor of a file as (name, dtype, shape, bytes); FormatError on any problem."""
    c = ct.from_bytes(data, max_bytes)
    out = []
    for t in c.tensors:
        v = t.values(golden=golden)
        out.append((t.name, v.dtype.str, tuple(v.shape), v.tobytes()))
    return out


def declared_symbols(data: bytes, max_bytes: int) -> int:
    """Symbols the file's coded tensors declare (0 when it does not parse)."""
    try:
        c = ct.from_bytes(data, max_bytes)
    except FormatError:
        return 0
    return sum(t.size for t in c.tensors if t.kind == fmt.KIND_TANS)


class Failure(Exception):
    """A case whose outcome breaks the promise: not a decode, not a FormatError, or two decoders disagree."""


def run_case(data: bytes, max_bytes: int, tmp: Path, cli: str | None = None) -> str:
    """Outcome class of one file: "decoded" or "rejected"; Failure otherwise.

    `cli` names a command of `python -m sw` to run on the file as well (check_cli).
    """
    try:
        fast = decode_all(data, False, max_bytes)
        fast_err = None
    except FormatError as e:
        fast, fast_err = None, e
    except Exception as e:   # noqa: BLE001 - that is what the fuzzer looks for
        raise Failure(f"fast path raised {type(e).__name__}: {e}") from e
    if declared_symbols(data, max_bytes) > GOLDEN_LIMIT:
        pass                 # too long for the scalar golden decoder: the fast path alone
    else:
        try:
            gold, gold_err = decode_all(data, True, max_bytes), None
        except FormatError as e:
            gold, gold_err = None, e
        except Exception as e:   # noqa: BLE001
            raise Failure(f"golden path raised {type(e).__name__}: {e}") from e
        if (fast_err is None) != (gold_err is None):
            raise Failure(f"fast and golden decoders disagree: fast {fast_err!r}, golden {gold_err!r}")
        if fast != gold:
            raise Failure("fast and golden decoders decode different values")
    if cli:
        check_cli(cli, data, max_bytes, tmp, fast_err)
    return "decoded" if fast_err is None else "rejected"


CLI_COMMANDS = ("inspect", "decode", "report", "evaluate")


def _run_main(argv: list[str]) -> tuple[int, list[str]]:
    """`python -m sw ARGV` in-process: (exit code, stderr lines); Failure on an exception or exit."""
    from sw.cli.main import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:
            raise Failure(f"{argv[0]} exited with {e.code}") from e
        except Exception as e:   # noqa: BLE001
            raise Failure(f"{argv[0]} raised {type(e).__name__}: {e}") from e
    return rc, err.getvalue().splitlines()


def check_cli(command: str, data: bytes, max_bytes: int, tmp: Path, fast_err: Exception | None) -> None:
    """One CLI command on the file: exit 0 (or 2 for an evaluate mismatch), or 1 with one `error: FILE` line.

    inspect and decode decode every tensor, so they must succeed exactly when the fast path did
    (decode may also refuse names a .npz cannot hold); report and evaluate read with the default
    limit and decode only some tensors, so they are skipped for files over the fuzz limit.
    """
    path = tmp / "case.tans"
    path.write_bytes(data)
    if command in ("report", "evaluate") and isinstance(fast_err, LimitError):
        return
    out = tmp / "out.npz"
    argv = {"inspect": ["inspect", str(path), "--json", "--max-bytes", str(max_bytes)],
            "decode": ["decode", str(path), "-o", str(out), "--max-bytes", str(max_bytes)],
            "report": ["report", str(path), "--json"],
            "evaluate": ["evaluate", str(path), "--json", "--max-bytes", str(max_bytes)]}[command]
    rc, lines = _run_main(argv)
    if rc == 1:
        if len(lines) != 1 or not lines[0].startswith(f"error: {path}"):
            raise Failure(f"{command}: not one error line naming the file: {lines[:3]}")
        if command == "inspect" and fast_err is None:
            raise Failure(f"inspect refused a decodable file: {lines[0]}")
        if command == "decode" and fast_err is None and not any(w in lines[0] for w in ("NUL", "longer")):
            raise Failure(f"decode refused a decodable file: {lines[0]}")
    elif rc == 0 or (rc == 2 and command == "evaluate"):
        if lines:
            raise Failure(f"{command}: exit {rc} with stderr {lines[:3]}")
        if command in ("inspect", "decode") and fast_err is not None:
            raise Failure(f"{command} accepted a file the reader rejects ({fast_err})")
    else:
        raise Failure(f"{command}: exit status {rc}")
    out.unlink(missing_ok=True)


def campaign(args: argparse.Namespace) -> dict:
    """Run the mutation campaign; returns the summary (failures listed, at most 20)."""
    files = corpus()
    originals = {k: decode_all(v, False, fmt.DEFAULT_MAX_BYTES) for k, v in files.items()}
    rng = random.Random(args.seed)
    counts = {"decoded_same": 0, "decoded_different": 0, "rejected": 0}
    failures: list[dict] = []
    slowest, cases, slowest_case = 0.0, 0, {}
    t_end = time.monotonic() + args.seconds if args.seconds else float("inf")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        while cases < args.cases and time.monotonic() < t_end:
            name = rng.choice(sorted(files))
            data, ops = mutate(rng, files[name], files)
            cli = CLI_COMMANDS[(cases // args.cli_every) % len(CLI_COMMANDS)] if cases % args.cli_every == 0 else None
            t = time.perf_counter()
            try:
                kind = run_case(data, args.max_bytes, tmp, cli)
            except Failure as e:
                failures.append({"case": cases, "file": name, "ops": ops, "error": str(e)[:300]})
                kind = "failure"
            dt = time.perf_counter() - t
            if dt > slowest:
                slowest, slowest_case = dt, {"case": cases, "file": name, "ops": ops, "cli": cli}
            if dt > args.slow:
                failures.append({"case": cases, "file": name, "ops": ops, "error": f"slow: {dt:.1f} s"})
            if kind == "decoded":
                same = decode_all(data, False, args.max_bytes) == originals[name]
                counts["decoded_same" if same else "decoded_different"] += 1
            elif kind == "rejected":
                counts["rejected"] += 1
            cases += 1
            if args.progress and cases % args.progress == 0:
                print(f"{cases} cases, {time.monotonic() - t0:.0f} s, {len(failures)} failures", file=sys.stderr)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"cases": cases, "seconds": round(time.monotonic() - t0, 1), "seed": args.seed,
            "max_bytes": args.max_bytes, "memory_cap": args.memory_cap, **counts,
            "failures": len(failures), "failure_examples": failures[:20], "slowest_case_s": round(slowest, 3), "slowest_case": slowest_case,
            "peak_rss_mib": round(peak, 1), "corpus": sorted(files)}


# --- single bit flips ---------------------------------------------------------------------------

def flip_stats(name: str, coded) -> dict:
    """Flip every payload bit in turn (no CRC): how many the tANS checks catch, and the damage of the rest."""
    clean = decode(coded)
    caught = {"bits consumed != payload_bits": 0, "final state": 0, "padding": 0}
    wrong: list[int] = []
    for bit in range(coded.payload_bits):
        try:
            out = decode(corrupt_bits(coded, [bit]))
        except FormatError as e:
            m = str(e)
            key = "final state" if "final state" in m else "padding" if "padding" in m else \
                "bits consumed != payload_bits"      # fewer, more, or past the payload's end
            caught[key] += 1
            continue
        wrong.append(int(np.count_nonzero(out != clean)))
    n = coded.payload_bits
    w = np.array(wrong) if wrong else np.zeros(0, int)
    return {"tensor": name, "symbols": coded.n_symbols, "alphabet": int(np.count_nonzero(coded.norm)),
            "states": coded.states, "lanes": coded.lanes, "coded_bits": n, "caught": caught,
            "undetected": len(wrong), "undetected_percent": round(100 * len(wrong) / n, 2) if n else 0.0,
            "undetected_identical_output": int(np.count_nonzero(w == 0)),
            "wrong_symbols_min": int(w[w > 0].min()) if np.any(w > 0) else 0,
            "wrong_symbols_median": float(np.median(w[w > 0])) if np.any(w > 0) else 0.0,
            "wrong_symbols_max": int(w.max()) if w.size else 0}


def flips(args: argparse.Namespace) -> dict:
    """Single-flip statistics of every coded tensor in the given files (and the synthetic case)."""
    rows = []
    for path in args.files:
        for t in ct.read(path).tensors:
            if t.kind == fmt.KIND_TANS and t.size:
                rows.append({"file": str(path), **flip_stats(t.name, t.coded)})
    if args.synthetic:                 # 200-symbol alphabets at k = 12, 20000 symbols in 64 lanes
        rng = np.random.default_rng(1)
        p = np.exp(-np.arange(200) / 30.0)
        for label, sym in (("p ~ exp(-s/30)", rng.choice(200, size=20000, p=p / p.sum())),
                           ("uniform", rng.integers(0, 200, 20000))):
            rows.append({"file": f"synthetic: 200 symbols, {label}",
                         **flip_stats("k=12, 64 lanes", encode(sym, log2_states=12, lanes=64))})
    total = sum(r["coded_bits"] for r in rows)
    missed = sum(r["undetected"] for r in rows)
    return {"tensors": rows, "coded_bits": total, "undetected": missed,
            "undetected_percent": round(100 * missed / total, 2) if total else 0.0}


def size_arg(text: str) -> int:
    """A byte count with an optional K/M/G suffix."""
    from sw.cli.main import bytes_arg
    return bytes_arg(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("campaign", help="mutation fuzzing of the reader")
    c.add_argument("--cases", type=int, default=100_000)
    c.add_argument("--seconds", type=float, default=0, help="stop after this long (0: no time limit)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--max-bytes", type=size_arg, default=16 << 20, help="reader limit per file (default 16M)")
    c.add_argument("--memory-cap", type=size_arg, default=None, help="RLIMIT_AS for this process")
    c.add_argument("--cli-every", type=int, default=10,
                   help="run a CLI command (inspect, decode, report, evaluate in turn) in-process on every n-th case")
    c.add_argument("--slow", type=float, default=5.0, help="a case slower than this (s) is a failure")
    c.add_argument("--progress", type=int, default=0, help="report every n cases on stderr")
    c.add_argument("--json", help="also write the summary here")
    f = sub.add_parser("flips", help="single-bit-flip detection of the final-state check")
    f.add_argument("files", nargs="*", type=Path)
    f.add_argument("--synthetic", action="store_true", help="add a 200-symbol alphabet at k = 12")
    f.add_argument("--json", help="also write the summary here")
    args = p.parse_args(argv)
    if getattr(args, "memory_cap", None):
        resource.setrlimit(resource.RLIMIT_AS, (args.memory_cap, args.memory_cap))
    out = campaign(args) if args.mode == "campaign" else flips(args)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 1 if out.get("failures") else 0


if __name__ == "__main__":
    sys.exit(main())
