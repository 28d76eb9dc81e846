"""HEMP against Fracbits QAT in the style of HEMP's Table 2, on the rate-accuracy benchmark's float models and splits.

Per seed (data split) the float model of benchmarks/rate_accuracy.py (trained, or reloaded from
`--out`/float) is the start of every method:

* qat:            the entropy-driven Fracbits QAT (rate_accuracy.qat_point, its QAT/fine-tune epochs);
* hemp-n1, -n2:   HEMP (sw.methods.hemp) minimizing H_1 / H_2 for --hemp-epochs, coded one weight per symbol;
* hemp-n2-pair:   the same HEMP n = 2 checkpoints coded with pairs of weights per symbol (`compress --tuple 2`).
* hemp-qat-nN[-pair]: HEMP on the seed's QAT checkpoint of a target (--qat-runs, sw.methods.hemp_refine);
* qat-pair, qat-trim[-pair], qat-Q+Fep: the QAT checkpoints pair coded / with trimmed bins (--qat-pairs), and
                  QAT with Q + F epochs (--qat-long: the budget control for HEMP on QAT).

Each point is the golden-decoded `.tans` file's test accuracy and the bits/weight of the coded layers'
whole records (as rate_accuracy counts them); file sizes are whole files. A method's result at a
drop x is its setting of lowest mean bits/weight whose mean accuracy over the splits is >= the
mean float accuracy - x (rate_accuracy.summarize). For pair-coded points, every coded layer's
record and payload are compared with its measured 2nd-order block entropy (pairs in scan order).
A plot of the entropy of order 1..4 during training (paper Fig. 6) comes from seed 0's runs.

    nice .venv/bin/python benchmarks/hemp.py --out build/hemp
    .venv/bin/python benchmarks/hemp.py --quick --out /tmp/hemp_quick
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import rate_accuracy as ra  # noqa: E402  (float models, QAT points, bit counting, the summary)

#: HEMP settings: (order, bins, lambda_H, lloyd)
DEFAULT_LAMS = [1.0, 2.0, 4.0]
DEFAULT_QAT_TARGETS = [0.3, 0.35, 0.4, 0.45, 0.5]


#: epochs of HEMP on a QAT model unless a run says otherwise (ORDER:LAM:TARGET:EPOCHS)
QAT_HEMP_EPOCHS = 4          # sw.methods.hemp_refine.DEFAULT_EPOCHS (not imported: the module loads torch)


def setting_name(order: int, bins: int, lam: float, lloyd: bool, qat: tuple[float, int] | None = None) -> str:
    """A HEMP setting's name; `qat` = (QAT target, epochs) for HEMP on that QAT checkpoint."""
    if qat is not None:
        return f"n{order} lamH {lam:g} on qat {qat[0]:g}" + ("" if qat[1] == QAT_HEMP_EPOCHS else f" {qat[1]} ep")
    return f"n{order} b{bins} lamH {lam:g}" + (" lloyd" if lloyd else "")


def pair_efficiency(c, names: list[str]) -> list[dict]:
    """Per pair-coded layer: record and payload bits against the measured 2nd-order block entropy."""
    import torch
    from sw import container as ct
    from sw.quant.hemp import block_entropy, scan_order
    rows = []
    for n in names:
        t = c[n]
        idx = torch.from_numpy(t.symbols().astype("int64")).reshape(-1)
        tuples = idx[scan_order(tuple(t.shape), t.coded.lanes, t.lane_axis, 2)]
        h2 = block_entropy(tuples) * tuples.shape[0]          # bits for the full pairs
        coded_bits = t.coded.payload_bits - t.coded.lanes * t.coded.log2_states   # without the lane states
        rows.append({"layer": n, "weights": int(t.size), "tuple_size": int(t.tuple_size),
                     "block_entropy_bits": h2, "payload_bits": int(coded_bits),
                     "record_bits": int(ct.record_bits(t)),
                     "payload_over_entropy": coded_bits / h2 - 1 if h2 > 0 else None,
                     "record_over_entropy": ct.record_bits(t) / h2 - 1 if h2 > 0 else None})
    return rows


def hemp_points(float_ckpt: Path, data, order: int, bins: int, lam: float, lloyd: bool, args, out: Path,
                seed: int, qat: tuple[float, int] | None = None) -> tuple[list[dict], list[dict]]:
    """Train HEMP from the float checkpoint (or, with `qat` = (target, epochs), on the seed's QAT checkpoint
    of that target: sw.methods.hemp_refine), code it (scalar; pairs for n >= 2), decode, evaluate (cached)."""
    from sw.methods.hemp import hemp_from_float, hemp_quant
    from sw.methods.hemp_refine import hemp_from_qat
    name = setting_name(order, bins, lam, lloyd, qat)
    qat_target = qat[0] if qat is not None else None
    folder = out / "hemp" / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    stem = name.replace(" ", "_")
    ck, rec = folder / f"{stem}.ckpt", folder / f"{stem}.json"
    if qat_target is None:
        ov = {"order": order, "lam_h": lam, "lam_e": args.lam_e, "hemp_epochs": args.hemp_epochs,
              "finetune_epochs": args.finetune_epochs, "quant": hemp_quant(bins), "lloyd": lloyd}
        start, key = float_ckpt, {"float": ra.weights_digest(float_ckpt), "overrides": ov}
        prefix = f"hemp-n{order}"
    else:
        ov = {"order": order, "lam_h": lam, "lam_e": args.lam_e, "hemp_epochs": qat[1],
              "init_from": "qat", "trim_bins": not args.no_trim}
        start = out / "qat" / f"seed{seed}" / f"t{qat_target}.ckpt"
        key = {"float": ra.weights_digest(float_ckpt), "qat": ra.weights_digest(start), "overrides": ov}
        prefix = f"hemp-qat-n{order}"
    codings = [(1, 8, prefix)]
    if order >= 2 and not args.no_pairs:
        codings += [(2, 8, f"{prefix}-pair")] + [(2, k, f"{prefix}-pair-l{1 << k}") for k in args.pair_states]
    saved = json.loads(rec.read_text()) if not args.no_cache and rec.exists() else {}
    if saved.get("key") == key:
        have = {p["method"] for p in saved["points"]}
        missing = [c for c in codings if c[2] not in have]
        if not missing:
            return saved["points"], saved["history"]
        # the run is done: code it the ways this call asks for that the cache lacks
        from sw.methods.hemp import HempTrainer
        t = HempTrainer.resume(ck, data=data, progress=False, log=lambda *a, **k: None)
        points = saved["points"] + code_points(t, ck, folder, stem, name, missing, data, seed, bins)
        rec.write_text(json.dumps({"key": key, "points": points, "history": saved["history"]}, indent=1))
        return points, saved["history"]
    t = None
    if not args.no_cache and ck.exists():      # an interrupted run of the same setting on this seed: go on
        from sw.methods.hemp import HempTrainer
        from sw.train import load_checkpoint
        st = load_checkpoint(ck)
        if st["config"].get("seed") == seed and all(st["config"].get(k) == v for k, v in ov.items()):
            t = HempTrainer.resume(ck, data=data, progress=False, log=lambda *a, **k: None)
    if t is None:
        t = hemp_from_float(float_ckpt, ck, ov, data=data) if qat_target is None else \
            hemp_from_qat(start, ck, ov, data=data)
    t.run()
    points = code_points(t, ck, folder, stem, name, codings, data, seed, bins)
    history = [h for h in t.history if h.get("phase") in ("hemp", "finetune")]
    rec.write_text(json.dumps({"key": key, "points": points, "history": history}, indent=1))
    return points, history


def code_points(t, ck: Path, folder: Path, stem: str, name: str, codings: list[tuple[int, int, str]],
                data, seed: int, bins: int) -> list[dict]:
    """Compress a finished HEMP checkpoint per (tuple size, log2 of the largest table, method); decode; evaluate."""
    from sw import container as ct
    from sw.methods.compress import compress_checkpoint
    cfg = t.cfg
    names = t.qmodel.coded_names()
    n = sum(t.qmodel.weight(x).numel() for x in names)
    points = []
    for tup, k, method in codings:
        tans = folder / (f"{stem}_t{tup}" + ("" if k == 8 else f"_k{k}") + ".tans")
        c = compress_checkpoint(ck, tans, log2_states=k, tuple_size=tup)
        acc, exact = ra.decoded_accuracy(c, cfg.model, cfg.model_config, data)
        p = {"method": method, "setting": name, "seed": seed, "bits_per_weight": ra.coded_bits(c, names) / n,
             "accuracy": acc, "exact": exact, "file_bytes": tans.stat().st_size, "file": str(tans),
             "quantized_accuracy": t.results.get("hemp_accuracy"), "bins": bins or t.results.get("bins"),
             "max_log2_states": k,
             "block_entropy_bits_per_weight": t.results.get("block_entropy_bits_per_weight")}
        if tup == 2:
            p["pair_efficiency"] = pair_efficiency(ct.read(tans), names)
        points.append(p)
    return points


def qat_points(float_ckpt: Path, data, targets: list[float], setup: dict, out: Path, seed: int,
               overrides: dict, cache: bool, pairs: bool = False) -> list[dict]:
    """rate_accuracy's QAT points, with the whole file's size added; with `pairs` also the same
    checkpoints coded in pairs (method qat-pair, `compress --tuple 2`)."""
    from sw import container as ct
    from sw.methods.compress import compress_checkpoint
    from sw.methods.hemp_refine import trim_bins
    from sw.methods.qat import restore
    from sw.train import load_checkpoint, save_checkpoint
    pts = []
    for target in targets:
        p = dict(ra.qat_point(float_ckpt, data, target, setup, out, seed, overrides, cache))
        p["file_bytes"] = Path(p["file"]).stat().st_size
        pts.append(p)
        if pairs:
            ck = out / "qat" / f"seed{seed}" / f"t{target}.ckpt"
            trimmed = ck.with_name(f"t{target}_trim.ckpt")
            state = load_checkpoint(ck)
            cfg, qmodel = restore(state)
            trim_bins(qmodel)
            save_checkpoint(trimmed, {**state, "model": qmodel.state_dict()})
            for src, tup, method in ((ck, 2, "qat-pair"), (trimmed, 1, "qat-trim"), (trimmed, 2, "qat-trim-pair")):
                tans = src.with_name(src.stem + f"_t{tup}.tans")
                c = compress_checkpoint(src, tans, tuple_size=tup)
                names = list(c.metadata["coded"])
                acc, exact = ra.decoded_accuracy(c, c.metadata["model"], c.metadata["model_config"], data)
                q = {**p, "method": method, "accuracy": acc, "exact": exact, "file": str(tans),
                     "bits_per_weight": ra.coded_bits(c, names) / sum(c[x].size for x in names),
                     "file_bytes": tans.stat().st_size}
                if tup == 2:
                    q["pair_efficiency"] = pair_efficiency(ct.read(tans), names)
                pts.append(q)
    return pts


def file_kb(points: list[dict], method: str, setting: str) -> tuple[float, float] | None:
    """Mean and std over seeds of the whole file (kB = 1000 bytes) of one method's setting."""
    xs = [p["file_bytes"] / 1000 for p in points if p["method"] == method and p["setting"] == setting
          and "file_bytes" in p]
    return ra._mean_std(xs) if xs else None


def run(args: argparse.Namespace) -> dict:
    import copy
    from sw.methods.qat import TrainConfig
    from sw.quant import QuantizedModel
    from sw.train import set_threads
    set_threads()
    setup = dict(ra.QUICK if args.quick else ra.MODEL_SETUPS["lenet5"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    defaults = TrainConfig()
    overrides = {k: getattr(defaults, k) for k in ra.QAT_FIELDS}
    if args.qat_quant_from:              # the quantizer settings of earlier (cached) QAT points
        overrides["quant"] = json.loads(Path(args.qat_quant_from).read_text())["key"]["overrides"]["quant"]
    points, floats, histories, float_params = [], {}, {}, 0
    if args.runs:
        settings = [(int(r.split(":")[0]), args.bins, float(r.split(":")[1]), args.lloyd or r.endswith(":lloyd"), None)
                    for r in args.runs]
    elif not args.qat_runs:
        settings = [(o, args.bins, lam, args.lloyd, None) for o in args.orders for lam in args.lams]
    else:
        settings = []
    for r in args.qat_runs or []:            # ORDER:LAMBDA_H:QAT_TARGET[:EPOCHS]: HEMP on that QAT checkpoint
        o, lam, target, *ep = r.split(":")
        settings.append((int(o), 0, float(lam), False, (float(target), int(ep[0]) if ep else args.qat_hemp_epochs)))
        if float(target) not in args.qat_targets:
            args.qat_targets = sorted(args.qat_targets + [float(target)])
    t0 = time.time()
    for seed in args.seeds:
        trainer, ckpt = ra.float_model(setup, "lenet5", seed, out, progress=False)
        data = trainer.data
        floats[seed] = trainer.results["float_accuracy"]
        float_params = sum(v.numel() for v in trainer.qmodel.base.state_dict().values())
        coded = QuantizedModel(copy.deepcopy(trainer.qmodel.base)).coded_names()
        if not args.no_qat:
            points += qat_points(ckpt, data, args.qat_targets, setup, out, seed, overrides, not args.no_cache,
                                 args.qat_pairs)
        for spec in args.qat_long or []:     # the budget control: QAT given HEMP-on-QAT's epochs
            qe, fe = (int(x) for x in spec.split(":"))
            long_setup = {**setup, "qat_epochs": qe, "finetune_epochs": fe}
            for p in qat_points(ckpt, data, args.qat_long_targets, long_setup, out / f"qat_long_{qe}_{fe}", seed,
                                overrides, not args.no_cache):
                points.append({**p, "method": f"qat-{qe}+{fe}ep"})
        for s in settings:
            ps, hist = hemp_points(ckpt, data, *s[:4], args, out, seed, s[4])
            points += ps
            histories[f"seed{seed} " + setting_name(*s)] = hist
            print(f"seed {seed} {setting_name(*s)}: " + ", ".join(
                f"{p['method']} {p['bits_per_weight']:.3f} b/w {p['accuracy']:.1f}%" for p in ps), flush=True)
        if seed == args.seeds[0] and args.fig6_order4:
            s = (4, args.bins, args.fig6_lam, args.lloyd, None)
            args_np = copy.copy(args)
            args_np.no_pairs = True
            _, hist = hemp_points(ckpt, data, *s[:4], args_np, out, seed, s[4])
            histories[f"seed{seed} " + setting_name(*s)] = hist
    res = ra.summarize([p for p in points if p["method"] != "float"], floats, args.drops)
    res.update(points=points, histories=histories, coded_layers=coded, float_bytes=4 * float_params,
               settings=[setting_name(*s) for s in settings], seconds=round(time.time() - t0, 1),
               hemp_epochs=args.hemp_epochs, hemp_finetune_epochs=args.finetune_epochs, qat_epochs=setup["qat_epochs"], finetune_epochs=setup["finetune_epochs"],
               float_epochs=setup["float_epochs"], config={k: v for k, v in vars(args).items()})
    for row in res["levels"]:
        for m, e in row["methods"].items():
            if e is not None:
                kb = file_kb(points, m, e["setting"])
                e["file_kb_mean"], e["file_kb_std"] = kb if kb else (None, None)
        q, pr = row["methods"].get("qat"), row["methods"].get("hemp-n2-pair")
        if q and pr:
            row["pair_bits_relative_to_qat_percent"] = 100 * (pr["bits_per_weight_mean"] / q["bits_per_weight_mean"] - 1)
        pq = row["methods"].get("hemp-qat-n2-pair")
        if q and pq:
            row["qat_based_pair_bits_relative_to_qat_percent"] = 100 * (pq["bits_per_weight_mean"] /
                                                                        q["bits_per_weight_mean"] - 1)
    res["files"] = [str(out / "results.json"), str(out / "results.md")] + fig6(res, out)
    (out / "results.md").write_text(markdown(res) + "\n")
    (out / "results.json").write_text(json.dumps(res, indent=1, default=str))
    return res


def _cell(e: dict | None) -> str:
    if e is None:
        return "not reached"
    kb = "" if e.get("file_kb_mean") is None else f", {e['file_kb_mean']:.2f} kB"
    return (f"{e['bits_per_weight_mean']:.3f} ± {e['bits_per_weight_std']:.3f} b/w{kb} "
            f"({e['accuracy_mean']:.2f} ± {e['accuracy_std']:.2f}%, {e['setting']})")


def markdown(res: dict) -> str:
    """Table-2 style summary (one row per method, one column per accuracy level), curves, entropies, pair coding."""
    methods = [m for m in ("qat", "qat-pair", "qat-trim", "qat-trim-pair", "hemp-n1", "hemp-n2", "hemp-n2-pair", "hemp-qat-n1", "hemp-qat-n2",
                           "hemp-qat-n2-pair") if m in res["curves"]]
    methods += sorted(m for m in res["curves"] if m not in methods)
    lines = [f"# HEMP vs Fracbits QAT: LeNet-5, seeds {', '.join(map(str, res['seeds']))}", "",
             f"Epochs after the float model ({res['float_epochs']} float epochs): QAT {res['qat_epochs']} + "
             f"fine-tune {res['finetune_epochs']}, HEMP {res['hemp_epochs']} + fine-tune "
             f"{res['hemp_finetune_epochs']}. Cells: mean ± std over the splits of bits/weight (coded layers, "
             "whole records), whole file in kB, accuracy, setting.", "",
             "| method | " + " | ".join(f"<= {r['max_drop']:g} pt drop (>= {r['accuracy_at_least']:.2f}%)"
                                     for r in res["levels"]) + " |",
             "|---" * (len(res["levels"]) + 1) + "|",
             "| float baseline | " + " | ".join(f"{res['float_accuracy_mean']:.2f} ± {res['float_accuracy_std']:.2f}%, "
                                              f"{res['float_bytes'] / 1000:.1f} kB (float32)" for _ in res["levels"]) + " |"]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(_cell(r["methods"].get(m)) for r in res["levels"]) + " |")
    lines.append("")
    for r in res["levels"]:
        rel = r.get("pair_bits_relative_to_qat_percent")
        if rel is not None:
            lines.append(f"At <= {r['max_drop']:g} pt: pair-coded HEMP n = 2 has {rel:+.1f}% bits/weight relative "
                         "to QAT (target: <= -15%).")
        rel = r.get("qat_based_pair_bits_relative_to_qat_percent")
        if rel is not None:
            lines.append(f"At <= {r['max_drop']:g} pt: pair-coded HEMP n = 2 on the QAT model has {rel:+.1f}% "
                         "bits/weight relative to QAT (target: <= -15%).")
    lines += ["", "## Curves", ""]
    for m, cv in res["curves"].items():
        lines += [f"### {m}", "", "| setting | bits/weight | accuracy % |", "|---|---|---|"]
        for e in cv:
            lines.append(f"| {e['setting']} | {e['bits_per_weight_mean']:.3f} ± {e['bits_per_weight_std']:.3f} | "
                         f"{e['accuracy_mean']:.2f} ± {e['accuracy_std']:.2f} |")
        lines.append("")
    ent: dict[str, list[dict]] = {}
    for p in res["points"]:
        if p["method"].startswith("hemp") and "-pair" not in p["method"] and p.get("block_entropy_bits_per_weight"):
            ent.setdefault(p["setting"], []).append(p["block_entropy_bits_per_weight"])
    if ent:
        lines += ["## Exact entropy of order 1..4 of the final HEMP models (bits/weight, mean over splits)", "",
                  "| setting | H1 | H2/2 | H3/3 | H4/4 |", "|---|---|---|---|---|"]
        for setting, es in sorted(ent.items()):
            lines.append(f"| {setting} | " + " | ".join(f"{sum(e[str(k)] for e in es) / len(es):.3f}"
                                                        for k in (1, 2, 3, 4)) + " |")
        lines.append("")
    pair = [p for p in res["points"] if "-pair" in p["method"]]
    if pair:
        lines += ["## Pair coding against the 2nd-order block entropy (per layer, mean over points)", "",
                  "| coding | layer | coded symbols (no lane states) over entropy | record over entropy | "
                  "worst record over entropy |", "|---|---|---|---|---|"]
        by: dict[tuple[str, str], list[dict]] = {}
        for p in pair:
            for r in p["pair_efficiency"]:
                by.setdefault((p["method"], r["layer"]), []).append(r)
        for (method, layer), rs in sorted(by.items()):
            pe = [r["payload_over_entropy"] for r in rs if r["payload_over_entropy"] is not None]
            re = [r["record_over_entropy"] for r in rs if r["record_over_entropy"] is not None]
            lines.append(f"| {method} | {layer} | {100 * sum(pe) / len(pe):+.1f}% | {100 * sum(re) / len(re):+.1f}% | "
                         f"{100 * max(re):+.1f}% |")
    return "\n".join(lines)


def fig6(res: dict, out: Path) -> list[str]:
    """Entropy per weight of order 1..4 during HEMP (seed 0): proxy solid, exact dashed (paper Fig. 6)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    seed = res["seeds"][0]
    runs = {k: v for k, v in res["histories"].items() if k.startswith(f"seed{seed} ") and v}
    if not runs:
        return []
    lam = res["config"]["fig6_lam"]
    chosen = {k: v for k, v in runs.items() if f"lamH {lam:g}" in k} or runs
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    colors = {1: "tab:red", 2: "tab:blue", 3: "tab:green", 4: "k"}
    for k, hist in sorted(chosen.items()):
        n = int(k.split(" n")[1].split(" ")[0])
        ep = list(range(1, len(hist) + 1))
        axes[0].plot(ep, [h[f"h{n}_proxy"] for h in hist], "-", color=colors[n], label=f"min H{n}: proxy H{n}/{n}")
        axes[0].plot(ep, [h[f"h{n}"] for h in hist], "--", color=colors[n], label=f"min H{n}: exact H{n}/{n}")
    axes[0].set_title(f"minimized order, seed {seed}, lamH {lam:g}", fontsize=9)
    two = [v for k, v in chosen.items() if " n2 " in k]
    if two:
        for n in (1, 2, 3, 4):
            ep = list(range(1, len(two[0]) + 1))
            axes[1].plot(ep, [h[f"h{n}"] for h in two[0]], "--", color=colors[n], label=f"exact H{n}/{n}")
            axes[1].plot(ep, [h[f"h{n}_proxy"] for h in two[0]], "-", color=colors[n],
                         alpha=0.5, label=f"proxy H{n}/{n}")
        axes[1].set_title("HEMP n = 2: entropy of every order", fontsize=9)
    for ax in axes:
        ax.set_xlabel("epoch after the float model (HEMP, then fine-tuning)")
        ax.set_ylabel("bits per weight (coded layers)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    files = []
    for ext in ("png", "pdf"):
        f = out / f"hemp_fig6.{ext}"
        fig.savefig(f, dpi=130)
        files.append(str(f))
    plt.close(fig)
    return files


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build/hemp")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--orders", type=int, nargs="+", default=[1, 2])
    p.add_argument("--lams", type=float, nargs="+", default=DEFAULT_LAMS, help="lambda_H values")
    p.add_argument("--runs", nargs="+", metavar="ORDER:LAM[:lloyd]",
                   help="explicit HEMP settings (order:lambda_H, ':lloyd' for Lloyd-max levels) instead of every "
                        "--orders x --lams pair")
    p.add_argument("--lam-e", type=float, default=0.1)
    p.add_argument("--bins", type=int, default=7, help="levels per coded layer (odd)")
    p.add_argument("--lloyd", action="store_true", help="Lloyd-max levels")
    p.add_argument("--hemp-epochs", type=int, default=8, help="HEMP epochs (default 8, as QAT's)")
    p.add_argument("--finetune-epochs", type=int, default=3,
                   help="HEMP fine-tuning epochs, quantized forward pass (default 3, as QAT's)")
    p.add_argument("--qat-targets", type=float, nargs="+", default=DEFAULT_QAT_TARGETS)
    p.add_argument("--qat-runs", nargs="+", metavar="ORDER:LAM:TARGET[:EPOCHS]",
                   help="HEMP on the seed's QAT checkpoint of that target (sw.methods.hemp_refine: the QAT's "
                        "quantizer kept, --qat-hemp-epochs epochs of L + lambda_H H_n + lambda_E E); methods "
                        "hemp-qat-nN[-pair]. Without --runs, only these HEMP settings run")
    p.add_argument("--qat-hemp-epochs", type=int, default=QAT_HEMP_EPOCHS,
                   help=f"epochs of HEMP on a QAT model where a run gives none (default {QAT_HEMP_EPOCHS})")
    p.add_argument("--qat-pairs", action="store_true",
                   help="also code the QAT checkpoints in pairs (qat-pair), and both ways after trimming their bins "
                        "to the levels used as HEMP on QAT does (qat-trim, qat-trim-pair)")
    p.add_argument("--qat-long", nargs="+", metavar="QAT:FINETUNE",
                   help="also QAT with these epochs (e.g. 12:3, the epochs of QAT + HEMP on it) at --qat-long-targets "
                        "(method qat-Q+Fep, cached under OUT/qat_long_Q_F)")
    p.add_argument("--qat-long-targets", type=float, nargs="+", default=[0.3, 0.35, 0.4])
    p.add_argument("--no-trim", action="store_true", help="HEMP on QAT: keep the QAT's bins (no trim_bins)")
    p.add_argument("--qat-quant-from", metavar="POINT.json",
                   help="QAT points with the quantizer settings recorded in this cached QAT point "
                        "(OUT/qat/seedS/tT.json) instead of today's defaults, so that its cached points are reused")
    p.add_argument("--no-qat", action="store_true")
    p.add_argument("--no-pairs", action="store_true")
    p.add_argument("--pair-states", type=int, nargs="*", default=[10],
                   help="pair coding also with tables up to 2^K states for each K given (default 10: l <= 1024; "
                        "the main pair points use l <= 256 as every other method)")
    p.add_argument("--fig6-order4", action="store_true", help="also run n = 4 on the first seed for the figure")
    p.add_argument("--fig6-lam", type=float, default=2.0)
    p.add_argument("--drops", type=float, nargs="+", default=[0.5, 1.0])
    p.add_argument("--quick", action="store_true", help="smoke configuration (8x8 digits, tiny epochs)")
    p.add_argument("--no-cache", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.qat_targets = [1.2]
        args.hemp_epochs = min(args.hemp_epochs, 2)
        args.finetune_epochs = min(args.finetune_epochs, 1)
        args.qat_hemp_epochs = min(args.qat_hemp_epochs, 1)
    return args


def main(argv: list[str] | None = None) -> int:
    res = run(parse_args(argv))
    for row in res["levels"]:
        print(f"drop <= {row['max_drop']:g}:")
        for m, e in row["methods"].items():
            print(f"  {m:14} {_cell(e)}")
        if "pair_bits_relative_to_qat_percent" in row:
            print(f"  pair-coded HEMP n = 2: {row['pair_bits_relative_to_qat_percent']:+.1f}% bits/weight relative to QAT")
        if "qat_based_pair_bits_relative_to_qat_percent" in row:
            print(f"  pair-coded HEMP n = 2 on QAT: {row['qat_based_pair_bits_relative_to_qat_percent']:+.1f}% "
                  "bits/weight relative to QAT")
    print("files: " + ", ".join(res["files"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
