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

``noise_correlation`` and ``choose_pixel_shuffle`` tell the two kinds of
noise apart, to decide whether pixel-shuffling (``pixel_shuffle.py``) will
help a denoiser trained on white noise: it helps on correlated camera noise
and costs 2-3 dB on white noise.
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


# noise_correlation / choose_pixel_shuffle: chosen on the validation sets of benchmarks/pd_detector.py
# (reports/real-noise/pd-detector/summary.md).
CORRELATION_BLOCK = 8  # small blocks: even a photo textured all over has some flat 8x8 spots
FLATTEST_FRACTION = 0.05  # of the blocks, the flattest ones are where noise, not texture, fills the differences
MIN_FLAT_BLOCKS = 5  # fewer flattest blocks than this: too little to measure (about 50x50 pixels)
PIXEL_SHUFFLE_THRESHOLD = 0.65


def _interior(plane, offset):
    """(horizontal, vertical): ``plane`` shifted by ``offset`` pixels along each axis, cropped to 2..size-3."""
    height, width = plane.shape
    return (plane[2 : height - 2, 2 + offset : width - 2 + offset],
            plane[2 + offset : height - 2 + offset, 2 : width - 2])


def _second_differences(plane, lag):
    """(horizontal, vertical) n[j-lag] - 2 n[j] + n[j+lag], at the pixels 2..size-3 of each axis."""
    before, centre, after = _interior(plane, -lag), _interior(plane, 0), _interior(plane, lag)
    return tuple(b - 2 * c + a for b, c, a in zip(before, centre, after))


def _block_sums(values, block):
    """Sums over the whole block x block tiles of a 2-D array (the ragged edge left out), flattened."""
    rows, columns = values.shape[0] // block, values.shape[1] // block
    return values[: rows * block, : columns * block].reshape(rows, block, columns, block).sum(axis=(1, 3)).ravel()


def noise_correlation(image):
    """How much of an image's noise is correlated between neighbouring pixels: ~1 for white noise, well below for
    camera noise.

    For noise of variance s² whose correlation between pixels k apart along
    a row (or column) is r_k, the second difference at lag k,
    h_k = n[j-k] - 2 n[j] + n[j+k], has variance s² (6 - 8 r_k + 2 r_2k).
    The statistic is E[h_1²] / E[h_2²], horizontal and vertical pooled:

    * white noise (r_k = 0): 1;
    * noise correlated by demosaicing or JPEG (r_1 about 0.5, r_2 and r_4
      small): about (6 - 4) / 6 = 1/3.  This is the ratio of a stride-1 to
      a stride-2 noise estimate, the argument for pixel-shuffling of Zhou et
      al. (AAAI 2020), with the 3-tap high-pass of Immerkær's estimator
      (CVIU 1996) in place of Chen et al.'s (ICCV 2015) patch PCA, which
      needs large patches that rarely fit in flat regions;
    * image structure: a linear ramp cancels in both; a curvature c adds c²
      to h_1 and 16 c² to h_2, so texture pulls the ratio down as
      correlation does.  The ratio is therefore taken only over the flattest
      ``FLATTEST_FRACTION`` of the ``CORRELATION_BLOCK``-pixel blocks of
      all colour channels (by their mean h_1² + h_2²), where the noise, which
      is everywhere, outweighs texture, which is not.

    Differences touching a pixel at or beyond 0 or 255 are left out: a
    clipped pixel (saturation, salt-and-pepper) is no sample of the noise.
    ``image``: HxWx3 (or HxW) on the 0-255 scale.  A ValueError when fewer
    than ``MIN_FLAT_BLOCKS`` flattest blocks can be measured (an image under
    about 50x50 pixels, or one almost all clipped or perfectly flat).
    """
    image = np.asarray(image, np.float64)
    planes = image[..., None] if image.ndim == 2 else image
    block = CORRELATION_BLOCK
    sums = {1: [], 2: [], "count": []}
    if min(planes.shape[:2]) >= block + 4:
        for channel in range(planes.shape[2]):
            plane = planes[..., channel]
            unclipped = ((plane > 0) & (plane < 255)).astype(np.float64)
            # A difference is usable where all five pixels within two of its centre are unclipped.
            shifted = [_interior(unclipped, offset) for offset in (-2, -1, 0, 1, 2)]
            usable = [np.prod([masks[axis] for masks in shifted], axis=0) for axis in (0, 1)]
            for lag in (1, 2):
                sums[lag].append(sum(_block_sums(difference**2 * mask, block)
                                     for difference, mask in zip(_second_differences(plane, lag), usable)))
            sums["count"].append(sum(_block_sums(mask, block) for mask in usable))
    lag1, lag2, counts = (np.concatenate(sums[key]) if sums[key] else np.zeros(0) for key in (1, 2, "count"))
    # At least half of a block's differences usable, and not flat to the last bit (nothing there to measure).
    measured = (counts >= block * block) & (lag2 > 1e-6 * counts)
    lag1, lag2, counts = lag1[measured], lag2[measured], counts[measured]
    flattest = np.argsort((lag1 + lag2) / counts)[: int(round(FLATTEST_FRACTION * len(counts)))]
    if len(flattest) < MIN_FLAT_BLOCKS:
        raise ValueError(f"image is {planes.shape[0]}x{planes.shape[1]}: too few unclipped {block}x{block} blocks "
                         f"({len(counts)}) to measure the noise correlation")
    return float(lag1[flattest].sum() / lag2[flattest].sum())


def choose_pixel_shuffle(image, threshold=PIXEL_SHUFFLE_THRESHOLD):
    """The pixel-shuffle stride for ``image`` (0-255 scale): 2 when ``noise_correlation`` is below ``threshold``
    (correlated noise, as in camera photos), else 1.

    An image too small or too clipped to measure gets 1: a denoiser
    trained on white noise is then used as trained, where a wrong stride 2
    would cost more (2-3 dB on white noise) than a wrong 1 (a few tenths of
    a dB on camera noise).
    """
    try:
        correlation = noise_correlation(image)
    except ValueError:
        return 1
    return 2 if correlation < threshold else 1
