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
    nice .venv/bin/python benchmarks/pareto.py inference --seeds 0 1 2 3 4 --out build/pareto/inference
    nice .venv/bin/python benchmarks/pareto.py dead-zone --seeds 0 1 2 3 4 --betas 0.5 --targets 0.5 0.7 1 1.4 2 2.8 --prefilter --out build/pareto/dead_zone
    nice .venv/bin/python benchmarks/pareto.py retrain --seeds 0 1 2 3 4 --bit-targets 0.7 1 --out build/pareto/retrain

inference (the paper's Table 3): at T = A = 2 and 4 bits on average, the equal-wa and pareto-wa
containers of each seed through `sim.system`'s fetch-path model plus the compute side
(sim/model/compute.py) on the paper's Eyeriss-like and TPU-like platforms scaled to the
network; inferences per second, the speed-up, and against full precision (8-bit weights and
activations).
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
    """Measured joint output MSE against the sum of single-layer MSEs (PNG and PDF, sw/evaluation/plotstyle.py)."""
    from sw.evaluation import plotstyle
    with plotstyle.style() as plt:
        fig, ax = plt.subplots(figsize=(plotstyle.COLUMN_WIDTH, plotstyle.COLUMN_WIDTH), layout="constrained")
        for i, kinds in enumerate(("weight", "activation", "activation+weight")):
            r = [x for x in res["points"] if x["kinds"] == kinds]
            if r:
                st = plotstyle.method_style(i)
                ax.scatter([x["predicted"] for x in r], [x["measured"] for x in r], s=8, alpha=0.6, c=st["color"],
                           marker=st["marker"], linewidths=0,
                           label={"weight": "weights only", "activation": "activations only"}.get(kinds, "both"))
        lo = min(min(x["predicted"], x["measured"]) for x in res["points"])
        hi = max(max(x["predicted"], x["measured"]) for x in res["points"])
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="measured = sum")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sum of single-layer output MSEs")
        ax.set_ylabel("output MSE, layers quantized together")
        ax.grid(True, axis="both", which="major")
        ax.legend(loc="upper left", title=f"{res['model']}: r = {res['pearson']:.3f} "
                                          f"(log-log {res['pearson_log']:.3f})", title_fontsize=7)
        return plotstyle.save(fig, out / f"additivity_{res['model']}", ("png", "pdf"))


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
    """Accuracy against bits/weight, equal vs Pareto allocation (PNG and PDF, sw/evaluation/plotstyle.py)."""
    from sw.evaluation import plotstyle
    with plotstyle.style() as plt:
        fig, ax = plt.subplots(figsize=(plotstyle.WIDTH * 0.62, plotstyle.HEIGHT * 1.05), layout="constrained")
        for i, (m, c) in enumerate(res["curves"].items()):
            c = [e for e in c if e["complete"]]
            st = plotstyle.method_style(i)
            ax.errorbar([e["bits_per_weight_mean"] for e in c], [e["accuracy_mean"] for e in c],
                        xerr=[e["bits_per_weight_std"] for e in c], yerr=[e["accuracy_std"] for e in c],
                        ls="-", marker=st["marker"], color=st["color"], ms=3.5, elinewidth=0.7, label=m)
        fm = res["float_accuracy_mean"]
        ax.axhline(fm, color="k", lw=0.8, label=f"float {fm:.2f}%")
        ax.set_ylim(max(0, fm - 25), fm + 1)
        ax.set_xscale("log")
        plotstyle.plain_log_axis(ax, "x")
        ax.set_xlabel("bits per weight of the coded layers (whole records)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, axis="both", which="major")
        ax.legend(loc="lower right", title=f"{res['model']}, {len(res['seeds'])} splits: mean ± std",
                  title_fontsize=7)
        return plotstyle.save(fig, out / "allocation", ("png", "pdf"))


# --- dead zone (Eq. 1) ------------------------------------------------------------------------

def dead_zone(args: argparse.Namespace) -> dict:
    """Pareto (rtn curves) without and with Eq. 1's dead-zone points on every grid, over the seeds."""
    points, floats, timing = [], {}, {}
    for seed in args.seeds:
        net, data, mcfg, facc = load_seed(args.model, seed, Path(args.float_cache))
        floats[seed] = facc
        calib = calibration_inputs(data.x_train, args.calibration, seed)
        for beta in [0.0] + list(args.betas):
            t0 = time.time()
            pc = ParetoCurves(copy.deepcopy(net), calib, "rtn", progress=not args.quiet, dead_zone=beta,
                              prefilter=args.prefilter)
            timing[f"{seed}/{beta:g}"] = round(time.time() - t0, 1)
            method = "pareto" if beta == 0 else f"pareto-dz{beta:g}"
            n = pc.n_coded_weights()
            for T in args.targets:
                choice, _ = pc.pareto(T)
                c, info = pc.container(choice, {"model": args.model, "model_config": mcfg})
                used = sum(1 for r in info["layers"] if r.get("dead_zone"))
                points.append({"method": method, "setting": f"target {T:.3f}", "seed": seed,
                               "bits_per_weight": ra.coded_bits(c, pc.coded) / n,
                               "accuracy": ra.decoded_accuracy(c, args.model, mcfg, data)[0],
                               "dead_zone_layers": used, "measured_mse": pc.measured_mse(choice)})
        if not args.quiet:
            print(f"seed {seed}: float {facc:.2f}%, curves {timing}", flush=True)
    res = ra.summarize(points, floats, args.drops)
    base = res["curves"].get("pareto", [])
    res["dead_zone_savings"] = []
    for e in base:
        if not e["complete"]:
            continue
        row = {"setting": e["setting"], "bits": e["bits_per_weight_mean"], "accuracy": e["accuracy_mean"],
               "accuracy_std": e["accuracy_std"]}
        for m in res["curves"]:
            if m == "pareto":
                continue
            hit = ra.lowest_at(res["curves"][m], e["accuracy_mean"])
            row[m] = None if hit is None else {"bits": hit["bits_per_weight_mean"], "bits_std": hit["bits_per_weight_std"],
                                               "accuracy": hit["accuracy_mean"], "accuracy_std": hit["accuracy_std"],
                                               "fewer_bits_percent": 100 * (1 - hit["bits_per_weight_mean"] /
                                                                            e["bits_per_weight_mean"])}
        res["dead_zone_savings"].append(row)
    used = {}
    for p in points:
        used.setdefault((p["method"], p["setting"]), []).append(p["dead_zone_layers"])
    res.update(model=args.model, betas=args.betas, targets=args.targets, timing=timing, points=points,
               dead_zone_layers={f"{m} {st}": sum(v) / len(v) for (m, st), v in used.items()})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dead_zone.json").write_text(json.dumps(res, indent=1, default=str))
    (out / "dead_zone.md").write_text(dead_zone_markdown(res) + "\n")
    res["files"] = [str(out / "dead_zone.json"), str(out / "dead_zone.md")]
    return res


def interpolated_bits(curve: list[dict], level: float) -> float | None:
    """Mean bits/weight at which a curve's mean accuracy first reaches `level`, linear between its settings."""
    pts = sorted((e["bits_per_weight_mean"], e["accuracy_mean"]) for e in curve if e["complete"])
    for (b0, a0), (b1, a1) in zip(pts, pts[1:]):
        if a0 >= level:
            return b0
        if a1 >= level:
            return b0 + (b1 - b0) * (level - a0) / (a1 - a0)
    return pts[-1][0] if pts and pts[-1][1] >= level else None


def dead_zone_markdown(res: dict) -> str:
    """Accuracy per target and the bits each dead-zone grid needs for plain Pareto's accuracy."""
    ms = list(res["curves"])
    lines = [f"Float accuracy {res['float_accuracy_mean']:.2f} ± {res['float_accuracy_std']:.2f}% over seeds "
             f"{res['seeds']}.", "", "| target T | " + " | ".join(ms) + " |", "|---|" + "---|" * len(ms)]
    for T in res["targets"]:
        st = f"target {T:.3f}"
        cells = []
        for m in ms:
            e = next((x for x in res["curves"][m] if x["setting"] == st), None)
            dz = res["dead_zone_layers"].get(f"{m} {st}", 0)
            cells.append("-" if e is None else f"{e['bits_per_weight_mean']:.2f} b, {e['accuracy_mean']:.2f} ± "
                                                 f"{e['accuracy_std']:.2f}%" + (f" ({dz:.1f} dz layers)" if dz else ""))
        lines.append(f"| {T:g} | " + " | ".join(cells) + " |")
    lines += ["", "Bits/weight each dead-zone grid needs for plain Pareto's mean accuracy: on the target grid "
              "(the lowest setting whose mean accuracy is >= it) and linearly interpolated on the mean curve:", "",
              "| pareto run | its bits, accuracy | with | bits needed (grid) | fewer | interpolated | fewer |",
              "|---|---|---|---|---|---|---|"]
    for r in res["dead_zone_savings"]:
        for m in ms:
            if m in r:
                h = r[m]
                need = "not reached" if h is None else f"{h['bits']:.3f} ± {h['bits_std']:.3f}"
                pct = "-" if h is None else f"{h['fewer_bits_percent']:+.1f}%"
                ib = interpolated_bits(res["curves"][m], r["accuracy"])
                ipct = "-" if ib is None else f"{100 * (1 - ib / r['bits']):+.1f}%"
                lines.append(f"| {r['setting']} | {r['bits']:.3f}, {r['accuracy']:.2f} ± {r['accuracy_std']:.2f}% | "
                             f"{m} | {need} | {pct} | {'-' if ib is None else f'{ib:.3f}'} | {ipct} |")
    return "\n".join(lines)


# --- retraining from an allocation (train --init-from) -------------------------------------------

def retrain(args: argparse.Namespace) -> dict:
    """Equal and Pareto allocation (rtn curves, weights), before and after `--init-from` fine-tuning, over the seeds."""
    import tempfile
    from sw import container as ct
    from sw.methods.compress import compress_checkpoint
    from sw.methods.qat import TrainConfig
    from sw.retrain import trainer_from_tans
    points, floats = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            net, data, mcfg, facc = load_seed(args.model, seed, Path(args.float_cache))
            floats[seed] = facc
            calib = calibration_inputs(data.x_train, args.calibration, seed)
            pc = ParetoCurves(copy.deepcopy(net), calib, "rtn", progress=not args.quiet)
            n = pc.n_coded_weights()
            for T in args.bit_targets:
                for method, choice in (("equal", pc.equal(T)), ("pareto", pc.pareto(T)[0])):
                    setup = ra.MODEL_SETUPS.get(args.model) or EXTRA_SETUPS[args.model]
                    meta = {"model": args.model, "model_config": mcfg, "results": {"float_accuracy": facc},
                            "data": {"spec": setup["data"], "n_train": setup["n_train"], "n_test": setup["n_test"],
                                     "seed": seed}}     # the split the float model was trained on
                    c, info = pc.container(choice, meta)
                    src = Path(tmp) / f"{method}_{T}_{seed}.tans"
                    ct.write(src, c)
                    acc0 = ra.decoded_accuracy(c, args.model, mcfg, data)[0]
                    points.append({"method": method, "setting": f"target {T:.3f}", "seed": seed,
                                   "bits_per_weight": ra.coded_bits(c, pc.coded) / n, "accuracy": acc0})
                    tr = trainer_from_tans(src, Path(tmp) / "rt.ckpt",
                                           TrainConfig(finetune_epochs=args.retrain_epochs, lr=args.retrain_lr),
                                           progress=False, log=lambda *a, **k: None)
                    res = tr.run()
                    out = compress_checkpoint(Path(tmp) / "rt.ckpt", Path(tmp) / "rt.tans")
                    acc1 = ra.decoded_accuracy(out, args.model, mcfg, data)[0]
                    points.append({"method": f"{method}+retrain", "setting": f"target {T:.3f}", "seed": seed,
                                   "bits_per_weight": ra.coded_bits(out, pc.coded) / n, "accuracy": acc1,
                                   "init_accuracy": res["init_accuracy"]})
            if not args.quiet:
                print(f"seed {seed}: float {facc:.2f}%", flush=True)
    res = ra.summarize(points, floats, args.drops)
    res.update(model=args.model, bit_targets=args.bit_targets, retrain_epochs=args.retrain_epochs,
               retrain_lr=args.retrain_lr, points=points)
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "retrain.json").write_text(json.dumps(res, indent=1, default=str))
    lines = [f"Float accuracy {res['float_accuracy_mean']:.2f} ± {res['float_accuracy_std']:.2f}% over seeds "
             f"{res['seeds']}; {args.retrain_epochs} fine-tuning epochs at lr {args.retrain_lr:g}.", "",
             "| T | " + " | ".join(res["curves"]) + " |", "|---|" + "---|" * len(res["curves"])]
    for T in args.bit_targets:
        cells = []
        for m, cv in res["curves"].items():
            e = next((x for x in cv if x["setting"] == f"target {T:.3f}"), None)
            cells.append("-" if e is None else f"{e['bits_per_weight_mean']:.2f} b, {e['accuracy_mean']:.2f} ± "
                                                 f"{e['accuracy_std']:.2f}%")
        lines.append(f"| {T:g} | " + " | ".join(cells) + " |")
    res["markdown"] = "\n".join(lines)
    (outdir / "retrain.md").write_text(res["markdown"] + "\n")
    res["files"] = [str(outdir / "retrain.json"), str(outdir / "retrain.md")]
    return res


# --- inference rate (the paper's Table 3) -----------------------------------------------------

def inference(args: argparse.Namespace) -> dict:
    """Equal vs Pareto allocation (weights and activations, T = A) on the two scaled platforms, over the seeds."""
    import tempfile
    from sim.system import add_inference, analyse, platform_for
    from sim.model.cycles import HwModel
    from sw import container as ct
    rows = []
    hw = HwModel(bytes_per_cycle=args.bus_bytes, weights_per_cycle=args.units)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            net, data, mcfg, facc = load_seed(args.model, seed, Path(args.float_cache))
            calib = calibration_inputs(data.x_train, args.calibration, seed)
            pc = ParetoCurves(copy.deepcopy(net), calib, "rtn", activations=True, progress=not args.quiet)
            for T in args.bit_targets:
                runs = [("equal", 1.0, pc.equal(T, T)), ("pareto", 1.0, pc.pareto(T, T)[0])]
                runs += [(f"pareto@{f:g}", f, pc.pareto(f * T, f * T)[0]) for f in args.iso_factors]
                for method, factor, choice in runs:
                    c, info = pc.container(choice, {"model": args.model, "model_config": mcfg})
                    path = Path(tmp) / f"{method}_{T}_{seed}.tans"
                    ct.write(path, c)
                    c = ct.read(path)
                    acc = accuracy_with(c, pc.activation_quantizers(choice), args.model, mcfg, data)
                    rep = analyse(path, args.bus_bytes, args.units, hw)
                    for kind in args.platforms:
                        plat, netsize = platform_for(c, kind, args.bus_bytes)
                        inf = add_inference(rep, c, plat, args.activation_store)["inference"]
                        comp, full = inf["compressed"], inf["int8"]
                        rows.append({"seed": seed, "T": T, "method": method, "factor": factor, "platform": kind,
                                     "accuracy": acc,
                                     "bits_per_weight": info["coded_bits_per_weight"],
                                     "entropy_bits_per_activation": info.get("activation_entropy_bits_per_activation"),
                                     "inferences_per_second": comp["inferences_per_second"],
                                     "full_precision_per_second": full["inferences_per_second"],
                                     "cycles": comp["cycles"], "compute_bound_layers": comp["compute_bound_layers"],
                                     "full_precision_compute_bound_layers": full["compute_bound_layers"],
                                     "layers": len(comp["layers"]), "platform_params": plat.as_dict(),
                                     "network": netsize,
                                     "per_layer": [{k: l[k] for k in ("name", "cycles", "bound", "weight_cycles",
                                                                      "activation_cycles", "compute_cycles")}
                                                   for l in comp["layers"]]})
            if not args.quiet:
                print(f"seed {seed}: float {facc:.2f}%", flush=True)
    res = {"model": args.model, "seeds": args.seeds, "bit_targets": args.bit_targets, "units": args.units,
           "bus_bytes_per_cycle": args.bus_bytes, "activation_store": args.activation_store,
           "calibration": args.calibration, "rows": rows, "table": inference_table(rows)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"inference_{args.model}.json").write_text(json.dumps(res, indent=1, default=str))
    (out / f"inference_{args.model}.md").write_text(inference_markdown(res) + "\n")
    res["files"] = [str(out / f"inference_{args.model}.json"), str(out / f"inference_{args.model}.md")]
    return res


def inference_table(rows: list[dict]) -> list[dict]:
    """Per platform and target: mean ± std over seeds of inferences/s (equal, Pareto), the speed-up, vs full precision."""
    out = []
    for kind in sorted({r["platform"] for r in rows}):
        for T in sorted({r["T"] for r in rows}):
            sel = {m: sorted((r for r in rows if r["platform"] == kind and r["T"] == T and r["method"] == m),
                             key=lambda r: r["seed"]) for m in ("equal", "pareto")}
            e, p = sel["equal"], sel["pareto"]
            if not e or [r["seed"] for r in e] != [r["seed"] for r in p]:
                continue
            ms = ra._mean_std
            iso = None        # the fewest bits at which Pareto's mean accuracy reaches equal's
            eq_acc = ms([r["accuracy"] for r in e])[0]
            for m in sorted({r["method"] for r in rows if r["method"].startswith("pareto")},
                            key=lambda m: next(r["factor"] for r in rows if r["method"] == m)):
                q = sorted((r for r in rows if r["platform"] == kind and r["T"] == T and r["method"] == m),
                           key=lambda r: r["seed"])
                if [r["seed"] for r in q] == [r["seed"] for r in e] and ms([r["accuracy"] for r in q])[0] >= eq_acc - 1e-9:
                    iso = {"factor": q[0]["factor"], "inferences_per_second": ms([r["inferences_per_second"] for r in q]),
                           "speedup": ms([b["inferences_per_second"] / a["inferences_per_second"] for a, b in zip(e, q)]),
                           "accuracy": ms([r["accuracy"] for r in q]), "bits": ms([r["bits_per_weight"] for r in q]),
                           "act_bits": ms([r["entropy_bits_per_activation"] for r in q])}
                    break
            out.append({"platform": kind, "T": T, "pareto_at_equal_accuracy": iso,
                        "equal": ms([r["inferences_per_second"] for r in e]),
                        "pareto": ms([r["inferences_per_second"] for r in p]),
                        "speedup": ms([b["inferences_per_second"] / a["inferences_per_second"] for a, b in zip(e, p)]),
                        "full_precision": ms([r["full_precision_per_second"] for r in e]),
                        "equal_vs_full": ms([r["inferences_per_second"] / r["full_precision_per_second"] for r in e]),
                        "pareto_vs_full": ms([r["inferences_per_second"] / r["full_precision_per_second"] for r in p]),
                        "equal_compute_bound": ms([r["compute_bound_layers"] for r in e]),
                        "pareto_compute_bound": ms([r["compute_bound_layers"] for r in p]),
                        "layers": e[0]["layers"],
                        "equal_accuracy": ms([r["accuracy"] for r in e]),
                        "pareto_accuracy": ms([r["accuracy"] for r in p]),
                        "equal_bits": ms([r["bits_per_weight"] for r in e]),
                        "pareto_bits": ms([r["bits_per_weight"] for r in p]),
                        "equal_act_bits": ms([r["entropy_bits_per_activation"] for r in e]),
                        "pareto_act_bits": ms([r["entropy_bits_per_activation"] for r in p]),
                        "platform_params": e[0]["platform_params"]})
    return out


def inference_markdown(res: dict) -> str:
    """Table-3 style rows."""
    f = lambda x, d=0: f"{x[0]:.{d}f} ± {x[1]:.{d}f}"   # noqa: E731
    lines = [f"{res['model']}, seeds {res['seeds']}, P = {res['units']} decode unit(s), B = "
             f"{res['bus_bytes_per_cycle']:g} bytes/cycle, activations at their {res['activation_store']} bits; "
             "mean ± std over the seeds.", "",
             "| platform | T = A | equal inf/s | Pareto inf/s | speed-up | full precision inf/s | equal vs full | "
             "Pareto vs full | compute-bound layers (equal / Pareto / of) | bits/weight (equal / Pareto) | "
             "entropy bits/activation (equal / Pareto) | accuracy (equal / Pareto) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["table"]:
        lines.append(f"| {r['platform']} | {r['T']:g} | {f(r['equal'])} | {f(r['pareto'])} | {f(r['speedup'], 3)}x | "
                     f"{f(r['full_precision'])} | {f(r['equal_vs_full'], 2)}x | {f(r['pareto_vs_full'], 2)}x | "
                     f"{r['equal_compute_bound'][0]:.1f} / {r['pareto_compute_bound'][0]:.1f} / {r['layers']} | "
                     f"{r['equal_bits'][0]:.2f} / {r['pareto_bits'][0]:.2f} | "
                     f"{r['equal_act_bits'][0]:.2f} / {r['pareto_act_bits'][0]:.2f} | "
                     f"{f(r['equal_accuracy'], 2)} / {f(r['pareto_accuracy'], 2)}% |")
    lines += ["", "Pareto at equal allocation's accuracy (the lowest T' = f x T of the grid whose mean accuracy is "
              ">= equal's mean at T):", "",
              "| platform | T | f | bits/weight | entropy bits/activation | accuracy | inf/s | speed-up vs equal at T |",
              "|---|---|---|---|---|---|---|---|"]
    for r in res["table"]:
        i = r["pareto_at_equal_accuracy"]
        if i is None:
            lines.append(f"| {r['platform']} | {r['T']:g} | not reached | | | | | |")
            continue
        lines.append(f"| {r['platform']} | {r['T']:g} | {i['factor']:g} | {f(i['bits'], 2)} | {f(i['act_bits'], 2)} | "
                     f"{f(i['accuracy'], 2)}% | {f(i['inferences_per_second'])} | {f(i['speedup'], 3)}x |")
    plats = {r["platform"]: r["platform_params"] for r in res["table"]}
    lines += [""] + [f"- {k}: {p['macs_per_cycle']:.4g} MACs/cycle, buffer {p['buffer_bytes']:.4g} bytes, "
                     f"clock {p['clock_hz']:.4g} Hz (B bytes/cycle = the platform's DRAM bandwidth)"
                     for k, p in plats.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("additivity", "allocation", "report", "inference", "dead-zone", "dead-zone-report",
                                    "retrain"),
                   help="report: rewrite allocation.md in --out from its allocation.json (dead-zone-report: "
                        "dead_zone.md from dead_zone.json)")
    p.add_argument("--model", choices=sorted(ra.MODEL_SETUPS) + sorted(EXTRA_SETUPS), default="lenet5")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--float-cache", default=None, help="rate_accuracy's --out for the model "
                                                       "(default build/rate_accuracy/MODEL)")
    p.add_argument("--calibration", type=int, default=512)
    p.add_argument("--trials", type=int, default=300, help="additivity: random subsets per seed")
    p.add_argument("--prefilter", action="store_true",
                   help="additivity, dead-zone: measure only the layer-loss hull points end to end")
    p.add_argument("--no-activations", action="store_true", help="additivity: weight curves only")
    p.add_argument("--targets", type=float, nargs="+", default=DEFAULT_TARGETS)
    p.add_argument("--wa-targets", type=float, nargs="+", default=None,
                   help="targets also run with activations at A = T (default: those nearest 2, 3 and 4)")
    p.add_argument("--drops", type=float, nargs="+", default=[0.5, 1.0])
    p.add_argument("--bit-targets", type=float, nargs="+", default=[2.0, 4.0],
                   help="inference: average bits T = A of weights and activations")
    p.add_argument("--retrain-epochs", type=int, default=2, help="retrain: fine-tuning epochs from the allocation")
    p.add_argument("--retrain-lr", type=float, default=1e-4, help="retrain: learning rate")
    p.add_argument("--betas", type=float, nargs="+", default=[0.5, 1.0], help="dead-zone: beta values (steps)")
    p.add_argument("--iso-factors", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9],
                   help="inference: Pareto also at f x T, to find the rate of equal's accuracy")
    p.add_argument("--platforms", nargs="+", default=["eyeriss", "tpu"], help="inference: sim.model.compute platforms")
    p.add_argument("--units", type=int, default=1, help="inference: decode units P of the fetch path")
    p.add_argument("--bus-bytes", type=float, default=0.125, help="inference: DRAM bytes per fetch-path cycle")
    p.add_argument("--activation-store", choices=("entropy", "fixed"), default="entropy")
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
    elif args.what == "dead-zone-report":
        r = json.loads((Path(args.out) / "dead_zone.json").read_text())
        (Path(args.out) / "dead_zone.md").write_text(dead_zone_markdown(r) + "\n")
        print(dead_zone_markdown(r))
        r["files"] = [str(Path(args.out) / "dead_zone.md")]
    elif args.what == "retrain":
        r = retrain(args)
        print(r["markdown"])
        print(f"total {time.time() - t0:.0f} s")
    elif args.what == "dead-zone":
        r = dead_zone(args)
        print(dead_zone_markdown(r))
        print(f"timing: {json.dumps(r['timing'])}; total {time.time() - t0:.0f} s")
    elif args.what == "inference":
        r = inference(args)
        print(inference_markdown(r))
        print(f"total {time.time() - t0:.0f} s")
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
