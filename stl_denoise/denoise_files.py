"""``stl-denoise denoise``: denoise image files and folders into PNGs.

Each input is independent: a file that cannot be read, is too small, or
whose output would overwrite an input is reported by name and skipped; the
others are still done.  Outputs are written atomically, so a failure or a
kill never leaves a partial PNG.
"""

from pathlib import Path

from stl_denoise.data import IMAGE_SUFFIXES
from stl_denoise.image_io import ImageFileError, read_image, write_png
from stl_denoise.inference import DEFAULT_MARGIN, DEFAULT_TILE, denoise_image


def _inside(path, folder):
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def plan(inputs, out_dir):
    """[(input, output or None, error or None)] for files and folders in ``inputs``.

    A folder contributes its images recursively (not those already under
    ``out_dir``), named by their path inside it; a file by its name.
    """
    out_dir = Path(out_dir)
    entries = []
    for item in map(Path, inputs):
        if not item.exists():
            entries.append((item, None, f"{item}: no such file or directory"))
        elif item.is_dir():
            files = sorted(
                p for p in item.rglob("*")
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not _inside(p, out_dir)
            )
            if not files:
                entries.append((item, None, f"{item}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})"))
            entries.extend((p, out_dir / p.relative_to(item).with_suffix(".png"), None) for p in files)
        else:
            entries.append((item, out_dir / (item.stem + ".png"), None))
    inputs_resolved = {p.resolve() for p, _, _ in entries if p.exists()}
    claimed = {}
    checked = []
    for source, target, error in entries:
        if error is None:
            key = target.resolve()
            if key in inputs_resolved:
                error = f"{source}: output {target} would overwrite an input; choose another --out"
            elif key in claimed:
                error = f"{source}: output {target} is already the output of {claimed[key]}; rename one of them"
            else:
                claimed[key] = source
        checked.append((source, None if error else target, error))
    return checked


def denoise_files(model, inputs, out_dir, tile=DEFAULT_TILE, margin=DEFAULT_MARGIN, report=print, warn=print,
                  self_ensemble=False):
    """Denoise every input; returns (number written, list of error lines)."""
    errors = []
    written = 0
    for source, target, error in plan(inputs, out_dir):
        if error is None:
            try:
                pixels = read_image(source)
                try:
                    denoised = denoise_image(model, pixels, tile, margin, self_ensemble)
                except ValueError as problem:
                    raise ImageFileError(f"{source}: {problem}") from None
                write_png(target, denoised)
                written += 1
                report(f"{source} -> {target}")
                continue
            except ImageFileError as problem:
                error = str(problem)
            except OSError as problem:  # e.g. the output folder is not writable
                error = f"{source}: cannot write {target} ({problem.strerror or problem})"
        errors.append(error)
        warn(error)
    return written, errors
