"""Training noise on the 0-255 scale: paper §3.2's Gaussian plus salt-and-pepper, and a camera's noise.

The noise is a Keras layer so that it runs inside the compiled training step on
whatever device holds the batch: a fresh draw every step from a seeded
``keras.random.SeedGenerator`` whose state is a model variable (so it is saved
and restored with the weights).  Every stage is plain tensor arithmetic (the
JPEG codec included), so the whole layer also compiles with XLA.

The camera noise model follows CBDNet (Guo et al., "Toward Convolutional
Blind Denoising of Real Photographs", CVPR 2019, §3.1) with the noise levels
and white-balance gains of Brooks et al. ("Unprocessing Images for Learned
Raw Denoising", CVPR 2019, §3.1-3.2): the sRGB crop is taken back to linear
intensities (inverse sRGB tone curve) and to raw sensor values (inverse
white balance); shot and read noise, variance ``shot * x + read`` with levels
drawn per crop, is added on a Bayer mosaic and spread to the neighbours by a
bilinear demosaic; white balance and the tone curve are applied again, and the
result is an 8-bit image that may then be saved as a JPEG (``jpeg_compress``).
"""

import dataclasses
import math
import re

import keras
import numpy as np
from keras import ops

from stl_denoise.config import JPEG_QUALITY_RANGE, NoiseSettings

PIXEL_MAX = 255.0


def _box_mask(shape, min_fraction, max_fraction, seed):
    """1 inside one random axis-aligned rectangle per image, 0 elsewhere."""
    batch, height, width = shape[0], shape[1], shape[2]
    draws = keras.random.uniform((batch, 4), seed=seed)
    span = max_fraction - min_fraction
    box_h = ops.cast(ops.cast(height, "float32") * (min_fraction + span * draws[:, 0]), "int32")
    box_w = ops.cast(ops.cast(width, "float32") * (min_fraction + span * draws[:, 1]), "int32")
    top = ops.cast(ops.cast(height - box_h, "float32") * draws[:, 2], "int32")
    left = ops.cast(ops.cast(width - box_w, "float32") * draws[:, 3], "int32")
    rows = ops.arange(height)[None, :, None]
    cols = ops.arange(width)[None, None, :]
    inside_rows = (rows >= top[:, None, None]) & (rows < (top + box_h)[:, None, None])
    inside_cols = (cols >= left[:, None, None]) & (cols < (left + box_w)[:, None, None])
    return ops.cast(inside_rows & inside_cols, "float32")[..., None]


# --- the camera noise model ---------------------------------------------------------------

# Brooks et al. 2019, §3.2 and their released `random_noise_levels`: the shot-noise level is
# log-uniform over the range their cameras' calibrated levels span, and the read-noise level
# follows it on a log-log line fitted to the same calibrations, with Gaussian scatter (natural
# logarithms).  Both are variances on linear raw values in [0, 1]: var(x) = shot * x + read.
SHOT_NOISE_RANGE = (1e-4, 1.2e-2)
READ_NOISE_SLOPE, READ_NOISE_INTERCEPT, READ_NOISE_SCATTER = 2.18, 1.20, 0.26
# Brooks et al. §3.1: the red and blue white-balance gains of their cameras' captures.
RED_GAIN_RANGE = (1.9, 2.4)
BLUE_GAIN_RANGE = (1.5, 1.9)


def srgb_to_linear(values):
    """The inverse sRGB tone curve (IEC 61966-2-1) on [0, 1]."""
    values = ops.clip(values, 0.0, 1.0)
    return ops.where(values <= 0.04045, values / 12.92, ops.power((values + 0.055) / 1.055, 2.4))


def linear_to_srgb(values):
    """The sRGB tone curve (IEC 61966-2-1) on [0, 1]; values outside are clipped first, as a camera does."""
    values = ops.clip(values, 0.0, 1.0)
    # The small floor keeps the power's gradient finite at 0; that branch is not taken there.
    return ops.where(values <= 0.0031308, values * 12.92,
                     1.055 * ops.power(ops.maximum(values, 1e-8), 1.0 / 2.4) - 0.055)


def draw_camera_levels(batch, seed):
    """Per crop: shot and read noise variances [B], and white-balance gains [B, 3] (R, G, B)."""
    log_low, log_high = math.log(SHOT_NOISE_RANGE[0]), math.log(SHOT_NOISE_RANGE[1])
    log_shot = keras.random.uniform((batch,), minval=log_low, maxval=log_high, seed=seed)
    log_read = (READ_NOISE_SLOPE * log_shot + READ_NOISE_INTERCEPT
                + keras.random.normal((batch,), stddev=READ_NOISE_SCATTER, seed=seed))
    red = keras.random.uniform((batch,), minval=RED_GAIN_RANGE[0], maxval=RED_GAIN_RANGE[1], seed=seed)
    blue = keras.random.uniform((batch,), minval=BLUE_GAIN_RANGE[0], maxval=BLUE_GAIN_RANGE[1], seed=seed)
    gains = ops.stack([red, ops.ones_like(red), blue], axis=-1)
    return ops.exp(log_shot), ops.exp(log_read), gains


def bayer_masks(shape, phase):
    """[B, H, W, 3] one-hot colour of each photosite of an RGGB Bayer mosaic.

    ``phase`` [B, 2] (0 or 1 each): the mosaic's row and column offset per
    crop, so that the pattern does not sit at the same place in every crop.
    """
    rows = ops.arange(shape[1])[None, :, None] + phase[:, 0][:, None, None]
    cols = ops.arange(shape[2])[None, None, :] + phase[:, 1][:, None, None]
    odd_row, odd_col = ops.cast(rows % 2, "float32"), ops.cast(cols % 2, "float32")
    red = (1.0 - odd_row) * (1.0 - odd_col)
    blue = odd_row * odd_col
    return ops.stack([red, 1.0 - red - blue, blue], axis=-1)


def bilinear_demosaic(planes):
    """Fill each colour plane of a mosaic ([B, H, W, 3], zero off its photosites) by bilinear interpolation.

    Red and blue: the mean of the 2 or 4 nearest sites of that colour; green:
    of the 4 nearest green sites (the classical bilinear demosaic).  The
    borders are reflected, which keeps the mosaic's pattern.
    """
    corner = [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]]
    cross = [[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]]
    kernel = ops.convert_to_tensor([corner, cross, corner], "float32")  # [3 colours, 3, 3]
    kernel = ops.transpose(kernel, (1, 2, 0))[:, :, :, None]  # [3, 3, colours, 1] depthwise
    padded = ops.pad(planes, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
    return ops.depthwise_conv(padded, kernel, strides=1, padding="valid")


def camera_pipeline(images, shot, read, gains, noise, phase=None, tone_curve=True):
    """The noisy photo a camera makes of ``images`` (0-255 sRGB), given the draws; float 0-255, not rounded.

    ``shot``, ``read`` [B]: noise variances on linear raw values in [0, 1];
    ``gains`` [B, 3]: white-balance gains (ones: none); ``noise`` [B, H, W, 1]
    or [B, H, W, 3]: standard normal draws, one per photosite with a Bayer
    mosaic (``phase`` [B, 2] given) or one per pixel and channel without.
    ``tone_curve``: linearise with the inverse sRGB curve and apply it again
    afterwards; off, the noise is added to the sRGB values themselves.

    The camera's own demosaicing is taken to reconstruct the scene: only the
    noise goes through the mosaic and the bilinear demosaic, which makes it
    correlated between neighbours, not the image (whose demosaicing errors
    the denoiser should not learn to undo).
    """
    values = images / PIXEL_MAX
    linear = srgb_to_linear(values) if tone_curve else values
    gains = gains[:, None, None, :]
    raw = linear / gains
    shot, read = shot[:, None, None, None], read[:, None, None, None]
    if phase is None:
        deviation = noise * ops.sqrt(shot * raw + read) * gains
    else:
        masks = bayer_masks(ops.shape(images), phase)
        site_raw = ops.sum(raw * masks, axis=-1, keepdims=True)
        site_noise = noise * ops.sqrt(shot * site_raw + read)
        deviation = bilinear_demosaic(site_noise * masks * gains)
    noisy = ops.clip(linear + deviation, 0.0, 1.0)
    return (linear_to_srgb(noisy) if tone_curve else noisy) * PIXEL_MAX


def camera_noise(images, seed, white_balance=True, bayer=True, tone_curve=True):
    """``camera_pipeline`` with per-crop levels, gains and mosaic phase drawn from ``seed``; rounded to 8 bits."""
    shape = ops.shape(images)
    shot, read, gains = draw_camera_levels(shape[0], seed)
    if not white_balance:
        gains = ops.ones_like(gains)
    phase = None
    if bayer:
        phase = ops.cast(keras.random.randint((shape[0], 2), 0, 2, seed=seed), "int32")
        noise = keras.random.normal((shape[0], shape[1], shape[2], 1), seed=seed)
    else:
        noise = keras.random.normal(shape, seed=seed)
    return ops.round(camera_pipeline(images, shot, read, gains, noise, phase, tone_curve))


# --- JPEG, as tensor arithmetic ----------------------------------------------------------

# ITU-T T.81 Annex K, tables K.1 and K.2: the example luminance and chrominance quantisation
# tables that libjpeg (and so Pillow, cameras and browsers) scale by the quality factor.
LUMA_TABLE = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]
CHROMA_TABLE = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
]
JPEG_BLOCK = 8
JPEG_MCU = 16  # 4:2:0 chroma subsampling: one 8x8 chroma block covers 16x16 pixels


def quantisation_table(base, quality):
    """libjpeg's ``jpeg_quality_scaling``.

    ``base`` (64 entries) scaled for each quality [B] in [1, 100] -> [B, 8, 8].
    """
    quality = ops.clip(ops.cast(quality, "float32"), 1.0, 100.0)
    scale = ops.where(quality < 50.0, 5000.0 / quality, 200.0 - 2.0 * quality)[:, None]
    table = ops.floor((ops.convert_to_tensor(base, "float32")[None, :] * scale + 50.0) / 100.0)
    return ops.reshape(ops.clip(table, 1.0, 255.0), (-1, JPEG_BLOCK, JPEG_BLOCK))


def _dct_matrix():
    """The orthonormal 8-point DCT-II as a matrix: coefficients = D @ block @ D^T."""
    index = np.arange(JPEG_BLOCK)
    matrix = np.cos((2 * index[None, :] + 1) * index[:, None] * np.pi / (2 * JPEG_BLOCK))
    matrix *= np.sqrt(2.0 / JPEG_BLOCK)
    matrix[0] /= np.sqrt(2.0)
    return matrix.astype("float32")


def _quantise_plane(plane, table):
    """Level shift, 8x8 DCT, quantise with ``table`` [B, 8, 8], dequantise, inverse DCT: [B, H, W] -> the same."""
    shape = ops.shape(plane)
    blocks = ops.reshape(plane - 128.0, (shape[0], shape[1] // JPEG_BLOCK, JPEG_BLOCK, shape[2] // JPEG_BLOCK,
                                         JPEG_BLOCK))
    dct = ops.convert_to_tensor(_dct_matrix())
    coefficients = ops.einsum("kn,bincm,lm->bickl", dct, blocks, dct)
    table = table[:, None, None, :, :]
    coefficients = ops.round(coefficients / table) * table
    blocks = ops.einsum("kn,bickl,lm->bincm", dct, coefficients, dct)
    # A decoder stores each plane's samples as 8-bit integers before the colour conversion.
    return ops.clip(ops.round(ops.reshape(blocks, shape) + 128.0), 0.0, PIXEL_MAX)


def jpeg_compress(images, quality):
    """``images`` [B, H, W, 3] (0-255) as saved to and read back from a baseline JPEG at ``quality`` [B].

    What libjpeg's defaults do (Pillow's ``save(..., quality=q)``): clip and
    round to 8 bits, JFIF RGB -> YCbCr, 4:2:0 chroma subsampling (2x2 means),
    8x8 DCT, quantisation with the Annex K tables scaled by the quality, and
    back, with the chroma upsampled by the triangle filter of libjpeg's
    "fancy upsampling" (bilinear with half-pixel centres).  libjpeg computes
    the DCT in integers, so its pixels may differ from these by a level or two.
    Sides that are no multiple of 16 are padded by mirroring, as an encoder
    pads its last blocks, and cropped back.
    """
    images = ops.clip(ops.round(ops.convert_to_tensor(images, "float32")), 0.0, PIXEL_MAX)
    shape = ops.shape(images)
    pad_h, pad_w = (-shape[1]) % JPEG_MCU, (-shape[2]) % JPEG_MCU
    padded = ops.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="symmetric")
    red, green, blue = padded[..., 0], padded[..., 1], padded[..., 2]
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    chroma = ops.stack([-0.168736 * red - 0.331264 * green + 0.5 * blue + 128.0,
                        0.5 * red - 0.418688 * green - 0.081312 * blue + 128.0], axis=-1)
    chroma = ops.round(ops.average_pool(chroma, 2, strides=2, padding="valid"))
    luma = _quantise_plane(ops.round(luma), quantisation_table(LUMA_TABLE, quality))
    chroma_table = quantisation_table(CHROMA_TABLE, quality)
    chroma = ops.stack([_quantise_plane(chroma[..., index], chroma_table) for index in range(2)], axis=-1)
    full = ops.shape(padded)
    chroma = ops.image.resize(chroma, (full[1], full[2]), interpolation="bilinear") - 128.0
    cb, cr = chroma[..., 0], chroma[..., 1]
    rgb = ops.stack([luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb], axis=-1)
    rgb = ops.clip(ops.round(rgb), 0.0, PIXEL_MAX)
    return rgb[:, : shape[1], : shape[2], :]


def draw_jpeg_quality(batch, seed, quality_range=JPEG_QUALITY_RANGE):
    """An integer quality factor per crop, uniform over ``quality_range`` (both ends included)."""
    low, high = quality_range
    return ops.floor(keras.random.uniform((batch,), minval=float(low), maxval=float(high) + 1.0, seed=seed))


IMPULSE_ONLY, GAUSSIAN_ONLY = 0, 1  # the "mixed" cases; 2 = both


def section_names(settings):
    """Noise keyword arguments with the older names ``add_noise`` and ``ImageNoise`` took, as the section's.

    ``clip`` is ``clip_noise``, ``mixed`` (a bool) ``noise_mix``, ``camera``
    (a dict) the ``camera_*`` settings and ``jpeg_quality`` (min, max) the
    ``jpeg_quality_min``/``_max`` pair.
    """
    settings = dict(settings)
    if "clip" in settings:
        settings["clip_noise"] = settings.pop("clip")
    if "mixed" in settings:
        settings["noise_mix"] = "mixed" if settings.pop("mixed") else "both"
    for key, value in (settings.pop("camera", None) or {}).items():
        settings[f"camera_{key}"] = value
    if "jpeg_quality" in settings:
        settings["jpeg_quality_min"], settings["jpeg_quality_max"] = settings.pop("jpeg_quality")
    return settings


def add_noise(images, sigma, salt_pepper, seed, box=None, **settings):
    """Return ``clip(images + N(0, sigma²) then salt-and-pepper, 0, 255)``, or the noise ``settings`` describe.

    ``images``: float tensor [B, H, W, C] on the 0-255 scale.  ``seed``: an
    int or a ``keras.random.SeedGenerator``.  ``box``: ``None`` to noise the
    whole image, or ``(min_fraction, max_fraction)`` of each side for one
    random rectangle per image (Fig. 9).  ``sigma``, ``salt_pepper`` and the
    keyword ``settings`` are the fields of ``config.NoiseSettings``, whose
    help says what each does (the older names of ``section_names`` work too):
    ``salt_pepper`` is a fraction of *pixels* (all channels together, so they
    appear as white/black dots) replaced, half by 255 and half by 0.
    """
    noise = NoiseSettings(sigma=sigma, salt_pepper=salt_pepper, **section_names(settings))
    images = ops.convert_to_tensor(images, "float32")
    shape = ops.shape(images)
    per_image_shape = (shape[0], 1, 1, 1)
    gaussian_on = impulse_on = 1.0
    if noise.noise_mix == "mixed":
        case = ops.floor(keras.random.uniform(per_image_shape, maxval=3.0, seed=seed))
        gaussian_on = ops.cast(ops.not_equal(case, IMPULSE_ONLY), "float32")
        impulse_on = ops.cast(ops.not_equal(case, GAUSSIAN_ONLY), "float32")
    noisy = images
    if noise.sigma_max is not None:
        per_image = keras.random.uniform(per_image_shape, minval=noise.sigma, maxval=noise.sigma_max, seed=seed)
        noisy = noisy + keras.random.normal(shape, seed=seed) * per_image * gaussian_on
    elif noise.sigma > 0:
        noisy = noisy + keras.random.normal(shape, stddev=noise.sigma, seed=seed) * gaussian_on
    fraction = noise.salt_pepper
    if noise.salt_pepper_max is not None:
        fraction = keras.random.uniform(per_image_shape, minval=noise.salt_pepper, maxval=noise.salt_pepper_max,
                                        seed=seed)
    if noise.salt_pepper > 0 or noise.salt_pepper_max:
        fraction = fraction * impulse_on
        pixel_shape = (shape[0], shape[1], shape[2], 1)
        u = keras.random.uniform(pixel_shape, seed=seed)
        salt = ops.cast(u < fraction / 2, "float32")
        pepper = ops.cast((u >= fraction / 2) & (u < fraction), "float32")
        noisy = noisy * (1.0 - salt - pepper) + PIXEL_MAX * salt
    if noise.clip_noise:
        noisy = ops.clip(noisy, 0.0, PIXEL_MAX)
    if noise.eight_bit_share > 0:
        as_file = ops.cast(keras.random.uniform(per_image_shape, seed=seed) < noise.eight_bit_share, "float32")
        noisy = as_file * ops.round(ops.clip(noisy, 0.0, PIXEL_MAX)) + (1.0 - as_file) * noisy
    # The camera and JPEG draws come after all others, so runs without them draw the noise they always did.
    if noise.camera_share > 0:
        from_camera = ops.cast(keras.random.uniform(per_image_shape, seed=seed) < noise.camera_share, "float32")
        camera = camera_noise(images, seed, white_balance=noise.camera_white_balance, bayer=noise.camera_bayer,
                              tone_curve=noise.camera_tone_curve)
        noisy = from_camera * camera + (1.0 - from_camera) * noisy
    if noise.jpeg_share > 0:
        quality = draw_jpeg_quality(shape[0], seed, (noise.jpeg_quality_min, noise.jpeg_quality_max))
        as_jpeg = ops.cast(keras.random.uniform(per_image_shape, seed=seed) < noise.jpeg_share, "float32")
        noisy = as_jpeg * jpeg_compress(noisy, quality) + (1.0 - as_jpeg) * noisy
    if box is not None:
        mask = _box_mask(shape, box[0], box[1], seed)
        noisy = mask * noisy + (1.0 - mask) * images
    return noisy


def _replica_position():
    """(replicas in sync, this replica's index) under tf.distribute, else (1, 0)."""
    if keras.backend.backend() != "tensorflow":
        return 1, 0
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 1, 0
    return context.num_replicas_in_sync, context.replica_id_in_sync_group


_NOISE_KEYWORDS = set(NoiseSettings.section_fields()) | {"clip", "mixed", "camera", "jpeg_quality"}
_KINDS = {float: float, int: int, bool: bool, float | None: float, int | None: int}


@keras.saving.register_keras_serializable(package="stl_denoise")
class ImageNoise(keras.layers.Layer):
    """Corrupt a clean batch with the §3.2 noise and/or a camera's; fresh noise on every call (``add_noise``)."""

    def __init__(self, sigma=NoiseSettings.sigma, salt_pepper=NoiseSettings.salt_pepper, box=None, seed=None,
                 **kwargs):
        settings = section_names({name: kwargs.pop(name) for name in list(kwargs) if name in _NOISE_KEYWORDS})
        super().__init__(**kwargs)
        section = NoiseSettings(sigma=sigma, salt_pepper=salt_pepper, **settings)
        for ok, message in section.checks():  # the config's checks, in the layer's keyword names
            if not ok:
                raise ValueError(re.sub(r"--([a-z-]+)", lambda m: m.group(1).replace("-", "_"), message))
        for field in dataclasses.fields(NoiseSettings):
            value = getattr(section, field.name)
            setattr(self, field.name, value if value is None or field.type is str else _KINDS[field.type](value))
        self.box = tuple(box) if box is not None else None
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def section(self):
        """The noise settings: ``ImageNoise(**layer.section)`` draws the same noise."""
        return {name: getattr(self, name) for name in NoiseSettings.section_fields()}

    # The older attribute names (``section_names``).
    clip = property(lambda self: self.clip_noise)
    mixed = property(lambda self: self.noise_mix == "mixed")
    camera = property(lambda self: {"white_balance": self.camera_white_balance, "bayer": self.camera_bayer,
                                    "tone_curve": self.camera_tone_curve})
    jpeg_quality = property(lambda self: (self.jpeg_quality_min, self.jpeg_quality_max))

    def call(self, images):
        replicas, replica_id = _replica_position()
        if replicas == 1:
            return self._noise(images)
        # Under tf.distribute every replica holds the same generator state and
        # would draw the same noise.  Each draws the noise of the *global*
        # batch and keeps its own slice, so N replicas see exactly the noise
        # one device would have drawn for the same global batch.
        local = ops.shape(images)[0]
        noisy = self._noise(ops.tile(images, [replicas, 1, 1, 1]))
        return ops.slice(noisy, [replica_id * local, 0, 0, 0], ops.shape(images))

    def _noise(self, images):
        return add_noise(images, seed=self.seed_generator, box=self.box, **self.section)

    def compute_output_shape(self, input_shape):
        return input_shape

    # Keras does not save seed-generator state with the weights; without it a
    # resumed run would draw different noise than an uninterrupted one.
    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["seed_state"] = keras.ops.convert_to_numpy(self.seed_generator.state.value)

    def load_own_variables(self, store):
        if "seed_state" in store:
            self.seed_generator.state.assign(store["seed_state"])

    def get_config(self):
        config = super().get_config()
        config.update({**self.section, "box": self.box, "seed": self.seed})
        return config
