"""Noise model of paper §3.2: Gaussian plus salt-and-pepper, on the 0-255 scale.

The noise is a Keras layer so that it runs inside the compiled training step on
whatever device holds the batch: a fresh draw every step from a seeded
``keras.random.SeedGenerator`` whose state is a model variable (so it is saved
and restored with the weights).
"""

import keras
from keras import ops

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


IMPULSE_ONLY, GAUSSIAN_ONLY = 0, 1  # the "mixed" cases; 2 = both


def add_noise(images, sigma, salt_pepper, seed, box=None, sigma_max=None, clip=True, salt_pepper_max=None,
              mixed=False, eight_bit_share=0.0):
    """Return ``clip(images + N(0, sigma²) then salt-and-pepper, 0, 255)``.

    ``images``: float tensor [B, H, W, C] on the 0-255 scale.
    ``salt_pepper``: fraction of *pixels* (all channels together, so they
    appear as white/black dots) replaced, half by 255 and half by 0.
    ``box``: ``None`` to noise the whole image, or ``(min_fraction,
    max_fraction)`` of each side for one random rectangle per image (Fig. 9).
    ``sigma_max``: ``None`` for one fixed ``sigma``; otherwise each image gets
    its own sigma drawn uniformly from [sigma, sigma_max] (blind denoising).
    ``clip``: ``False`` keeps the Gaussian noise unclipped (the standard
    benchmark protocol, used by the modern preset).
    ``salt_pepper_max``: like ``sigma_max``, a per-image fraction drawn from
    [salt_pepper, salt_pepper_max].
    ``mixed``: each image gets, with equal chance, the Gaussian noise only,
    the salt-and-pepper only, or both (the paper's §3.2 noise is both).
    ``eight_bit_share``: this share of the images is clipped to [0, 255] and
    rounded, as a noisy photo saved as an 8-bit file is.
    """
    images = ops.convert_to_tensor(images, "float32")
    shape = ops.shape(images)
    per_image_shape = (shape[0], 1, 1, 1)
    gaussian_on = impulse_on = 1.0
    if mixed:
        case = ops.floor(keras.random.uniform(per_image_shape, maxval=3.0, seed=seed))
        gaussian_on = ops.cast(ops.not_equal(case, IMPULSE_ONLY), "float32")
        impulse_on = ops.cast(ops.not_equal(case, GAUSSIAN_ONLY), "float32")
    noisy = images
    if sigma_max is not None:
        per_image = keras.random.uniform(per_image_shape, minval=sigma, maxval=sigma_max, seed=seed)
        noisy = noisy + keras.random.normal(shape, seed=seed) * per_image * gaussian_on
    elif sigma > 0:
        noisy = noisy + keras.random.normal(shape, stddev=sigma, seed=seed) * gaussian_on
    fraction = salt_pepper
    if salt_pepper_max is not None:
        fraction = keras.random.uniform(per_image_shape, minval=salt_pepper, maxval=salt_pepper_max, seed=seed)
    if salt_pepper > 0 or salt_pepper_max:
        fraction = fraction * impulse_on
        pixel_shape = (shape[0], shape[1], shape[2], 1)
        u = keras.random.uniform(pixel_shape, seed=seed)
        salt = ops.cast(u < fraction / 2, "float32")
        pepper = ops.cast((u >= fraction / 2) & (u < fraction), "float32")
        noisy = noisy * (1.0 - salt - pepper) + PIXEL_MAX * salt
    if clip:
        noisy = ops.clip(noisy, 0.0, PIXEL_MAX)
    if eight_bit_share > 0:
        as_file = ops.cast(keras.random.uniform(per_image_shape, seed=seed) < eight_bit_share, "float32")
        noisy = as_file * ops.round(ops.clip(noisy, 0.0, PIXEL_MAX)) + (1.0 - as_file) * noisy
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


@keras.saving.register_keras_serializable(package="stl_denoise")
class ImageNoise(keras.layers.Layer):
    """Corrupt a clean batch with the §3.2 noise; fresh noise on every call."""

    def __init__(self, sigma=25.0, salt_pepper=0.02, box=None, seed=None, sigma_max=None, clip=True,
                 salt_pepper_max=None, mixed=False, eight_bit_share=0.0, **kwargs):
        super().__init__(**kwargs)
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        if sigma_max is not None and sigma_max < sigma:
            raise ValueError(f"sigma_max must be >= sigma ({sigma}), got {sigma_max}")
        if not 0.0 <= salt_pepper <= 1.0:
            raise ValueError(f"salt_pepper must be in [0, 1], got {salt_pepper}")
        if salt_pepper_max is not None and not salt_pepper <= salt_pepper_max <= 1.0:
            raise ValueError(f"salt_pepper_max must be in [salt_pepper ({salt_pepper}), 1], got {salt_pepper_max}")
        if not 0.0 <= eight_bit_share <= 1.0:
            raise ValueError(f"eight_bit_share must be in [0, 1], got {eight_bit_share}")
        self.sigma = float(sigma)
        self.salt_pepper = float(salt_pepper)
        self.box = tuple(box) if box is not None else None
        self.seed = seed
        self.sigma_max = None if sigma_max is None else float(sigma_max)
        self.clip = bool(clip)
        self.salt_pepper_max = None if salt_pepper_max is None else float(salt_pepper_max)
        self.mixed = bool(mixed)
        self.eight_bit_share = float(eight_bit_share)
        self.seed_generator = keras.random.SeedGenerator(seed)

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
        return add_noise(images, self.sigma, self.salt_pepper, self.seed_generator, self.box, self.sigma_max,
                         self.clip, self.salt_pepper_max, self.mixed, self.eight_bit_share)

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
        config.update(
            {"sigma": self.sigma, "salt_pepper": self.salt_pepper, "box": self.box, "seed": self.seed,
             "sigma_max": self.sigma_max, "clip": self.clip, "salt_pepper_max": self.salt_pepper_max,
             "mixed": self.mixed, "eight_bit_share": self.eight_bit_share}
        )
        return config
