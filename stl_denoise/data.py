"""Training data sources as tf.data pipelines: STL-10 (tfds), scikit-image's photographs, a folder.

Every source yields float32 batches [B, crop, crop, 3] on the 0-255 scale of
*clean* images; noise is added later, inside the compiled step.  Crops are
random for training and central for evaluation (STL-10 is 96x96, the paper's
network takes 64x64, paper §4.1).  Which files a folder holds is folders.py's
job, its validation split splits.py's, and preparing STL-10 stl10.py's.
"""

import os
from pathlib import Path

from stl_denoise._quiet import import_tensorflow
from stl_denoise.errors import DataUnavailableError
from stl_denoise.folders import folder_hash, image_size, list_image_files
from stl_denoise.splits import split_files
from stl_denoise.stl10 import stl10_builder

tf = import_tensorflow()
AUTOTUNE = tf.data.AUTOTUNE

# Natural colour photographs that scikit-image ships inside its wheel.
SAMPLE_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "motorcycle_right")

# Decoded images are kept in memory when they fit this budget.
CACHE_BYTES = 2 * 1024**3


def sample_images():
    """The bundled photographs as {name: uint8 HxWx3 array}."""
    import skimage.data

    images = {}
    for name in SAMPLE_IMAGES:
        if name.startswith("motorcycle"):
            left, right, _ = skimage.data.stereo_motorcycle()
            images[name] = left if name.endswith("left") else right
        else:
            images[name] = getattr(skimage.data, name)()
    return images


def _check_min_size(files, crop_size):
    _check_trainable(files)
    too_small = [f"{path} ({h}x{w})" for path in files for h, w in [image_size(path)] if min(h, w) < crop_size]
    if too_small:
        raise DataUnavailableError(
            f"{too_small[0]}: smaller than the {crop_size}x{crop_size} crop"
            + (f" (and {len(too_small) - 1} more)" if len(too_small) > 1 else "")
        )


def _check_trainable(files):
    """Decode every file exactly as training will (``decode_image_file``), naming the ones that fail.

    Otherwise a TIFF (TensorFlow's decoder does not read TIFF) or a PNG
    truncated after its header passes the header checks and stops training
    mid-run with a stack trace.
    """
    from stl_denoise._quiet import silenced_stderr_fd
    from stl_denoise.errors import first_line

    bad = []
    for path in files:
        try:
            os.fsencode(path).decode("utf-8")
        except UnicodeDecodeError:
            bad.append((path, "its name is not UTF-8, which TensorFlow needs; rename it"))
            continue
        try:
            with silenced_stderr_fd():  # libjpeg/libpng print unnamed warnings of their own
                tf.io.decode_image(tf.io.read_file(str(path)), channels=3, dtype=tf.uint8, expand_animations=False)
        except (tf.errors.OpError, ValueError) as error:
            bad.append((path, f"not a readable image for training: TensorFlow's decoder, which training uses, "
                              f"fails on it ({first_line(error)}); convert it to PNG or remove it"))
    if bad:
        path, reason = bad[0]
        more = f" (and {len(bad) - 1} more: {', '.join(str(p) for p, _ in bad[1:4])}{', ...' if len(bad) > 4 else ''})"
        raise DataUnavailableError(f"{path}: {reason}" + (more if len(bad) > 1 else ""))


def _stl10_images(split, data_dir):
    builder = stl10_builder(data_dir)
    return builder.as_dataset(split=split, shuffle_files=False).map(
        lambda example: example["image"], num_parallel_calls=AUTOTUNE
    )


def decode_image_file(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


# The hostile-input suite's derandomised examples are drawn from its source, which names this.
_decode_file = decode_image_file


def resize_short_side(image, side):
    """uint8 image resized (area-averaged) so that its shorter side is ``side`` pixels."""
    height_width = tf.cast(tf.shape(image)[:2], tf.float32)
    size = tf.cast(tf.round(height_width * (side / tf.reduce_min(height_width))), tf.int32)
    resized = tf.image.resize(image, tf.maximum(size, side), method="area", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _folder_images(folder, crop_size, split="all"):
    files = split_files(list_image_files(folder), split)
    _check_min_size(files, crop_size)
    images = tf.data.Dataset.from_tensor_slices([str(p) for p in files])
    images = images.map(decode_image_file, num_parallel_calls=AUTOTUNE)
    total_bytes = sum(h * w * 3 for h, w in map(image_size, files))
    return images.cache() if total_bytes <= CACHE_BYTES else images, len(files)


def _sample_dataset():
    arrays = list(sample_images().values())
    return tf.data.Dataset.from_generator(
        lambda: iter(arrays), output_signature=tf.TensorSpec([None, None, 3], tf.uint8)
    ).cache()


def source_images(source, crop_size=64, data_dir=None, split="unlabelled", folder_split="all", short_side=None):
    """Dataset of uint8 images of any size, and the number of images (or None).

    ``short_side``: resize every image so its shorter side has this many pixels.
    """
    if source == "sample":
        images, count = _sample_dataset(), len(SAMPLE_IMAGES)
    elif source == "stl10":
        images, count = _stl10_images(split, data_dir), None
    else:
        images, count = _folder_images(source, crop_size, folder_split)
    if short_side:
        # Resized once, before the cache of the decoded images, not on every pass.
        images = images.map(lambda image: resize_short_side(image, short_side), num_parallel_calls=AUTOTUNE)
        images = images.cache() if count else images
    return images, count


def random_or_centre_crop(image, crop_size, seed, random):
    """A crop_size x crop_size x 3 crop: stateless-random under ``seed`` if ``random``, else the centre one."""
    if random:
        return tf.image.stateless_random_crop(image, [crop_size, crop_size, 3], seed=seed)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    top, left = (height - crop_size) // 2, (width - crop_size) // 2
    return image[top : top + crop_size, left : left + crop_size, :]


def training_dataset(source, batch_size, crop_size=64, seed=0, data_dir=None, skip_batches=0, split="all",
                     short_side=None):
    """Endless batches of random clean crops, reproducible under ``seed``.

    Element k of the stream is cropped with the stateless seed (seed, k), so
    skipping ``skip_batches`` batches (for a resumed run) gives exactly the
    batches an uninterrupted run would have seen next.  ``split`` selects
    the train/validation part of a folder (``split_files``); ``short_side``
    resizes every image first (``resize_short_side``).
    """
    images, count = source_images(source, crop_size, data_dir, folder_split=split, short_side=short_side)

    def crop(crop_seed, image):
        return tf.cast(random_or_centre_crop(image, crop_size, crop_seed, True), tf.float32)

    return seeded_crop_batches(images, count, seed, batch_size, skip_batches, crop)


def seeded_crop_batches(elements, count, seed, batch_size, skip_batches, crop, buffer_cap=10_000):
    """Shuffle once per seed, repeat, and crop element k with the stateless seed (seed, k).

    One fixed order per seed: with reshuffling, every extra iterator that
    Keras or tf.distribute opens would silently change the data order.
    Crops still differ between passes (their seed is the element index), and
    skipping ``skip_batches`` batches resumes the stream exactly.
    ``crop(crop_seed, element)`` returns the training element.
    """
    stream = elements.shuffle(min(count or buffer_cap, buffer_cap), seed=seed, reshuffle_each_iteration=False).repeat()
    stream = stream.enumerate().skip(skip_batches * batch_size)

    def seeded(index, element):
        return crop(tf.stack([tf.cast(seed, tf.int64), index]), element)

    return stream.map(seeded, num_parallel_calls=AUTOTUNE).batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def evaluation_dataset(source, batch_size, crop_size=64, data_dir=None, limit=None):
    """Central crops, in a fixed order, for evaluation and figures."""
    split = "test" if source == "stl10" else "unlabelled"
    images, _ = source_images(source, crop_size, data_dir, split=split)
    if limit:
        images = images.take(limit)
    images = images.map(lambda image: tf.cast(random_or_centre_crop(image, crop_size, None, False), tf.float32))
    return images.batch(batch_size).prefetch(AUTOTUNE)


def describe_source(source, data_dir=None, split="all"):
    """What ``config.json`` records about the data."""
    if source == "sample":
        import skimage

        return {"kind": "sample", "images": list(SAMPLE_IMAGES), "scikit_image": skimage.__version__}
    if source == "stl10":
        import tensorflow_datasets as tfds

        return {"kind": "stl10", "split": "unlabelled", "tfds": tfds.__version__,
                "data_dir": data_dir or os.environ.get("TFDS_DATA_DIR")}
    files = split_files(list_image_files(source), split)
    info = {"kind": "folder", "path": str(Path(source).resolve()), "files": len(files),
            "sha256": folder_hash(source, files)}
    if split != "all":
        info["split"] = split
    return info
