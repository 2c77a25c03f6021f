"""The 10-way classifier of paper Table 2 / §4.2 and its per-batch metrics.

conv1..conv5 are built by ``models.encoder_convs``, the very function that
builds the denoiser's encoder, so names and shapes match Table 1 and transfer
(§4.3) can copy weights layer by layer.  Then a 1024-unit fully connected
layer with dropout and a 10-way softmax.
"""

import keras

# The module, not its names: Keras's first import may come from inside models.py, and the package then
# registers this module's classes while models.py is still half-loaded (stl_denoise/__init__.py).
from stl_denoise import models
from stl_denoise.config import DEFAULT_BOTTLENECK_CHANNELS

NUM_CLASSES = 10  # STL-10's classes (and the digits' 0-9 offline)
FEATURE_UNITS = 1024  # Table 2 "Fully-Connected 1024": the perceptual features
FEATURE_LAYER = "fc"
DEFAULT_DROPOUT = 0.5  # the paper gives none; TensorFlow's MNIST tutorial (its likely template) keeps 0.5
ENCODER_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


def build_classifier(
    bottleneck_channels=DEFAULT_BOTTLENECK_CHANNELS,
    kernel_size=3,
    init_stddev="he",
    dropout=DEFAULT_DROPOUT,
    image_size=64,
    seed=None,
    name="classifier",
):
    """Table 2: conv1..conv5 -> flatten -> fc (1024, ReLU) -> dropout -> softmax (10).

    Input: [B, image_size, image_size, 3] on the 0-255 scale, like the
    denoiser, so that transferred encoder weights see what they were trained
    on.  Output: class probabilities [B, 10].  ``init_stddev`` is the
    truncated-normal std of every layer ("he" = sqrt(2 / fan_in), as the
    denoiser; the paper's "truncated normal initialization", §4.3).
    """
    seeds = models.layer_seeds(seed)
    images = keras.Input(shape=(image_size, image_size, 3), name="images")
    x = images
    for conv in models.encoder_convs(bottleneck_channels, kernel_size, init_stddev, seeds):
        x = conv(x)
    # Skip the denoiser's decoder seeds (deconv1..deconv5) so the head's seeds never repeat an encoder's.
    for _ in models.decoder_specs():
        next(seeds)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(
        FEATURE_UNITS, activation="relu", name=FEATURE_LAYER,
        kernel_initializer=models.kernel_initializer(init_stddev, next(seeds)), bias_initializer="zeros",
    )(x)
    x = keras.layers.Dropout(dropout, seed=next(seeds), name="dropout")(x)
    # float32 even under a mixed-precision policy (Keras' advice for a model's output): float16 or
    # bfloat16 probabilities are too coarse for the cross-entropy's log and the accuracy's arg-max ties.
    probabilities = keras.layers.Dense(
        NUM_CLASSES, activation="softmax", name="softmax", dtype="float32",
        kernel_initializer=models.kernel_initializer(init_stddev, next(seeds)), bias_initializer="zeros",
    )(x)
    return keras.Model(images, probabilities, name=name)


def feature_extractor(classifier):
    """The classifier cut after its fully connected layer (1024-d, post-ReLU), frozen."""
    extractor = keras.Model(classifier.input, classifier.get_layer(FEATURE_LAYER).output, name="perceptual_features")
    extractor.trainable = False
    return extractor


@keras.saving.register_keras_serializable(package="stl_denoise")
class BatchCrossEntropy(keras.metrics.SparseCategoricalCrossentropy):
    """Cross-entropy of the *current* batch (with ``callbacks.ResetEachBatch``).

    ``mean_b -log p_b[y_b]`` with integer labels y (paper §4.2, one-hot CE).
    Keras' loss log is an epoch mean; a mean metric reset before every step is
    the batch's own value, summed correctly across tf.distribute replicas.
    """

    def __init__(self, name="cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)


@keras.saving.register_keras_serializable(package="stl_denoise")
class BatchAccuracy(keras.metrics.SparseCategoricalAccuracy):
    """Fraction of the *current* batch whose arg-max class equals the label."""

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

