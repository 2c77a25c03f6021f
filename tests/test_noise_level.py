import numpy as np
import pytest
from skimage.restoration import estimate_sigma as wavelet_sigma

from stl_denoise.data import sample_images
from stl_denoise.noise_level import (
    PIXEL_SHUFFLE_THRESHOLD,
    choose_pixel_shuffle,
    estimate_sigma,
    gradient_energy,
    noise_correlation,
    pca_noise_variance,
    unit_noise_threshold,
)


@pytest.fixture(scope="module")
def smooth():
    """A noise-free colour image of smooth waves and one step edge."""
    y, x = np.mgrid[0:192, 0:256] / 64.0
    base = 120 + 60 * np.sin(x * 1.3 + y * 0.4) + 40 * np.cos(y * 1.7) + 50 * (x > 2.1)
    return np.stack([base, base * 0.8 + 20, 255 - base * 0.7], axis=-1)


def _correlated(shape, sigma, seed):
    """Noise of std ``sigma`` averaged over 2x2 blocks of white draws.

    Neighbours correlate at 0.5, as after a demosaic.
    """
    white = np.random.default_rng(seed).standard_normal((shape[0] + 1, shape[1] + 1, shape[2]))
    noise = white[:-1, :-1] + white[1:, :-1] + white[:-1, 1:] + white[1:, 1:]
    return noise * sigma / noise.std()


@pytest.mark.parametrize("sigma", [2.0, 5.0, 20.0])
def test_white_noise_level_is_recovered(smooth, sigma):
    noisy = smooth + np.random.default_rng(int(sigma)).normal(0.0, sigma, smooth.shape)
    assert abs(estimate_sigma(noisy) / sigma - 1.0) < 0.05


def test_correlated_noise_is_measured_where_a_wavelet_estimator_sees_a_fraction(smooth):
    noisy = smooth + _correlated(smooth.shape, 8.0, seed=1)
    assert abs(estimate_sigma(noisy) / 8.0 - 1.0) < 0.05
    assert estimate_sigma(noisy, stride=1) < 0.5 * 8.0  # without pixel-shuffling, the correlation hides the noise
    assert wavelet_sigma(noisy, channel_axis=-1, average_sigmas=True) < 0.5 * 8.0


def test_weak_texture_patches_keep_a_photo_s_texture_out():
    photo = sample_images()["coffee"][:192, :256].astype(np.float64)  # itself holds noise of about 1.4
    noisy = photo + np.random.default_rng(5).normal(0.0, 5.0, photo.shape)
    assert estimate_sigma(noisy) > 1.5 * 5.0  # on sub-images, fine texture passes for noise
    assert abs(estimate_sigma(noisy, weak_texture=True) / 5.0 - 1.0) < 0.12


def test_pca_variance_of_pure_noise_patches_is_the_noise_variance():
    patches = np.random.default_rng(2).normal(0.0, 3.0, (20_000, 49))
    assert abs(pca_noise_variance(patches) / 9.0 - 1.0) < 0.03


def test_gradient_energy_sums_squared_differences_per_patch():
    plane = np.random.default_rng(3).standard_normal((12, 10))
    energy = gradient_energy(plane, 4).reshape(9, 7)
    patch = plane[2:6, 5:9]
    assert energy[2, 5] == pytest.approx((np.diff(patch, axis=1) ** 2).sum() + (np.diff(patch, axis=0) ** 2).sum())
    # White noise of variance 1: each squared difference has mean 2, and a 7x7 patch has 84 of them.
    white = gradient_energy(np.random.default_rng(4).standard_normal((300, 300)), 7)
    assert abs(white.mean() / (2 * 84) - 1.0) < 0.02
    assert abs((white <= unit_noise_threshold(7)).mean() - 0.99) < 0.005


def test_too_small_image_is_refused():
    with pytest.raises(ValueError, match="at least 16 pixels"):
        estimate_sigma(np.zeros((12, 40, 3)))


@pytest.fixture(scope="module")
def textured(smooth):
    """``smooth`` with fine stripes (period 5 px) over its left half: texture a second difference responds to."""
    x = np.arange(smooth.shape[1])
    stripes = 30 * np.sin(2 * np.pi * x / 5) * (x < smooth.shape[1] // 2)
    return smooth + stripes[None, :, None]


def _bilinear_demosaicked(shape, sigma, seed):
    """White noise sampled on an RGGB Bayer mosaic, each channel's missing pixels filled bilinearly, as a camera's
    simplest demosaic does; scaled to std ``sigma``."""
    from scipy.ndimage import convolve

    white = np.random.default_rng(seed).standard_normal(shape[:2])
    rows, columns = np.mgrid[0 : shape[0], 0 : shape[1]]
    sites = [(rows % 2 == 0) & (columns % 2 == 0), (rows + columns) % 2 == 1, (rows % 2 == 1) & (columns % 2 == 1)]
    kernels = [np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4, np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4]
    planes = [convolve(white * site, kernels[1 if index == 1 else 0], mode="mirror")
              for index, site in enumerate(sites)]
    noise = np.stack(planes, axis=-1)
    return noise * sigma / noise.std()


@pytest.mark.parametrize("sigma", [5.0, 25.0])
def test_white_noise_measures_uncorrelated_and_is_not_pixel_shuffled(textured, sigma):
    noisy = textured + np.random.default_rng(7).normal(0.0, sigma, textured.shape)
    assert abs(noise_correlation(noisy) - 1.0) < 0.1
    assert choose_pixel_shuffle(noisy) == 1
    # Without the flattest-block selection the stripes would pass for correlated noise.
    assert choose_pixel_shuffle(np.round(np.clip(noisy, 0, 255))) == 1


def test_blurred_noise_measures_its_correlation_and_is_pixel_shuffled(textured):
    # 2x2 box: r_1 = 1/2, r_2 = r_4 = 0, so E[h_1²] / E[h_2²] = (6 - 4) / 6.
    noisy = textured + _correlated(textured.shape, 8.0, seed=8)
    assert abs(noise_correlation(noisy) - 1 / 3) < 0.05
    assert choose_pixel_shuffle(noisy) == 2


def test_demosaicked_noise_is_pixel_shuffled(textured):
    noisy = textured + _bilinear_demosaicked(textured.shape, 6.0, seed=9)
    assert noise_correlation(noisy) < PIXEL_SHUFFLE_THRESHOLD - 0.2
    assert choose_pixel_shuffle(noisy) == 2


def test_clipped_pixels_are_no_sample_of_the_noise(smooth):
    noisy = smooth + np.random.default_rng(10).normal(0.0, 10.0, smooth.shape)
    draw = np.random.default_rng(11).random(smooth.shape[:2])
    noisy[draw < 0.05] = 0.0  # pepper: left in, every difference touching it would be huge and lag-independent
    noisy[draw > 0.95] = 255.0
    assert abs(noise_correlation(noisy) - 1.0) < 0.1


@pytest.mark.parametrize("shape", [(40, 40, 3), (12, 160, 3), (64, 64)])
def test_an_image_too_small_or_flat_to_measure_falls_back_to_no_pixel_shuffle(shape):
    correlated = 128 + _correlated(shape if len(shape) == 3 else shape + (1,), 8.0, seed=12).reshape(shape)
    if len(shape) == 2:
        correlated = np.full(shape, 255.0)  # saturated all over: nothing unclipped to measure
    with pytest.raises(ValueError, match="to measure the noise correlation"):
        noise_correlation(correlated)
    assert choose_pixel_shuffle(correlated) == 1
