import math

import numpy as np

from stl_denoise.data import sample_images
from stl_denoise.metrics import psnr, ssim


def photo():
    return sample_images()["coffee"][:96, :128].astype(np.float64)


def test_identical_images():
    image = photo()
    assert psnr(image, image) == math.inf
    assert ssim(image, image) == 1.0


def test_known_mse_gives_known_psnr():
    image = photo()
    shifted = image.copy()
    shifted[::2] += 10.0  # half the rows off by 10: MSE = 50
    assert math.isclose(psnr(image, shifted), 10 * math.log10(255**2 / 50), abs_tol=1e-9)
    assert math.isclose(psnr(image, image + 5.0), 20 * math.log10(255 / 5), abs_tol=1e-9)


def test_ssim_falls_with_noise_and_accepts_grey():
    image = photo()
    noisy = image + np.random.default_rng(0).normal(0, 25, image.shape)
    assert 0.0 < ssim(image, noisy) < 0.9
    assert ssim(image[..., 0], image[..., 0]) == 1.0
