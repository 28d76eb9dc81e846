"""Safe file access shared by every reader and writer in sw.

Readers open regular files only: a path is checked with `os.stat` before it is opened
and with `os.fstat` after, and it is opened with O_NONBLOCK, so a FIFO or a device can
never make a reader hang. Writers go through `atomic_write`: the data goes to a hidden
temporary file in the target's folder, is fsynced and renamed over the target, which
keeps its permission bits; the temporary file is removed on every error and on
SIGINT/SIGTERM/SIGHUP. Outputs must be regular files (or not exist yet): symlinks,
devices, FIFOs and directories are refused, and so is an output that is one of the inputs.
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import stat
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

import numpy as np

from sw.tans.errors import InputError, LimitError, PathError, quote

PathLike = str | os.PathLike

NPZ_MAX_NAME_BYTES = 0xFFFF - len(".npy")   #: a zip entry name is at most 65535 bytes, ".npy" included
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)          #: fixed entry times, so equal arrays give equal .npz bytes


def file_kind(mode: int) -> str:
    """What a stat mode describes, for messages ("a FIFO", "a directory", ...)."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: PathLike) -> BinaryIO:
    """Open an existing regular file for reading; PathError for anything else, without blocking on it.

    FileNotFoundError (with the user's path) when it does not exist.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise PathError(f"{os.fspath(path)}: {file_kind(st.st_mode)}, not a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)               # the path may have been swapped between stat and open
        if not stat.S_ISREG(st.st_mode):
            raise PathError(f"{os.fspath(path)}: {file_kind(st.st_mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: PathLike, max_bytes: int | None = None) -> bytes:
    """All bytes of a regular file; LimitError when it holds more than `max_bytes`."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if max_bytes is not None and size > max_bytes:
            raise LimitError(f"{os.fspath(path)}: {size} bytes, more than the limit of {max_bytes} "
                             "(raise --max-bytes if you trust the file)")
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:   # it grew while being read
        raise LimitError(f"{os.fspath(path)}: more than the limit of {max_bytes} bytes")
    return data


def check_output(path: PathLike, inputs: Iterable[PathLike] = ()) -> int | None:
    """Refuse an output path that is not a regular file or is one of `inputs`.

    Returns the permission bits of the file it will replace (None when it does not exist yet).
    """
    target = os.fspath(path)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        folder = os.path.dirname(target) or "."
        if not os.path.isdir(folder):
            raise PathError(f"{target}: folder {folder} does not exist") from None
        return None
    if stat.S_ISLNK(st.st_mode):
        raise PathError(f"{target}: a symbolic link; outputs are written only to regular files, "
                        "give the link's target instead")
    if not stat.S_ISREG(st.st_mode):
        raise PathError(f"{target}: {file_kind(st.st_mode)}, not a regular file; refusing to replace it")
    for src in inputs:
        try:
            same = os.path.samefile(target, src)
        except OSError:
            same = False
        if same:
            raise PathError(f"{target}: this is the input file {os.fspath(src)}; write the output elsewhere")
    return stat.S_IMODE(st.st_mode)


class _Signalled(BaseException):
    """Raised by the temporary handlers of `_signals_raise` to unwind a write on SIGTERM/SIGHUP."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """While a write runs, turn SIGTERM and SIGHUP (when they would kill) into an exception.

    The write's cleanup then runs; afterwards the signal is delivered again with its
    default action, so the process still ends as killed by it. SIGINT already raises
    KeyboardInterrupt. Only the main thread can set handlers; elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame) -> None:
        raise _Signalled(signum)

    saved = {}
    for sig in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            saved[sig] = signal.signal(sig, handler)
    try:
        yield
    except _Signalled as e:
        for sig, old in saved.items():
            signal.signal(sig, old)
        saved = {}
        os.kill(os.getpid(), e.signum)
        raise SystemExit(128 + e.signum) from None
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder: str) -> None:
    """Make a rename durable (best effort: some file systems cannot fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: PathLike, write_fn: Callable[[BinaryIO], object], inputs: Iterable[PathLike] = ()) -> None:
    """Write a regular file through `write_fn(file)`: all or nothing, durable, mode kept.

    PathError for a target that is a symlink, device, FIFO or directory, or one of
    `inputs`; OSErrors name `path`, never the temporary file.
    """
    inputs = list(inputs)
    target = os.fspath(path)
    mode = check_output(target, inputs)
    folder = os.path.dirname(target) or "."
    with _signals_raise():
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(target)[:64] + ".", suffix=".tmp")
        except OSError as e:
            raise type(e)(e.errno, e.strerror, target) from None
        try:
            with os.fdopen(fd, "wb") as f:
                write_fn(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
            check_output(target, inputs)    # the target may have changed while we wrote
            os.replace(tmp, target)
        except BaseException as e:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(e, OSError) and e.errno is not None:
                raise type(e)(e.errno, e.strerror, target) from None
            raise
    _fsync_folder(folder)


def check_npz_names(names: Iterable[str]) -> None:
    """InputError for names a .npz cannot store so that numpy.load gives them back unchanged."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"two tensors are named {quote(name)}: a .npz holds one array per name")
        seen.add(name)
        if "\0" in name:
            raise InputError(f"tensor name {quote(name)} holds a NUL character, which a .npz entry cannot store")
        if len(name.encode("utf-8")) > NPZ_MAX_NAME_BYTES:
            raise InputError(f"tensor name {quote(name)} is longer than the {NPZ_MAX_NAME_BYTES} bytes a .npz "
                             "entry name can hold")


def write_npz(f: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays as an uncompressed .npz (what numpy.savez writes), any name numpy.load accepts.

    Written entry by entry instead of through numpy.savez, whose keyword arguments
    would swallow tensors named `file` or `allow_pickle`.
    """
    check_npz_names(arrays)
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(arr), allow_pickle=False)


def read_npy(path: PathLike, max_bytes: int | None = None) -> np.ndarray:
    """One array from a .npy file, checked before it is read: no pickles, no objects, bounded size.

    The header is read first and its shape times itemsize checked against `max_bytes`
    and against the bytes the file holds; big-endian data comes back in native order.
    """
    where = os.fspath(path)
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        start = f.read(4)
        if start[:2] == b"PK":
            raise InputError(f"{where}: a .npz archive; encode takes one .npy array (save one with numpy.save)")
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not read here")
        except (ValueError, OSError, EOFError, SyntaxError) as e:
            raise InputError(f"{where}: not a readable .npy array ({str(e).splitlines()[0][:200]})") from None
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise InputError(f"{where}: an array of dtype {dtype} (Python objects or records); only plain "
                             "numeric arrays are read")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if max_bytes is not None and nbytes > max_bytes:
            raise LimitError(f"{where}: its header declares {count} elements ({nbytes} bytes), more than the "
                             f"limit of {max_bytes} bytes (raise --max-bytes if you trust the file)")
        have = size - f.tell()
        if have != nbytes:
            raise InputError(f"{where}: the header declares {nbytes} bytes of data, the file holds {have} "
                             "(truncated or damaged .npy)")
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise InputError(f"{where}: the file changed while it was read")
    arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return arr.astype(dtype.newbyteorder("=")) if not dtype.isnative else arr.copy()
