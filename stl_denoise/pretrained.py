"""Shipped denoisers (package data in ``stl_denoise/weights``) and model loading.

A model is named either by a shipped name (``stl-denoise models`` lists
them) or by the path of a ``.keras`` file, such as a run's ``model.keras``.
"""

import errno
import functools
import os
import stat
import zipfile
from importlib import resources
from pathlib import Path

from stl_denoise.checks import check_name_given
from stl_denoise.errors import UserError, first_line

# Real camera photos and noisy JPEGs as well as the paper's own noise (Gaussian + salt-and-pepper, §3.2);
# within 0.11 dB of dsc-blind-mixed on synthetic noise of 8-bit files (its model card).
DEFAULT_MODEL = "dsc-real-mixed"
# name -> what it is; the file is weights/<name>.keras, its card weights/<name>.md
SHIPPED = {
    "dsc-real-mixed": "DSC net, --preset real-mixed, colour, blind: real camera noise (shot/read noise, demosaicing, "
                      "tone curve), JPEG, Gaussian sigma 0-50, salt-and-pepper 0-10%; dsc-blind-mixed fine-tuned on "
                      "CBSD432 minus its validation split (the default)",
    "dsc-blind-mixed": "DSC net, --preset blind-mixed, colour, blind Gaussian sigma 0-50, salt-and-pepper 0-10% "
                       "or both, 8-bit or float input; dsc-modern-blind fine-tuned on CBSD432 minus its validation "
                       "split",
    "dsc-modern-blind": "DSC net, --preset modern, colour, blind Gaussian sigma 0-50, trained on CBSD432 "
                        "minus its validation split",
}


def weights_dir():
    return Path(str(resources.files("stl_denoise") / "weights"))


def shipped_models():
    """[(name, path of the .keras file, description)] for the models in this install."""
    found = []
    for name, description in SHIPPED.items():
        path = weights_dir() / f"{name}.keras"
        if path.is_file():
            found.append((name, path, description))
    return found


def model_path(name_or_path):
    """The .keras file for a shipped name or a path, with a one-line error if there is none."""
    from stl_denoise.config import TrainConfig
    from stl_denoise.runs import saved_model_path

    text = os.fspath(name_or_path)
    check_name_given(text, "the model name", f"a model; pass a .keras file, a run folder or a shipped name "
                     f"({', '.join(SHIPPED)})")
    if text in SHIPPED:
        path = weights_dir() / f"{text}.keras"
        if not path.is_file():
            raise UserError(f"shipped model {text!r} is not in this install ({path} missing)")
        return path
    path = Path(text)
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            run_model = saved_model_path(path, TrainConfig.KIND)
            if run_model.is_file():  # a training run directory
                return run_model
            raise UserError(f"{path}: a folder without {run_model.name}; pass a .keras file")
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise UserError(f"{path}: no such model file (shipped models: {', '.join(SHIPPED)})") from None
        raise UserError(f"{path}: cannot read ({error.strerror or error})") from None
    if not stat.S_ISREG(mode):  # a FIFO would block the loader forever
        raise UserError(f"{path}: not a regular file (a FIFO, socket or device); pass a .keras file")
    return path


def load_keras_file(path, problem, compile=True):
    """``keras.saving.load_model``, or a one-line UserError "PATH: PROBLEM (first line of the cause)"."""
    import keras

    import stl_denoise  # noqa: F401  (registers the custom layers)

    structure = _container_problem(path)
    if structure:  # Keras would say "File not found" about an empty or truncated file
        raise UserError(f"{path}: {problem} ({structure})")
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as error:  # Keras raises many types for a truncated or foreign file
        raise UserError(f"{path}: {problem} ({first_line(error)})") from None


def _container_problem(path):
    """Why ``path`` cannot be a .keras (zip) or .h5 (HDF5) file, or None if it may be one."""
    suffix = Path(path).suffix.lower()
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(8)
        if size == 0:
            return "empty file"
        if suffix == ".keras" and not zipfile.is_zipfile(path):
            return ("not a zip archive, as .keras files are: " +
                    ("truncated" if head.startswith(b"PK") else "another kind of file"))
    except OSError as error:
        return f"cannot read: {error.strerror or error}"
    if suffix in (".h5", ".hdf5") and head != b"\x89HDF\r\n\x1a\n":
        return "not an HDF5 file"
    return None


@functools.lru_cache(maxsize=4)
def _load(path, modified):
    from stl_denoise.inference import check_denoiser

    model = load_keras_file(path, "not a loadable Keras model", compile=False)
    check_denoiser(model, path)
    return model


def shared_denoiser(name_or_path=DEFAULT_MODEL):
    """The cached model of a file itself, for this package's own inference only (``api.denoise``).

    Never handed to callers, who may freeze, retrain or compile what they get:
    a shared model keeps the graph ``inference.compiled_forward`` traced on it,
    so repeated ``denoise`` calls are not traced again.
    """
    path = model_path(name_or_path).resolve()
    return _load(str(path), path.stat().st_mtime_ns)


def load_denoiser(name_or_path=DEFAULT_MODEL):
    """Load a denoiser: a shipped name (default ``"dsc-blind-mixed"``) or a ``.keras`` path.

    The model takes and returns [B, H, W, 3] pixels on the 0-255 scale, H and
    W divisible by 16; ``stl_denoise.denoise`` handles any image.  Each call
    returns a model of its own, so changing its weights, ``trainable`` or
    compiling it affects no other caller; the file is read once and cached, so
    calling this again is cheap.

    Example::

        >>> import stl_denoise
        >>> model = stl_denoise.load_denoiser("dsc-modern-blind")
        >>> model.name
        'dsc_denoiser'
    """
    shared = shared_denoiser(name_or_path)
    # Rebuilt from its config with the weights copied: ~0.1 s against ~0.5 s to load the file again, and
    # a little faster than keras.models.clone_model.
    model = shared.__class__.from_config(shared.get_config())
    model.set_weights(shared.get_weights())
    return model


def model_label(name_or_path):
    """A short name for reports: the shipped name, or the run folder of model.keras."""
    text = str(name_or_path)
    if text in SHIPPED:
        return text
    path = Path(text)
    if path.is_dir():
        return path.name
    return path.parent.name if path.stem in ("model", "checkpoint") else path.stem
