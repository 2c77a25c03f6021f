"""stl-denoise: Zhao (2016), *Image Denoising with Deep Convolutional Neural Networks*.

Importing the package registers its custom layers, so saved models load with
``keras.saving.load_model`` after ``import stl_denoise``.

Public API: ``load_denoiser`` (a shipped name or a ``.keras`` file),
``denoise`` (any image array, same padding/tiling as the CLI),
``shipped_models``, and ``build_denoiser`` / ``build_classifier`` (fresh
networks of Table 1 / Table 2 for research).
"""

from stl_denoise._quiet import import_tensorflow

import_tensorflow()

from stl_denoise.callbacks import BatchMeanSquaredError  # noqa: E402
from stl_denoise.classifier import BatchAccuracy, BatchCrossEntropy, build_classifier  # noqa: E402
from stl_denoise.layers import GatedSkip  # noqa: E402
from stl_denoise.models import build_denoiser  # noqa: E402
from stl_denoise.noise import ImageNoise, add_noise  # noqa: E402
from stl_denoise import optimizers  # noqa: E402,F401  (registers LinearWarmup for saved classifiers)
from stl_denoise.pretrained import load_denoiser, shipped_models  # noqa: E402
from stl_denoise.api import denoise  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "GatedSkip", "ImageNoise", "BatchMeanSquaredError", "add_noise", "build_denoiser",
    "BatchAccuracy", "BatchCrossEntropy", "build_classifier",
    "load_denoiser", "denoise", "shipped_models",
]
