"""`python -m sw`: encode, decode and inspect `.tans` files, plus the model pipeline commands.

Errors on bad input end with a one-line message on stderr and a non-zero exit code.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from sw import container as ct
from sw.container.records import _umask
from sw.cli import model as cli_model
from sw.tans import format as fmt
from sw.tans.errors import InputError, TansError


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


def load_npy(path: str) -> np.ndarray:
    """Load a .npy file without pickles, with a clear message when it is not one."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError) as e:
        raise CliError(f"{path}: not a readable .npy array ({e})") from None


def save_atomic(path: str, write) -> None:
    """Call write(file) on a temporary file and move it into place only on success."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=".sw-")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_encode(args: argparse.Namespace) -> int:
    arr = load_npy(args.symbols)
    if arr.size == 0:
        raise InputError(f"{args.symbols}: the array is empty, there is nothing to encode")
    if arr.dtype.kind not in "iub":
        raise InputError(f"{args.symbols}: symbols must be integers, got dtype {arr.dtype}")
    name = args.name or Path(args.symbols).stem
    tensor = ct.tans_tensor(name, arr, log2_states=args.states, lanes=args.lanes,
                            dtype=arr.dtype if arr.dtype.kind != "b" else np.uint8)
    ct.write(args.output, ct.Container([tensor], {"source": Path(args.symbols).name}))
    s = tensor.stats()
    print(f"{args.output}: {s['symbols']} symbols, {s['total_bits'] / max(1, s['symbols']):.4f} bits/symbol "
          f"(entropy {s['entropy_bits'] / s['symbols']:.4f}), {s['lanes']} lanes, {s['states']} states")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    c = ct.read(args.input)
    if args.output.endswith(".npz"):
        arrays = {t.name: t.values() for t in c.tensors}
        save_atomic(args.output, lambda f: np.savez(f, **arrays))
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
    save_atomic(args.output, lambda f: np.save(f, values, allow_pickle=False))
    print(f"{args.output}: {t.name} {values.dtype} {tuple(values.shape)}")
    return 0


def inspect_summary(c: ct.Container) -> dict:
    """Per-tensor figures and totals, as printed by `inspect --json`."""
    tensors = [t.stats() for t in c.tensors]
    for t, s in zip(c.tensors, tensors):
        if t.kind == fmt.KIND_TANS:
            t.symbols()  # full decode: a damaged payload must fail inspect too
    total = 8 * len(ct.to_bytes(c))
    return {"tensors": tensors, "total_bits": total,
            "entropy_bits": float(sum(s.get("entropy_bits", 0.0) for s in tensors)),
            "symbols": int(sum(s["symbols"] for s in tensors))}


def cmd_inspect(args: argparse.Namespace) -> int:
    summary = inspect_summary(ct.read(args.input))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    head = f"{'tensor':24} {'kind':8} {'symbols':>9} {'alph':>5} {'entropy':>11} {'payload':>11} " \
           f"{'table':>7} {'header':>7} {'gap%':>7} {'lanes':>6}"
    print(head)
    print("-" * len(head))
    for s in summary["tensors"]:
        if s["kind"] == "tans":
            gap = "-" if s["gap_percent"] is None else f"{s['gap_percent']:.2f}"
            print(f"{s['name'][:24]:24} {s['kind']:8} {s['symbols']:9d} {s['alphabet']:5d} "
                  f"{s['entropy_bits']:11.1f} {s['payload_bits']:11d} {s['table_bits']:7d} "
                  f"{s['header_bits']:7d} {gap:>7} {s['lanes']:6d}")
        else:
            print(f"{s['name'][:24]:24} {s['kind']:8} {s['symbols']:9d} {'':5} {'':11} "
                  f"{s['payload_bits']:11d} {'':7} {s['header_bits']:7d} {'':>7} {'':6}")
    n = max(1, summary["symbols"])
    print(f"total: {summary['total_bits']} bits for {summary['symbols']} symbols "
          f"({summary['total_bits'] / n:.4f} bits/symbol), entropy bound {summary['entropy_bits']:.1f} bits")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sw", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("encode", help="code an integer .npy array into a .tans file")
    e.add_argument("symbols", help="SYMBOLS.npy: non-negative integers, any shape")
    e.add_argument("-o", "--output", required=True, help="OUT.tans")
    e.add_argument("--states", type=states_arg, default=fmt.DEFAULT_LOG2_STATES,
                   help="table states l, a power of two 32..4096 (default 256)")
    e.add_argument("--lanes", type=int, default=fmt.DEFAULT_LANES,
                   help="parallel streams (default 64); each must get at least one symbol")
    e.add_argument("--name", help="tensor name (default: the file's stem)")
    e.set_defaults(func=cmd_encode)
    d = sub.add_parser("decode", help="restore the arrays of a .tans file")
    d.add_argument("input", help="IN.tans")
    d.add_argument("-o", "--output", required=True, help="BACK.npy (one tensor) or BACK.npz (all)")
    d.add_argument("--tensor", help="which tensor to write to a .npy")
    d.set_defaults(func=cmd_decode)
    i = sub.add_parser("inspect", help="per-tensor sizes against the entropy bound")
    i.add_argument("input", help="IN.tans")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.set_defaults(func=cmd_inspect)
    cli_model.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (TansError, CliError, ValueError, OSError) as e:
        msg = str(e) or type(e).__name__
        if isinstance(e, FileNotFoundError) and e.filename:
            msg = f"{e.filename}: no such file"
        print(f"error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
