"""Estimate the noise level of a photograph from the photograph alone.

Classical denoisers such as CBM3D need the noise standard deviation; on a
real photo nobody knows it.  The estimator here is the patch-PCA method of
Chen, Zhu and Heng, "An Efficient Statistical Method for Image Noise Level
Estimation", ICCV 2015: the eigenvalues of the covariance of an image's
patches that belong to no image structure are all the noise variance, and
they are found as the tail of the sorted eigenvalues whose mean equals its
median.

Real camera noise is correlated between neighbouring pixels (demosaicing,
JPEG), so its high-frequency part -- what patch and wavelet estimators look
at -- is much weaker than its standard deviation: scikit-image's wavelet
estimator says 0.5 for noise of standard deviation 4.5 on the PolyU photos.
Pixel-shuffle down-sampling (Zhou et al. 2020, ``pixel_shuffle.py``) takes
every ``stride``-th pixel, so neighbours in a sub-image lie ``stride`` pixels
apart in the photo, where the noise is nearly independent; the patches are
taken from those sub-images.  The measured error of both, on the PolyU
development pairs, is in ``reports/real-noise/``.
"""

import numpy as np

PATCH = 7  # Chen et al. use 7x7 (8x8 in some experiments); 7 keeps r = 49 per channel
DEFAULT_STRIDE = 2


def _patches(plane, size):
    """All size x size patches of a 2-D array, as rows of a [N, size*size] matrix (a strided view, copied)."""
    windows = np.lib.stride_tricks.sliding_window_view(plane, (size, size))
    return windows.reshape(-1, size * size)


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


def sub_images(image, stride):
    """The ``stride``² pixel-shuffle sub-images of an HxW(xC) image: image[i::stride, j::stride]."""
    return [image[i::stride, j::stride] for i in range(stride) for j in range(stride)]


def estimate_sigma(image, stride=DEFAULT_STRIDE, patch=PATCH):
    """The noise standard deviation of an HxWx3 (or HxW) image on its own scale.

    Each colour channel is estimated on its own (real noise differs per
    channel) from the patches of its ``stride``² sub-images pooled together;
    the result is the root mean square over the channels, the one level that
    CBM3D takes for all three.
    """
    image = np.asarray(image, np.float64)
    planes = image[..., None] if image.ndim == 2 else image
    if min(planes.shape[:2]) < stride * (patch + 1):
        raise ValueError(f"image is {planes.shape[0]}x{planes.shape[1]}: noise estimation needs at least "
                         f"{stride * (patch + 1)} pixels a side")
    variances = []
    for channel in range(planes.shape[2]):
        pooled = np.concatenate([_patches(sub, patch) for sub in sub_images(planes[..., channel], stride)])
        variances.append(pca_noise_variance(pooled))
    return float(np.sqrt(np.mean(variances)))
