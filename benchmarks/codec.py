"""Codec benchmark: gap to entropy, lane overhead, speed, against constriction's rANS in the same run.

    python benchmarks/codec.py [--symbols 10000000] [--json out.json]

Source: i.i.d. symbols with p(x) ~ exp(-x^2/2), x = -6..6 (13 symbols, about 2.047 bits).
Speeds are single-core, best of `--repeat` runs, after one warm-up (numba compiles once).
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np

from sw.tans import decode, encode


def source(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark symbols and their generating distribution."""
    x = np.arange(-6, 7)
    p = np.exp(-x ** 2 / 2.0)
    p /= p.sum()
    return np.random.default_rng(seed).choice(13, size=n, p=p).astype(np.int32), p


def sample_entropy_bits(sym: np.ndarray) -> float:
    """H x N of the sample's own histogram (the bound a static code can reach)."""
    c = np.bincount(sym).astype(np.float64)
    c = c[c > 0]
    return float(-(c * np.log2(c / c.sum())).sum())


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_constriction(sym: np.ndarray, p: np.ndarray, repeat: int) -> dict:
    """constriction's AnsCoder (rANS, 32-bit words) with the empirical distribution."""
    import constriction
    counts = np.bincount(sym, minlength=p.size).astype(np.float64)
    model = constriction.stream.model.Categorical(counts / counts.sum(), perfect=False)
    sym32 = sym.astype(np.int32)

    def enc():
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(sym32, model)
        return coder.get_compressed()

    t_enc, words = best_time(enc, repeat)
    t_dec, back = best_time(lambda: constriction.stream.stack.AnsCoder(words).decode(model, sym.size), repeat)
    assert np.array_equal(back, sym32), "constriction round trip failed"
    return {"bits": 32 * int(words.size), "enc_s": t_enc, "dec_s": t_dec}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=10_000_000)
    ap.add_argument("--lane-symbols", type=int, default=1_000_000, help="source size of the lane test")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    sym, p = source(args.symbols)
    h = sample_entropy_bits(sym)
    n = sym.size
    res: dict = {"symbols": n, "entropy_bits_per_symbol": h / n,
                 "model_entropy_bits_per_symbol": float(-(p * np.log2(p)).sum())}
    print(f"source: {n} symbols, sample entropy {h / n:.4f} bits/symbol "
          f"(model {res['model_entropy_bits_per_symbol']:.4f})\n")

    print("gap to the sample entropy, one lane (payload bits incl. the initial state):")
    res["gap"] = {}
    for k in (6, 7, 8, 10):
        c = encode(sym, k, 1)
        gap = 100 * (c.payload_bits / h - 1)
        res["gap"][1 << k] = gap
        print(f"  l = {1 << k:5d}: {c.payload_bits / n:.4f} bits/symbol, gap {gap:.3f}%")

    # the rare symbols (p * l << 1) each need a whole state: show what they cost
    counts = np.bincount(sym)
    rare = np.flatnonzero((counts > 0) & (counts * 256 < 0.05 * n))
    keep = ~np.isin(sym, rare)
    c = encode(sym[keep], 8, 1)
    res["gap_256_without_rare"] = 100 * (c.payload_bits / sample_entropy_bits(sym[keep]) - 1)
    print(f"  l =   256 without the {rare.size} symbols of p < 0.05/l ({int(counts[rare].sum())} "
          f"occurrences): gap {res['gap_256_without_rare']:.3f}% (each such symbol takes a whole state)")

    ls, _ = source(args.lane_symbols, seed=1)
    one = encode(ls, 8, 1).payload_bits
    res["lanes"] = {}
    print(f"\nlane cost at l = 256 on {ls.size} symbols (extra payload bits against 1 lane):")
    for lanes in (64, 256, 1024):
        b = encode(ls, 8, lanes).payload_bits
        res["lanes"][lanes] = 100 * (b / one - 1)
        print(f"  {lanes:5d} lanes: +{res['lanes'][lanes]:.3f}%  ({b - one} bits, of which "
              f"{8 * (lanes - 1)} are the extra initial states)")

    encode(sym[:1000], 8, 256)
    decode(encode(sym[:1000], 8, 256))  # compile once
    print(f"\nspeed on {n} symbols, one core, l = 256 (best of {args.repeat}):")
    res["speed"] = {}
    for lanes in (1, 256):
        t_enc, c = best_time(lambda: encode(sym, 8, lanes), args.repeat)
        t_dec, back = best_time(lambda: decode(c), args.repeat)
        assert np.array_equal(back, sym)
        res["speed"][lanes] = {"encode_msym_s": n / t_enc / 1e6, "decode_msym_s": n / t_dec / 1e6,
                               "bits_per_symbol": c.payload_bits / n}
        print(f"  ours, {lanes:3d} lanes: encode {n / t_enc / 1e6:7.1f} Msym/s, decode "
              f"{n / t_dec / 1e6:7.1f} Msym/s, {c.payload_bits / n:.4f} bits/symbol")
    try:
        cc = bench_constriction(sym, p, args.repeat)
    except ImportError:
        print("\nconstriction is not installed (pip install -e '.[bench]'): no peer figures")
    else:
        ours = res["speed"][256]
        peer = {"encode_msym_s": n / cc["enc_s"] / 1e6, "decode_msym_s": n / cc["dec_s"] / 1e6,
                "bits_per_symbol": cc["bits"] / n}
        res["constriction"] = peer
        print(f"  constriction AnsCoder: encode {peer['encode_msym_s']:7.1f} Msym/s, decode "
              f"{peer['decode_msym_s']:7.1f} Msym/s, {peer['bits_per_symbol']:.4f} bits/symbol "
              f"(gap {100 * (cc['bits'] / h - 1):.3f}%)")
        ratios = {k: ours[k] / peer[k] for k in peer}
        res["ratios_ours_256_lanes_over_constriction"] = ratios
        print(f"\nours (256 lanes) / constriction: encode x{ratios['encode_msym_s']:.2f}, decode "
              f"x{ratios['decode_msym_s']:.2f}, bits/symbol x{ratios['bits_per_symbol']:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
