"""Reading a user's .npz and writing a command's .npz: every bad file refused in one line, early.

A file is checked from its zip directory and its arrays' headers before any array is loaded, so
an empty, truncated, pickled or lying file (a header that claims terabytes) costs nothing.
"""

import math
import os
import stat
import zipfile
import zlib
from pathlib import Path

import numpy as np

from golden.checks import InputError

__all__ = ["MAX_BYTES", "input_file", "read_npz", "check_output", "write_npz"]

MAX_BYTES = 1 << 30  # the arrays of one input file, uncompressed: far beyond any layer the blocks take
_NPY_MAGIC = b"\x93NUMPY"
_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _headers(path, max_bytes):
    """``{key: (shape, dtype)}`` of every array in the archive at ``path``, checked against its stored size."""
    headers, total = {}, 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            key = info.filename.removesuffix(".npy")
            if not info.filename.endswith(".npy") or info.is_dir():
                raise InputError(f"{path} holds {info.filename!r}, which is not a numpy array (.npy)")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version not in _READERS:
                    raise InputError(f"{path}: array {key!r} has .npy format {version}, not 1.0 or 2.0")
                shape, _fortran, dtype = _READERS[version](member)
                offset = member.tell()
            if dtype.hasobject:
                raise InputError(f"{path}: array {key!r} holds Python objects (dtype {dtype}); "
                                 "inputs must be numeric arrays")
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes != info.file_size - offset:
                raise InputError(f"{path}: array {key!r} claims shape {list(shape)} ({nbytes} bytes) but the "
                                 f"file stores {info.file_size - offset} bytes")
            if 0 in shape:
                raise InputError(f"{path}: array {key!r} is empty (shape {list(shape)})")
            total += nbytes
            if total > max_bytes:
                raise InputError(f"{path}: its arrays exceed {max_bytes >> 20} MiB uncompressed")
            headers[key] = (shape, dtype)
    return headers


def input_file(path, kind="a file"):
    """``path`` as a Path if it names a regular file; InputError otherwise (checked before it is opened: a device
    such as /dev/zero never ends, a FIFO blocks forever, a folder is not ``kind``)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path} is a folder, not {kind}")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path} is not a regular file (a device, FIFO or socket), not {kind}")
    return path


def read_npz(path, *, max_bytes=MAX_BYTES):
    """``{key: array}`` of the .npz at ``path`` (as ``numpy.savez`` writes it); InputError naming what is
    wrong: missing, a folder or not a regular file, empty, not an archive, a single .npy, pickled objects, a
    header that disagrees with the stored data, an empty array, more than ``max_bytes`` of arrays, a corrupt
    member."""
    path = input_file(path, "an .npz file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_NPY_MAGIC))
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from error
    if not head:
        raise InputError(f"{path} is empty, not an .npz archive")
    if head == _NPY_MAGIC:
        raise InputError(f"{path} is a single .npy array; save named arrays with numpy.savez(path, x=..., w=...)")
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path} is not an .npz archive (numpy.savez(path, x=..., w=...) writes one)")
    try:
        keys = _headers(path, max_bytes)
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in keys}
    except InputError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise InputError(f"cannot read {path} as .npz: {error}") from error


def check_output(path, *, inputs=()):
    """Refuse ``path`` as an output file before any work: a folder, a device, FIFO or socket, a missing or
    read-only folder, or one of the ``inputs``. The file is written exactly at ``path`` (no suffix added)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"output {path} is a folder; name a file in it, e.g. {path / 'out.npz'}")
    if path.exists() and not path.is_file():
        raise InputError(f"output {path} is not a regular file (a device, FIFO or socket); name a file")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"output folder {parent} is not writable")
    for other in inputs:
        if path.resolve() == Path(other).resolve() or (path.exists() and Path(other).exists()
                                                         and path.samefile(other)):
            raise InputError(f"output {path} is the input file {other}; name another output")
    return path


def write_npz(path, arrays):
    """Write ``arrays`` to exactly ``path`` (complete or not at all: written beside it, then renamed)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "wb") as handle:
            np.savez(handle, **arrays)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path
