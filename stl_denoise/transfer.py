"""Train the Table 2 classifier from truncated-normal or denoiser weights (paper §4.3).

``init="truncnormal"`` trains the classifier from scratch (Fig. 4; it is also
the perceptual-loss extractor of §4.2).  ``init=RUN_DIR`` copies conv1..conv5
of the denoiser in ``RUN_DIR/model.keras`` into the classifier by layer name
(shapes checked) and leaves the head freshly initialised (Figs. 10-11).

A run directory holds ``config.json``, ``metrics.csv`` (one row per
iteration: ``step,cross_entropy,accuracy,eval_accuracy,seconds``; the batch's
cross-entropy and accuracy, and every ``eval_every`` steps the accuracy on the
evaluation images), ``classifier.keras`` and, as every run of ``runner.run``,
``checkpoint.keras``, ``backup/`` and ``tensorboard/``.
"""

import dataclasses
from pathlib import Path

import keras
import numpy as np

from stl_denoise import labelled, runner
from stl_denoise.classifier import ENCODER_LAYERS, BatchAccuracy, BatchCrossEntropy, build_classifier
from stl_denoise.config import TRUNCNORMAL, ClassifierConfig, TrainConfig
from stl_denoise.distribute import writes_shared_files
from stl_denoise.errors import UserError
from stl_denoise.io import file_record
from stl_denoise.pretrained import load_keras_file
from stl_denoise.runs import saved_model_path

COLUMNS = ("cross_entropy", "accuracy", "eval_accuracy")


def load_encoder_weights(classifier, run_dir):
    """Copy conv1..conv5 kernels and biases from ``RUN_DIR/model.keras`` by layer name."""
    path = saved_model_path(run_dir, TrainConfig.KIND)
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


class ClassifierRecipe(runner.Recipe):
    """A classifier run: labelled crops -> classifier -> sparse cross-entropy; saves ``classifier.keras``."""

    columns = COLUMNS
    batch_metrics = ("cross_entropy", "accuracy")
    loss_name = "cross-entropy"

    def record_inputs(self):
        config = self.config
        self.eval_images, self.eval_labels = labelled.evaluation_arrays(
            config.data, config.labelled_split, config.image_size, config.data_dir, limit=config.eval_images
        )
        source = labelled.describe(config.data, config.labelled_split, config.data_dir)
        record = {"data": {**source, "eval_images_used": len(self.eval_labels)}}
        if config.init != TRUNCNORMAL:
            record["init"] = file_record(saved_model_path(config.init, TrainConfig.KIND))
        return record

    def build(self):
        classifier = classifier_from_config(self.config)  # a bad --init fails here, before anything is written
        return classifier, classifier

    def loss_and_metrics(self):
        return "sparse_categorical_crossentropy", [BatchCrossEntropy(), BatchAccuracy()]

    def dataset(self, skip_batches):
        config = self.config
        return labelled.training_batches(
            config.data, config.labelled_split, config.batch_size, config.image_size, config.seed, config.data_dir,
            skip_batches=skip_batches,
        )

    def callbacks(self, step):
        return [HeldOutAccuracy(self.eval_images, self.eval_labels, step, self.config.eval_every, self.config.steps)]

    def summarize(self, rows):
        return summarize(rows)

    def divergence_hint(self):
        return "or --clip-norm 1.0"


def check_init_run(config: ClassifierConfig):
    """A denoiser ``--init`` must be a run folder holding its model (checked before anything is written)."""
    if config.init != TRUNCNORMAL and not (Path(config.init) / TrainConfig.MODEL_FILE).is_file():
        raise UserError(f"{config.init}: no denoiser model.keras there; pass a denoiser run directory "
                        f"(e.g. runs/dsc from `make train-dsc`) or --init {TRUNCNORMAL}")


def train_classifier(config: ClassifierConfig, run_dir, verbose=True, rerun_of=None):
    """Train (or resume) one classifier run; returns its summary (also in config.json).

    ``rerun_of``: the ``runs.RunRecord`` this run repeats (``transfer --config``).
    """
    config = config.validate().resolved()
    check_init_run(config)
    return runner.run(ClassifierRecipe(config), run_dir, verbose, rerun_of)


def summarize(rows, tail=runner.SUMMARY_TAIL):
    """Cross-entropy and batch accuracy over the last ``tail`` iterations, every held-out accuracy.

    ``rows``: metrics.csv's rows.
    """
    cross_entropy = [float(r["cross_entropy"]) for r in rows]
    accuracy = [float(r["accuracy"]) for r in rows]
    evaluations = [(int(r["step"]), float(r["eval_accuracy"])) for r in rows if r["eval_accuracy"] != ""]
    return {
        "steps": len(rows),
        "first_cross_entropy": round(cross_entropy[0], 4),
        runner.tail_key("cross_entropy_mean", tail): round(runner.tail_mean(cross_entropy, tail), 4),
        runner.tail_key("batch_accuracy_mean", tail): round(runner.tail_mean(accuracy, tail), 4),
        "final_eval_accuracy": evaluations[-1][1] if evaluations else None,
        "eval_accuracy": evaluations,
    }


def pretrain_classify(config: ClassifierConfig, pretrained_run, out_dir, verbose=True):
    """Both initialisations, same seed/data/schedule, then the comparison plot (§4.3, Figs. 4, 10, 11)."""
    from stl_denoise.plots import plot_classifier_comparison

    out_dir = Path(out_dir)
    runs = {}
    # Check the denoiser first so a bad path fails before ten minutes of truncnormal training.
    config = config.validate().resolved()  # the same schedule for both
    check_init_run(dataclasses.replace(config, init=str(pretrained_run)))
    for label, init in (("truncnormal", TRUNCNORMAL), ("pretrained", str(pretrained_run))):
        run_dir = out_dir / label
        if verbose:
            print(f"== classifier from {init} on {config.data} ({config.labelled_split} split), "
                  f"{config.steps} steps -> {run_dir}")
        runs[label] = (run_dir, train_classifier(dataclasses.replace(config, init=init), run_dir, verbose))
    plot_path = out_dir / "classify_comparison.png"
    if writes_shared_files(config.strategy):  # a multi-worker run's other workers leave it to the chief
        plot_classifier_comparison(runs["truncnormal"][0], runs["pretrained"][0], plot_path)
    return {label: summary for label, (_, summary) in runs.items()}, plot_path
