"""``stl-denoise denoise``: denoise image files and folders into PNGs.

Each input is independent: a file that cannot be read, is too small, or
whose output would overwrite an input is reported by name and skipped; the
others are still done.  Outputs are written atomically, so a failure or a
kill never leaves a partial PNG, and an existing file is only ever replaced
when it is an earlier output of this command (a PNG carrying its marker):
never an input, never a file in an input's own folder, never a stranger's.
"""

import errno
import os
import time
from pathlib import Path

from stl_denoise.checks import is_empty_name
from stl_denoise.errors import DISK_FULL_FIX, disk_full, os_error_reason
from stl_denoise.folders import IMAGE_SUFFIXES, scan_folder
from stl_denoise.image_io import ImageFileError, read_picture, write_png, written_by_us
from stl_denoise.inference import AUTO, DEFAULT_MARGIN, DEFAULT_TILE, denoise_image, pixel_shuffle_for

PROGRESS_AFTER = 3.0  # seconds into one image before its tiles are counted on the terminal


class TileProgress:
    """``NAME: tile 12/48`` on one terminal line while a slow image is denoised.

    Shown only when ``stream`` is a terminal and the image has taken more than
    ``after`` seconds, and wiped when the image is done, so that the per-file
    lines read the same with or without it (and pipes and logs never see it).
    """

    def __init__(self, stream, after=None, clock=time.monotonic):
        try:
            terminal = stream is not None and stream.isatty()
        except (AttributeError, ValueError):  # no isatty, or a closed stream
            terminal = False
        self.stream, self.clock = stream if terminal else None, clock
        self.after = PROGRESS_AFTER if after is None else after
        self.name, self.started, self.shown = "", 0.0, False

    def start(self, name):
        from stl_denoise.errors import printable

        text = printable(str(name))
        self.name = text if len(text) <= 60 else "..." + text[-57:]  # one line on a narrow terminal
        self.started, self.shown = self.clock(), False

    def __call__(self, done, total):
        if self.stream is not None and self.clock() - self.started >= self.after:
            self._write(f"\r{self.name}: tile {done}/{total}\033[K")
            self.shown = True

    def finish(self):
        if self.shown:
            self._write("\r\033[K")
            self.shown = False

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away: the work goes on without it
            self.stream = None


def _real(path):
    """The resolved path, without raising (a too-long name resolves to itself)."""
    return Path(os.path.realpath(path))


def _expand(text, out_dir, out_real, note):
    """[(input, output or None, error or None)] for one command-line input."""
    item = Path(text)
    if is_empty_name(text):
        return [(item, None, "'': an empty name is not a file or folder (an unset shell variable?)")]
    try:
        os.lstat(item)
    except OSError as error:
        problem = "no such file or directory" if error.errno == errno.ENOENT else error.strerror or str(error)
        return [(item, None, f"{item}: {problem}")]
    if not item.is_dir():
        return [(item, out_dir / (item.stem + ".png"), None)]
    if _real(item) == out_real:
        return [(item, None, f"{item}: --out is this folder itself; choose another --out")]
    files, skipped, unreadable = scan_folder(item, skip=out_real)
    for path, reason in skipped:
        note(f"{path}: {reason}")
    entries = [(path, None, f"{path}: {reason}; its images were not denoised") for path, reason in unreadable]
    if not files and not unreadable:
        entries.append((item, None, f"{item}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})"))
    entries.extend((p, out_dir / p.relative_to(item).with_suffix(".png"), None) for p in files)
    return entries


def plan(inputs, out_dir, note=print):
    """[(input, output or None, error or None)] for files and folders in ``inputs``.

    A folder contributes its images recursively (not those in ``out_dir``),
    named by their path inside it; a file by its name.  ``note`` is told of
    each entry of a folder that is skipped (not an image, a dangling link...).
    """
    out_dir = Path(out_dir)
    out_real = _real(out_dir)
    entries = []
    for text in inputs:
        try:
            entries.extend(_expand(os.fspath(text), out_dir, out_real, note))
        except OSError as error:  # one bad input must not cost the others
            entries.append((Path(text), None, f"{text}: {error.strerror or error}"))
    inputs_resolved = {_real(p) for p, _, error in entries if error is None}
    claimed = {}
    checked = []
    for source, target, error in entries:
        if error is None:
            key = _real(target)
            if key in inputs_resolved:
                error = f"{source}: output {target} would overwrite an input; choose another --out"
            elif key.parent == _real(source.parent):
                error = f"{source}: --out {out_dir} is this file's own folder; choose another --out"
            elif key in claimed:
                error = f"{source}: output {target} is already the output of {claimed[key]}; rename one of them"
            elif os.path.lexists(target) and not (target.is_file() and written_by_us(target)):
                error = (f"{source}: {target} already exists and was not written by stl-denoise; move it away or "
                         "choose another --out")
            else:
                claimed[key] = source
        checked.append((source, None if error else target, error))
    return checked


def denoise_files(model, inputs, out_dir, tile=DEFAULT_TILE, margin=DEFAULT_MARGIN, report=print, warn=print,
                  self_ensemble=False, note=print, remark=print, progress_stream=None, pixel_shuffle=1, refine=False):
    """Denoise every input; returns (number written, list of error lines).

    ``report`` gets a line per file written, ``warn`` one per failure,
    ``note`` one per folder entry skipped, ``remark`` one per change to a
    written file worth knowing (a colour profile left out); ``progress_stream``
    (a terminal) shows the tiles done within an image that takes more than a few seconds.
    ``pixel_shuffle``, ``refine``: ``inference.denoise_rgb``'s; with "auto",
    the stride chosen for each file ends its ``report`` line.
    """
    errors = []
    written = 0
    progress = TileProgress(progress_stream)
    for source, target, error in plan(inputs, out_dir, note):
        if error is None:
            try:
                picture = read_picture(source)
                progress.start(source)
                try:
                    stride = pixel_shuffle_for(picture.pixels, pixel_shuffle)
                    denoised = denoise_image(model, picture.pixels, tile, margin, self_ensemble, progress,
                                             pixel_shuffle=stride, refine=refine)
                except ValueError as problem:
                    raise ImageFileError(f"{source}: {problem}") from None
                finally:
                    progress.finish()
                write_png(target, denoised, picture.icc_profile, picture.exif,
                          note=lambda line, source=source: remark(f"{source}: {line}"))
            except ImageFileError as problem:
                error = str(problem)
            except OSError as problem:  # e.g. the output folder is not writable, or the disk is full
                error = f"{source}: cannot write {target} ({os_error_reason(problem)})" + (
                    f"; {DISK_FULL_FIX}" if disk_full(problem) else "")
            else:
                written += 1
                chosen = f" (pixel-shuffle auto: {stride})" if pixel_shuffle == AUTO else ""
                report(f"{source} -> {target}{chosen}")  # outside the try: a closed stdout is no failure of this file
                continue
        errors.append(error)
        warn(error)
    return written, errors
