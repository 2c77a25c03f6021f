"""The denoiser's recipe for ``runner.run`` (paper §4.2).

Data flows: clean crops (tf.data) -> ``ImageNoise`` (inside the compiled step)
-> denoiser -> MSE against the clean crop on the 0-255 scale.  Only the
denoiser is saved (``model.keras``); the noise layer exists in training only.
"""

import statistics

import keras

from stl_denoise import callbacks as cb
from stl_denoise import data, models, runner
from stl_denoise.config import ClassifierConfig, TrainConfig, flag
from stl_denoise.errors import UserError
from stl_denoise.io import file_record
from stl_denoise.noise import ImageNoise
from stl_denoise.pretrained import load_denoiser, model_path
from stl_denoise.runs import saved_model_path


def denoiser_from_config(config):
    """A fresh denoiser of the config's architecture section, seeded by the run's seed."""
    return models.denoiser(**config.architecture, seed=config.seed)


def initial_weights(config):
    """``--init-from``: the start weights and a record of their file, or (None, None).

    Checked against the configured architecture section before the run folder
    exists, so a mismatch writes nothing.
    """
    if not config.init_from:
        return None, None
    path = model_path(config.init_from).resolve()
    source = load_denoiser(path)
    try:
        differences = models.architecture_difference(source, config.architecture)
    except ValueError as error:  # not one of this package's denoisers
        raise UserError(f"{path}: --init-from model: {error}") from None
    if differences:
        raise UserError(f"{path}: --init-from model differs from this run's architecture: " + ", ".join(
            f"{flag(name)} {_shown(theirs)} there, {_shown(ours)} here"
            for name, (theirs, ours) in differences.items()))
    return source.get_weights(), file_record(path)


def _shown(value):
    return ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else f"{value:g}" if isinstance(
        value, float) else str(value)


def denoising_trainer(denoiser, config):
    """clean -> noise (the config's noise section) -> denoiser, fitted with y = clean.

    The noise exists in training only.
    """
    clean = keras.Input(shape=(config.crop_size, config.crop_size, 3), name="clean")
    noisy = ImageNoise(**config.noise, seed=config.seed, name="noise")(clean)
    return keras.Model(clean, denoiser(noisy), name="denoising_trainer")


def loss_and_metrics(config, extractor=None):
    """MSE on the 0-255 scale (§3.2), or the perceptual loss (§4.2) with ``extractor``; pixel MSE always logged."""
    loss, metrics = "mean_squared_error", [cb.BatchMeanSquaredError()]
    if config.loss == "perceptual":
        from stl_denoise.perceptual import BatchPerceptualDistance, PerceptualLoss

        loss, metrics = PerceptualLoss(extractor), metrics + [BatchPerceptualDistance(extractor)]
    return loss, metrics


def build_training_model(denoiser, config, extractor=None):
    """``denoising_trainer`` compiled as a run compiles it (benchmarks and tests use it alone)."""
    return runner.compile_for_run(denoising_trainer(denoiser, config), config, *loss_and_metrics(config, extractor))


def metric_columns(config):
    """metrics.csv columns: pixel MSE always (Fig. 5 plots it under the perceptual loss)."""
    return ("mse", "perceptual") if config.loss == "perceptual" else ("mse",)


class DenoiserRecipe(runner.Recipe):
    """A denoiser run: clean crops (tf.data) -> ``ImageNoise`` (inside the compiled step) -> denoiser -> loss.

    Only the denoiser is saved (``model.keras``).
    """

    def __init__(self, config):
        super().__init__(config)
        self.columns = self.batch_metrics = metric_columns(config)
        self.extractor = self.start_weights = self.denoiser = None

    def record_inputs(self):
        config = self.config
        if config.data == "stl10":  # fail (in seconds, offline) before the run folder exists
            data.stl10_builder(config.data_dir)
        record = {"data": data.describe_source(config.data, config.data_dir, config.data_split)}
        if config.loss == "perceptual":  # a bad classifier writes nothing
            from stl_denoise.perceptual import load_extractor

            self.extractor = load_extractor(config.perceptual_classifier, config.crop_size)
            record["perceptual_classifier"] = file_record(
                saved_model_path(config.perceptual_classifier, ClassifierConfig.KIND))
        self.start_weights, init_record = initial_weights(config)
        if init_record:
            record["init_from"] = init_record
        return record

    def build(self):
        self.denoiser = denoiser_from_config(self.config)
        return denoising_trainer(self.denoiser, self.config), self.denoiser

    def loss_and_metrics(self):
        return loss_and_metrics(self.config, self.extractor)

    def apply_start_weights(self, resumed):
        if self.start_weights is not None and not resumed:  # a resumed run restores its own weights
            self.denoiser.set_weights(self.start_weights)

    def dataset(self, skip_batches):
        config = self.config
        return data.training_dataset(
            config.data, config.batch_size, config.crop_size, config.seed, config.data_dir,
            skip_batches=skip_batches, split=config.data_split, short_side=config.resize_short_side,
        ).map(lambda clean: (clean, clean))

    def summarize(self, rows):
        return summarize(rows, self.config.batch_size)


def train(config: TrainConfig, run_dir, verbose=True, rerun_of=None):
    """Train (or resume) one denoiser run; returns a summary dict, also saved in config.json.

    ``rerun_of``: the ``runs.RunRecord`` this run repeats (``train --config``).
    """
    return runner.run(DenoiserRecipe(config), run_dir, verbose, rerun_of)


def summarize(rows, batch_size, tail=runner.SUMMARY_TAIL):
    """Final mean MSE over the last ``tail`` iterations, first MSE, median speed (metrics.csv rows)."""
    mse = [float(r["mse"]) for r in rows]
    seconds = [float(r["seconds"]) for r in rows[1:]]  # the first step includes compilation
    return {
        "steps": len(rows),
        runner.tail_key("final_mse_mean", tail): round(runner.tail_mean(mse, tail), 2),
        "first_mse": round(mse[0], 2),
        "median_images_per_second": round(batch_size / statistics.median(seconds), 1) if seconds else None,
    }
