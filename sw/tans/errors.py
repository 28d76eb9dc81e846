"""Exceptions raised by the codec and the container, with messages meant for users."""
from __future__ import annotations


class TansError(Exception):
    """Base class of every error the codec raises on bad input."""


class TableError(TansError, ValueError):
    """A table size or a symbol distribution that no valid table can hold."""


class InputError(TansError, ValueError):
    """Symbols that cannot be encoded (negative, non-integer, empty, too many lanes)."""


class FormatError(TansError):
    """A `.tans` file or payload that is damaged, truncated or of an unknown version."""
