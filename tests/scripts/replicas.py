"""Train the same run on 1 and on 2 logical CPU replicas; print both loss curves.

Usage: replicas.py OUT_DIR SIGMA SALT_PEPPER

Logical devices must be configured before TensorFlow initialises, so this runs
in its own process (tests/test_distribute.py).
"""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from stl_denoise.config import TrainConfig  # noqa: E402
from stl_denoise.train import read_metrics, train  # noqa: E402

out = sys.argv[1]
curves = {}
for strategy in ("none", "mirrored"):
    config = TrainConfig(data="sample", steps=20, steps_per_epoch=10, batch_size=4, seed=1, strategy=strategy, sigma=float(sys.argv[2]), salt_pepper=float(sys.argv[3]))
    train(config, f"{out}/{strategy}", verbose=False)
    curves[strategy] = [float(row["mse"]) for row in read_metrics(f"{out}/{strategy}/metrics.csv")]
print(json.dumps(curves))
