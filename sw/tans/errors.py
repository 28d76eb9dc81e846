"""Exceptions raised by the codec and the container, with messages meant for users."""
from __future__ import annotations


class TansError(Exception):
    """Base class of every error the codec raises on bad input."""


class TableError(TansError, ValueError):
    """A table size or a symbol distribution that no valid table can hold."""


class InputError(TansError, ValueError):
    """Symbols that cannot be encoded (negative, non-integer, empty, too many lanes)."""


class FormatError(TansError):
    """A `.tans` file or payload that is damaged, truncated, crafted or of an unknown version."""


class StoredTableError(FormatError, TableError):
    """Counts read from a file or payload that no valid table can have (both a FormatError and a TableError)."""


class LimitError(FormatError):
    """A file that declares more decoded data than the reader's size limit (`--max-bytes`) allows.

    A subclass of FormatError, so that every bad or hostile file raises FormatError; the
    message says which limit to raise when the file is trusted and really that large.
    """


class TrustError(FormatError):
    """A file that asks for what only the command line may grant: code to import, a folder or file to read."""


class PathError(TansError, ValueError):
    """A path that cannot be read or written safely: not a regular file, a symlink, the input itself."""


def quote(text: object, limit: int = 60) -> str:
    """`text` as a short, one-line, escaped repr for error messages (names come from untrusted files)."""
    s = str(text)
    shown = repr(s[:limit])
    return shown + ("..." if len(s) > limit else "")
