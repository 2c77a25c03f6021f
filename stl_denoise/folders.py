"""Image folders: which files a folder holds, what was left out and why, and a fingerprint of them.

Shared by training (``--data FOLDER``), ``evaluate``, ``denoise`` and the
held-out report, so that all of them read the same files from a folder.
"""

import errno
import hashlib
import os
import stat
from pathlib import Path

from stl_denoise.checks import check_name_given
from stl_denoise.errors import DataUnavailableError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# Image formats that folders may hold but that are not read from them: listed as skipped, not ignored.
OTHER_IMAGE_SUFFIXES = (".gif", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".pam", ".tga", ".ico", ".heic", ".heif",
                        ".avif", ".jxl", ".jp2", ".j2k", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf",
                        ".rw2", ".psd", ".svg", ".pcx", ".dib", ".jfif", ".webm")


def list_image_files(folder):
    """Image files under ``folder`` (recursive, sorted), validated for size.

    A subfolder that cannot be read is an error, not a silent gap in the data.
    """
    check_name_given(folder, "the image folder", "a folder of images", DataUnavailableError)
    folder = Path(folder)
    try:
        if not folder.exists():
            raise DataUnavailableError(f"{folder}: no such file or directory")
        if folder.is_file():
            return [folder]
    except OSError as error:  # e.g. a name longer than the file system allows
        raise DataUnavailableError(f"{folder}: {error.strerror or error}") from None
    files, _, unreadable = scan_folder(folder)
    if unreadable:
        path, reason = unreadable[0]
        raise DataUnavailableError(f"{path}: {reason}; its images would be left out"
                                   + (f" (and {len(unreadable) - 1} more folders)" if len(unreadable) > 1 else ""))
    if not files:
        raise DataUnavailableError(f"{folder}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def scan_folder(folder, skip=None):
    """(image files, skipped entries, unreadable folders) under ``folder``, recursively.

    Files are sorted as ``sorted(folder.rglob(...))`` sorts them; skipped
    entries and unreadable folders are (path, reason) pairs, so that callers
    can say what was left out: dangling links, link loops, FIFOs and devices,
    links to folders (not followed, as ``rglob`` does not follow them), and
    files of an image type that is not read from folders.  ``skip``: a
    resolved folder left out silently (``denoise``'s own output folder).
    """
    files, skipped, unreadable = [], [], []
    pending = [Path(folder)]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError as error:
            unreadable.append((directory, f"cannot read this folder ({error.strerror or error})"))
            continue
        for entry in entries:
            path = directory / entry.name
            try:
                if entry.is_symlink():
                    try:
                        target = path.stat()
                    except OSError as error:
                        skipped.append((path, "a symbolic link loop" if error.errno == errno.ELOOP
                                        else "a dangling symbolic link" if error.errno == errno.ENOENT
                                        else f"a symbolic link that cannot be followed ({error.strerror})"))
                        continue
                    if stat.S_ISDIR(target.st_mode):
                        skipped.append((path, "a symbolic link to a folder (not followed; name it to include it)"))
                        continue
                    mode = target.st_mode
                else:
                    mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as error:
                skipped.append((path, f"cannot be examined ({error.strerror or error})"))
                continue
            if stat.S_ISDIR(mode):
                if skip is None or path.resolve() != skip:
                    pending.append(path)
            elif not stat.S_ISREG(mode):
                skipped.append((path, "not a regular file (a FIFO, socket or device)"))
            elif path.suffix.lower() in IMAGE_SUFFIXES:
                files.append(path)
            elif path.suffix.lower() in OTHER_IMAGE_SUFFIXES:
                skipped.append((path, f"{path.suffix} files are not read from folders (convert it to PNG)"))
    return sorted(files), sorted(skipped), sorted(unreadable)


def image_size(path):
    """(height, width) from the file header, with a one-line error if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataUnavailableError(f"{path}: not a readable image ({type(error).__name__})") from None
    return height, width


def folder_hash(folder, files):
    """SHA-256 over relative paths and bytes: names the exact training data."""
    digest = hashlib.sha256()
    root = Path(folder)
    for path in files:
        # os.fsencode: a name that is not UTF-8 hashes as its bytes instead of failing.
        digest.update(os.fsencode(path.relative_to(root) if root.is_dir() else path.name) + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()
