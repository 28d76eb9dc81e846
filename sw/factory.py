"""Importing a user's factory named on the command line (`--model` / `--data pkg.module:factory`).

Shared by sw.models and sw.data (which may not import each other), with only the standard
library underneath: the one place where the project imports code a user names.
"""
from __future__ import annotations

import importlib


def import_factory(spec: str, what: str = "model"):
    """The callable named by "package.module:attr", imported with the working directory on sys.path.

    The working directory is put first on sys.path for this import only (and taken off
    again), so `--model mypkg.nets:small` finds ./mypkg/nets.py without PYTHONPATH. This
    runs the module's code: only the command line (trusted) may name a factory, never a file.
    """
    import os
    import sys
    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise ValueError(f"{what} factory {spec!r} must be package.module:factory")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        obj = importlib.import_module(mod_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot import {what} factory {spec!r} (looked in {cwd} and sys.path): "
                         f"{' '.join(str(e).splitlines())}") from None
    except SyntaxError as e:
        raise ValueError(f"cannot import {what} factory {spec!r}: {e.filename}:{e.lineno}: {e.msg}") from None
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
    if not callable(obj):
        raise ValueError(f"{what} factory {spec!r} is not callable")
    return obj
