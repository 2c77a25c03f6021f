"""Training callbacks: per-iteration metrics, progress, NaN stop, atomic backups."""

import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import keras

from stl_denoise.io import atomic_path, naming, save_weights, write_json


@keras.saving.register_keras_serializable(package="stl_denoise")
class BatchMeanSquaredError(keras.metrics.MeanSquaredError):
    """MSE of the *current* batch only (with ``ResetEachBatch``).

    Keras logs running means over an epoch; Fig. 6 plots the MSE of each
    iteration.  A mean metric reset before every step gives exactly that, and
    unlike a "last value" variable it sums correctly across replicas under
    tf.distribute.
    """

    def __init__(self, name="mse", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        # Under mixed float16 the outputs are float16, and errors of ~3,000 on the 0-255 scale square
        # past float16's 65,504: the logged MSE would be inf while the float32 loss is finite.
        return super().update_state(keras.ops.cast(y_true, "float32"), keras.ops.cast(y_pred, "float32"),
                                    sample_weight)


class ResetEachBatch(keras.callbacks.Callback):
    """Reset per-batch metrics before each step; log their global value after it.

    Under tf.distribute the value Keras logs is computed inside replica 0
    (its own half of the batch); reading ``result()`` here, outside the
    step, sums the metric's variables over all replicas.  Must come first
    among the callbacks: the others read the corrected ``logs``.
    """

    def __init__(self, metric_names=("mse",)):
        super().__init__()
        self.metric_names = metric_names

    def _metrics(self):
        for metric in self.model.metrics:
            for inner in getattr(metric, "metrics", [metric]):  # compiled metrics are nested
                if inner.name in self.metric_names:
                    yield inner

    def on_train_batch_begin(self, batch, logs=None):
        for metric in self._metrics():
            metric.reset_state()

    def on_train_batch_end(self, batch, logs=None):
        if logs is not None and self.model.distribute_strategy.num_replicas_in_sync > 1:
            for metric in self._metrics():
                logs[metric.name] = float(metric.result())


class GlobalStep:
    """Maps Keras' (epoch, batch) to the run's 1-based iteration number."""

    def __init__(self, steps_per_epoch, initial_epoch=0):
        self.steps_per_epoch = steps_per_epoch
        self.epoch = initial_epoch

    def of(self, batch):
        return self.epoch * self.steps_per_epoch + batch + 1


class EpochTracker(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_epoch_begin(self, epoch, logs=None):
        self.step.epoch = epoch


class MetricsCSV(keras.callbacks.Callback):
    """One row per iteration in ``metrics.csv``: step, mse, images/s.

    On resume, rows after the restored step are dropped so that every step
    appears exactly once.
    """

    def __init__(self, path, step, columns):
        super().__init__()
        self.path = Path(path)
        self.step = step
        self.columns = list(columns)
        self._file = None

    def on_train_begin(self, logs=None):
        kept = self._rows_before(self.step.of(0))
        with atomic_path(self.path) as temp:
            with open(temp, "w", newline="") as handle:
                writer = csv.DictWriter(handle, ["step", *self.columns, "seconds"])
                writer.writeheader()
                writer.writerows(kept)
        self._file = self.path.open("a", newline="")
        self._writer = csv.writer(self._file)
        self._last_time = time.perf_counter()

    def _rows_before(self, first_step):
        """Rows 1..first_step-1 of an earlier, interrupted session.

        A kill can leave a half-written last line, so rows are kept only while
        they are complete and numbered 1, 2, 3, ... in order.
        """
        if not self.path.exists():
            return []
        kept = []
        with self.path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                complete = None not in row.values()
                if not complete or not row["step"].isdigit() or int(row["step"]) != len(kept) + 1:
                    break
                if int(row["step"]) >= first_step:
                    break
                kept.append(row)
        return kept

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        row = [self.step.of(batch)] + [_format(logs.get(name)) for name in self.columns]
        try:
            self._writer.writerow(row + [f"{now - self._last_time:.4f}"])
        except OSError as error:  # a full disk: the message names this file
            raise naming(error, self.path) from None
        self._last_time = now

    def on_epoch_end(self, epoch, logs=None):
        # Durable before the backup of this epoch is written (callback order).
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as error:
            raise naming(error, self.path) from None

    def on_train_end(self, logs=None):
        if self._file:
            self._file.close()
            self._file = None


def _format(value):
    if value is None:
        return ""
    return f"{float(value):.6g}"


class ProgressBar(keras.callbacks.Callback):
    """A single progress line over the whole run (Keras' bar restarts per epoch)."""

    def __init__(self, step, total_steps, metric="mse", stream=None, width=30):
        super().__init__()
        self.step = step
        self.total = total_steps
        self.metric = metric
        self.stream = stream or sys.stdout
        self.width = width
        self.interactive = self.stream.isatty()

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._start_step = self.step.of(0) - 1
        self._last_print = 0.0

    def on_train_batch_end(self, batch, logs=None):
        current = self.step.of(batch)
        now = time.perf_counter()
        final = current == self.total
        # Non-terminals (logs, CI) get a line every 10 s rather than a redraw per step.
        if not final and now - self._last_print < (0.2 if self.interactive else 10.0):
            return
        self._last_print = now
        done = current / self.total
        rate = (current - self._start_step) / max(now - self._start, 1e-9)
        eta = (self.total - current) / rate if rate > 0 else float("nan")
        bar = "#" * int(done * self.width)
        value = logs.get(self.metric)
        text = (f"[{bar:<{self.width}}] {current}/{self.total} {self.metric} {float(value):.1f} "
                f"{rate:.1f} it/s eta {eta:.0f}s")
        end = "\r" if self.interactive and not final else "\n"
        self.stream.write(text + end)
        self.stream.flush()
        self._open_line = end == "\r"

    def on_train_end(self, logs=None):
        # A run stopped early (NaN) must not leave its error on the bar's line.
        if getattr(self, "_open_line", False):
            self.stream.write("\n")
            self.stream.flush()


class StopOnNaN(keras.callbacks.Callback):
    """Stop at the first NaN/inf loss or metric and remember where (TerminateOnNaN + step)."""

    def __init__(self, step, metric="mse"):
        super().__init__()
        self.step = step
        self.metric = metric
        self.failed_step = None

    def on_train_batch_end(self, batch, logs=None):
        # Both: under the perceptual loss the loss can be NaN while the pixel MSE is still finite, and
        # under mixed precision the metric can overflow while the loss is finite.
        values = (logs.get("loss"), logs.get(self.metric))
        if any(value is not None and not math.isfinite(float(value)) for value in values):
            self.failed_step = self.step.of(batch)
            self.model.stop_training = True


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that a kill at any moment cannot corrupt.

    Keras overwrites ``latest.weights.h5`` in place and writes the epoch in a
    second file, so a kill mid-save leaves unloadable weights or weights and
    epoch that disagree.  Here each backup is a new ``epoch-N.weights.h5``
    written atomically, then ``training_metadata.json`` (also atomic) is
    switched to name it, then the older file is removed: the metadata always
    names a complete file of the epoch it records.

    ``restore_dir``: where to restore from, if not ``backup_dir`` (a
    multi-worker run's other workers restore the chief's backup and write
    their own to a scratch folder).
    """

    def __init__(self, backup_dir, steps_per_epoch, nan_stop=None, restore_dir=None, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.steps_per_epoch = steps_per_epoch
        self.nan_stop = nan_stop
        self.restore_dir = Path(restore_dir or backup_dir)

    def _load_model(self):
        metadata_path = self.restore_dir / Path(self._training_metadata_path).name
        if not metadata_path.exists():
            return
        metadata = json.loads(metadata_path.read_text())
        weights = self.restore_dir / metadata["weights"]
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(weights))
        self.model._initial_epoch = metadata["epoch"]

    def _save_model(self):
        if _diverged(self.nan_stop):  # Keras still ends the epoch after a stop: keep the last good backup
            return
        backup_dir = Path(self.backup_dir)
        backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{self._current_epoch}.weights.h5"
        save_weights(self.model, backup_dir / name)
        # The epoch length is recorded: a backup counts epochs, and only this length turns them into steps.
        write_json(self._training_metadata_path, {"epoch": self._current_epoch, "weights": name,
                                                  "steps_per_epoch": self.steps_per_epoch})
        for old in backup_dir.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink()


def _diverged(nan_stop):
    return nan_stop is not None and nan_stop.failed_step is not None


class SavedModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` that saves the run's saved model, atomically.

    ``fit`` runs on the denoiser's training model (noise layer + denoiser);
    what users load is the bare denoiser, so that is what the checkpoint holds
    (for a classifier the two are the same model).
    """

    def __init__(self, saved_model, filepath, nan_stop=None, **kwargs):
        super().__init__(filepath, **kwargs)
        self.saved_model = saved_model
        self.nan_stop = nan_stop

    def _save_model(self, epoch, batch, logs):
        if _diverged(self.nan_stop):
            return
        filepath = self._get_file_path(epoch, batch, logs)
        if self._should_save_model(epoch, batch, logs, filepath):
            with atomic_path(filepath) as temp:
                self.saved_model.save(temp)


class StopAtStep(keras.callbacks.Callback):
    """End the run after its last iteration, inside an epoch if ``--steps`` is no multiple of an epoch."""

    def __init__(self, step, total_steps):
        super().__init__()
        self.step = step
        self.total = total_steps

    def on_train_batch_end(self, batch, logs=None):
        if self.step.of(batch) >= self.total:
            self.model.stop_training = True
