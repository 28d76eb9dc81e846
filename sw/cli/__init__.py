"""The `python -m sw` command line: codec commands (encode/decode/inspect) and model commands (train/compress/evaluate/report/run). Imports the rest of sw."""
