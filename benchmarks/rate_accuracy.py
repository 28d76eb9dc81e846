"""Rate vs accuracy of every method on the same float models, over several data splits (seeds).

For each seed the harness trains (or reloads from its cache) one float model, then runs every
method on that same model and measures each point on the split's test set:

* qat:     the entropy-driven QAT (`sw.methods.qat`) started from the float model's best epoch,
           at several --qat-targets (bits/weight); accuracy of the golden-decoded `.tans` file.
* rtn, optq, cerwu: post-training (`sw.methods.posttrain.post_train`) at a dense sweep of rate
           targets (--ptq-targets); accuracy of the golden-decoded container. Without that module
           `rtn` falls back to `sw.methods.compress.compress_module` at fixed bins (--rtn-bins).
* nncodec: NNCodec (DeepCABAC) on the float weights of the coded layers, qp swept, run in its own
           venv by the worker of benchmarks/vs_nncodec.py (build it with `--setup`).

Bits per weight are always over the coded layers (every conv/linear weight but the first and
the last): for our methods the whole record bodies of those layers (payload with lane states,
table, steps, header: what `report` counts), whatever kind the method chose for them; for NNCodec
its whole bitstream for the same layers. First/last layers are 8-bit and biases float32 for every
method (NNCodec's points reuse our 8-bit first/last layers). Results:

* per method, one curve point per setting: mean and std (over the seeds, ddof=1) of bits/weight
  and of accuracy; a setting counts only if it ran on every seed;
* "lowest bits/weight whose mean accuracy over the splits is >= mean float accuracy - x" for
  each x in --drops, with the spread of the chosen setting;
* results.json, results.md, rate_accuracy.png / .pdf in --out.

    .venv/bin/python benchmarks/rate_accuracy.py --setup                    # once: NNCodec's venv
    nice .venv/bin/python benchmarks/rate_accuracy.py --model lenet5 --out build/rate_accuracy/lenet5
    nice .venv/bin/python benchmarks/rate_accuracy.py --model mlp --out build/rate_accuracy/mlp
    .venv/bin/python benchmarks/rate_accuracy.py --quick --methods rtn qat --out /tmp/ra_quick
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import vs_nncodec  # noqa: E402  (NNCodec's venv, setup and worker live there)

METHODS = ("qat", "rtn", "optq", "cerwu", "nncodec")
#: TrainConfig fields a QAT point takes from the current defaults (or this run's options)
QAT_FIELDS = ("batch_size", "lr", "lam_lr", "entropy_weight", "distill", "distill_temperature", "quant")
#: TrainConfig fields that decide a float model (a cached one is reused when they match)
FLOAT_FIELDS = ("model", "data", "n_train", "n_test", "seed", "batch_size", "float_epochs", "float_lr",
                "val_fraction")
PTQ_METHODS = ("rtn", "optq", "cerwu")

#: post-training points take seconds: dense where the levels are decided, coarser above
PTQ_TARGETS = [round(0.4 + 0.05 * i, 3) for i in range(20)] + [round(1.4 + 0.15 * i, 3) for i in range(8)]
#: per model: data split and float training; qat_* are the QAT runs' settings, ptq_targets the
#: post-training targets (default PTQ_TARGETS)
MODEL_SETUPS = {
    "lenet5": {"data": "mnist-digits", "n_train": 4000, "n_test": 1000, "float_epochs": 10, "float_lr": 2e-3,
               "qat_epochs": 8, "finetune_epochs": 3, "qat_targets": [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.85, 1.0]},
    # 1260 training examples are 20 minibatches: more epochs give QAT about LeNet-5's number of steps
    "mlp": {"data": "sklearn-digits", "n_train": 1400, "n_test": 397, "float_epochs": 40, "float_lr": 2e-3,
            "qat_epochs": 20, "finetune_epochs": 6, "qat_targets": [0.12, 0.15, 0.18, 0.22, 0.26, 0.3, 0.35, 0.45],
            # this MLP holds its accuracy far lower: start the post-training sweep at 0.1
            "ptq_targets": [round(0.1 + 0.025 * i, 3) for i in range(12)] + PTQ_TARGETS[:13]},
}
#: --quick: a smoke configuration (8x8 digits, tiny epochs) that runs in seconds
QUICK = {"data": "sklearn-digits", "n_train": 300, "n_test": 100, "float_epochs": 3, "float_lr": 5e-3,
         "qat_epochs": 1, "finetune_epochs": 1, "qat_targets": [1.2, 2.0]}


# --- aggregation (pure; tested by tests/test_rate_accuracy.py) -------------------------------

def _mean_std(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, 0.0
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def curves(points: list[dict], seeds: list[int]) -> dict[str, list[dict]]:
    """Per method, one entry per setting: mean/std over seeds of bits/weight and accuracy.

    `points` are {"method", "setting", "seed", "bits_per_weight", "accuracy"}. A setting is
    `complete` when it has a point on every seed; entries are sorted by mean bits/weight.
    """
    groups: dict[tuple[str, str], dict[int, dict]] = {}
    for p in points:
        groups.setdefault((p["method"], p["setting"]), {})[p["seed"]] = p
    out: dict[str, list[dict]] = {}
    for (method, setting), by_seed in groups.items():
        ps = [by_seed[s] for s in seeds if s in by_seed]
        if not ps:
            continue
        bm, bs = _mean_std([p["bits_per_weight"] for p in ps])
        am, as_ = _mean_std([p["accuracy"] for p in ps])
        out.setdefault(method, []).append({
            "setting": setting, "seeds": [p["seed"] for p in ps], "complete": len(ps) == len(seeds),
            "bits_per_weight_mean": bm, "bits_per_weight_std": bs, "accuracy_mean": am, "accuracy_std": as_,
            "bits_per_weight": [p["bits_per_weight"] for p in ps], "accuracy": [p["accuracy"] for p in ps]})
    for v in out.values():
        v.sort(key=lambda e: (e["bits_per_weight_mean"], e["setting"]))
    return out


def lowest_at(curve: list[dict], level: float) -> dict | None:
    """The complete setting of lowest mean bits/weight whose mean accuracy is >= level (None: none is)."""
    ok = [e for e in curve if e["complete"] and e["accuracy_mean"] >= level - 1e-9]
    return min(ok, key=lambda e: e["bits_per_weight_mean"]) if ok else None


def summarize(points: list[dict], floats: dict[int, float], drops: list[float]) -> dict:
    """Curves plus, per drop x, each method's lowest bits/weight at mean accuracy >= mean float - x."""
    seeds = sorted(floats)
    fm, fs = _mean_std([floats[s] for s in seeds])
    cv = curves(points, seeds)
    levels = []
    for drop in drops:
        level = fm - drop
        row = {"max_drop": drop, "accuracy_at_least": level, "methods": {}}
        for m, c in cv.items():
            e = lowest_at(c, level)
            row["methods"][m] = None if e is None else {
                k: e[k] for k in ("setting", "bits_per_weight_mean", "bits_per_weight_std",
                                  "accuracy_mean", "accuracy_std")}
        nnc = row["methods"].get("nncodec")
        if nnc:
            row["fewer_bits_than_nncodec_percent"] = {
                m: 100.0 * (1 - v["bits_per_weight_mean"] / nnc["bits_per_weight_mean"])
                for m, v in row["methods"].items() if v and m != "nncodec"}
        levels.append(row)
    return {"seeds": seeds, "float_accuracy": {str(s): floats[s] for s in seeds},
            "float_accuracy_mean": fm, "float_accuracy_std": fs, "curves": cv, "levels": levels}


# --- measuring ----------------------------------------------------------------------------

def coded_bits(c, names: list[str]) -> int:
    """Bits of the whole record bodies of the named layers (what `report` counts)."""
    from sw import container as ct
    return sum(ct.record_bits(c[n]) for n in names)


def decoded_accuracy(c, model_name: str, model_config: dict, data) -> tuple[float, bool]:
    """(test accuracy of the golden-decoded container, golden decode == fast decode on every record)."""
    from sw import container as ct
    from sw.evaluation.evaluate import decoded_state_dict
    from sw.models.zoo import build_model
    from sw.train import accuracy
    import numpy as np
    c = ct.from_bytes(ct.to_bytes(c))            # measure what a file holds
    net = build_model(model_name, model_config)
    net.load_state_dict(decoded_state_dict(c, golden=True))
    exact = all(np.array_equal(t.values(golden=True), t.values()) for t in c.tensors)
    return accuracy(net, data.x_test, data.y_test), exact


def float_model(setup: dict, model: str, seed: int, out: Path, progress: bool):
    """Train the seed's float model, or reload it from the cache in `out/float`."""
    import torch
    from sw.methods.qat import Trainer, TrainConfig
    from sw.train import load_checkpoint
    cfg = TrainConfig(model=model, data=setup["data"], n_train=setup["n_train"], n_test=setup["n_test"],
                      seed=seed, float_epochs=setup["float_epochs"], float_lr=setup["float_lr"],
                      qat_epochs=0, finetune_epochs=0, target_bits_per_weight=4.0)   # no QAT epochs: any target
    path = out / "float" / f"seed{seed}.ckpt"
    want = {k: v for k, v in asdict(cfg).items() if k in FLOAT_FIELDS}
    if path.exists():
        state = load_checkpoint(path)
        if state["phase"] == "done" and all(state["config"].get(k) == v for k, v in want.items()):
            t = Trainer.resume(path, progress=False, log=lambda *a, **k: None)
            return t, path
    t = Trainer(cfg, path, progress=progress, log=lambda *a, **k: None)
    t.run()
    assert torch.load(path, weights_only=True)["phase"] == "done"
    return t, path


def weights_digest(ckpt: Path) -> str:
    """SHA-256 of a checkpoint's model tensors (names, dtypes, shapes, bytes): the float model's identity."""
    import hashlib
    from sw.train import load_checkpoint
    h = hashlib.sha256()
    for k, v in sorted(load_checkpoint(ckpt)["model"].items()):
        h.update(f"{k}:{v.dtype}:{tuple(v.shape)}".encode())
        h.update(v.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def qat_point(float_ckpt: Path, data, target: float, setup: dict, out: Path, seed: int,
              overrides: dict, cache: bool) -> dict:
    """QAT from the float checkpoint at one target: compress, golden-decode, evaluate (cached)."""
    import torch
    from sw import container as ct
    from sw.evaluation.evaluate import evaluate_container
    from sw.methods.compress import compress_checkpoint
    from sw.methods.qat import Trainer
    from sw.train import load_checkpoint, save_checkpoint
    folder = out / "qat" / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    ck, tans, rec = folder / f"t{target}.ckpt", folder / f"t{target}.tans", folder / f"t{target}.json"
    ov = {"qat_epochs": setup["qat_epochs"], "finetune_epochs": setup["finetune_epochs"],
          "target_bits_per_weight": target, "target_kb": None, **overrides}
    key = {"float": weights_digest(float_ckpt), "overrides": ov}
    if cache and rec.exists() and tans.exists() and ck.exists():
        # reuse a point made from the same float model whose checkpoint records the same settings
        saved, ran = json.loads(rec.read_text()), load_checkpoint(ck)
        if saved.get("key", {}).get("float") == key["float"] and ran["phase"] == "done" and \
                all(ran["config"].get(k) == v for k, v in ov.items()):
            point = dict(saved["point"])
            c = ct.read(tans)             # bits as this run's container code stores these tensors
            names = list(c.metadata["coded"])
            point["bits_per_weight"] = coded_bits(c, names) / sum(c[x].size for x in names)
            return point
    state = torch.load(float_ckpt, weights_only=True)
    state["phase"], state["epoch"], state["best"], state["optimizer"] = "qat", 0, None, None
    state["config"]["quant"] = ov["quant"]          # the quantizers are built from the checkpoint's config
    save_checkpoint(ck, state)
    t = Trainer.resume(ck, data=data, progress=False, log=lambda *a, **k: None,
                       overrides={k: v for k, v in ov.items() if k != "quant"})
    t.run()
    c = compress_checkpoint(ck, tans)
    ev = evaluate_container(tans, ck)
    names = list(c.metadata["coded"])
    n = sum(c[x].size for x in names)
    point = {"method": "qat", "setting": f"target {target:g}", "seed": seed,
             "bits_per_weight": coded_bits(c, names) / n, "accuracy": ev["decoded_accuracy"],
             "exact": ev["exact"], "file": str(tans), "bins": t.results.get("bins")}
    rec.write_text(json.dumps({"key": key, "point": point}, indent=1))
    return point


def ptq_points(net, data, method: str, targets: list[float], meta: dict, args, seed: int,
               model: str, model_config: dict, coded: list[str]) -> list[dict]:
    """Post-training points of one method at every target (one search, several cuts when possible)."""
    from sw.methods import posttrain
    calib = posttrain.calibration_inputs(data.x_train, args.calibration, seed) \
        if hasattr(posttrain, "calibration_inputs") else data.x_train[:args.calibration]
    calib = None if method == "rtn" and args.rtn_no_calibration else calib
    cut = None
    if hasattr(posttrain, "PostTraining"):
        try:
            pt = posttrain.PostTraining(copy.deepcopy(net), calib, method, progress=False)
            cut = pt.container
        except TypeError:
            cut = None
    n = sum(dict(net.named_parameters())[x].numel() for x in coded)
    out = []
    for target in targets:
        if cut is not None:
            c, info = cut(target, None, meta)
        else:
            c, info = posttrain.post_train(copy.deepcopy(net), calib, method=method,
                                           target_bits_per_weight=target, metadata=meta)
        acc, exact = decoded_accuracy(c, model, model_config, data)
        out.append({"method": method, "setting": f"target {target:.3f}", "seed": seed,
                    "bits_per_weight": coded_bits(c, coded) / n, "accuracy": acc, "exact": exact,
                    "target_met": info.get("target_met")})
    return out


def rtn_fixed_points(net, data, bins_list: list[int], meta: dict, seed: int, model: str, model_config: dict,
                     coded: list[str], tmp: Path) -> list[dict]:
    """Round to nearest at fixed bins through `compress_module` (when posttrain is not available)."""
    from sw.methods.compress import compress_module
    n = sum(dict(net.named_parameters())[x].numel() for x in coded)
    out = []
    for bins in bins_list:
        c, _ = compress_module(copy.deepcopy(net), tmp / f"rtn_seed{seed}_b{bins}.tans", bins=bins,
                               model_name=model, model_config=model_config, data=meta["data"])
        acc, exact = decoded_accuracy(c, model, model_config, data)
        out.append({"method": "rtn", "setting": f"bins {bins} (fixed)", "seed": seed,
                    "bits_per_weight": coded_bits(c, coded) / n, "accuracy": acc, "exact": exact})
    return out


def nncodec_points(net, data, qps: list[int], seed: int, model: str, model_config: dict,
                   coded: list[str], out: Path) -> tuple[list[dict], dict]:
    """NNCodec on the coded layers' float weights in its venv; our 8-bit first/last layers, f32 biases."""
    import numpy as np
    import torch
    from sw.models.zoo import build_model
    from sw.quant import QuantConfig, QuantizedModel
    from sw.train import accuracy
    py = vs_nncodec.NNC_VENV / "bin" / "python"
    if not py.exists():
        return [], {"status": f"{py} missing: run `benchmarks/rate_accuracy.py --setup` first"}
    folder = out / "nncodec" / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    sd = net.state_dict()
    np.savez(folder / "float_coded.npz", **{n: sd[n].numpy().astype(np.float32) for n in coded})
    proc = subprocess.run([str(py), vs_nncodec.__file__, "--worker", str(folder / "float_coded.npz"),
                           str(folder), ",".join(str(q) for q in qps)], capture_output=True, text=True)
    if proc.returncode != 0:
        return [], {"status": "failed", "stderr": proc.stderr[-2000:]}
    info = json.loads((folder / "nnc.json").read_text())
    qm = QuantizedModel(copy.deepcopy(net), QuantConfig(init_bins=15, learn_bins=False))
    qm.eval()
    base = qm.quantized_state_dict()              # 8-bit first/last layers and f32 biases, as ours
    n_coded = sum(sd[n].numel() for n in coded)
    points = []
    for p in info["points"]:
        rec = np.load(folder / f"qp{p['qp']}.npz")
        state = dict(base)
        for n in coded:
            state[n] = torch.from_numpy(rec[n]).reshape(sd[n].shape)
        m = build_model(model, model_config)
        m.load_state_dict(state)
        points.append({"method": "nncodec", "setting": f"qp {p['qp']}", "seed": seed,
                       "bits_per_weight": 8 * p["bytes"] / n_coded, "accuracy": accuracy(m, data.x_test, data.y_test)})
    return points, {"status": "ok", "version": info["version"]}


def run(args: argparse.Namespace) -> dict:
    """Every seed: float model, then every method's points on it; then the summary."""
    from tqdm import tqdm
    from sw.quant import QuantizedModel
    from sw.train import set_threads
    set_threads()
    setup = dict(QUICK if args.quick else MODEL_SETUPS[args.model])
    qat_targets = args.qat_targets or setup["qat_targets"]
    args.ptq_targets = args.ptq_targets or setup.get("ptq_targets", PTQ_TARGETS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        from sw.methods import posttrain  # noqa: F401
        have_pt = hasattr(posttrain, "post_train")
    except ImportError:
        have_pt = False
    status: dict[str, dict] = {}
    for m in args.methods:
        if m in ("optq", "cerwu") and not have_pt:
            status[m] = {"status": "not run: sw.methods.posttrain.post_train is not available"}
    if "rtn" in args.methods:
        status["rtn"] = {"status": "ok", "implementation": "sw.methods.posttrain.post_train" if have_pt
                         else "sw.methods.compress.compress_module at fixed bins"}
    points: list[dict] = []
    floats: dict[int, float] = {}
    float_info = {}
    # QAT runs on the current TrainConfig defaults (the float checkpoint's config would otherwise carry
    # the defaults of the day it was trained), with this run's explicit options on top
    from sw.methods.qat import TrainConfig
    defaults = TrainConfig()
    overrides = {k: getattr(defaults, k) for k in QAT_FIELDS}
    given = {"lr": args.qat_lr, "lam_lr": args.lam_lr, "entropy_weight": args.entropy_weight, "distill": args.distill}
    overrides.update({k: v for k, v in given.items() if v is not None})
    t0 = time.time()
    outer = tqdm(args.seeds, desc="seeds", disable=args.quiet, dynamic_ncols=True)
    for seed in outer:
        outer.set_postfix_str(f"seed {seed}: float model")
        trainer, ckpt = float_model(setup, args.model, seed, out, progress=False)
        data, cfg = trainer.data, trainer.cfg
        net = trainer.qmodel.base
        floats[seed] = trainer.results["float_accuracy"]
        float_info[str(seed)] = {"float_accuracy": floats[seed], "float_best_epoch": trainer.results.get("float_best_epoch"),
                                 "float_val_accuracy": trainer.results.get("float_val_accuracy"), "checkpoint": str(ckpt)}
        coded = QuantizedModel(copy.deepcopy(net)).coded_names()
        meta = {"model": args.model, "model_config": cfg.model_config,
                "data": {"spec": cfg.data, "n_train": cfg.n_train, "n_test": cfg.n_test, "seed": seed}}
        tasks = [(m, None) for m in args.methods if m in PTQ_METHODS + ("nncodec",) and
                 status.get(m, {}).get("status", "ok").startswith("ok")]
        tasks += [("qat", t) for t in qat_targets] if "qat" in args.methods else []
        bar = tqdm(tasks, desc=f"seed {seed}", leave=False, disable=args.quiet, dynamic_ncols=True)
        for m, target in bar:
            bar.set_postfix_str(m if target is None else f"{m} {target}")
            if m == "qat":
                points.append(qat_point(ckpt, data, target, setup, out, seed, overrides, not args.no_cache))
            elif m == "nncodec":
                ps, st = nncodec_points(net, data, args.qps, seed, args.model, cfg.model_config, coded, out)
                points += ps
                status["nncodec"] = st
            elif have_pt:
                points += ptq_points(net, data, m, args.ptq_targets, meta, args, seed, args.model,
                                     cfg.model_config, coded)
            else:
                points += rtn_fixed_points(net, data, args.rtn_bins, meta, seed, args.model, cfg.model_config,
                                           coded, out / "rtn_fixed")
        bar.close()
    res = summarize(points, floats, args.drops)
    n_coded = int(sum(dict(net.named_parameters())[x].numel() for x in coded))
    from sw.tans import format as fmt
    res.update(container_format=f"{fmt.VERSION_MAJOR}.{fmt.VERSION_MINOR}",
               qat_quant_config=overrides["quant"])
    res.update(model=args.model, data=setup["data"], n_train=setup["n_train"], n_test=setup["n_test"],
               coded_layers=coded, coded_weights=n_coded, methods=args.methods, status=status,
               float_models=float_info, points=points, setup=setup, qat_targets=qat_targets,
               qat_overrides=overrides, seconds=round(time.time() - t0, 1),
               config={k: v for k, v in vars(args).items()})
    write_outputs(res, out)
    return res


# --- output -------------------------------------------------------------------------------

def _cell(e: dict | None) -> str:
    if e is None:
        return "not reached"
    return (f"{e['bits_per_weight_mean']:.3f} ± {e['bits_per_weight_std']:.3f} "
            f"({e['accuracy_mean']:.2f} ± {e['accuracy_std']:.2f}%, {e['setting']})")


def markdown(res: dict) -> str:
    """The results as markdown: the levels table, savings against NNCodec, every curve."""
    ms = [m for m in res["methods"] if m in res["curves"]]
    n = len(res["seeds"])
    lines = [f"# Rate vs accuracy: {res['model']} on {res['data']} ({res['n_train']}/{res['n_test']}), "
             f"seeds {', '.join(map(str, res['seeds']))}", "",
             f"Coded layers {', '.join(res['coded_layers'])} ({res['coded_weights']} weights); bits/weight = whole "
             "records of these layers (NNCodec: its whole bitstream for them). Mean ± std over the "
             f"{n} splits (std with ddof=1).", "",
             f"Mean float accuracy: {res['float_accuracy_mean']:.2f} ± {res['float_accuracy_std']:.2f}% "
             f"(per seed: {', '.join(f'{v:.2f}' for v in res['float_accuracy'].values())})", "",
             "## Lowest bits/weight whose mean accuracy over the splits is >= mean float - x", "",
             "| x (accuracy >=) | " + " | ".join(ms) + " |", "|---|" + "---|" * len(ms)]
    for r in res["levels"]:
        lines.append(f"| {r['max_drop']:g} pt (>= {r['accuracy_at_least']:.2f}%) | " +
                     " | ".join(_cell(r["methods"].get(m)) for m in ms) + " |")
    if any("fewer_bits_than_nncodec_percent" in r for r in res["levels"]):
        lines += ["", "Fewer bits than NNCodec at the same level (percent of NNCodec's bits/weight):", ""]
        others = [m for m in ms if m != "nncodec"]
        lines += ["| x | " + " | ".join(others) + " |", "|---|" + "---|" * len(others)]
        for r in res["levels"]:
            s = r.get("fewer_bits_than_nncodec_percent", {})
            lines.append(f"| {r['max_drop']:g} pt | " + " | ".join("-" if m not in s else f"{s[m]:+.1f}%"
                                                                   for m in others) + " |")
    for m, st in res["status"].items():
        if not st.get("status", "").startswith("ok") or st.get("implementation") or st.get("version"):
            lines.append(f"\n{m}: " + ", ".join(f"{k} {v}" for k, v in st.items() if k != "stderr"))
    lines += ["", "## Curves (one row per setting)", ""]
    for m in ms:
        lines += [f"### {m}", "", "| setting | bits/weight | accuracy % | per seed (bits/weight, accuracy) |",
                  "|---|---|---|---|"]
        for e in res["curves"][m]:
            per = "; ".join(f"{b:.3f}, {a:.1f}" for b, a in zip(e["bits_per_weight"], e["accuracy"]))
            mark = "" if e["complete"] else " (incomplete)"
            lines.append(f"| {e['setting']}{mark} | {e['bits_per_weight_mean']:.3f} ± {e['bits_per_weight_std']:.3f} | "
                         f"{e['accuracy_mean']:.2f} ± {e['accuracy_std']:.2f} | {per} |")
        lines.append("")
    return "\n".join(lines)


def plot(res: dict, out: Path, x_max: float | None = None) -> list[str]:
    """Mean accuracy vs mean bits/weight with std error bars, one curve per method (PNG and PDF,
    the project's plot style: sw/evaluation/plotstyle.py)."""
    from sw.evaluation import plotstyle
    with plotstyle.style() as plt:
        fig, ax = plt.subplots(figsize=(plotstyle.WIDTH * 0.62, plotstyle.HEIGHT * 1.05), layout="constrained")
        fm = res["float_accuracy_mean"]
        lo = fm - max(r["max_drop"] for r in res["levels"]) - 3
        for i, m in enumerate(res["methods"]):
            c = [e for e in res["curves"].get(m, []) if e["complete"]]
            if not c:
                continue
            st = plotstyle.method_style(i)
            ax.errorbar([e["bits_per_weight_mean"] for e in c], [e["accuracy_mean"] for e in c],
                        xerr=[e["bits_per_weight_std"] for e in c], yerr=[e["accuracy_std"] for e in c],
                        ls="-", marker=st["marker"], color=st["color"], ms=3.5, elinewidth=0.7, label=m)
        top = max([e["bits_per_weight_mean"] for c in res["curves"].values() for e in c] + [1.0])
        ax.set_xlim(0, min(x_max or top * 1.05, top * 1.05))
        ax.axhline(fm, color="k", lw=0.8, label=f"float {fm:.2f}%")
        for r in res["levels"]:
            ax.axhline(r["accuracy_at_least"], color="gray", lw=0.6, ls="--")
            ax.annotate(f"-{r['max_drop']:g}", (1.0, r["accuracy_at_least"]), xycoords=("axes fraction", "data"),
                        xytext=(2, 0), textcoords="offset points", va="center", fontsize=6, color="gray")
        ax.set_ylim(lo, fm + 1.0)
        ax.set_xlabel("bits per weight of the coded layers (whole records)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, axis="both")
        ax.legend(loc="lower right", title=f"{res['model']}, {len(res['seeds'])} splits: mean ± std",
                  title_fontsize=7)
        return plotstyle.save(fig, out / "rate_accuracy", ("png", "pdf"))


def write_outputs(res: dict, out: Path) -> None:
    res["files"] = [str(out / "results.json"), str(out / "results.md")] + plot(res, out, res["config"].get("x_max"))
    (out / "results.md").write_text(markdown(res) + "\n")
    (out / "results.json").write_text(json.dumps(res, indent=1, default=str))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setup", action="store_true", help="build NNCodec's venv (benchmarks/vs_nncodec.py) and exit")
    p.add_argument("--model", choices=sorted(MODEL_SETUPS), default="lenet5")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--out", default="build/rate_accuracy")
    p.add_argument("--quick", action="store_true", help="smoke configuration: 300/100 8x8 digits, tiny epochs")
    p.add_argument("--qat-targets", type=float, nargs="+", help="QAT targets in bits/weight (default per model)")
    p.add_argument("--qat-lr", type=float, help="QAT: learning rate override")
    p.add_argument("--lam-lr", type=float, help="QAT: lambda learning rate override")
    p.add_argument("--entropy-weight", type=float, help="QAT: entropy loss weight override")
    p.add_argument("--distill", type=float, help="QAT: distillation weight override")
    p.add_argument("--ptq-targets", type=float, nargs="+",
                   help="post-training rate targets, bits/weight (default per model; lenet5: 0.4 .. 1.4 by 0.05, "
                        "then to 2.45 by 0.15)")
    p.add_argument("--rtn-bins", type=int, nargs="+", default=[3, 5, 7, 9, 11, 15, 21, 31],
                   help="fixed bins of the rtn fallback (only without sw.methods.posttrain)")
    p.add_argument("--rtn-no-calibration", action="store_true", help="rtn: choose the grid by weight error alone")
    p.add_argument("--calibration", type=int, default=512, help="post-training calibration examples (training split)")
    p.add_argument("--qps", type=int, nargs="+", default=list(range(-2, -41, -1)), help="NNCodec qps (default -2 .. -40, every integer)")
    p.add_argument("--drops", type=float, nargs="+", default=[0.5, 1.0])
    p.add_argument("--x-max", type=float, default=3.0, help="plot: bits/weight axis limit")
    p.add_argument("--no-cache", action="store_true", help="rerun QAT points even when cached")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.quick:
        args.ptq_targets = args.ptq_targets or [0.8, 1.5, 2.5]
        args.rtn_bins = [3, 7, 15] if args.rtn_bins == p.get_default("rtn_bins") else args.rtn_bins
        args.qps = [-8, -16, -24] if args.qps == p.get_default("qps") else args.qps
    return args


def print_summary(res: dict) -> None:
    print(f"{res['model']} on {res['data']}, seeds {res['seeds']}: float {res['float_accuracy_mean']:.2f} ± "
          f"{res['float_accuracy_std']:.2f}%  ({res['seconds']:.0f} s)")
    for r in res["levels"]:
        print(f"lowest bits/weight at mean accuracy >= float - {r['max_drop']:g} ({r['accuracy_at_least']:.2f}%):")
        for m, e in r["methods"].items():
            print(f"  {m:8} {_cell(e)}")
        for m, s in r.get("fewer_bits_than_nncodec_percent", {}).items():
            print(f"  {m:8} {s:+.1f}% fewer bits than nncodec")
    print("files: " + ", ".join(res["files"]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.setup:
        vs_nncodec.setup()
        return 0
    res = run(args)
    print_summary(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
