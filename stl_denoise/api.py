"""The one-call Python entry point: ``stl_denoise.denoise(image)``."""

from stl_denoise.inference import DEFAULT_MARGIN, DEFAULT_TILE, denoise_image
from stl_denoise.pretrained import DEFAULT_MODEL, shared_denoiser


def denoise(image, model=DEFAULT_MODEL, tile=DEFAULT_TILE, margin=DEFAULT_MARGIN, self_ensemble=False):
    """Denoise one image array of any size, exactly as ``stl-denoise denoise`` does.

    ``image``: HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA, alpha kept), uint8,
    uint16 or float on the 0-255 scale; the result has the same shape and
    type.  ``model``: a shipped name (default ``"dsc-real-mixed"``, a
    blind model for real camera noise, noisy JPEGs, Gaussian noise of sigma
    0-50, salt-and-pepper up to 10% of the pixels, or both), a ``.keras`` path, or a
    loaded Keras model.  Large images are processed in ``tile``-pixel tiles.
    ``self_ensemble``: average over the 8 flips/rotations (8x slower, a little better).

    Example::

        >>> import numpy as np, skimage.data, stl_denoise
        >>> clean = skimage.data.astronaut()[:128, :160]
        >>> noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
        >>> denoised = stl_denoise.denoise(noisy)
        >>> denoised.shape, denoised.dtype
        ((128, 160, 3), dtype('uint8'))
        >>> from skimage.metrics import peak_signal_noise_ratio as psnr
        >>> bool(psnr(clean, denoised) > psnr(clean, noisy) + 5)
        True
    """
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        # The one cached instance, not a copy per call: its traced forward pass is reused.
        model = shared_denoiser(model)
    return denoise_image(model, image, tile, margin, self_ensemble)
