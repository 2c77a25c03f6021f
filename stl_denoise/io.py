"""Atomic file output: write beside the target, then rename over it.

A crash or kill mid-write leaves either the old file or the new one, never a
truncated one.
"""

import codecs
import contextlib
import errno
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems
RANDOM_PART = 8  # what mkstemp adds between prefix and suffix


def _temp_affixes(path):
    """mkstemp's prefix and suffix for ``path``, so that the temporary name is never longer than ``path``'s.

    A name that fits (up to 255 bytes) must not fail because its temporary
    sibling is longer: the stem is shortened instead.
    """
    # Keep the real suffix: Keras picks the format from it (.keras, .weights.h5).
    suffix = "".join(path.suffixes[-2:])
    if len(os.fsencode(suffix)) > 16:  # dots inside a name, not a format
        suffix = path.suffix
    stem = os.fsencode(path.name[: len(path.name) - len(suffix)])
    budget = max(NAME_MAX - len(os.fsencode(suffix)) - RANDOM_PART - 2, 1)
    return f".{os.fsdecode(stem[:budget])}.", suffix


def _usual_mode(temp, folder=False):
    """mkstemp/mkdtemp make their result private (0600/0700); give it the mode the umask gives new files."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp, (0o777 if folder else 0o666) & ~umask)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the same folder; rename it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _temp_affixes(path)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    os.close(handle)
    _usual_mode(temp)
    try:
        yield temp
        os.replace(temp, path)
    except OSError as error:
        naming(error, path, temp)  # the message names the file being written, not the temporary
        raise
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def naming(error, path, temp=None):
    """``error`` naming ``path`` when it names no file or only ``temp``, the temporary written for it.

    A write that fails for lack of space raises with no file name; the
    message must name the file being written.
    """
    if error.filename is None or (temp is not None and os.fspath(error.filename) == os.fspath(temp)):
        error.filename = os.fspath(path)
    return error


def _escape_bytes(error):
    """Codec error handler: a byte that was not UTF-8 (a lone surrogate) as ``\\xNN``, as messages show it."""
    bad = error.object[error.start : error.end]
    return "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else f"\\u{ord(c):04x}"
                   for c in bad), error.end


codecs.register_error("stl_denoise_escape", _escape_bytes)


def write_text(path, text):
    # UTF-8 whatever the locale; a file name that is not UTF-8 is written escaped, not refused.
    with atomic_path(path) as temp:
        Path(temp).write_text(text, encoding="utf-8", errors="stl_denoise_escape")


def write_json(path, value):
    write_text(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def save_model(model, path):
    with atomic_path(path) as temp:
        model.save(temp)


def save_weights(model, path):
    # h5py, failing mid-file for lack of space, leaves its objects broken (multi-line errors, then a
    # crash at exit): a disk that cannot hold the weights is refused before h5py starts.
    ensure_room(path, sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize
                          for v in [*model.weights, *getattr(model.optimizer, "variables", [])]))
    with atomic_path(path) as temp:
        model.save_weights(temp)


def ensure_room(path, size, margin=1 << 20):
    """Raise ENOSPC naming ``path`` if its folder's file system has less than ``size`` bytes (and a margin) free."""
    folder = Path(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    if not hasattr(os, "statvfs"):  # Windows
        return
    usage = os.statvfs(folder)
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    blocks = usage.f_bfree if root else usage.f_bavail  # root may write into the blocks kept for it
    if blocks * usage.f_frsize < size + margin:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(path))


@contextlib.contextmanager
def atomic_new_path(path, folder=False):
    """Yield a temporary file (or empty folder) beside ``path``; on success it becomes ``path``.

    Unlike ``atomic_path`` this never replaces anything: if ``path`` exists by
    then, FileExistsError is raised and the temporary is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        temp = tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.")
    else:
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(handle)
    _usual_mode(temp, folder)
    try:
        yield temp
        if folder:
            # rename() would silently replace an existing *empty* folder; lexists closes all but a race.
            if os.path.lexists(path):
                raise FileExistsError(path)
            os.rename(temp, path)
        else:
            try:
                os.link(temp, path)  # atomic, and fails if path exists
            except FileExistsError:
                raise
            except OSError:  # no hard links on this file system (FAT, some network mounts)
                if os.path.lexists(path):
                    raise FileExistsError(path) from None
                os.rename(temp, path)
    finally:
        if os.path.isdir(temp) and not os.path.islink(temp):
            shutil.rmtree(temp)
        elif os.path.lexists(temp):
            os.remove(temp)


def file_record(path):
    """``{"path", "sha256"}`` of an input file, recorded so that a rerun can tell it is the same file."""
    import hashlib

    path = Path(path).resolve()
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
