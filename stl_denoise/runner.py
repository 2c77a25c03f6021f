"""The one runner of every training run: denoisers (train.py) and classifiers (transfer.py).

``run(recipe, run_dir)`` owns a run's life: check the settings and the run
folder, seed, pick the tf.distribute strategy and number format, build and
compile, record ``config.json``, fit with the callbacks that log every
iteration and back up every ``--steps-per-epoch`` iterations, stop on NaN,
save the model, summarise.  A ``Recipe`` supplies only what differs: the
model, its data, loss and metrics, extra callbacks and the summary.
"""

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras

from stl_denoise import callbacks as cb
from stl_denoise._quiet import import_tensorflow
from stl_denoise.config import flag
from stl_denoise.distribute import (
    adapt_to_strategy,
    check_global_batch,
    check_same_start,
    is_chief,
    make_strategy,
    stopped_worker_message,
    strategy_scope,
    worker_name,
)
from stl_denoise.environment import environment
from stl_denoise.errors import TrainingDivergedError, UserError
from stl_denoise.io import save_model, write_json
from stl_denoise.optimizers import optimizer_from_config
from stl_denoise.runs import (  # noqa: F401
    CONFIG_FILE,
    METRICS_FILE,
    SUMMARY_TAIL,
    changed_settings,
    check_run_dir,
    read_metrics,  # (re-exported)
    refuse_if_locked,
    run_folder_lock,
    tail_key,
    tail_mean,
)

BACKUP_DIR = "backup"
CHECKPOINT_FILE = "checkpoint.keras"
# The input files a run records a SHA-256 of (config.json key), and the settings that name them: a
# rerun with those settings unchanged must find the same bytes there.
FINGERPRINTED_INPUTS = {"data": ("data", "data_split"), "init_from": ("init_from",), "init": ("init",),
                        "perceptual_classifier": ("perceptual_classifier",)}


class Recipe:
    """What one kind of run supplies to ``run``; subclasses set the attributes and override the methods."""

    columns = ()  # metrics.csv columns after "step", one row per iteration; the first is on the progress bar
    batch_metrics = ()  # compiled metrics reset before every step: the csv holds each batch's own value
    loss_name = "loss"  # how the divergence message names the loss

    def __init__(self, config):
        self.config = config

    def record_inputs(self):
        """Check and load the run's inputs (data, start weights...) before anything is written or seeded.

        Returns their config.json entries (e.g. a data folder's SHA-256).
        """
        return {}

    def build(self):
        """(model to fit, model to save), inside the strategy scope and number format, after seeding."""
        raise NotImplementedError

    def loss_and_metrics(self):
        raise NotImplementedError

    def apply_start_weights(self, resumed):
        """Set the weights a run starts from, before fitting; ``resumed``: its own backup restores them instead."""

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


def run(recipe, run_dir, verbose=True, rerun_of=None):
    """Train (or resume) one run; returns its summary, also saved in config.json.

    ``rerun_of``: the ``runs.RunRecord`` this run repeats (``--config``); the
    new record names it and every setting that differs from it.
    """
    config = recipe.config.validate()
    check_run_dir(run_dir, config)
    run_dir = Path(run_dir)
    if config.strategy != "multiworker":  # the chief locks once its workers have joined
        refuse_if_locked(run_dir)
    strategy = make_strategy(config.strategy)  # before any TF op: a multi-worker strategy must come first
    record = {"kind": config.KIND, "config": config.to_dict(), **recipe.record_inputs(), "environment": environment()}
    if rerun_of is not None:
        record["rerun_of"] = rerun_entry(rerun_of, config, record)

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        import_tensorflow().config.experimental.enable_op_determinism()
    check_global_batch(strategy, config.batch_size)
    with strategy_scope(strategy), dtype_policy(config.mixed_precision):
        trainer, saved = recipe.build()  # before any file is written: a bad model or init writes nothing
        compile_for_run(trainer, config, *recipe.loss_and_metrics())
    adapt_to_strategy(trainer, strategy)
    steps_per_epoch, epochs = epoch_plan(config.steps, config.steps_per_epoch)
    # Every worker of a multi-worker run does the same writes (Keras needs them all in step), but only
    # the chief into the run folder; the others into a scratch folder that goes when they end.
    with writable_run_dir(run_dir, is_chief(strategy)) as out_dir:
        check_run_dir(run_dir, config)  # again, now that no other run can write it
        initial_epoch = restored_epoch(run_dir, config)  # a backup it cannot resume is refused before any write
        check_same_start(strategy, run_dir, initial_epoch)
        if out_dir != run_dir and (run_dir / METRICS_FILE).exists():  # a worker's summary covers the whole run
            shutil.copyfile(run_dir / METRICS_FILE, out_dir / METRICS_FILE)
        write_json(out_dir / CONFIG_FILE, record)
        recipe.apply_start_weights(resumed=initial_epoch > 0)
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
            cb.MetricsCSV(out_dir / METRICS_FILE, step, recipe.columns),
            # Neither saves weights that went NaN: a resumed run restarts from the last good backup.
            cb.SavedModelCheckpoint(saved, str(out_dir / CHECKPOINT_FILE), nan_stop=nan_stop),
            cb.AtomicBackupAndRestore(str(out_dir / BACKUP_DIR), steps_per_epoch, nan_stop=nan_stop,
                                      restore_dir=str(run_dir / BACKUP_DIR), delete_checkpoint=False),
            keras.callbacks.TensorBoard(str(out_dir / "tensorboard"), update_freq=steps_per_epoch),
        ]
        if verbose and out_dir == run_dir:
            callbacks.append(cb.ProgressBar(step, config.steps, metric=recipe.columns[0]))
        started = time.perf_counter()
        with stopped_worker_message(strategy):
            trainer.fit(recipe.dataset(skip_batches=initial_epoch * steps_per_epoch), epochs=epochs,
                        steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=0, shuffle=False)
        seconds = time.perf_counter() - started
        if nan_stop.failed_step is not None:
            raise TrainingDivergedError(
                f"{recipe.loss_name} became NaN/inf at step {nan_stop.failed_step} (learning rate "
                f"{config.learning_rate:g}): retry with a smaller --learning-rate such as "
                f"{config.learning_rate / 10:g}, " + recipe.divergence_hint()
            )
        save_model(saved, out_dir / config.MODEL_FILE)
        summary = recipe.summarize(read_metrics(out_dir / METRICS_FILE))
        summary["train_seconds_this_session"] = round(seconds, 2)
        record["summary"] = summary
        write_json(out_dir / CONFIG_FILE, record)
    return summary


@contextlib.contextmanager
def writable_run_dir(run_dir, chief=True):
    """The folder this process writes the run into, held for the run's life.

    The chief (every process but a multi-worker run's other workers) writes
    ``run_dir`` itself, locked against a second writer; another worker writes
    a scratch folder of its own, emptied at its start and removed at its end.
    """
    if chief:
        with run_folder_lock(run_dir):
            yield run_dir
        return
    run_id = hashlib.sha256(os.fsencode(run_dir.resolve())).hexdigest()[:12]
    scratch = Path(tempfile.gettempdir()) / f"stl-denoise-{worker_name()}-{run_id}"
    shutil.rmtree(scratch, ignore_errors=True)  # a killed worker's leftovers
    scratch.mkdir(parents=True)
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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


def restored_epoch(run_dir, config):
    """Epochs already done by an interrupted run (its last backup), 0 for a new run.

    Versions before 0.1 made epochs gcd(--steps, --steps-per-epoch)
    long and did not record the length: a backup of such a run counts other
    epochs, and resuming it would skip data, so it is refused unless the
    lengths agree.
    """
    path = Path(run_dir) / BACKUP_DIR / "training_metadata.json"
    if not path.exists():
        return 0
    metadata = json.loads(path.read_text())
    per_epoch, _ = epoch_plan(config.steps, config.steps_per_epoch)
    recorded = metadata.get("steps_per_epoch", math.gcd(config.steps, config.steps_per_epoch))
    if recorded != per_epoch:
        raise UserError(f"{path}: this backup counts epochs of {recorded} iterations (an older version), "
                        f"this version {per_epoch}; resume it with the version that started it, or start "
                        "a new --out")
    return metadata["epoch"]


def rerun_entry(recorded, config, record):
    """``rerun_of`` of a new record: the run it repeats and each setting changed since.

    Refuses when an input file the recorded run fingerprinted (its data
    folder, ``--init-from``, ``--init``, ``--perceptual-classifier``) is named
    the same but holds other bytes: the rerun would not repeat the run.
    """
    changed = {name: {"recorded": old, "now": new}
               for name, (old, new) in changed_settings(recorded.config, config).items()}
    for key, settings in FINGERPRINTED_INPUTS.items():
        old = recorded.data if key == "data" else recorded.extra.get(key)
        new = record.get(key)
        if any(name in changed for name in settings) or not (isinstance(old, dict) and isinstance(new, dict)):
            continue
        if old.get("sha256") and new.get("sha256") != old["sha256"]:
            raise UserError(f"{new.get('path', key)}: differs from the recorded run's {key} (sha256 changed; it "
                            f"was {old.get('path', '?')}); rerun from the folder the run was started in, or "
                            f"name the input with {', '.join(flag(name) for name in settings)}")
    return {"config": str(recorded.path / CONFIG_FILE), "changed": changed}


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
