"""Entry point of `python -m sw`."""
import sys

from .cli import main

sys.exit(main())
