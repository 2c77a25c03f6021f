"""tf.distribute strategies for ``--strategy``.

``--batch-size`` is always the *global* batch: with N replicas each sees
batch/N images per step, gradients are summed across replicas (Keras'
default all-reduce of the per-replica mean losses divided by N), so a run
on N devices follows the same loss curve as on one device with the same
global batch and learning rate.  Nothing needs rescaling.
"""

import contextlib

from stl_denoise._quiet import import_tensorflow
from stl_denoise.errors import UserError

STRATEGIES = ("none", "mirrored", "multiworker")


def replica_devices(tf):
    """All GPUs, else every (logical) CPU device."""
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def make_strategy(name):
    tf = import_tensorflow()
    if name in (None, "none"):
        return None
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=replica_devices(tf))
    if name == "multiworker":
        # Reads the cluster from TF_CONFIG; each worker runs the same command.
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UserError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")


def strategy_scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def check_global_batch(strategy, batch_size):
    if strategy is not None and batch_size % strategy.num_replicas_in_sync:
        raise UserError(
            f"--batch-size {batch_size} must be divisible by the {strategy.num_replicas_in_sync} replicas"
        )
