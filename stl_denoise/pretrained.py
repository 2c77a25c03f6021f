"""Shipped denoisers (package data in ``stl_denoise/weights``) and model loading.

A model is named either by a shipped name (``stl-denoise models`` lists
them) or by the path of a ``.keras`` file, such as a run's ``model.keras``.
"""

import functools
from importlib import resources
from pathlib import Path

from stl_denoise.errors import UserError

DEFAULT_MODEL = "dsc-modern-blind"
# name -> what it is; the file is weights/<name>.keras, its card weights/<name>.md
SHIPPED = {
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
    text = str(name_or_path)
    if text in SHIPPED:
        path = weights_dir() / f"{text}.keras"
        if not path.is_file():
            raise UserError(f"shipped model {text!r} is not in this install ({path} missing)")
        return path
    path = Path(text)
    if not path.exists():
        names = ", ".join(SHIPPED)
        raise UserError(f"{path}: no such model file (shipped models: {names})")
    if path.is_dir():
        if (path / "model.keras").is_file():  # a training run directory
            return path / "model.keras"
        raise UserError(f"{path}: a folder without model.keras; pass a .keras file")
    return path


def load_keras_file(path, problem, compile=True):
    """``keras.saving.load_model``, or a one-line UserError "PATH: PROBLEM (first line of the cause)"."""
    import keras

    import stl_denoise  # noqa: F401  (registers the custom layers)

    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as error:  # Keras raises many types for a truncated or foreign file
        detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise UserError(f"{path}: {problem} ({detail})") from None


@functools.lru_cache(maxsize=4)
def _load(path, modified):
    return load_keras_file(path, "not a loadable Keras model", compile=False)


def load_denoiser(name_or_path=DEFAULT_MODEL):
    """Load a denoiser: a shipped name (default ``"dsc-modern-blind"``) or a ``.keras`` path.

    The model takes and returns [B, H, W, 3] pixels on the 0-255 scale, H and
    W divisible by 16; ``stl_denoise.denoise`` handles any image.  Loaded
    models are cached, so calling this again is cheap.

    Example::

        >>> import stl_denoise
        >>> model = stl_denoise.load_denoiser("dsc-modern-blind")
        >>> model.name
        'dsc_denoiser'
    """
    path = model_path(name_or_path).resolve()
    return _load(str(path), path.stat().st_mtime_ns)


def model_label(name_or_path):
    """A short name for reports: the shipped name, or the run folder of model.keras."""
    text = str(name_or_path)
    if text in SHIPPED:
        return text
    path = Path(text)
    if path.is_dir():
        return path.name
    return path.parent.name if path.stem in ("model", "checkpoint") else path.stem
