"""Image quality metrics on the 0-255 scale: scikit-image's PSNR and SSIM.

The formulas are the library's, not ours; this module only fixes the
conventions every report uses: ``data_range=255``, the full image (no border
crop), SSIM over colour channels with scikit-image's default 7x7 uniform
window, averaged over channels.
"""

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

DATA_RANGE = 255.0


def _as_float(image):
    image = np.asarray(image, dtype=np.float64)
    return image if image.ndim == 3 else image[..., None]


def psnr(clean, estimate):
    """Peak signal-to-noise ratio in dB; ``inf`` when the mean squared error is 0.

    The error can be 0 for images that differ (by 1e-300, whose square
    underflows): scikit-image then divides by zero and warns, so it is not
    asked.
    """
    clean, estimate = _as_float(clean), _as_float(estimate)
    if np.mean((clean - estimate) ** 2) == 0:
        return float("inf")
    return float(peak_signal_noise_ratio(clean, estimate, data_range=DATA_RANGE))


def ssim(clean, estimate):
    """Structural similarity in [-1, 1]; 1 for identical images."""
    clean, estimate = _as_float(clean), _as_float(estimate)
    return float(structural_similarity(clean, estimate, data_range=DATA_RANGE, channel_axis=-1))
