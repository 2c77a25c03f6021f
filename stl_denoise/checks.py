"""Checks of names given on the command line, shared by the commands and the run loader (no TensorFlow)."""

import os
from pathlib import Path

from stl_denoise.errors import UserError


def is_empty_name(name):
    """``Path("")`` is the current folder, which no user means by an empty (unset) variable."""
    return not os.fspath(name)


def check_name_given(name, option, what, error=UserError):
    """Refuse an empty ``name`` with a one-line ``error``."""
    if is_empty_name(name):
        raise error(f"{option} is empty: an empty name is not {what}")


def check_out_folder(path):
    """An output folder that can be created or written: checked up front, before any work.

    Otherwise every file fails alone with a cryptic "File exists"/"Not a directory".
    """
    check_name_given(path, "--out", "an output folder")
    path = Path(path)
    try:
        if path.is_symlink() and not path.exists():
            raise UserError(f"--out {path}: is a broken symbolic link, not a folder")
        if path.exists() and not path.is_dir():
            raise UserError(f"--out {path}: exists and is not a folder")
        existing = next((parent for parent in path.parents if parent.exists()), None)
    except OSError as error:  # e.g. a name longer than the file system allows
        raise UserError(f"--out {path}: {error.strerror or error}") from None
    if existing is not None and not existing.is_dir():
        raise UserError(f"--out {path}: {existing} exists and is not a folder")
