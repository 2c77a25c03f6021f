"""Estimate the noise level of a photograph from the photograph alone.

Classical denoisers such as CBM3D need the noise standard deviation; on a
real photo nobody knows it.  Three published ideas (``estimate_sigma`` uses
1 and 3 by default; 2 is ``weak_texture=True``):

1. Patch PCA (Chen, Zhu and Heng, "An Efficient Statistical Method for Image
   Noise Level Estimation", ICCV 2015): the eigenvalues of the covariance of
   an image's patches that belong to no image structure all equal the noise
   variance; they are found as the tail of the sorted eigenvalues whose mean
   equals its median.
2. Weak-texture patches (Liu, Tanaka and Okutomi, "Single-Image Noise Level
   Estimation for Blind Denoising", IEEE TIP 2013): the PCA is repeated on
   the patches whose gradient energy is no more than pure noise of the
   current estimate would give 99% of the time, so that texture does not
   pass for noise.
3. Pixel-shuffle sub-images (Zhou et al., AAAI 2020, ``pixel_shuffle.py``):
   real camera noise is correlated between neighbours (demosaicing, JPEG), so
   its high-frequency part -- what patch and wavelet estimators see -- is much
   weaker than its standard deviation (scikit-image's wavelet estimator says
   0.5 for noise of standard deviation 4.5 on the PolyU photos).  Patches are
   taken from the ``stride``² sub-images ``image[i::stride, j::stride]``, in
   which neighbours lie ``stride`` pixels apart in the photo, where the noise
   is nearly independent.

Measured against the true level on the PolyU development pairs
(``benchmarks/noise_level_estimators.py``, ``reports/real-noise/``): 1 alone
finds a quarter of the real noise, 1 + 3 three quarters.  2 helps on
synthetic white noise over fine texture but not on real photos, whose JPEG
compression has flattened the noise in exactly the weak-texture regions.
"""

import functools

import numpy as np

from stl_denoise.pixel_shuffle import shuffle_down

PATCH = 7  # Chen et al.'s 7x7 patches: r = 49 eigenvalues per channel
DEFAULT_STRIDE = 2
WEAK_TEXTURE_QUANTILE = 0.99  # Liu et al.'s significance level
WEAK_TEXTURE_ROUNDS = 3
MIN_PATCHES_PER_DIMENSION = 4  # below this many weak-texture patches per eigenvalue, keep the last estimate


def _patches(plane, size):
    """All size x size patches of a 2-D array, as rows of a [N, size*size] matrix."""
    return np.lib.stride_tricks.sliding_window_view(plane, (size, size)).reshape(-1, size * size)


def _window_sums(values, height, width):
    """Sums of ``values`` over every height x width window (integral image), [H - height + 1, W - width + 1]."""
    integral = np.pad(np.cumsum(np.cumsum(values, 0), 1), ((1, 0), (1, 0)))
    return (integral[height:, width:] - integral[:-height, width:] - integral[height:, :-width]
            + integral[:-height, :-width])


def gradient_energy(plane, size):
    """Per size x size patch (as ``_patches`` orders them): the sum of its squared horizontal and vertical
    differences."""
    across = np.diff(plane, axis=1) ** 2
    down = np.diff(plane, axis=0) ** 2
    return (_window_sums(across, size, size - 1) + _window_sums(down, size - 1, size)).ravel()


@functools.lru_cache(maxsize=None)
def unit_noise_threshold(size, quantile=WEAK_TEXTURE_QUANTILE):
    """The ``quantile`` of a size x size patch's gradient energy under white noise of variance 1.

    Liu et al. use a gamma approximation of this distribution; drawn here
    from a fixed-seed noise image instead, it is exact for white noise.
    """
    noise = np.random.default_rng(0).standard_normal((512, 512))
    return float(np.quantile(gradient_energy(noise, size), quantile))


def pca_noise_variance(patches):
    """Chen et al.'s estimate of the noise variance from patch vectors [N, r].

    The eigenvalues of the patch covariance, sorted in decreasing order: the
    first ones carry image structure, the rest only noise.  Starting from the
    largest, the first tail whose mean is also its median (as many
    eigenvalues above as below the mean) is taken to be pure noise, and its
    mean is the variance.
    """
    patches = np.asarray(patches, np.float64)
    centred = patches - patches.mean(axis=0)
    covariance = centred.T @ centred / max(len(patches) - 1, 1)
    eigenvalues = np.sort(np.linalg.eigvalsh(covariance))[::-1]
    for start in range(len(eigenvalues)):
        tail = eigenvalues[start:]
        mean = tail.mean()
        if np.sum(tail > mean) == np.sum(tail < mean):
            return float(max(mean, 0.0))
    return float(max(eigenvalues[-1], 0.0))


def plane_noise_variance(plane, stride=DEFAULT_STRIDE, patch=PATCH, weak_texture=False):
    """The noise variance of one 2-D colour plane (steps 1-3 of the module docstring)."""
    subs = shuffle_down(np.asarray(plane, np.float64), stride)
    patches = np.concatenate([_patches(sub, patch) for sub in subs])
    variance = pca_noise_variance(patches)
    if not weak_texture:
        return variance
    energy = np.concatenate([gradient_energy(sub, patch) for sub in subs])
    threshold = unit_noise_threshold(patch)
    for _ in range(WEAK_TEXTURE_ROUNDS):
        weak = energy <= variance * threshold
        if weak.sum() < MIN_PATCHES_PER_DIMENSION * patch * patch:
            break
        variance = pca_noise_variance(patches[weak])
    return variance


def estimate_sigma(image, stride=DEFAULT_STRIDE, patch=PATCH, weak_texture=False):
    """The noise standard deviation of an HxWx3 (or HxW) image on its own scale.

    Each colour channel is estimated on its own (real noise differs per
    channel); the result is the root mean square over the channels, the one
    level that CBM3D takes for all three.
    """
    image = np.asarray(image, np.float64)
    planes = image[..., None] if image.ndim == 2 else image
    if min(planes.shape[:2]) < stride * (patch + 1):
        raise ValueError(f"image is {planes.shape[0]}x{planes.shape[1]}: noise estimation needs at least "
                         f"{stride * (patch + 1)} pixels a side")
    variances = [plane_noise_variance(planes[..., c], stride, patch, weak_texture) for c in range(planes.shape[2])]
    return float(np.sqrt(np.mean(variances)))
