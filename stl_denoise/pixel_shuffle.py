"""Pixel-shuffle down-sampling (PD) around a denoiser: Zhou et al., "When AWGN-based Denoiser Meets
Real Noises", AAAI 2020.

Real camera noise is correlated between neighbouring pixels (demosaicing,
JPEG); a denoiser trained on independent noise takes it for image texture
and leaves it.  Pixel-shuffling with stride s splits the image into s²
sub-images, ``image[i::s, j::s]``, in which neighbours lie s pixels apart in
the photo, where the noise is nearly independent again; each is denoised on
its own and the pixels are put back where they came from.  The price is
that the denoiser sees the scene at 1/s of its resolution, with aliased
detail.

``refine`` adds the paper's refinement (steps 3-4 of its PD-refine, without
the flat-region blending that needs their noise-level map): for each
sub-image, its pixels in the PD result are put back to the noisy ones and
the whole image is denoised again at full resolution; the s² results are
averaged (s² + 1 passes in all).
"""

import numpy as np


def _padded(image, stride):
    """The image reflect-padded at the bottom/right to a multiple of ``stride`` (so all sub-images share a size)."""
    height, width = image.shape[:2]
    pad = ((0, -height % stride), (0, -width % stride)) + ((0, 0),) * (image.ndim - 2)
    return np.pad(image, pad, mode="reflect") if any(after for _, after in pad) else image


def shuffle_down(image, stride):
    """The stride² sub-images ``image[i::stride, j::stride]`` (row-major over i, j), after padding to a multiple."""
    image = _padded(np.asarray(image), stride)
    return [image[i::stride, j::stride] for i in range(stride) for j in range(stride)]


def shuffle_up(sub_images, stride, shape):
    """Inverse of ``shuffle_down``: the sub-images interleaved back into an image of ``shape`` (padding dropped)."""
    first = sub_images[0]
    full = np.empty((first.shape[0] * stride, first.shape[1] * stride) + first.shape[2:], first.dtype)
    for index, sub in enumerate(sub_images):
        full[index // stride :: stride, index % stride :: stride] = sub
    return full[: shape[0], : shape[1]]


def denoise_pixel_shuffled(denoise, image, stride, refine=False):
    """``denoise`` (HxWx3 float -> same) applied through stride-``stride`` pixel-shuffle down-sampling.

    Returns float32 HxWx3.  ``stride`` 1 is ``denoise(image)`` itself.
    """
    image = np.asarray(image, np.float32)
    if stride == 1:
        return np.asarray(denoise(image), np.float32)
    shuffled = shuffle_up([np.asarray(denoise(sub), np.float32) for sub in shuffle_down(image, stride)], stride,
                          image.shape)
    if not refine:
        return shuffled
    total = np.zeros(image.shape, np.float32)
    for i in range(stride):
        for j in range(stride):
            refilled = shuffled.copy()
            refilled[i::stride, j::stride] = image[i::stride, j::stride]
            total += np.asarray(denoise(refilled), np.float32)
    return total / stride**2
