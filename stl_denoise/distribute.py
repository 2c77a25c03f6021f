"""tf.distribute strategies for ``--strategy``.

``--batch-size`` is always the *global* batch: with N replicas each sees
batch/N images per step, gradients are summed across replicas (Keras'
default all-reduce of the per-replica mean losses divided by N), so a run
on N devices follows the same loss curve as on one device with the same
global batch and learning rate.  Nothing needs rescaling.

``multiworker`` reads the cluster from ``TF_CONFIG``; every worker runs the
same command.  Each worker builds the same data stream and keeps its own
share of every global batch (tf.data's automatic sharding by element), so
the workers see different crops whose union is the single-process batch.
"""

import contextlib
import functools
import json
import os

import keras

from stl_denoise._quiet import import_tensorflow
from stl_denoise.config import STRATEGIES
from stl_denoise.errors import UserError


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
        return _multi_worker_strategy()
    raise UserError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")


@functools.cache  # one per process: its collective ops can be configured only once (demo trains twice)
def _multi_worker_strategy():
    tf = import_tensorflow()
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError as error:
        raise UserError(f"TF_CONFIG is not JSON ({error}); see README, 'Many devices'") from None
    if not isinstance(cluster, dict):
        raise UserError("TF_CONFIG must be a JSON object with \"cluster\" and \"task\"; see README, 'Many devices'")
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:  # "Collective ops must be configured at program startup"
        raise UserError("--strategy multiworker must be set up before TensorFlow runs its first operation in the "
                        f"process ({error}); start each worker as its own stl-denoise command") from None


def is_multi_worker(strategy):
    """Whether ``strategy`` spans several processes (a TF_CONFIG cluster of more than one worker)."""
    tf = import_tensorflow()
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def is_chief(strategy):
    """Whether this process writes the run folder: always, except a multi-worker run's non-chief workers."""
    return strategy is None or strategy.extended.should_checkpoint


def writes_shared_files(strategy_name):
    """Whether this process writes what lies beside the run folders (plots, figures): all but non-chief workers."""
    return strategy_name != "multiworker" or is_chief(make_strategy(strategy_name))


def worker_name():
    """This process's task in TF_CONFIG, e.g. ``worker1`` (``local`` without one)."""
    try:
        task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
        return f"{task['type']}{int(task['index'])}"
    except (ValueError, KeyError, TypeError, AttributeError):
        return "local"


def strategy_scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def check_global_batch(strategy, batch_size):
    if strategy is not None and batch_size % strategy.num_replicas_in_sync:
        raise UserError(
            f"--batch-size {batch_size} must be divisible by the {strategy.num_replicas_in_sync} replicas"
        )


def check_same_start(strategy, run_dir, epochs_done):
    """Every worker must resume from the same backup: the chief's, read from ``run_dir``.

    A worker that cannot see the chief's run folder (``--out`` not on a
    shared file system) would start from fresh weights beside a chief that
    restored its backup, and the replicas would silently part.
    """
    if not is_multi_worker(strategy):
        return
    tf = import_tensorflow()
    local = strategy.run(lambda: tf.constant([epochs_done], tf.int64))
    every = [int(value) for value in strategy.gather(local, axis=0).numpy()]
    if len(set(every)) > 1:
        raise UserError(f"{run_dir}: the workers see different backups (epochs done: {every}); --out must be one "
                        "folder that every worker can read (a shared file system), written by the chief only")


@contextlib.contextmanager
def stopped_worker_message(strategy):
    """A multi-worker run whose peer died (killed, preempted) ends with one line and how to resume."""
    if not is_multi_worker(strategy):
        yield
        return
    tf = import_tensorflow()
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError,
            tf.errors.DeadlineExceededError, tf.errors.InternalError) as error:
        raise UserError(f"another worker of this multi-worker run stopped ({type(error).__name__}); start every "
                        "worker again with the same command: the run resumes from its last backup") from None


def adapt_to_strategy(model, strategy):
    """Work around Keras 3's multi-worker gaps (keras-team/keras#20585) for ``model.fit``.

    Keras 3.15 calls ``strategy.reduce`` on the whole (x, y) pair of the
    first batch to learn its shapes, and reduces each step's scalar logs
    along axis 0; MultiWorkerMirroredStrategy refuses both.  The shapes are
    taken from this worker's own slice instead, and scalars are averaged
    across replicas without an axis.  Tested with TensorFlow 2.21 and Keras
    3.15 (tests/test_multiworker.py).
    """
    if not is_multi_worker(strategy):
        return
    tf = import_tensorflow()

    def own_slice(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = keras.tree.map_structure(own_slice, next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = symbolic_build
    _average_scalar_logs_across_workers()


def _average_scalar_logs_across_workers():
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "scalar_aware", False):
        return
    keras_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction != "auto" or not is_multi_worker(strategy):
            return keras_reduce(values, strategy, reduction)

        def mean(value):
            rank = len(strategy.experimental_local_results(value)[0].shape)
            return strategy.reduce("MEAN", value, axis=0 if rank else None)

        return keras.tree.map_structure(mean, values)

    reduce_per_replica.scalar_aware = True
    trainer.reduce_per_replica = reduce_per_replica
