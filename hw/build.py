"""`python -m hw.build`: write the decoder's Verilog and parameters; optionally synthesize or build a board demo."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from amaranth.back import verilog

from hw.core.decoder import TansDecoder
from hw.core.layouts import (ErrorCode, command_layout, output_layout, status_layout, table_load_layout,
                      word_layout)
from hw.core.params import DecoderParams, ParamError

BOARDS = ("icebreaker", "ulx3s")


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are a single line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"hw.build: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = OneLineParser(prog="python -m hw.build", description=__doc__)
    ap.add_argument("--states", type=int, default=256, help="table entries l (power of two, 32..4096)")
    ap.add_argument("--symbol-bits", type=int, default=5, help="symbol width")
    ap.add_argument("--lanes", type=int, default=64, help="lane-state vector size (max lanes)")
    ap.add_argument("--units", type=int, default=1, help="decode units P (symbols per cycle)")
    ap.add_argument("--word-bits", type=int, default=32, help="input word width (8/16/32/64)")
    ap.add_argument("--out", type=Path, default=Path("build"), help="output directory")
    ap.add_argument("--synth", choices=("ice40", "ecp5"), help="synthesize, place and route")
    ap.add_argument("--board", choices=BOARDS, help="build the demo bitstream for a board")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (the first one)")
    ap.add_argument("--seeds", type=int, default=1, help="place and route this many seeds; report the best")
    return ap.parse_args(argv)


def layout_doc(layout) -> dict[str, dict[str, int]]:
    """Field offsets and widths of a port payload, for host software."""
    return {name: {"offset": f.offset, "width": f.width} for name, f in layout}


def describe(p: DecoderParams) -> dict:
    """The JSON written next to the Verilog: parameters, port payload layouts, error codes."""
    return {
        "module": "tans_decoder",
        "params": p.to_dict(),
        "ports": {
            "table": layout_doc(table_load_layout(p)), "cmd": layout_doc(command_layout(p)),
            "words": layout_doc(word_layout(p)), "out": layout_doc(output_layout(p)),
            "status": layout_doc(status_layout(p)),
        },
        "error_codes": {e.name: int(e) for e in ErrorCode},
    }


def write_core(p: DecoderParams, out: Path) -> Path:
    """Write tans_decoder.v and tans_decoder.json into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    v = out / "tans_decoder.v"
    v.write_text(verilog.convert(TansDecoder(p), name="tans_decoder"))
    (out / "tans_decoder.json").write_text(json.dumps(describe(p), indent=2))
    return v


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        p = DecoderParams.from_states(args.states, symbol_bits=args.symbol_bits, lanes=args.lanes,
                                      units=args.units, word_bits=args.word_bits)
        v = write_core(p, args.out)
        print(f"wrote {v} and {v.with_suffix('.json')} ({json.dumps(p.to_dict())})")
        if args.synth:
            from hw.synth import summary, synthesize
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
