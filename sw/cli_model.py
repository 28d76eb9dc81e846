"""Model pipeline subcommands of `python -m sw` (train, compress, evaluate, report, run)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the model pipeline subcommands to the CLI."""
