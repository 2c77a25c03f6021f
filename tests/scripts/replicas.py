"""Train the same run on 1 and on 2 logical CPU replicas; print both loss curves.

Usage: replicas.py OUT_DIR denoiser|classifier

Logical devices must be configured before TensorFlow initialises, so this runs
in its own process (tests/test_distribute.py); one kind of run per process,
since several MirroredStrategy objects in one process can collide in their
collective ops.
"""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from stl_denoise.config import TrainConfig  # noqa: E402
from stl_denoise.runs import read_metrics  # noqa: E402
from stl_denoise.train import train  # noqa: E402
from stl_denoise.transfer import ClassifierConfig, train_classifier  # noqa: E402

out, kind = sys.argv[1], sys.argv[2]
curves = {}
for strategy in ("none", "mirrored"):
    run_dir = f"{out}/{kind}-{strategy}"
    if kind == "denoiser":
        train(TrainConfig(data="sample", steps=20, steps_per_epoch=10, batch_size=4, seed=1, strategy=strategy),
              run_dir, verbose=False)
        column = "mse"
    else:
        train_classifier(ClassifierConfig(data="digits", steps=10, steps_per_epoch=5, batch_size=4, image_size=32,
                                          seed=1, eval_every=10, eval_images=20, strategy=strategy, dropout=0.0),
                         run_dir, verbose=False)
        column = "cross_entropy"
    curves[strategy] = [float(row[column]) for row in read_metrics(f"{run_dir}/metrics.csv")]
print(json.dumps(curves))
