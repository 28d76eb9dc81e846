"""`python -m hw.build`: write the decoder's (or, with --fetch, the fetch path's) Verilog and parameters;
optionally size it for a model (--for), synthesize or build a board demo."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from amaranth import Shape
from amaranth.back import verilog
from amaranth.lib import data, wiring

from hw.core.decoder import TansDecoder
from hw.core.layouts import (ErrorCode, command_layout, output_layout, status_layout, table_load_layout,
                      word_layout)
from hw.core.params import DecoderParams, ParamError

BOARDS = ("icebreaker", "ulx3s")
TOP = "tans_decoder"     #: the core's module name without a prefix


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are a single line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"hw.build: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = OneLineParser(prog="python -m hw.build", description=__doc__)
    ap.add_argument("--states", type=int, help="table entries l (power of two, 32..4096; default 256)")
    ap.add_argument("--symbol-bits", type=int, help="symbol width (default 5)")
    ap.add_argument("--lanes", type=int, help="lane-state vector size (max lanes; default 64)")
    ap.add_argument("--units", type=int, help="decode units P (symbols per cycle; default 1)")
    ap.add_argument("--word-bits", type=int, help="input word width (8/16/32/64; default 32, "
                    "64 with --fetch)")
    ap.add_argument("--fetch", action="store_true", help="write the whole weight-fetch path "
                    "(AXI4 reader, decoder, dequantizer: weight_fetch.v/.json) instead of the core")
    ap.add_argument("--for", dest="model", type=Path, metavar="MODEL.tans",
                    help="size the core to decode this model (explicit options still win) and say why")
    ap.add_argument("--axil", action="store_true", help="--fetch: behind the AXI4-Lite register block "
                    "(weight_fetch_axil.v/.json and the C header tans_fetch_regs.h)")
    ap.add_argument("--max-burst", type=int, default=16, help="--fetch: AXI burst length in beats")
    ap.add_argument("--fifo-depth", type=int, default=64, help="--fetch: read-data FIFO depth in words")
    ap.add_argument("--max-tuple", type=int, help="--fetch: most weights per decoded symbol the dequantizer "
                    "unpacks (tuple coding, 1..4; default 1, or what --for's model needs)")
    ap.add_argument("--codebook-depth", type=int, help="--fetch: entries of the dequantizer's codebook memory "
                    "(a power of two; 0: zero points only; default 0, or what --for's model needs)")
    ap.add_argument("--level-bits", type=int, help="--fetch: width of a weight / codebook level, 8 or 16 "
                    "(default 8, or 16 when --for's model has a wider level)")
    ap.add_argument("--out", type=Path, default=Path("build"), help="output directory")
    ap.add_argument("--prefix", default="", help="prefix of every generated module name (and of the "
                    "output files), so two configurations can live in one design: --prefix a_ "
                    "gives module a_tans_decoder in a_tans_decoder.v")
    ap.add_argument("--synth", choices=("ice40", "ecp5"), help="synthesize, place and route")
    ap.add_argument("--estimate", action="store_true", help="print the decoder core's estimated LUT4/FF/BRAM "
                    "per family (a model fitted to the measured synthesis sweep) instead of building")
    ap.add_argument("--board", choices=BOARDS, help="build the demo bitstream for a board")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (the first one)")
    ap.add_argument("--seeds", type=int, default=1, help="place and route this many seeds; report the best")
    return ap.parse_args(argv)


def layout_doc(layout, base: int = 0) -> dict[str, dict]:
    """Field offsets (from the payload's bit 0) and widths of a port payload, for host software.

    A struct field (the table entry) lists its own fields under "fields"; an array field (the
    P output slots) lists every slot under "slots", slot i at offset + i * slot width.
    """
    out: dict[str, dict] = {}
    for name, f in layout:
        d: dict = {"offset": base + f.offset, "width": f.width}
        shape = f.shape
        if isinstance(shape, data.StructLayout):
            d["fields"] = layout_doc(shape, base + f.offset)
        elif isinstance(shape, data.ArrayLayout):
            w = shape.size // shape.length
            d["slot_width"] = w
            d["slots"] = [{"offset": base + f.offset + i * w, "width": w} for i in range(shape.length)]
        out[name] = d
    return out


def module_name(prefix: str = "", top: str = TOP) -> str:
    """Name of the generated top module (its submodules are named `<top>.<sub>`)."""
    if prefix and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
        raise ParamError(f"prefix must be a Verilog identifier start ([A-Za-z_][A-Za-z0-9_]*), got {prefix!r}")
    return f"{prefix}{top}"


def describe(p: DecoderParams, prefix: str = "") -> dict:
    """The JSON written next to the Verilog: parameters, port payload layouts, error codes."""
    return {
        "module": module_name(prefix),
        "params": p.to_dict(),
        "ports": {
            "table": layout_doc(table_load_layout(p)), "cmd": layout_doc(command_layout(p)),
            "words": layout_doc(word_layout(p)), "out": layout_doc(output_layout(p)),
            "status": layout_doc(status_layout(p)),
        },
        "error_codes": {e.name: int(e) for e in ErrorCode},
    }


def write_core(p: DecoderParams, out: Path, prefix: str = "") -> Path:
    """Write <prefix>tans_decoder.v and <prefix>tans_decoder.json into `out`."""
    name = module_name(prefix)
    out.mkdir(parents=True, exist_ok=True)
    v = out / f"{name}.v"
    v.write_text(verilog.convert(TansDecoder(p), name=name))
    (out / f"{name}.json").write_text(json.dumps(describe(p, prefix), indent=2))
    return v


FETCH_TOP = "weight_fetch"
DEFAULTS = {"states": 256, "symbol_bits": 5, "lanes": 64, "units": 1, "word_bits": 32}


def describe_fetch(top, prefix: str = "") -> dict:
    """The JSON next to weight_fetch.v (`top`: a WeightFetch): parameters, descriptor and
    weight-beat layouts, status ports, error codes."""
    from hw.fetch.datapath import FetchErrorCode
    from hw.fetch.dequant import weight_beat
    from hw.fetch.descriptor import DESCRIPTOR

    p, max_burst, fifo_depth, dq = top.params, top.max_burst, top.fifo_depth, top.dq
    status = {name: {"dir": "out" if member.flow == wiring.Out else "in", "width": Shape.cast(member.shape).width}
              for name, member in top.signature.members.items()
              if member.is_port and name not in ("desc_in", "m_axi", "weights")}
    return {
        "module": module_name(prefix, FETCH_TOP),
        "core_params": p.to_dict(),
        "fetch_params": {"max_burst": max_burst, "fifo_depth": fifo_depth, "queue_depth": top.queue_depth,
                         "axi_data_bits": p.word_bits, "axi_addr_bits": 32, **dq.to_dict()},
        "ports": {"desc_in": layout_doc(DESCRIPTOR), "weights": layout_doc(weight_beat(p.units, dq)),
                  "status": status},
        "error_codes": {e.name: int(e) for e in FetchErrorCode},
        "note": "m_axi__*: AXI4 read channels (AR, R), master; desc_in/weights: valid/ready streams",
    }


def dequant_for(model: Path) -> tuple[dict[str, int], str]:
    """The dequantizer parameters a model's tensors need (tuple size, codebook depth, level width)."""
    from hw.fetch.image import codebook_entries
    from sw import container as ctr
    from sw.tans import format as fmt

    n, depth, wide = 1, 0, False
    for t in ctr.read(model).tensors:
        if t.kind != fmt.KIND_TANS or t.size == 0:
            continue
        ent = codebook_entries(t)
        if ent is not None:
            n = max(n, t.tuple_size)
            depth = max(depth, 1 << max(0, (ent.shape[0] - 1).bit_length()))
            wide = wide or bool(ent.size and (ent.min() < -128 or ent.max() > 127))
    why = (f"dequantizer: tuples of up to {n}, codebook depth {depth}, {16 if wide else 8}-bit levels "
           "(the model's codebook and tuple-coded tensors)")
    return {"max_tuple": n, "codebook_depth": depth, "level_bits": 16 if wide else 8}, why


def write_fetch(p: DecoderParams, out: Path, prefix: str = "", max_burst: int = 16,
                fifo_depth: int = 64, axil: bool = False, dq=None) -> Path:
    """Write <prefix>weight_fetch.v and .json into `out`; with `axil`, the path behind its
    AXI4-Lite register block as <prefix>weight_fetch_axil.v/.json plus tans_fetch_regs.h.
    `dq` (hw.fetch.dequant.DequantParams): codebook / tuple support; None: zero points only."""
    from hw.fetch.dequant import PLAIN
    from hw.fetch.regs import REGISTERS, WeightFetchAxiLite, c_header
    from hw.fetch.top import WeightFetch

    dq = PLAIN if dq is None else dq
    name = module_name(prefix, FETCH_TOP + ("_axil" if axil else ""))
    try:
        core = WeightFetch(p, max_burst, fifo_depth, dq=dq)
        top = WeightFetchAxiLite(p, max_burst, fifo_depth, dq=dq) if axil else core
        if axil:
            core._MustUse__silence = True      # only described (its ports), not converted
    except ValueError as e:
        raise ParamError(str(e)) from None
    out.mkdir(parents=True, exist_ok=True)
    v = out / f"{name}.v"
    v.write_text(verilog.convert(top, name=name))
    meta = describe_fetch(core, prefix)
    meta["module"] = name
    if axil:
        meta["registers"] = {r.name: {"addr": r.addr, "access": r.access, "doc": r.doc,
                                      "fields": {f.name: {"offset": f.offset, "width": f.width}
                                                 for f in r.fields}} for r in REGISTERS}
        (out / "tans_fetch_regs.h").write_text(c_header())
    (out / f"{name}.json").write_text(json.dumps(meta, indent=2))
    return v


def size_for(model: Path, word_bits: int, fetch: bool) -> tuple[dict[str, int], list[str]]:
    """Parameters that decode every tensor of `model`, and one line of reasoning per choice.

    states: the largest table; symbol bits: the largest alphabet; lanes: the most lanes;
    units: the largest P in 1, 2, 4, 8 for which the tensor with the most symbols still has
    at least 7 lane groups per round (fewer rounds take 7 cycles anyway, see docs/CORE.md)
    and the word width can feed it (about 0.85 W / coded bits per symbol).
    """
    from sw import container as ctr
    from sw.tans import format as fmt

    c = ctr.read(model)
    coded = [(t.name, t.coded) for t in c.tensors if t.kind == fmt.KIND_TANS and t.size]
    if not coded:
        raise ParamError(f"{model}: no tANS-coded tensor to size a decoder for")
    for name, cd in coded:
        if cd.lanes > cd.n_symbols:
            raise ParamError(f"{model}: tensor {name!r} has more lanes ({cd.lanes}) than symbols "
                             f"({cd.n_symbols}); no core can decode it")
        if cd.payload_bits >> 32:
            raise ParamError(f"{model}: tensor {name!r} has {cd.payload_bits} payload bits, more "
                             "than a command's 32-bit field")
    k = max(cd.log2_states for _, cd in coded)
    alphabet = max(cd.alphabet for _, cd in coded)
    lanes = max(cd.lanes for _, cd in coded)
    big_name, big = max(coded, key=lambda nc: nc[1].n_symbols)
    bps = big.payload_bits / big.n_symbols
    units = 1
    for u in (2, 4, 8):
        if big.lanes >= 7 * u and u <= 0.85 * word_bits / max(bps, 1e-9):
            units = u
    sym_bits = max(1, (alphabet - 1).bit_length())
    if fetch and alphabet > 256:
        raise ParamError(f"{model}: an alphabet of {alphabet} symbols does not fit the fetch path's 8-bit weights")
    why = [f"states {1 << k}: the largest table ({', '.join(n for n, cd in coded if cd.log2_states == k)})",
           f"symbol bits {sym_bits}: the largest alphabet has {alphabet} symbols",
           f"lanes {lanes}: the most lanes of a tensor "
           f"({', '.join(n for n, cd in coded if cd.lanes == lanes)})",
           f"units {units}: {big_name} (the most symbols, {big.n_symbols}) has {big.lanes} lanes "
           f"(>= 7 per unit keeps every unit busy) at {bps:.2f} coded bits per symbol "
           f"({word_bits}-bit words feed about {0.85 * word_bits / max(bps, 1e-9):.1f} symbols per cycle)"]
    return {"states": 1 << k, "symbol_bits": sym_bits, "lanes": lanes, "units": units}, why


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        chosen = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}
        word_bits = chosen.get("word_bits", 64 if args.fetch else DEFAULTS["word_bits"])
        if args.model is not None:
            from sw.tans.errors import TansError
            try:
                picked, why = size_for(args.model, word_bits, args.fetch)
            except ParamError as e:
                print(f"hw.build: error: {e}", file=sys.stderr)
                return 1
            except (TansError, ValueError, OSError) as e:   # a damaged or unreadable model: one line, 1
                msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                print(f"hw.build: error: {msg}", file=sys.stderr)
                return 1
            for key, line in zip(("states", "symbol_bits", "lanes", "units"), why):
                if key in chosen:
                    line = f"{key.replace('_', ' ')} {chosen[key]}: given on the command line (the model needs: {line})"
                print(f"hw.build --for {args.model}: {line}")
            chosen = {**picked, **chosen}
        kw = {**DEFAULTS, **chosen, "word_bits": word_bits}
        p = DecoderParams.from_states(kw["states"], symbol_bits=kw["symbol_bits"], lanes=kw["lanes"],
                                      units=kw["units"], word_bits=kw["word_bits"])
        if args.estimate:
            from hw.estimate import report as estimate_report
            print(estimate_report(p, fetch=args.fetch))
            return 0
        if args.fetch:
            if args.board:
                raise ParamError("--board builds the decoder core's demo, not --fetch")
            from hw.fetch.dequant import DequantParams
            dkw = {"max_tuple": 1, "codebook_depth": 0, "level_bits": 8}
            if args.model is not None:
                need, line = dequant_for(args.model)
                print(f"hw.build --for {args.model}: {line}")
                dkw.update(need)
            dkw.update({k: getattr(args, k) for k in dkw if getattr(args, k) is not None})
            try:
                dq = DequantParams(**dkw)
            except ValueError as e:
                raise ParamError(str(e)) from None
            v = write_fetch(p, args.out, args.prefix, args.max_burst, args.fifo_depth, args.axil, dq)
        else:
            v = write_core(p, args.out, args.prefix)
        print(f"wrote {v} and {v.with_suffix('.json')} ({json.dumps(p.to_dict())})")
        if args.synth:
            from hw.synth import summary, synthesize, synthesize_fetch
            if args.fetch:
                report = synthesize_fetch(p, args.synth, args.out / args.synth, seed=args.seed,
                                          seeds=args.seeds, max_burst=args.max_burst,
                                          fifo_depth=args.fifo_depth, axil=args.axil)
            else:
                report = synthesize(p, args.synth, args.out / args.synth, seed=args.seed, seeds=args.seeds)
            print(summary(report))
            print(f"wrote {args.out / args.synth / 'report.json'}")
        if args.board:
            from hw.boards.demos import build_board
            print(build_board(args.board, p, args.out / f"board_{args.board}"))
    except (ParamError, RuntimeError, OSError) as e:
        print(f"hw.build: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hw.build: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
