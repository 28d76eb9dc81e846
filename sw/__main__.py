"""Entry point of `python -m sw`."""
import sys

from sw.cli.main import main

sys.exit(main())
