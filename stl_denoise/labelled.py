"""Labelled images for the classifier (paper §4.1-§4.3): STL-10 or, offline, digits.

``stl10``: the tfds ``train`` (5,000) and ``test`` (8,000) splits, 96x96.
The paper trains on all "13k labelled images" and reports accuracy "over test
label images", i.e. on images it trained on:

* ``paper``    train on train+test (13,000), evaluate on test (leaks, as published);
* ``standard`` train on train (5,000), evaluate on the held-out test (8,000).

The ``unlabelled`` split (100k, label -1) never reaches a classifier: asking
for it is refused, and every example is checked for a label >= 0.

``digits``: scikit-learn's bundled ``load_digits`` (1,797 real 8x8 grey
handwritten digits, classes 0-9, from UCI), scaled 0-16 -> 0-255, upsampled
bilinearly to 64x64 and repeated over 3 channels.  It is only a stand-in so
the pipeline runs offline: grey, blurry, centred digits are far easier to
tell apart than STL-10's colour photos of animals and vehicles.  Split by
position (the file is roughly ordered by writer): ``standard`` trains on the
first 1,000 and evaluates on the last 797; ``paper`` trains on all 1,797 and
evaluates on the same last 797.
"""

import numpy as np

from stl_denoise._quiet import import_tensorflow
from stl_denoise.config import LABELLED_SOURCES, LABELLED_SPLITS
from stl_denoise.errors import DataUnavailableError, UserError

tf = import_tensorflow()

# (training splits, evaluation split); the paper's 13k = train + test.
STL10_SPLITS = {"paper": (("train", "test"), "test"), "standard": (("train",), "test")}
DIGITS_COUNT = 1797  # images in scikit-learn's digits set
DIGITS_TRAIN = 1000  # standard split: first 1,000 train, the remaining 797 held out
UNLABELLED_MESSAGE = "an unlabelled example (label -1) reached the classifier"


def train_count(source, split):
    """Number of training images: STL-10 5,000 / 13,000, digits 1,000 / 1,797."""
    if source == "stl10":
        return 13_000 if split == "paper" else 5_000
    return DIGITS_COUNT if split == "paper" else DIGITS_TRAIN


def check_source(source, split):
    if source not in LABELLED_SOURCES:
        raise UserError(f"--data must be one of {', '.join(LABELLED_SOURCES)} for a classifier, got {source!r}")
    if split not in LABELLED_SPLITS:
        raise UserError(f"--labelled-split must be one of {', '.join(LABELLED_SPLITS)}, got {split!r}")


def reject_unlabelled(examples):
    """Pass (image, label) pairs through, failing on any label < 0 (tfds' unlabelled -1)."""

    def check(image, label):
        with tf.control_dependencies([tf.debugging.assert_non_negative(label, message=UNLABELLED_MESSAGE)]):
            return image, tf.identity(label)

    return examples.map(check)


def stl10_examples(tfds_split, data_dir=None):
    """(uint8 96x96x3 image, int64 label) pairs of a labelled STL-10 split."""
    from stl_denoise.stl10 import stl10_builder

    if "unlabelled" in tfds_split:
        raise UserError(
            f"STL-10 split {tfds_split!r}: the unlabelled images carry no class and cannot train a classifier")
    try:
        builder = stl10_builder(data_dir)
    except DataUnavailableError as error:
        raise DataUnavailableError(f"{error}; for the classifier offline use DATA=digits (--data digits)") from None
    examples = builder.as_dataset(split=tfds_split, shuffle_files=False)
    return reject_unlabelled(examples.map(lambda example: (example["image"], example["label"])))


def digits_arrays(image_size=64):
    """All 1,797 scikit-learn digits as (float32 [N, S, S, 3] on 0-255, int64 labels)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    grey = digits.images.astype("float32")[..., None] * (255.0 / 16.0)
    images = tf.image.resize(grey, (image_size, image_size), method="bilinear").numpy()
    images = np.clip(np.repeat(images, 3, axis=-1), 0.0, 255.0)
    return images, digits.target.astype("int64")


def _digits_examples(split, part, image_size):
    images, labels = digits_arrays(image_size)
    if part == "eval" or split == "standard":
        chosen = slice(DIGITS_TRAIN, None) if part == "eval" else slice(0, DIGITS_TRAIN)
        images, labels = images[chosen], labels[chosen]
    return tf.data.Dataset.from_tensor_slices((images, labels)), len(labels)


def _examples(source, split, part, image_size, data_dir):
    """(dataset of (image, label), count or None) for ``part`` = train | eval."""
    check_source(source, split)
    if source == "digits":
        return _digits_examples(split, part, image_size)
    train_splits, eval_split = STL10_SPLITS[split]
    if part == "eval":
        return stl10_examples(eval_split, data_dir), None
    examples = stl10_examples(train_splits[0], data_dir)
    for other in train_splits[1:]:
        examples = examples.concatenate(stl10_examples(other, data_dir))
    return examples, None


def training_batches(source, split, batch_size, image_size=64, seed=0, data_dir=None, skip_batches=0):
    """Endless shuffled batches (float32 images 0-255, int64 labels) with random crops.

    Seeded and resumable like ``data.training_dataset``: element k is cropped
    with the stateless seed (seed, k).
    """
    from stl_denoise.data import random_or_centre_crop, seeded_crop_batches

    examples, count = _examples(source, split, "train", image_size, data_dir)

    def crop(crop_seed, example):
        image, label = example
        return tf.cast(random_or_centre_crop(image, image_size, crop_seed, True), tf.float32), label

    return seeded_crop_batches(examples, count, seed, batch_size, skip_batches, crop, buffer_cap=13_000)


def evaluation_arrays(source, split, image_size=64, data_dir=None, limit=None):
    """The held-out (or, for ``paper``, reported) images as centre crops: (float32 array, int64 array)."""
    from stl_denoise.data import random_or_centre_crop

    examples, _ = _examples(source, split, "eval", image_size, data_dir)
    if limit:
        examples = examples.take(limit)
    examples = examples.map(
        lambda image, label: (tf.cast(random_or_centre_crop(image, image_size, None, False), tf.float32), label))
    images, labels = [], []
    for image_batch, label_batch in examples.batch(500):
        images.append(image_batch.numpy())
        labels.append(label_batch.numpy())
    if not images:
        raise UserError(f"{source}: the evaluation split is empty")
    return np.concatenate(images), np.concatenate(labels)


def describe(source, split, data_dir=None):
    """What a classifier run's ``config.json`` records about its data."""
    check_source(source, split)
    if source == "digits":
        import sklearn

        return {"kind": "digits", "split": split, "train_images": DIGITS_COUNT if split == "paper" else DIGITS_TRAIN,
                "eval_images": DIGITS_COUNT - DIGITS_TRAIN, "scikit_learn": sklearn.__version__,
                "note": "scikit-learn load_digits, 8x8 grey upsampled to 64x64x3; an offline stand-in for STL-10"}
    import os

    import tensorflow_datasets as tfds

    train_splits, eval_split = STL10_SPLITS[split]
    return {"kind": "stl10", "split": split, "train_split": "+".join(train_splits), "eval_split": eval_split,
            "tfds": tfds.__version__, "data_dir": data_dir or os.environ.get("TFDS_DATA_DIR")}
