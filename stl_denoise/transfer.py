"""Train the Table 2 classifier from truncated-normal or denoiser weights (paper §4.3).

``init="truncnormal"`` trains the classifier from scratch (Fig. 4; it is also
the perceptual-loss extractor of §4.2).  ``init=RUN_DIR`` copies conv1..conv5
of the denoiser in ``RUN_DIR/model.keras`` into the classifier by layer name
(shapes checked) and leaves the head freshly initialised (Figs. 10-11).

A run directory holds ``config.json``, ``metrics.csv`` (one row per
iteration: ``step,cross_entropy,accuracy,eval_accuracy,seconds``; the batch's
cross-entropy and accuracy, and every ``eval_every`` steps the accuracy on the
evaluation images) and ``classifier.keras``.
"""

import dataclasses
import json
import statistics
import time
from pathlib import Path

import keras
import numpy as np

from stl_denoise import callbacks as cb
from stl_denoise import labelled
from stl_denoise.classifier import ENCODER_LAYERS, BatchAccuracy, BatchCrossEntropy, build_classifier
from stl_denoise.config import environment
from stl_denoise.distribute import STRATEGIES, check_global_batch, make_strategy, strategy_scope
from stl_denoise.errors import TrainingDivergedError, UserError
from stl_denoise.io import save_model, write_json
from stl_denoise.models import DEFAULT_BOTTLENECK_CHANNELS
from stl_denoise.pretrained import load_keras_file

TRUNCNORMAL = "truncnormal"
MODEL_FILE = "classifier.keras"
COLUMNS = ("cross_entropy", "accuracy", "eval_accuracy")


@dataclasses.dataclass
class ClassifierConfig:
    init: str = TRUNCNORMAL  # truncnormal | a denoiser run directory
    data: str = "stl10"  # stl10 | digits (offline)
    data_dir: str | None = None
    # Faithful default: the published 13k / report-on-test protocol (leaks; README).
    labelled_split: str = "paper"
    # None = one pass over the training images (§4.2: the classifier did not converge
    # "even after going through all training examples"): 1,300 for STL-10's 13k.
    steps: int | None = None
    batch_size: int = 10  # §4.2's learning setup
    image_size: int = 64  # Table 2 input: 64x64 crops of STL-10's 96x96
    # The paper gives no rate; 1e-3 diverges from truncated normal on the 0-255
    # scale, 1e-4 and 1e-5 train both inits on digits (README, "Classifier").
    learning_rate: float = 1e-5
    momentum: float = 0.0  # plain SGD, as §4.2
    bottleneck_channels: int = DEFAULT_BOTTLENECK_CHANNELS
    kernel_size: int = 3
    init_stddev: str = "he"
    dropout: float = 0.5
    eval_every: int = 50  # iterations between held-out accuracy measurements
    eval_images: int = 1000  # cap on evaluation images (STL-10 test has 8,000)
    seed: int = 0
    steps_per_epoch: int = 100
    clip_norm: float | None = None
    strategy: str = "none"  # none | mirrored | multiworker; --batch-size is global (README)

    def validate(self):
        labelled.check_source(self.data, self.labelled_split)
        checks = [
            (self.steps is None or self.steps > 0, f"--steps must be positive, got {self.steps}"),
            (self.batch_size > 0, f"--batch-size must be positive, got {self.batch_size}"),
            (self.image_size > 0 and self.image_size % 16 == 0,
             f"--image-size must be a positive multiple of 16, got {self.image_size}"),
            (0 < self.learning_rate < float("inf"),
             f"--learning-rate must be positive and finite, got {self.learning_rate}"),
            (0.0 <= self.momentum <= 1.0, f"--momentum must be in [0, 1], got {self.momentum}"),
            (0.0 <= self.dropout < 1.0, f"--dropout must be in [0, 1), got {self.dropout}"),
            (self.eval_every > 0, "--eval-every must be positive"),
            (self.eval_images > 0, "--eval-images must be positive"),
            (self.steps_per_epoch > 0, "--steps-per-epoch must be positive"),
            (0 <= self.seed < 2**32, f"--seed must be in [0, 2**32), got {self.seed}"),  # numpy/TF seed range
            (self.clip_norm is None or self.clip_norm > 0, "--clip-norm must be positive"),
            (self.strategy in STRATEGIES, f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        if self.steps is None:
            self.steps = -(-labelled.train_count(self.data, self.labelled_split) // self.batch_size)
        if self.init != TRUNCNORMAL and not (Path(self.init) / "model.keras").is_file():
            raise UserError(f"{self.init}: no denoiser model.keras there; pass a denoiser run directory "
                            f"(e.g. runs/dsc from `make train-dsc`) or --init {TRUNCNORMAL}")
        return self

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, run_dir):
        values = json.loads((Path(run_dir) / "config.json").read_text())["config"]
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in fields})


def load_encoder_weights(classifier, run_dir):
    """Copy conv1..conv5 kernels and biases from ``RUN_DIR/model.keras`` by layer name."""
    path = Path(run_dir) / "model.keras"
    denoiser = load_keras_file(path, "cannot load the denoiser")
    layer_names = {layer.name for layer in denoiser.layers}
    missing = [name for name in ENCODER_LAYERS if name not in layer_names]
    if missing:
        raise UserError(f"{path}: has no layer {missing[0]}; not a denoiser of this project")
    conv1, conv5 = denoiser.get_layer("conv1"), denoiser.get_layer("conv5")
    hint = f"--bottleneck-channels {conv5.filters} --kernel-size {conv1.kernel_size[0]}"
    weights = {}
    for name in ENCODER_LAYERS:
        source, target = denoiser.get_layer(name).get_weights(), classifier.get_layer(name).get_weights()
        for what, have, want in zip(("kernel", "bias"), source, target):
            if have.shape != want.shape:
                raise UserError(f"{path}: {name} {what} has shape {have.shape} but the classifier's is "
                                f"{want.shape}; build the classifier to match with {hint}")
        weights[name] = source
    for name, values in weights.items():  # all checked first: nothing half-copied
        classifier.get_layer(name).set_weights(values)
    return sorted(weights)


def classifier_from_config(config):
    classifier = build_classifier(
        bottleneck_channels=config.bottleneck_channels, kernel_size=config.kernel_size,
        init_stddev=config.init_stddev, dropout=config.dropout, image_size=config.image_size, seed=config.seed,
    )
    if config.init != TRUNCNORMAL:
        load_encoder_weights(classifier, config.init)
    return classifier


class HeldOutAccuracy(keras.callbacks.Callback):
    """Every ``every`` iterations (and at the last), accuracy on the evaluation images.

    Writes ``logs["eval_accuracy"]``; placed before ``MetricsCSV`` so that the
    same iteration's row carries it.  Dropout is off (inference mode).
    """

    def __init__(self, images, labels, step, every, total_steps, batch_size=200):
        super().__init__()
        self.images, self.labels = images, labels
        self.step, self.every, self.total = step, every, total_steps
        self.batch_size = batch_size
        self.history = []

    def accuracy(self):
        predicted = np.concatenate([
            np.argmax(np.asarray(self.model(self.images[i : i + self.batch_size], training=False)), axis=-1)
            for i in range(0, len(self.images), self.batch_size)
        ])
        return float(np.mean(predicted == self.labels))

    def on_train_batch_end(self, batch, logs=None):
        current = self.step.of(batch)
        if current % self.every == 0 or current == self.total:
            value = self.accuracy()
            logs["eval_accuracy"] = value
            self.history.append((current, value))


def train_classifier(config: ClassifierConfig, run_dir, verbose=True):
    """Train (or resume) one classifier run; returns its summary (also in config.json)."""
    from stl_denoise.train import BACKUP_DIR, _epoch_size, _restored_epoch, check_run_dir, resolve_jit_compile

    config.validate()
    check_run_dir(run_dir, config)
    run_dir = Path(run_dir)
    source_info = labelled.describe(config.data, config.labelled_split, config.data_dir)
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.strategy)
    check_global_batch(strategy, config.batch_size)
    with strategy_scope(strategy):
        classifier = classifier_from_config(config)  # before any file is written: a bad --init writes nothing
    eval_images, eval_labels = labelled.evaluation_arrays(
        config.data, config.labelled_split, config.image_size, config.data_dir, limit=config.eval_images
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"config": config.to_dict(), "data": {**source_info, "eval_images_used": len(eval_labels)},
              "environment": environment()}
    write_json(run_dir / "config.json", record)

    with strategy_scope(strategy):
        classifier.compile(
            optimizer=keras.optimizers.SGD(
                learning_rate=config.learning_rate, momentum=config.momentum, clipnorm=config.clip_norm
            ),
            loss="sparse_categorical_crossentropy",
            metrics=[BatchCrossEntropy(), BatchAccuracy()],
            jit_compile=resolve_jit_compile("auto"),  # XLA only on GPUs, as the denoiser (docs/performance.md)
        )
    steps_per_epoch = _epoch_size(config)
    initial_epoch = _restored_epoch(run_dir)
    dataset = labelled.training_batches(
        config.data, config.labelled_split, config.batch_size, config.image_size, config.seed, config.data_dir,
        skip_batches=initial_epoch * steps_per_epoch,
    )
    step = cb.GlobalStep(steps_per_epoch, initial_epoch)
    nan_stop = cb.StopOnNaN(step, metric="cross_entropy")
    # As in train.py: metrics are flushed before the backup that declares their steps done.
    callbacks = [
        cb.ResetEachBatch(("cross_entropy", "accuracy")),
        cb.EpochTracker(step),
        nan_stop,
        HeldOutAccuracy(eval_images, eval_labels, step, config.eval_every, config.steps),
        cb.MetricsCSV(run_dir / "metrics.csv", step, COLUMNS),
        cb.AtomicBackupAndRestore(str(run_dir / BACKUP_DIR), delete_checkpoint=False),
    ]
    if verbose:
        callbacks.append(cb.ProgressBar(step, config.steps, metric="cross_entropy"))
    started = time.perf_counter()
    classifier.fit(dataset, epochs=config.steps // steps_per_epoch, steps_per_epoch=steps_per_epoch,
                   callbacks=callbacks, verbose=0, shuffle=False)
    seconds = time.perf_counter() - started
    if nan_stop.failed_step is not None:
        raise TrainingDivergedError(
            f"cross-entropy became NaN/inf at step {nan_stop.failed_step} (learning rate {config.learning_rate:g}): "
            f"retry with a smaller --learning-rate such as {config.learning_rate / 10:g}, or --clip-norm 1.0"
        )
    save_model(classifier, run_dir / MODEL_FILE)
    summary = summarize(run_dir / "metrics.csv")
    summary["train_seconds_this_session"] = round(seconds, 2)
    record["summary"] = summary
    write_json(run_dir / "config.json", record)
    return summary


def summarize(metrics_path, tail=100):
    from stl_denoise.train import read_metrics

    rows = read_metrics(metrics_path)
    cross_entropy = [float(r["cross_entropy"]) for r in rows]
    accuracy = [float(r["accuracy"]) for r in rows]
    evaluations = [(int(r["step"]), float(r["eval_accuracy"])) for r in rows if r["eval_accuracy"] != ""]
    return {
        "steps": len(rows),
        "first_cross_entropy": round(cross_entropy[0], 4),
        "cross_entropy_mean_last_100": round(statistics.fmean(cross_entropy[-tail:]), 4),
        "batch_accuracy_mean_last_100": round(statistics.fmean(accuracy[-tail:]), 4),
        "final_eval_accuracy": evaluations[-1][1] if evaluations else None,
        "eval_accuracy": evaluations,
    }


def pretrain_classify(config: ClassifierConfig, pretrained_run, out_dir, verbose=True):
    """Both initialisations, same seed/data/schedule, then the comparison plot (§4.3, Figs. 4, 10, 11)."""
    from stl_denoise.plots import plot_classifier_comparison

    out_dir = Path(out_dir)
    runs = {}
    # Check the denoiser first so a bad path fails before ten minutes of truncnormal training.
    checked = dataclasses.replace(config, init=str(pretrained_run)).validate()
    config = dataclasses.replace(config, steps=checked.steps)  # the same resolved schedule for both
    for label, init in (("truncnormal", TRUNCNORMAL), ("pretrained", str(pretrained_run))):
        run_dir = out_dir / label
        if verbose:
            print(f"== classifier from {init} on {config.data} ({config.labelled_split} split), "
                  f"{config.steps} steps -> {run_dir}")
        runs[label] = (run_dir, train_classifier(dataclasses.replace(config, init=init), run_dir, verbose))
    plot_path = out_dir / "classify_comparison.png"
    plot_classifier_comparison(runs["truncnormal"][0], runs["pretrained"][0], plot_path)
    return {label: summary for label, (_, summary) in runs.items()}, plot_path
