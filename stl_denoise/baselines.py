"""Classical denoisers to compare against, each ``f(noisy, sigma) -> estimate``.

Inputs and outputs are float HxWx3 arrays on the 0-255 scale.  Every method
is told the true noise level ``sigma`` (the usual non-blind benchmark
setting); the parameters are the libraries' documented recommendations, not
tuned on our images.

BM3D comes from the ``bm3d`` package (optional extra ``stl-denoise[bm3d]``;
its licence allows non-commercial use only): ``bm3d_rgb`` is CBM3D, the
colour version whose published CBSD68 sigma-25 result is 30.71 dB.
"""

import numpy as np

from stl_denoise.errors import UserError

BM3D_MISSING = (
    "the bm3d baseline needs the optional bm3d package: pip install 'stl-denoise[bm3d]' "
    "(non-commercial licence), or leave bm3d out of --baselines"
)


def _unit(noisy, sigma):
    return noisy / 255.0, max(float(sigma), 1e-3) / 255.0


def bm3d_colour(noisy, sigma):
    try:
        import bm3d
    except ImportError:
        raise UserError(BM3D_MISSING) from None
    image, sigma_unit = _unit(noisy, sigma)
    return np.asarray(bm3d.bm3d_rgb(image, sigma_unit), dtype=np.float64) * 255.0


def non_local_means(noisy, sigma):
    from skimage.restoration import denoise_nl_means

    image, sigma_unit = _unit(noisy, sigma)
    # scikit-image's example settings: h = 0.8 sigma, 5x5 patches, 13x13 search.
    return denoise_nl_means(
        image, h=0.8 * sigma_unit, sigma=sigma_unit, patch_size=5, patch_distance=6, fast_mode=True,
        channel_axis=-1,
    ) * 255.0


def total_variation(noisy, sigma):
    from skimage.restoration import denoise_tv_chambolle

    image, sigma_unit = _unit(noisy, sigma)
    # Chambolle's weight grows with the noise; 0.8 sigma (on [0, 1]) is a common rule of thumb.
    return denoise_tv_chambolle(image, weight=0.8 * sigma_unit, channel_axis=-1) * 255.0


def wavelet(noisy, sigma):
    from skimage.restoration import denoise_wavelet

    image, sigma_unit = _unit(noisy, sigma)
    return denoise_wavelet(
        image, sigma=sigma_unit, method="BayesShrink", mode="soft", channel_axis=-1, convert2ycbcr=True,
        rescale_sigma=True,
    ) * 255.0


def median(noisy, sigma):
    """3x3 median per channel: the classical answer to salt-and-pepper noise."""
    from scipy.ndimage import median_filter

    return median_filter(noisy, size=(3, 3, 1), mode="reflect")


BASELINES = {
    "bm3d": bm3d_colour,
    "nlm": non_local_means,
    "tv": total_variation,
    "wavelet": wavelet,
    "median": median,
}


def check_available(names):
    """Fail before any work if a requested baseline cannot run here."""
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise UserError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
    if "bm3d" in names:
        try:
            import bm3d  # noqa: F401
        except ImportError:
            raise UserError(BM3D_MISSING) from None
