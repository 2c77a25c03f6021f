"""stl-denoise: Zhao (2016), *Image Denoising with Deep Convolutional Neural Networks*.

Public API: ``load_denoiser`` (a shipped name or a ``.keras`` file),
``denoise`` (any image array, same padding/tiling as the CLI),
``shipped_models``, and ``build_denoiser`` / ``build_classifier`` (fresh
networks of Table 1 / Table 2 for research).

Importing the package loads no TensorFlow, so the command line's ``--help``
answers at once; the names above load it when first used.  Saved models name
the package's custom layers, so the package registers them with Keras the
moment Keras is imported (at once if it already is): after
``import stl_denoise``, ``keras.saving.load_model`` reads them, whichever
module imports Keras first.  TensorFlow is then imported quietly, with its
oneDNN kernels on (``_quiet.py``).
"""

import importlib
import importlib.util
import sys

from stl_denoise import _quiet

__version__ = "0.1.0"
# Public name -> the module that defines it.
_PUBLIC = {
    "GatedSkip": "stl_denoise.layers", "ImageNoise": "stl_denoise.noise", "add_noise": "stl_denoise.noise",
    "BatchMeanSquaredError": "stl_denoise.callbacks", "build_denoiser": "stl_denoise.models",
    "BatchAccuracy": "stl_denoise.classifier", "BatchCrossEntropy": "stl_denoise.classifier",
    "build_classifier": "stl_denoise.classifier", "load_denoiser": "stl_denoise.pretrained",
    "denoise": "stl_denoise.api", "shipped_models": "stl_denoise.pretrained",
}
__all__ = list(_PUBLIC)
# The modules whose classes saved models and classifiers name (optimizers: LinearWarmup).
_REGISTERING = ("stl_denoise.layers", "stl_denoise.noise", "stl_denoise.callbacks", "stl_denoise.classifier",
                "stl_denoise.optimizers")


def register_keras_objects():
    """Import (TensorFlow quietly first) the modules that register the package's classes with Keras."""
    _quiet.import_tensorflow()
    for name in _REGISTERING:
        importlib.import_module(name)


def __getattr__(name):  # PEP 562: the public names load TensorFlow when first used
    if name not in _PUBLIC:
        raise AttributeError(f"module 'stl_denoise' has no attribute {name!r}")
    register_keras_objects()
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))


class _RegisterWhenKerasLoads:
    """A finder on ``sys.meta_path`` that runs once, when ``keras`` is first imported.

    It lets the real finders find Keras and wraps its loader: TensorFlow is
    imported quietly before Keras (which would load it anyway), and the
    package's classes are registered once Keras has loaded.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            _quiet.import_tensorflow()
            load(module)
            register_keras_objects()

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    register_keras_objects()
elif not any(isinstance(finder, _RegisterWhenKerasLoads) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenKerasLoads())
