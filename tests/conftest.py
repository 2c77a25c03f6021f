import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import stl_denoise  # noqa: E402,F401  (quiet TF import, registers layers)


@pytest.fixture
def photo_crops():
    """Real 64x64 crops of scikit-image photographs, float32 0-255."""
    from stl_denoise.data import sample_images

    crops = []
    for image in sample_images().values():
        h, w = image.shape[:2]
        crops.append(image[h // 2 - 32 : h // 2 + 32, w // 2 - 32 : w // 2 + 32])
    return np.stack(crops).astype("float32")


@pytest.fixture(scope="session")
def random_denoiser():
    """An untrained modern-style denoiser: its output depends on every input pixel nearby."""
    from stl_denoise.models import build_denoiser

    return build_denoiser(output_activation="linear", residual=True, input_range=1.0, seed=1)


@pytest.fixture(scope="session")
def random_denoiser_path(random_denoiser, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "random.keras"
    random_denoiser.save(path)
    return path
