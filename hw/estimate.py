"""Resource estimate before synthesis: LUT4/FF/BRAM of the decoder core per FPGA family.

A least-squares model per family and resource, fitted to the measured synthesis sweep
(`python -m benchmarks.hw_sweep`, BENCHMARKS.md "Decoder core: resources and Fmax", run
2026-11-24: 5-bit symbols, 32-bit words, l in {64, 256}, P in {1, 2, 4}, lanes in {1, 64}).
`python -m hw.build --estimate` prints it; its leave-one-out error is `fit_error()`.
"""
from __future__ import annotations

import math

import numpy as np

from hw.core.params import DecoderParams

#: (family, l, P, lanes, LUT4, FF, BRAM): the sweep's measured rows (yosys stat of the core alone)
MEASURED: tuple[tuple[str, int, int, int, int, int, int], ...] = (
    ("ice40", 64, 1, 1, 600, 604, 3), ("ecp5", 64, 1, 1, 653, 590, 1),
    ("ice40", 64, 1, 64, 695, 701, 3), ("ecp5", 64, 1, 64, 854, 674, 1),
    ("ice40", 64, 2, 1, 759, 746, 5), ("ecp5", 64, 2, 1, 820, 723, 2),
    ("ice40", 64, 2, 64, 881, 840, 6), ("ecp5", 64, 2, 64, 1037, 805, 2),
    ("ice40", 64, 4, 1, 756, 889, 10), ("ecp5", 64, 4, 1, 1093, 936, 4),
    ("ice40", 64, 4, 64, 1356, 1139, 11), ("ecp5", 64, 4, 64, 1464, 1091, 4),
    ("ice40", 256, 1, 1, 639, 633, 4), ("ecp5", 256, 1, 1, 705, 620, 1),
    ("ice40", 256, 1, 64, 738, 730, 4), ("ecp5", 256, 1, 64, 895, 702, 1),
    ("ice40", 256, 2, 1, 876, 826, 7), ("ecp5", 256, 2, 1, 893, 805, 2),
    ("ice40", 256, 2, 64, 1004, 920, 8), ("ecp5", 256, 2, 64, 1109, 883, 2),
    ("ice40", 256, 4, 1, 871, 1009, 14), ("ecp5", 256, 4, 1, 1243, 1070, 4),
    ("ice40", 256, 4, 64, 1599, 1288, 15), ("ecp5", 256, 4, 64, 1629, 1236, 4),
)
RESOURCES = ("luts", "ffs", "brams")
FAMILIES = ("ice40", "ecp5")
#: the parameter ranges the sweep covers; outside them the estimate is an extrapolation
SWEPT = {"states": (64, 256), "units": (1, 4), "lanes": (1, 64), "symbol_bits": (5, 5), "word_bits": (32, 32)}


def features(states: int, units: int, lanes: int) -> np.ndarray:
    """Model terms: a constant, P, log2 l, log2 lanes and their products with P (per-unit logic
    grows with the table's index width and with the lane-state vector's width)."""
    k, lb = math.log2(states), math.log2(max(1, lanes))
    return np.array([1.0, units, k, lb, units * k, units * lb])


def _fit(rows: list[tuple]) -> dict[tuple[str, str], np.ndarray]:
    coef = {}
    for fam in FAMILIES:
        sel = [r for r in rows if r[0] == fam]
        x = np.stack([features(r[1], r[2], r[3]) for r in sel])
        for j, res in enumerate(RESOURCES):
            y = np.array([r[4 + j] for r in sel], dtype=float)
            coef[fam, res] = np.linalg.lstsq(x, y, rcond=None)[0]
    return coef


COEF = _fit(list(MEASURED))


def estimate(p: DecoderParams, fam: str) -> dict[str, int]:
    """Estimated LUT4, FF and BRAM of the core with parameters `p` on family `fam`."""
    f = features(p.states, p.units, p.lanes)
    return {res: max(0, int(round(float(f @ COEF[fam, res])))) for res in RESOURCES}


def outside_sweep(p: DecoderParams) -> list[str]:
    """The parameters of `p` outside the measured ranges (the estimate extrapolates there)."""
    got = {"states": p.states, "units": p.units, "lanes": p.lanes, "symbol_bits": p.symbol_bits,
           "word_bits": p.word_bits}
    return [f"{k}={v} (measured {lo}..{hi})" for k, v in got.items()
            for lo, hi in [SWEPT[k]] if not lo <= v <= hi]


def fit_error() -> dict[str, dict[str, float]]:
    """Leave-one-out error of the model on the sweep: mean and worst relative error per resource."""
    out: dict[str, dict[str, float]] = {}
    for fam in FAMILIES:
        for j, res in enumerate(RESOURCES):
            errs = []
            for i, r in enumerate(MEASURED):
                if r[0] != fam:
                    continue
                coef = _fit([q for q2, q in enumerate(MEASURED) if q2 != i])[fam, res]
                pred = float(features(r[1], r[2], r[3]) @ coef)
                errs.append(abs(pred - r[4 + j]) / max(1, r[4 + j]))
            out[f"{fam}.{res}"] = {"mean": round(float(np.mean(errs)), 4), "max": round(float(np.max(errs)), 4)}
    return out


#: the whole fetch path measured once (l=256, 5-bit symbols, 64 lanes, P=1, 64-bit words, bursts of
#: 16, 64-word FIFO; `python -m hw.build --fetch --synth FAMILY`, 2026-12-02 with the two table banks
#: and the 64-word payload FIFO; before them 3193 / 2725 / 8 and 2913 / 1880 / 3): family -> (LUT4, FF, BRAM)
MEASURED_FETCH = {"ice40": (3595, 3083, 14), "ecp5": (3350, 2238, 5)}
FETCH_AT = DecoderParams.from_states(256, symbol_bits=5, lanes=64, units=1, word_bits=64)


def report(p: DecoderParams, fetch: bool = False) -> str:
    """Human-readable estimate for both families, with the fit error and any extrapolation;
    with `fetch`, the fetch path as the measured one plus the core's estimated difference."""
    err = fit_error()
    lines = []
    for fam in FAMILIES:
        e = estimate(p, fam)
        worst = max(err[f"{fam}.{r}"]["mean"] for r in RESOURCES)
        lines.append(f"{fam}: about {e['luts']} LUT4, {e['ffs']} FF, {e['brams']} BRAM "
                     f"(decoder core alone; model's leave-one-out error {100 * worst:.1f}% mean)")
        if fetch:
            at = estimate(FETCH_AT, fam)
            tot = [max(0, m + e[r] - at[r]) for m, r in zip(MEASURED_FETCH[fam], RESOURCES)]
            lines.append(f"{fam}: whole fetch path about {tot[0]} LUT4, {tot[1]} FF, {tot[2]} BRAM (measured "
                         f"at l=256, P=1, 64 lanes, W=64; the core's estimated difference added)")
    far = outside_sweep(p)
    if far:
        lines.append("note: extrapolated beyond the measured sweep: " + ", ".join(far))
    return "\n".join(lines)
