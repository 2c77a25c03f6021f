"""The one runner of every training run: denoisers (train.py) and classifiers (transfer.py).

``run(recipe, run_dir)`` owns a run's life: check the settings and the run
folder, seed, pick the tf.distribute strategy and number format, build and
compile, record ``config.json``, fit with the callbacks that log every
iteration and back up every ``--steps-per-epoch`` iterations, stop on NaN,
save the model, summarise.  A ``Recipe`` supplies only what differs: the
model, its data, loss and metrics, extra callbacks and the summary.
"""

import contextlib
import json
import statistics
import time
from pathlib import Path

import keras

from stl_denoise import callbacks as cb
from stl_denoise._quiet import import_tensorflow
from stl_denoise.config import environment
from stl_denoise.distribute import check_global_batch, make_strategy, strategy_scope
from stl_denoise.errors import TrainingDivergedError
from stl_denoise.io import save_model, write_json
from stl_denoise.runs import CONFIG_FILE, METRICS_FILE, check_run_dir, read_metrics

BACKUP_DIR = "backup"
CHECKPOINT_FILE = "checkpoint.keras"
SUMMARY_TAIL = 100  # summaries average the last 100 iterations (Fig. 6's noise is ~2x batch to batch)


class Recipe:
    """What one kind of run supplies to ``run``; subclasses set the attributes and override the methods."""

    columns = ()  # metrics.csv columns after "step", one row per iteration; the first is on the progress bar
    batch_metrics = ()  # compiled metrics reset before every step: the csv holds each batch's own value
    loss_name = "loss"  # how the divergence message names the loss

    def __init__(self, config):
        self.config = config

    def prepare(self):
        """Checks and loads that can fail, before anything is written or seeded: {record entries}."""
        return {}

    def build(self):
        """(model to fit, model to save), inside the strategy scope and number format, after seeding."""
        raise NotImplementedError

    def loss_and_metrics(self):
        raise NotImplementedError

    def start(self, resumed):
        """Called before fitting; ``resumed``: the run's own backup will restore its weights."""

    def dataset(self, skip_batches):
        """The training batches from iteration ``skip_batches`` on (resumed runs skip what they saw)."""
        raise NotImplementedError

    def callbacks(self, step):
        """Extra callbacks, run after the NaN check and before the metrics row is written."""
        return []

    def summarize(self, rows):
        """The final summary (recorded in config.json) from metrics.csv's rows."""
        raise NotImplementedError

    def divergence_hint(self):
        return "or bound updates with --clip-norm 1.0"


def run(recipe, run_dir, verbose=True, record_extra=None):
    """Train (or resume) one run; returns its summary, also saved in config.json."""
    config = recipe.config.validate()
    check_run_dir(run_dir, config)
    run_dir = Path(run_dir)
    record = {"kind": config.KIND, "config": config.to_dict(), **recipe.prepare(), "environment": environment(),
              **(record_extra or {})}

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        import_tensorflow().config.experimental.enable_op_determinism()
    strategy = make_strategy(config.strategy)
    check_global_batch(strategy, config.batch_size)
    with strategy_scope(strategy), dtype_policy(config.mixed_precision):
        trainer, saved = recipe.build()  # before any file is written: a bad model or init writes nothing
        compile_for_run(trainer, config, *recipe.loss_and_metrics())
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / CONFIG_FILE, record)

    steps_per_epoch, epochs = epoch_plan(config.steps, config.steps_per_epoch)
    initial_epoch = restored_epoch(run_dir)
    recipe.start(resumed=initial_epoch > 0)
    step = cb.GlobalStep(steps_per_epoch, initial_epoch)
    nan_stop = cb.StopOnNaN(step, metric=recipe.columns[0])
    # Order matters at epoch ends: metrics are flushed before the backup that
    # declares their steps done, so a resumed run has no gap.
    callbacks = [
        cb.ResetEachBatch(recipe.batch_metrics),
        cb.EpochTracker(step),
        cb.StopAtStep(step, config.steps),
        nan_stop,
        *recipe.callbacks(step),
        cb.MetricsCSV(run_dir / METRICS_FILE, step, recipe.columns),
        cb.SavedModelCheckpoint(saved, str(run_dir / CHECKPOINT_FILE)),
        cb.AtomicBackupAndRestore(str(run_dir / BACKUP_DIR), delete_checkpoint=False),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), update_freq=steps_per_epoch),
    ]
    if verbose:
        callbacks.append(cb.ProgressBar(step, config.steps, metric=recipe.columns[0]))
    started = time.perf_counter()
    trainer.fit(recipe.dataset(skip_batches=initial_epoch * steps_per_epoch), epochs=epochs,
                steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=0, shuffle=False)
    seconds = time.perf_counter() - started
    if nan_stop.failed_step is not None:
        raise TrainingDivergedError(
            f"{recipe.loss_name} became NaN/inf at step {nan_stop.failed_step} (learning rate "
            f"{config.learning_rate:g}): retry with a smaller --learning-rate such as {config.learning_rate / 10:g}, "
            + recipe.divergence_hint()
        )
    save_model(saved, run_dir / config.MODEL_FILE)
    summary = recipe.summarize(read_metrics(run_dir / METRICS_FILE))
    summary["train_seconds_this_session"] = round(seconds, 2)
    record["summary"] = summary
    write_json(run_dir / CONFIG_FILE, record)
    return summary


def compile_for_run(model, config, loss, metrics):
    """Compile as every run does: the config's optimiser, XLA as ``--jit-compile`` resolves."""
    model.compile(optimizer=optimizer_from_config(config), loss=loss, metrics=metrics,
                  jit_compile=resolve_jit_compile(config.jit_compile))
    return model


def epoch_plan(steps, steps_per_epoch):
    """(iterations per epoch, epochs) for ``fit``: an epoch is ``--steps-per-epoch`` iterations.

    Backups, checkpoints and TensorBoard happen at epoch ends.  When the
    steps are not a multiple, the last epoch is cut short by ``StopAtStep``.
    """
    per_epoch = min(steps_per_epoch, steps)
    return per_epoch, -(-steps // per_epoch)


def restored_epoch(run_dir):
    """Epochs already done by an interrupted run (its last backup), 0 for a new run."""
    metadata = Path(run_dir) / BACKUP_DIR / "training_metadata.json"
    return json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0


def tail_mean(values, tail=SUMMARY_TAIL):
    return statistics.fmean(values[-tail:])


def tail_key(what, tail=SUMMARY_TAIL):
    """Summary keys say how many iterations they average: ``tail_key("final_mse_mean")`` -> ``..._last_100``."""
    return f"{what}_last_{tail}"


@keras.saving.register_keras_serializable(package="stl_denoise")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """lr * min(1, (step + 1) / warmup_steps): a constant rate reached linearly."""

    def __init__(self, learning_rate, warmup_steps):
        self.learning_rate = learning_rate
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        fraction = keras.ops.minimum(1.0, (keras.ops.cast(step, "float32") + 1.0) / self.warmup_steps)
        return self.learning_rate * fraction

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


def optimizer_from_config(config):
    """The optimiser of an ``OptimizerSettings`` section: SGD (faithful) or Adam, constant, warmed-up or cosine."""
    learning_rate = config.learning_rate
    if config.lr_schedule == "cosine":
        # Keras' warmup ramps linearly from initial_learning_rate to warmup_target, then decays.
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0 if config.warmup_steps else config.learning_rate,
            decay_steps=config.steps - config.warmup_steps,
            warmup_target=config.learning_rate if config.warmup_steps else None,
            warmup_steps=config.warmup_steps,
        )
    elif config.warmup_steps:
        learning_rate = LinearWarmup(config.learning_rate, config.warmup_steps)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=config.clip_norm)
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=config.momentum, clipnorm=config.clip_norm)


@contextlib.contextmanager
def dtype_policy(mixed_precision):
    """Build layers under a mixed policy (float16/bfloat16 compute, float32 weights).

    Keras losses cast to float32, so MSE on the 0-255 scale does not overflow,
    and ``compile`` adds loss scaling itself under mixed_float16.  The global
    policy is restored afterwards: it must not leak into later models.
    """
    if mixed_precision == "off":
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(f"mixed_{mixed_precision}")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def resolve_jit_compile(setting):
    """XLA on GPUs; off on CPUs, where TF's oneDNN kernels run this net faster
    than XLA's CPU code (docs/performance.md).  Keras' own "auto" means on."""
    if setting == "auto":
        return bool(import_tensorflow().config.list_logical_devices("GPU"))
    return setting == "on"
