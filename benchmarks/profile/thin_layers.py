"""Alternatives for the two thin layers (conv1: 3->64, deconv5: 64->3), fwd+bwd at batch 10.

    python benchmarks/profile/thin_layers.py

Prints median ms of: conv1 as is / input padded to 8 channels / im2col (extract_patches + matmul);
deconv5 as is (Conv2DTranspose) / as a Conv2D / Conv2D with outputs padded to 16 / transposed with
outputs padded to 16.  docs/performance.md, "Where the step time goes".
"""
import statistics
import time

import stl_denoise  # noqa: F401  (quiet TensorFlow import)
from stl_denoise._quiet import import_tensorflow

tf = import_tensorflow()
BATCH = 10
image = tf.random.uniform((BATCH, 64, 64, 3))
features = tf.random.uniform((BATCH, 64, 64, 64))
conv1_kernel = tf.Variable(tf.random.normal((3, 3, 3, 64)))
deconv5_kernel = tf.Variable(tf.random.normal((3, 3, 3, 64)))  # transposed conv: (h, w, out, in)
conv_kernel = tf.Variable(tf.random.normal((3, 3, 64, 3)))


def median_ms(fn, argument, repeats=40):
    compiled = tf.function(fn)
    for _ in range(5):
        compiled(argument)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda value: value.numpy(), compiled(argument))
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1e3, 2)


def gradients(forward, x, variables, watch_input):
    with tf.GradientTape() as tape:
        if watch_input:
            tape.watch(x)
        loss = tf.reduce_sum(tf.nn.relu(forward(x)))
    return tape.gradient(loss, ([x] if watch_input else []) + variables)


conv1 = {
    "as is": lambda x: gradients(lambda x: tf.nn.conv2d(x, conv1_kernel, 1, "SAME"), x, [conv1_kernel], False),
    "input padded to 8": lambda x: gradients(
        lambda x: tf.nn.conv2d(tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, 5]]),
                               tf.pad(conv1_kernel, [[0, 0], [0, 0], [0, 5], [0, 0]]), 1, "SAME"),
        x, [conv1_kernel], False),
    "im2col": lambda x: gradients(
        lambda x: tf.einsum("bhwk,kc->bhwc", tf.image.extract_patches(x, [1, 3, 3, 1], [1] * 4, [1] * 4, "SAME"),
                            tf.reshape(conv1_kernel, (27, 64))),
        x, [conv1_kernel], False),
}
deconv5 = {
    "as is": lambda x: gradients(
        lambda x: tf.nn.conv2d_transpose(x, deconv5_kernel, (BATCH, 64, 64, 3), 1, "SAME"), x, [deconv5_kernel], True),
    "as Conv2D": lambda x: gradients(lambda x: tf.nn.conv2d(x, conv_kernel, 1, "SAME"), x, [conv_kernel], True),
    "Conv2D, 16 outputs": lambda x: gradients(
        lambda x: tf.nn.conv2d(x, tf.pad(conv_kernel, [[0, 0], [0, 0], [0, 0], [0, 13]]), 1, "SAME")[..., :3],
        x, [conv_kernel], True),
    "transposed, 16 outputs": lambda x: gradients(
        lambda x: tf.nn.conv2d_transpose(x, tf.pad(deconv5_kernel, [[0, 0], [0, 0], [0, 13], [0, 0]]),
                                         (BATCH, 64, 64, 16), 1, "SAME")[..., :3],
        x, [deconv5_kernel], True),
}
for _repetition in range(2):
    print("conv1  ", {name: median_ms(fn, image) for name, fn in conv1.items()}, flush=True)
    print("deconv5", {name: median_ms(fn, features) for name, fn in deconv5.items()}, flush=True)
