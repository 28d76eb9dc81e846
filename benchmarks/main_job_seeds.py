"""The main job (`python -m sw run`) on several data splits: per-seed results, mean and spread.

Runs `python -m sw run --seed S --out OUT/seedS --no-hw --no-plots --quiet --json [EXTRA...]` for
each seed, one after the other, and writes OUT/results.json and OUT/results.md: float and decoded
accuracy, the drop, coded bits/weight (whole records of the coded layers), bins, and whether the
seed meets the target (drop <= --max-drop points at <= --max-bpw bits/weight); then mean and
std (ddof=1) over the seeds. With --reuse a seed whose OUT/seedS/summary.json exists is not rerun.

    nice .venv/bin/python benchmarks/main_job_seeds.py --out build/main_job_seeds
    nice .venv/bin/python benchmarks/main_job_seeds.py --out /tmp/distill -- --qat-epochs 10
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def mean_std(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    return m, (math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--out", default="build/main_job_seeds")
    p.add_argument("--max-drop", type=float, default=1.0)
    p.add_argument("--max-bpw", type=float, default=0.8)
    p.add_argument("--reuse", action="store_true", help="keep seeds whose summary.json exists")
    p.add_argument("extra", nargs="*", help="more `sw run` options (after --)")
    args = p.parse_args()
    out = Path(args.out)
    rows = []
    for s in args.seeds:
        d = out / f"seed{s}"
        if not (args.reuse and (d / "summary.json").exists()):
            cmd = [sys.executable, "-m", "sw", "run", "--seed", str(s), "--out", str(d), "--no-hw", "--no-plots",
                   "--quiet", "--json", *args.extra]
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"seed {s}: `{' '.join(cmd)}` failed:\n{proc.stderr[-2000:]}")
        r = json.loads((d / "summary.json").read_text())
        row = {"seed": s, "float": r["float_accuracy"], "decoded": r["decoded_accuracy"], "drop": r["accuracy_drop"],
               "bpw": r["coded_bits_per_weight"], "entropy_bpw": r["entropy_bits_per_weight"],
               "exact": r["decoded_equals_quantized"], "bytes": r["total_bytes"],
               "bins": "/".join(str(b) for n, b in r["bins"].items() if b != 255), "seconds": r["total_seconds"]}
        row["meets"] = row["drop"] <= args.max_drop + 1e-9 and row["bpw"] <= args.max_bpw
        rows.append(row)
        print(f"seed {s}: float {row['float']:.2f}% decoded {row['decoded']:.2f}% drop {row['drop']:+.2f} "
              f"at {row['bpw']:.3f} bits/weight (bins {row['bins']}) {'meets' if row['meets'] else 'MISSES'}")
    agg = {k: mean_std([r[k] for r in rows]) for k in ("float", "decoded", "drop", "bpw", "entropy_bpw")}
    lines = [f"`python -m sw run --seed S --no-hw {' '.join(args.extra)}`".replace("  ", " "), "",
             "| seed | float % | decoded % | drop (points) | coded bits/weight | entropy bound | bins | exact | "
             f"drop <= {args.max_drop:g} at <= {args.max_bpw:g} b/w |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['float']:.2f} | {r['decoded']:.2f} | {r['drop']:+.2f} | {r['bpw']:.3f} | "
                     f"{r['entropy_bpw']:.3f} | {r['bins']} | {'yes' if r['exact'] else 'NO'} | "
                     f"{'yes' if r['meets'] else 'no'} |")
    lines.append(f"| mean ± std | {agg['float'][0]:.2f} ± {agg['float'][1]:.2f} | {agg['decoded'][0]:.2f} ± "
                 f"{agg['decoded'][1]:.2f} | {agg['drop'][0]:+.2f} ± {agg['drop'][1]:.2f} | {agg['bpw'][0]:.3f} ± "
                 f"{agg['bpw'][1]:.3f} | {agg['entropy_bpw'][0]:.3f} ± {agg['entropy_bpw'][1]:.3f} | | | "
                 f"{sum(r['meets'] for r in rows)}/{len(rows)} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"rows": rows, "mean_std": agg, "extra": args.extra,
                                                  "max_drop": args.max_drop, "max_bpw": args.max_bpw}, indent=1))
    print("\n".join(lines))
    return 0 if all(r["meets"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
