"""Perceptual loss of paper §3.2 / §4.2 (after Johnson, Alahi & Fei-Fei 2016).

A trained Table 2 classifier, cut after its 1024-unit fully connected layer
and frozen, maps an image to a feature vector FC(.).  The loss between the
denoised image X' and the clean image Y is the squared L2 distance

    L = sum_{i=1}^{1024} (FC(X')_i - FC(Y)_i)^2     (averaged over the batch)

§4.2 says "L2 distance" but prints ``sum_i FC(X')_i - Y_i``, with neither a
square nor an absolute value (and Y where FC(Y) is meant); taken literally it
is unbounded below, so we use the squared distance the text describes.
"""

import keras
from keras import ops

from stl_denoise.classifier import FEATURE_LAYER, feature_extractor
from stl_denoise.config import ClassifierConfig
from stl_denoise.errors import UserError
from stl_denoise.pretrained import load_keras_file
from stl_denoise.runs import saved_model_path


def load_extractor(classifier_run, image_size):
    """The frozen 1024-d feature extractor of ``RUN_DIR/classifier.keras``."""
    path = saved_model_path(classifier_run, ClassifierConfig.KIND)
    if not path.is_file():
        raise UserError(f"{path}: no trained classifier there; make one with `make pretrain-classify` "
                        "or `stl-denoise transfer --init truncnormal --out DIR`")
    classifier = load_keras_file(path, "cannot load the classifier")
    if FEATURE_LAYER not in {layer.name for layer in classifier.layers}:
        raise UserError(f"{path}: has no {FEATURE_LAYER!r} layer; not a classifier of this project")
    expected = tuple(classifier.input.shape[1:3])
    if expected != (image_size, image_size):
        raise UserError(f"{path}: the classifier takes {expected[0]}x{expected[1]} images but training crops are "
                        f"{image_size}x{image_size}; use --crop-size {expected[0]}")
    return feature_extractor(classifier)


def feature_distance(extractor, clean, denoised):
    """Per-image squared L2 distance between the frozen features, shape [B]."""
    difference = extractor(denoised, training=False) - extractor(clean, training=False)
    return ops.sum(ops.square(difference), axis=-1)


class PerceptualLoss(keras.losses.Loss):
    """``mean_b sum_i (FC(X'_b)_i - FC(Y_b)_i)^2``; ``y_true`` = clean Y, ``y_pred`` = denoised X'."""

    def __init__(self, extractor, name="perceptual_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.extractor = extractor

    def call(self, y_true, y_pred):
        return feature_distance(self.extractor, y_true, y_pred)


class BatchPerceptualDistance(keras.metrics.Mean):
    """The perceptual loss of the *current* batch, logged per iteration as ``perceptual``.

    A mean over the batch's images, reset before every step by
    ``callbacks.ResetEachBatch`` (like ``BatchMeanSquaredError``), so that
    under tf.distribute it sums over all replicas, not replica 0's share.
    """

    def __init__(self, extractor, name="perceptual", **kwargs):
        super().__init__(name=name, **kwargs)
        self.extractor = extractor

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(feature_distance(self.extractor, y_true, y_pred), sample_weight)
