"""End to end: float baseline, entropy-driven QAT, compress, golden decode, evaluate, report and plots."""
from __future__ import annotations

import time
from pathlib import Path

from sw import container as ct
from sw.container.files import atomic_write
from sw.methods.compress import compress_checkpoint
from sw.evaluation.evaluate import evaluate_container
from sw.evaluation.report import format_table, plot, summarize
from sw.methods.qat import Trainer, TrainConfig


def run_pipeline(out_dir: str | Path, cfg: TrainConfig | None = None, progress: bool = True,
                 log=print, plots: bool = True, hardware: bool = True, plot_formats=None) -> dict:
    """Run every step into `out_dir`; returns the end-to-end summary (also written as summary.json)."""
    import json
    cfg = cfg or TrainConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt, model_path = out / "model.ckpt", out / "model.tans"
    t0 = time.time()
    log(f"[1/5] training {cfg.model} on {cfg.data}: float baseline, entropy-driven QAT, fine-tuning "
        f"(target {cfg.target_kb} KiB)" if cfg.target_kb else
        f"[1/5] training {cfg.model} on {cfg.data}: float baseline, entropy-driven QAT, fine-tuning "
        f"(target {cfg.target_bits_per_weight} bits/weight)")
    trainer = Trainer(cfg, ckpt, progress=progress, log=log)
    results = trainer.run()
    t_train = time.time() - t0
    log(f"[2/5] compressing into {model_path}")
    c = compress_checkpoint(ckpt, model_path, cfg.log2_states)
    log("[3/5] golden-decoding and evaluating")
    ev = evaluate_container(model_path, ckpt, cfg.data, cfg.model)   # the run's own (trusted) model and data
    log("[4/5] report")
    summ = summarize(ct.read(model_path), model_path)
    log(format_table(summ))
    files = [str(ckpt), str(model_path)]
    if plots:
        files += plot(summ, out / "plots", *([plot_formats] if plot_formats else []))
    hw = None
    if hardware:
        log("[5/5] hardware: decoding every coded layer back to back in one Verilated decoder core "
            "and comparing every symbol with the golden decoder (python -m sim.layer_check)")
        hw = hardware_check(model_path, out / "hardware_check.log")
    summary = {
        "model": cfg.model, "data": cfg.data, "train_examples": len(trainer.data.x_train),
        "test_examples": len(trainer.data.x_test),
        "float_accuracy": results.get("float_accuracy"),
        "quantized_accuracy": ev.get("quantized_accuracy"),
        "decoded_accuracy": ev["decoded_accuracy"],
        "accuracy_drop": results.get("float_accuracy", float("nan")) - ev["decoded_accuracy"],
        "decoded_equals_quantized": ev["exact"],
        "coded_bits_per_weight": summ["coded_bits_per_weight"],
        "entropy_bits_per_weight": summ["entropy_bits_per_weight"],
        "coded_weights": summ["coded_weights"],
        "total_bytes": summ["total_bytes"], "float32_bytes": summ["float32_bytes"],
        "bins": {r["name"]: r["bins"] for r in summ["layers"]},
        "target_bits_per_weight": cfg.target_bits_per_weight, "target_kb": cfg.target_kb,
        "train_seconds": round(t_train, 1), "total_seconds": round(time.time() - t0, 1),
        "files": files, "tensors": len(c.tensors),
        "hardware_check": hw,
    }
    text = json.dumps(summary, indent=2).encode()
    atomic_write(out / "summary.json", lambda f: f.write(text))
    return summary


def format_summary(s: dict) -> str:
    """The human-readable final summary of `python -m sw run`."""
    ok = {True: "yes", False: "NO", None: "not checked"}[s["decoded_equals_quantized"]]
    return "\n".join([
        "== summary ==",
        f"model {s['model']} on {s['data']} ({s['train_examples']} train / {s['test_examples']} test)",
        f"float accuracy          {s['float_accuracy']:.2f}%",
        f"decoded accuracy        {s['decoded_accuracy']:.2f}%  (drop {s['accuracy_drop']:+.2f} points)",
        f"decoded == quantized    {ok}  (golden decoder)",
        f"coded layers            {s['coded_weights']} weights at {s['coded_bits_per_weight']:.3f} bits/weight "
        f"(tables and headers included; entropy bound {s['entropy_bits_per_weight']:.3f})",
        f"file                    {s['total_bytes']} bytes ({s['float32_bytes'] / s['total_bytes']:.1f}x "
        f"smaller than float32)",
        hardware_line(s.get("hardware_check")),
        f"time                    {s['total_seconds']:.0f} s",
        "files                   " + ", ".join(s["files"]),
    ])


def hardware_check(model_path: Path, log_path: Path | None = None) -> dict:
    """Run the hardware check through its documented entry point, `python -m sim.layer_check MODEL --json`.

    A subprocess rather than an import: `sw` never imports `sim` (the simulation side depends on
    the software side, not the other way round). The simulator's log (build and cocotb) is kept
    off the terminal; when the check fails it is written to `log_path` and the error names it.
    """
    import json
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "sim.layer_check", str(model_path), "--json"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()
        where = ""
        if log_path is not None:
            text = (proc.stdout + "\n" + proc.stderr).encode()
            atomic_write(log_path, lambda f: f.write(text))
            where = f" (simulator log: {log_path})"
        raise RuntimeError(f"the hardware check failed: {lines[-1]}{where}")
    return json.loads(proc.stdout)


def hardware_line(hw: dict | None) -> str:
    """Summary lines for the Verilator check of the coded layers."""
    if hw is None:
        return "hardware decode         not run (--no-hw)"
    lines = []
    for r in hw["layers"]:
        verdict = "bit-exact" if r["bit_exact"] else \
            f"DIFFERS ({r['mismatches']} mismatches, error code {r['error_code']})"
        lines.append(f"{r['tensor']}: {r['symbols']} symbols {verdict} ({r['cycles']} cycles, "
                     f"{r['symbols_per_cycle']:.2f} symbols/cycle)")
    core = hw["core"]
    head = (f"hardware decode         one core (l={core['states']}, {core['lanes']} lanes, P={core['units']}) "
            "in Verilator against the golden decoder:")
    return "\n".join([head] + ["                          " + x for x in lines])
