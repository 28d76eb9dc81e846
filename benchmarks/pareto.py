"""Pareto-optimal bit allocation (sw.methods.pareto): the additivity check and equal vs Pareto allocation.

additivity: for one float model, every coded layer's weight curve and every activation curve
(rtn indices), then random trials: a random subset of the curves, a random hull point on each,
all applied together; the measured mean squared error of the logits (Eq. 3) against the sum of
the single-layer errors (the paper's Fig. 2). Pearson correlation (linear and log-log), the
median ratio, a scatter plot (PNG + PDF).

allocation: over the seeds (the float models of benchmarks/rate_accuracy.py, from its cache),
at each target T bits/weight of the coded layers (whole records):
  equal         every coded layer at most T bits/weight, rtn indices, least output MSE under that
  equal-cerwu   the same with CERWU points
  pareto        one slope on every layer's rtn curve hull, total <= T x coded weights
  pareto-cerwu  the same on CERWU curves
  equal-wa, pareto-wa  weights and activations (A = T entropy bits/activation, one joint budget),
                accuracy with fake-quantized activations
accuracy of the golden-decoded container on the split's test set; mean ± std over the seeds
through rate_accuracy.summarize; and "bits Pareto needs for equal's accuracy at T".

    nice .venv/bin/python benchmarks/pareto.py additivity --seeds 0 --trials 300 --out build/pareto/additivity
    nice .venv/bin/python benchmarks/pareto.py allocation --seeds 0 1 2 3 4 --out build/pareto/allocation
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import rate_accuracy as ra  # noqa: E402  (float-model cache, decoded accuracy, aggregation over seeds)
from sw.methods.pareto import ParetoCurves  # noqa: E402
from sw.methods.posttrain import calibration_inputs  # noqa: E402
from sw.quant.activations import fake_quantized  # noqa: E402

DEFAULT_TARGETS = [round(float(x), 3) for x in np.geomspace(0.3, 4.5, 18)]
#: models rate_accuracy has no setup for: (setup, default float cache under build/pareto/float)
EXTRA_SETUPS = {"resnet18": {"data": "mnist-digits", "n_train": 4000, "n_test": 1000, "float_epochs": 3,
                             "float_lr": 2e-3}}


def load_seed(model: str, seed: int, cache: Path):
    """(float model, data, model_config, float accuracy) of one seed from rate_accuracy's cache."""
    setup = ra.MODEL_SETUPS.get(model) or EXTRA_SETUPS[model]
    trainer, _ = ra.float_model(setup, model, seed, cache, progress=False)
    return trainer.qmodel.base, trainer.data, trainer.cfg.model_config, trainer.results["float_accuracy"]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


# --- additivity --------------------------------------------------------------------------------

def additivity(args: argparse.Namespace) -> dict:
    """Random subsets of layers quantized together: measured vs summed single-layer output MSE."""
    rows, per_seed = [], {}
    for seed in args.seeds:
        net, data, _, facc = load_seed(args.model, seed, Path(args.float_cache))
        calib = calibration_inputs(data.x_train, args.calibration, seed)
        t0 = time.time()
        pc = ParetoCurves(net, calib, "rtn", activations=not args.no_activations, prefilter=args.prefilter,
                          progress=not args.quiet)
        curves = pc.curves()
        hulls = [c.hull() for c in curves]
        rng = np.random.default_rng(seed)
        pts = []
        for _ in range(args.trials):
            k = int(rng.integers(2, len(curves) + 1))
            sel = rng.choice(len(curves), k, replace=False)
            choice, pred = {}, 0.0
            for i in sel:
                h = hulls[i]
                p = h[int(rng.integers(0, len(h)))]
                choice[curves[i].name] = curves[i].points.index(p)
                pred += p.mse
            kinds = {curves[i].kind for i in sel}
            pts.append({"seed": seed, "layers": int(k), "kinds": "+".join(sorted(kinds)),
                        "predicted": pred, "measured": pc.measured_mse(choice)})
        rows += pts
        p, m = np.array([r["predicted"] for r in pts]), np.array([r["measured"] for r in pts])
        per_seed[str(seed)] = {"float_accuracy": facc, "curves": {c.name: len(c.points) for c in curves},
                               "pearson": pearson(p, m), "pearson_log": pearson(np.log10(p), np.log10(m)),
                               "median_ratio": float(np.median(m / p)), "seconds": round(time.time() - t0, 1)}
    p, m = np.array([r["predicted"] for r in rows]), np.array([r["measured"] for r in rows])
    res = {"model": args.model, "seeds": args.seeds, "trials_per_seed": args.trials,
           "calibration": args.calibration, "prefilter": args.prefilter, "activations": not args.no_activations,
           "per_seed": per_seed,
           "pearson": pearson(p, m), "pearson_log": pearson(np.log10(p), np.log10(m)),
           "median_ratio": float(np.median(m / p)),
           "ratio_p10_p90": [float(np.percentile(m / p, 10)), float(np.percentile(m / p, 90))],
           "points": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res["files"] = plot_additivity(res, out)
    (out / f"additivity_{args.model}.json").write_text(json.dumps(res, indent=1))
    return res


def plot_additivity(res: dict, out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 5))
    for kinds, color in (("weight", "C0"), ("activation", "C2"), ("activation+weight", "C1")):
        r = [x for x in res["points"] if x["kinds"] == kinds]
        if r:
            ax.scatter([x["predicted"] for x in r], [x["measured"] for x in r], s=8, alpha=0.6, c=color,
                       label={"weight": "weights only", "activation": "activations only"}.get(kinds, "both"))
    lo = min(min(x["predicted"], x["measured"]) for x in res["points"])
    hi = max(max(x["predicted"], x["measured"]) for x in res["points"])
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sum of single-layer output MSEs")
    ax.set_ylabel("output MSE, layers quantized together")
    ax.set_title(f"{res['model']}: additivity, r = {res['pearson']:.3f} (log-log {res['pearson_log']:.3f})",
                 fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    files = []
    for ext in ("png", "pdf"):
        f = out / f"additivity_{res['model']}.{ext}"
        fig.savefig(f, dpi=130)
        files.append(str(f))
    plt.close(fig)
    return files


# --- allocation --------------------------------------------------------------------------------

def accuracy_with(c, acts: dict, model: str, model_config: dict, data) -> float:
    """Test accuracy of the golden-decoded container with the given activation quantizers applied."""
    from sw import container as ct
    from sw.evaluation.evaluate import decoded_state_dict
    from sw.models.zoo import build_model
    from sw.train import accuracy
    net = build_model(model, model_config)
    net.load_state_dict(decoded_state_dict(ct.from_bytes(ct.to_bytes(c)), golden=True))
    with fake_quantized(net, acts):
        return accuracy(net, data.x_test, data.y_test)


def allocation(args: argparse.Namespace) -> dict:
    """Equal vs Pareto vs Pareto+CERWU (and with activations) over the seeds."""
    points, floats, timing = [], {}, {}
    for seed in args.seeds:
        net, data, mcfg, facc = load_seed(args.model, seed, Path(args.float_cache))
        floats[seed] = facc
        calib = calibration_inputs(data.x_train, args.calibration, seed)
        t0 = time.time()
        rtn = ParetoCurves(copy.deepcopy(net), calib, "rtn", activations=True, progress=not args.quiet)
        t1 = time.time()
        cer = ParetoCurves(copy.deepcopy(net), calib, "cerwu", progress=not args.quiet)
        t2 = time.time()
        timing[str(seed)] = {"rtn_curves_s": round(t1 - t0, 1), "cerwu_curves_s": round(t2 - t1, 1)}
        n = rtn.n_coded_weights()
        alloc_s = []
        for T in args.targets:
            runs = {"equal": (rtn, rtn.equal(T)), "equal-cerwu": (cer, cer.equal(T))}
            ta = time.perf_counter()
            runs["pareto"] = (rtn, rtn.pareto(T)[0])
            alloc_s.append(time.perf_counter() - ta)
            runs["pareto-cerwu"] = (cer, cer.pareto(T)[0])
            if T in args.wa_targets:
                runs["equal-wa"] = (rtn, rtn.equal(T, T))
                runs["pareto-wa"] = (rtn, rtn.pareto(T, T)[0])
            for method, (pc, choice) in runs.items():
                c, info = pc.container(choice, {"model": args.model, "model_config": mcfg})
                acts = pc.activation_quantizers(choice)
                acc = accuracy_with(c, acts, args.model, mcfg, data) if acts else \
                    ra.decoded_accuracy(c, args.model, mcfg, data)[0]
                pt = {"method": method, "setting": f"target {T:.3f}", "seed": seed,
                      "bits_per_weight": ra.coded_bits(c, pc.coded) / n, "accuracy": acc,
                      "predicted_mse": info["predicted_output_mse"], "measured_mse": pc.measured_mse(choice)}
                if acts:
                    pt["entropy_bits_per_activation"] = info["activation_entropy_bits_per_activation"]
                    pt["fixed_bits_per_activation"] = info["activation_fixed_bits_per_activation"]
                points.append(pt)
        timing[str(seed)]["allocation_ms_max"] = round(1000 * max(alloc_s), 2)
        if not args.quiet:
            print(f"seed {seed}: float {facc:.2f}%, curves {t1 - t0:.0f} s + {t2 - t1:.0f} s", flush=True)
    res = ra.summarize(points, floats, args.drops)
    res["savings"] = savings(res["curves"])
    res.update(model=args.model, targets=args.targets, wa_targets=args.wa_targets, calibration=args.calibration,
               timing=timing, points=points)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res["files"] = plot_allocation(res, out)
    (out / "allocation.json").write_text(json.dumps(res, indent=1, default=str))
    (out / "allocation.md").write_text(markdown(res) + "\n")
    return res


def savings(cv: dict) -> list[dict]:
    """Per equal setting: the lowest mean bits/weight at which each Pareto method reaches equal's mean accuracy."""
    rows = []
    for base, others in (("equal", ("pareto", "pareto-cerwu")), ("equal-cerwu", ("pareto-cerwu",))):
        for e in cv.get(base, []):
            if not e["complete"]:
                continue
            row = {"base": base, "setting": e["setting"], "base_bits": e["bits_per_weight_mean"],
                   "base_accuracy": e["accuracy_mean"], "base_accuracy_std": e["accuracy_std"]}
            for m in others:
                hit = ra.lowest_at(cv.get(m, []), e["accuracy_mean"])
                row[m] = None if hit is None else {
                    "bits": hit["bits_per_weight_mean"], "bits_std": hit["bits_per_weight_std"],
                    "accuracy": hit["accuracy_mean"], "accuracy_std": hit["accuracy_std"],
                    "fewer_bits_percent": 100.0 * (1 - hit["bits_per_weight_mean"] / e["bits_per_weight_mean"])}
            rows.append(row)
    return rows


def mse_means(points: list[dict]) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Per method and setting: (mean, std over seeds) of the measured output MSE, and the mean predicted one."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for p in points:
        groups.setdefault((p["method"], p["setting"]), []).append(p)
    out: dict[str, dict[str, tuple[float, float, float]]] = {}
    for (m, st), ps in groups.items():
        mm, ms = ra._mean_std([p["measured_mse"] for p in ps])
        out.setdefault(m, {})[st] = (mm, ms, sum(p["predicted_mse"] for p in ps) / len(ps))
    return out


def markdown(res: dict) -> str:
    lines = [f"Float accuracy {res['float_accuracy_mean']:.2f} ± {res['float_accuracy_std']:.2f}% over seeds "
             f"{res['seeds']}.", "",
             "| target T | " + " | ".join(res["curves"]) + " |", "|---|" + "---|" * len(res["curves"])]
    for T in res["targets"]:
        cells = []
        for m, c in res["curves"].items():
            e = next((x for x in c if x["setting"] == f"target {T:.3f}"), None)
            cells.append("-" if e is None else f"{e['bits_per_weight_mean']:.2f} b, {e['accuracy_mean']:.2f} ± "
                                                 f"{e['accuracy_std']:.2f}%")
        lines.append(f"| {T:g} | " + " | ".join(cells) + " |")
    mse = mse_means(res["points"])
    lines += ["", "Output MSE of the logits (Eq. 3, calibration set), measured with every layer quantized "
              "together, mean ± std over the seeds (in brackets: the sum of single-layer MSEs the allocation "
              "minimizes, mean):", "", "| target T | " + " | ".join(res["curves"]) + " |",
              "|---|" + "---|" * len(res["curves"])]
    for T in res["targets"]:
        st = f"target {T:.3f}"
        cells = ["-" if st not in mse.get(m, {}) else
                 "{:.3g} ± {:.2g} ({:.3g})".format(*mse[m][st]) for m in res["curves"]]
        lines.append(f"| {T:g} | " + " | ".join(cells) + " |")
    lines += ["", "Bits/weight each Pareto method needs for the equal allocation's mean accuracy:", "",
              "| equal run | its bits, accuracy | method | bits needed | fewer bits |", "|---|---|---|---|---|"]
    for r in res["savings"]:
        for m in ("pareto", "pareto-cerwu"):
            if m in r:
                h = r[m]
                need = "not reached" if h is None else f"{h['bits']:.3f} ± {h['bits_std']:.3f}"
                pct = "-" if h is None else f"{h['fewer_bits_percent']:+.1f}%"
                lines.append(f"| {r['base']} {r['setting']} | {r['base_bits']:.3f}, {r['base_accuracy']:.2f} ± "
                             f"{r['base_accuracy_std']:.2f}% | {m} | {need} | {pct} |")
    return "\n".join(lines)


def plot_allocation(res: dict, out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m, c in res["curves"].items():
        c = [e for e in c if e["complete"]]
        ax.errorbar([e["bits_per_weight_mean"] for e in c], [e["accuracy_mean"] for e in c],
                    xerr=[e["bits_per_weight_std"] for e in c], yerr=[e["accuracy_std"] for e in c],
                    fmt="-o", ms=3, capsize=2, lw=1, label=m)
    fm = res["float_accuracy_mean"]
    ax.axhline(fm, color="k", lw=0.8, label=f"float {fm:.2f}%")
    ax.set_ylim(max(0, fm - 25), fm + 1)
    ax.set_xscale("log")
    ax.set_xlabel("bits/weight of the coded layers (whole records), mean over splits")
    ax.set_ylabel("test accuracy %, mean over splits")
    ax.set_title(f"{res['model']}: equal vs Pareto allocation, {len(res['seeds'])} splits", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    files = []
    for ext in ("png", "pdf"):
        f = out / f"allocation.{ext}"
        fig.savefig(f, dpi=130)
        files.append(str(f))
    plt.close(fig)
    return files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("additivity", "allocation", "report"),
                   help="report: rewrite allocation.md in --out from its allocation.json")
    p.add_argument("--model", choices=sorted(ra.MODEL_SETUPS) + sorted(EXTRA_SETUPS), default="lenet5")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--float-cache", default=None, help="rate_accuracy's --out for the model "
                                                       "(default build/rate_accuracy/MODEL)")
    p.add_argument("--calibration", type=int, default=512)
    p.add_argument("--trials", type=int, default=300, help="additivity: random subsets per seed")
    p.add_argument("--prefilter", action="store_true", help="additivity: measure only the layer-loss hull points")
    p.add_argument("--no-activations", action="store_true", help="additivity: weight curves only")
    p.add_argument("--targets", type=float, nargs="+", default=DEFAULT_TARGETS)
    p.add_argument("--wa-targets", type=float, nargs="+", default=None,
                   help="targets also run with activations at A = T (default: those nearest 2, 3 and 4)")
    p.add_argument("--drops", type=float, nargs="+", default=[0.5, 1.0])
    p.add_argument("--out", default="build/pareto")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    args.float_cache = args.float_cache or str(ROOT / "build" / ("pareto/float" if args.model in EXTRA_SETUPS
                                                                  else "rate_accuracy") / args.model)
    if args.wa_targets is None:
        args.wa_targets = sorted({min(args.targets, key=lambda t: abs(t - x)) for x in (2.0, 3.0, 4.0)})
    from sw.train import set_threads
    set_threads()
    t0 = time.time()
    if args.what == "report":
        r = json.loads((Path(args.out) / "allocation.json").read_text())
        (Path(args.out) / "allocation.md").write_text(markdown(r) + "\n")
        print(markdown(r))
    elif args.what == "additivity":
        r = additivity(args)
        print(f"{r['model']}: Pearson r = {r['pearson']:.4f}, log-log r = {r['pearson_log']:.4f}, median "
              f"measured/sum = {r['median_ratio']:.3f} (10-90%: {r['ratio_p10_p90'][0]:.3f}-"
              f"{r['ratio_p10_p90'][1]:.3f}), {len(r['points'])} trials, {time.time() - t0:.0f} s")
        for s, v in r["per_seed"].items():
            print(f"  seed {s}: r {v['pearson']:.4f}, log-log {v['pearson_log']:.4f}, median ratio "
                  f"{v['median_ratio']:.3f}, curves {v['seconds']} s")
    else:
        r = allocation(args)
        print(markdown(r))
        print(f"timing: {json.dumps(r['timing'])}; total {time.time() - t0:.0f} s")
    print("files: " + ", ".join(r["files"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
