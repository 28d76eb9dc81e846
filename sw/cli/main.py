"""`python -m sw`: encode, decode and inspect `.tans` files, plus the model pipeline commands.

Errors on bad input end with a one-line message on stderr and a non-zero exit code.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from sw import container as ct
from sw.container.files import atomic_write, check_npz_names, check_output, read_npy, write_npz
from sw.cli import model as cli_model
from sw.tans import format as fmt
from sw.tans.errors import InputError, TansError, quote


class CliError(Exception):
    """A user mistake reported as one line, exit code 1."""


def states_arg(text: str) -> int:
    """Parse --states: a power of two in 32..4096; returns log2."""
    try:
        l = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--states takes an integer, got {text!r}") from None
    k = l.bit_length() - 1
    if l <= 0 or 1 << k != l or not fmt.MIN_LOG2_STATES <= k <= fmt.MAX_LOG2_STATES:
        raise argparse.ArgumentTypeError(
            f"--states must be a power of two from {1 << fmt.MIN_LOG2_STATES} to "
            f"{1 << fmt.MAX_LOG2_STATES}, got {l}")
    return k


SIZE_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def bytes_arg(text: str) -> int:
    """Parse --max-bytes: a positive byte count, optionally with a K/M/G/T (binary) suffix."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = SIZE_SUFFIXES.get(t[-1:], None) if t and not t[-1:].isdigit() else 1
    digits = t[:-1] if t and not t[-1:].isdigit() else t
    if unit is None or not digits.isdigit() or int(digits) <= 0:
        raise argparse.ArgumentTypeError(f"--max-bytes takes a positive size such as 4096, 512M or 2G, got {text!r}")
    return int(digits) * unit


def add_max_bytes(p: argparse.ArgumentParser) -> None:
    """The --max-bytes option of every command that reads untrusted files."""
    p.add_argument("--max-bytes", type=bytes_arg, default=fmt.DEFAULT_MAX_BYTES, metavar="SIZE",
                   help="refuse inputs larger than this or that decode to more (default 1G; K/M/G suffixes)")


def cmd_encode(args: argparse.Namespace) -> int:
    check_output(args.output, [args.symbols])
    arr = read_npy(args.symbols, args.max_bytes)
    if arr.dtype.kind not in "iub":
        raise InputError(f"{args.symbols}: symbols must be integers, got dtype {arr.dtype}")
    name = args.name or Path(args.symbols).stem
    lanes = args.lanes if args.lanes is not None else min(fmt.DEFAULT_LANES, arr.size)
    tensor = ct.tans_tensor(name, arr, log2_states=args.states, lanes=lanes, dtype=arr.dtype)
    ct.write(args.output, ct.Container([tensor], {"source": Path(args.symbols).name}), inputs=[args.symbols])
    s = tensor.stats()
    if not s["symbols"]:
        print(f"{args.output}: 0 symbols (an empty {arr.dtype} array of shape {tuple(arr.shape)})")
        return 0
    n, file_bits = s["symbols"], 8 * Path(args.output).stat().st_size
    print(f"{args.output}: {n} symbols, {s['total_bits'] / n:.4f} bits/symbol (whole record; entropy bound "
          f"{s['entropy_bits'] / n:.4f}, gap {_gap(s['gap_percent'])}), {file_bits // 8} bytes = "
          f"{file_bits / n:.4f} bits/symbol with the file header, {s['lanes']} lanes, {s['states']} states")
    return 0


def _gap(percent: float | None) -> str:
    """A gap figure: '-' where there is no entropy bound to compare with (a constant or raw tensor)."""
    return "-" if percent is None else f"{percent:.1f}%"


def cmd_decode(args: argparse.Namespace) -> int:
    check_output(args.output, [args.input])
    c = ct.read(args.input, args.max_bytes)
    with ct.in_file(args.input):
        if args.output.endswith(".npz"):
            try:
                check_npz_names(t.name for t in c.tensors)
            except InputError as e:
                raise InputError(f"{args.input}: {e}") from None
            arrays = {t.name: t.values() for t in c.tensors}
            atomic_write(args.output, lambda f: write_npz(f, arrays), [args.input])
            print(f"{args.output}: {len(arrays)} tensors")
            return 0
        if args.tensor is not None:
            try:
                t = c[args.tensor]
            except KeyError:
                raise CliError(f"{args.input}: no tensor named {args.tensor!r}") from None
        elif len(c.tensors) == 1:
            t = c.tensors[0]
        else:
            raise CliError(f"{args.input} holds {len(c.tensors)} tensors: name one with --tensor, "
                           "or write them all to a .npz")
        values = t.values()
    atomic_write(args.output, lambda f: np.save(f, values, allow_pickle=False), [args.input])
    shown = t.name if t.name.isprintable() and len(t.name) <= 60 else quote(t.name)
    print(f"{args.output}: {shown} {values.dtype} {tuple(values.shape)}")
    return 0


def inspect_summary(c: ct.Container, file_bytes: int | None = None) -> dict:
    """Per-tensor figures and totals, as printed by `inspect --json` (definitions: docs/NUMBERS.md)."""
    tensors = [t.stats() for t in c.tensors]
    for t, s in zip(c.tensors, tensors):
        if t.kind == fmt.KIND_TANS:
            t.symbols()  # full decode: a damaged payload must fail inspect too
    total = 8 * (len(ct.to_bytes(c)) if file_bytes is None else file_bytes)
    n = int(sum(s["symbols"] for s in tensors))
    records = int(sum(s["total_bits"] for s in tensors))
    entropy = float(sum(s.get("entropy_bits", 0.0) for s in tensors)) + 0.0
    return {"tensors": tensors, "total_bits": total, "record_bits": records,
            "file_overhead_bits": total - records, "entropy_bits": entropy, "symbols": n,
            "bits_per_symbol": total / n if n else None, "record_bits_per_symbol": records / n if n else None}


def cmd_inspect(args: argparse.Namespace) -> int:
    c = ct.read(args.input, args.max_bytes)
    with ct.in_file(args.input):
        summary = inspect_summary(c, Path(args.input).stat().st_size)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    head = f"{'tensor':24} {'kind':8} {'symbols':>9} {'A':>5} {'used':>5} {'entropy':>10} {'payload':>10} " \
           f"{'lanest':>6} {'table':>6} {'steps':>6} {'header':>6} {'record':>10} {'bits/s':>7} {'gap%':>6} " \
           f"{'pgap%':>6}"
    print(head)
    print("-" * len(head))
    for s in summary["tensors"]:
        name = s["name"] if s["name"].isprintable() else quote(s["name"], 22)   # names come from the file
        bps = f"{s['total_bits'] / s['symbols']:.4f}" if s["symbols"] else "-"
        if s["kind"] == "tans":
            pgap = s.get("coding_gap_percent")
            print(f"{name[:24]:24} {s['kind']:8} {s['symbols']:9d} {s['alphabet']:5d} {s['used_symbols']:5d} "
                  f"{s['entropy_bits']:10.1f} {s['payload_bits']:10d} {s['lane_state_bits']:6d} "
                  f"{s['table_bits']:6d} {s['step_bits']:6d} {s['header_bits']:6d} {s['total_bits']:10d} "
                  f"{bps:>7} {_gap(s['gap_percent']).rstrip('%'):>6} {_gap(pgap).rstrip('%'):>6}")
        else:
            print(f"{name[:24]:24} {s['kind']:8} {s['symbols']:9d} {'-':>5} {'-':>5} {'-':>10} "
                  f"{s['payload_bits']:10d} {0:6d} {0:6d} {s['step_bits']:6d} {s['header_bits']:6d} "
                  f"{s['total_bits']:10d} {bps:>7} {'-':>6} {'-':>6}")
    n = summary["symbols"]
    per = (lambda bits: f" = {bits / n:.4f} bits/symbol") if n else (lambda bits: "")
    print("bits: payload (coded symbols) + lane states + table + steps + header = record; A = stored alphabet, "
          "used = distinct symbols; gap = record vs entropy bound, pgap = payload and lane states only")
    print(f"total: {summary['symbols']} symbols; file {summary['total_bits'] // 8} bytes, "
          f"{summary['total_bits']} bits{per(summary['total_bits'])} (records {summary['record_bits']} bits"
          f"{per(summary['record_bits'])}, file header and metadata {summary['file_overhead_bits']} bits); "
          f"entropy bound {summary['entropy_bits']:.1f} bits{per(summary['entropy_bits'])}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sw", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("encode", help="code an integer .npy array into a .tans file")
    e.add_argument("symbols", help="SYMBOLS.npy: non-negative integers, any shape")
    e.add_argument("-o", "--output", required=True, help="OUT.tans")
    e.add_argument("--states", type=states_arg, default=fmt.DEFAULT_LOG2_STATES,
                   help="table states l, a power of two 32..4096 (default 256)")
    e.add_argument("--lanes", type=int, default=None,
                   help="parallel streams (default min(64, N)); each must get at least one symbol")
    e.add_argument("--name", help="tensor name (default: the file's stem)")
    add_max_bytes(e)
    e.set_defaults(func=cmd_encode)
    d = sub.add_parser("decode", help="restore the arrays of a .tans file")
    d.add_argument("input", help="IN.tans")
    d.add_argument("-o", "--output", required=True, help="BACK.npy (one tensor) or BACK.npz (all)")
    d.add_argument("--tensor", help="which tensor to write to a .npy")
    add_max_bytes(d)
    d.set_defaults(func=cmd_decode)
    i = sub.add_parser("inspect", help="per-tensor sizes against the entropy bound")
    i.add_argument("input", help="IN.tans")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    add_max_bytes(i)
    i.set_defaults(func=cmd_inspect)
    cli_model.register(sub)
    return p


def error_line(e: BaseException) -> str:
    """The one-line message for an error: OSErrors name their path, line breaks become spaces."""
    msg = str(e) or type(e).__name__
    if isinstance(e, FileNotFoundError) and e.filename:
        msg = f"{e.filename}: no such file"
    elif isinstance(e, OSError) and e.filename and e.strerror:
        msg = f"{e.filename}: {e.strerror}"
    return " ".join(msg.splitlines())


def quiet_broken_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc = int(args.func(args) or 0)
        sys.stdout.flush()       # a closed pipe shows up here, inside the handlers below
        return rc
    except BrokenPipeError:      # `python -m sw inspect x | head -1`: stop quietly
        quiet_broken_stdout()
        return 1
    except (TansError, CliError, ValueError, OSError) as e:
        print(f"error: {error_line(e)}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory (lower --max-bytes, or free memory)", file=sys.stderr)
        return 1
    except RecursionError:
        print("error: the input nests too deeply to process", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
