"""The ``model.fit`` trainer for the denoisers (paper §4.2).

Data flows: clean crops (tf.data) -> ``ImageNoise`` (inside the compiled step)
-> denoiser -> MSE against the clean crop on the 0-255 scale.  Only the
denoiser is saved (``model.keras``); the noise layer exists in training only.
"""

import contextlib
import json
import math
import statistics
import time
from pathlib import Path

import keras

from stl_denoise import callbacks as cb
from stl_denoise._quiet import import_tensorflow
from stl_denoise import data
from stl_denoise.config import TrainConfig, environment
from stl_denoise.distribute import check_global_batch, make_strategy, strategy_scope
from stl_denoise.errors import TrainingDivergedError, UserError
from stl_denoise.io import save_model, write_json
from stl_denoise.models import build_denoiser
from stl_denoise.noise import ImageNoise

BACKUP_DIR = "backup"


def denoiser_from_config(config):
    return build_denoiser(
        skip_connections=config.model == "dsc",
        gate_factors=config.gate_factors,
        gate_reading=config.gate_reading,
        bottleneck_channels=config.bottleneck_channels,
        kernel_size=config.kernel_size,
        init_stddev=config.init_stddev,
        output_activation=config.output_activation,
        residual=config.residual,
        input_range=config.input_range,
        zero_init_output=config.zero_init_output,
        seed=config.seed,
    )


def initial_weights(config):
    """``--init-from``: the start weights and a record of their file, or (None, None).

    Checked against the configured architecture (layer types, settings and
    weight shapes) before the run folder exists, so a mismatch writes nothing.
    """
    if not config.init_from:
        return None, None
    import hashlib

    from stl_denoise.pretrained import load_denoiser, model_path

    path = model_path(config.init_from).resolve()
    source = load_denoiser(path)
    expected = denoiser_from_config(config)

    first_difference = _architecture_difference(source, expected)
    if first_difference:
        raise UserError(
            f"{path}: --init-from model differs from this run's architecture at {first_difference} "
            "(check --preset, --model, --bottleneck-channels, --kernel-size, --gate-factors, --input-range, "
            "--residual, --output-activation)"
        )
    record = {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return source.get_weights(), record


def _architecture_difference(model, reference):
    """The first layer where two denoisers differ (type, settings, weight shapes), or None."""
    ignored = {"kernel_initializer", "bias_initializer", "dtype", "trainable", "seed"}

    def describe(network):
        return [(layer.name, (type(layer).__name__,
                              {k: v for k, v in layer.get_config().items() if k not in ignored},
                              [tuple(w.shape) for w in layer.weights]))
                for layer in network.layers]

    ours, theirs = describe(model), describe(reference)
    for (name, description), (other_name, other) in zip(ours, theirs):
        if (name, description) != (other_name, other):
            return f"layer {name!r}" if name == other_name else f"layer {name!r} (expected {other_name!r})"
    if len(ours) != len(theirs):
        return f"its layer count ({len(ours)}, expected {len(theirs)})"
    return None


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


def build_training_model(denoiser, config, extractor=None):
    """clean -> noise -> denoiser; fit with y = clean.

    ``extractor`` (for ``config.loss == "perceptual"``) is the frozen feature
    extractor of the perceptual loss; pixel MSE is still logged every step.
    """
    clean = keras.Input(shape=(config.crop_size, config.crop_size, 3), name="clean")
    noisy = ImageNoise(
        config.sigma, config.salt_pepper, seed=config.seed, sigma_max=config.sigma_max, clip=config.clip_noise,
        salt_pepper_max=config.salt_pepper_max, mixed=config.noise_mix == "mixed",
        eight_bit_share=config.eight_bit_share, name="noise",
    )(clean)
    model = keras.Model(clean, denoiser(noisy), name="denoising_trainer")
    loss, metrics = "mean_squared_error", [cb.BatchMeanSquaredError()]
    if config.loss == "perceptual":
        from stl_denoise.perceptual import BatchPerceptualDistance, PerceptualLoss

        loss, metrics = PerceptualLoss(extractor), metrics + [BatchPerceptualDistance(extractor)]
    model.compile(
        optimizer=optimizer_from_config(config),
        loss=loss,
        metrics=metrics,
        jit_compile=resolve_jit_compile(config.jit_compile),
    )
    return model


def metric_columns(config):
    """metrics.csv columns: pixel MSE always (Fig. 5 plots it under the perceptual loss)."""
    return ["mse", "perceptual"] if config.loss == "perceptual" else ["mse"]


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


def _epoch_size(config):
    # Backups happen at epoch ends; epochs must tile the run exactly.
    return math.gcd(config.steps, config.steps_per_epoch)


def _restored_epoch(run_dir):
    metadata = Path(run_dir) / BACKUP_DIR / "training_metadata.json"
    return json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0


def check_run_dir(run_dir, config):
    """A run directory holds one run: resuming it must use the same settings."""
    if not str(run_dir):  # Path("") is the current folder: a run would be spread over it
        raise UserError("--out '': an empty name is not a run folder")
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir}: exists and is not a directory")
    saved = run_dir / "config.json"
    if not saved.exists():
        return
    previous = json.loads(saved.read_text()).get("config", {})
    current = json.loads(json.dumps(config.to_dict()))
    # A setting added after the run was recorded had its default then: runs from older versions still resume.
    defaults = json.loads(json.dumps(type(config)().to_dict()))
    differing = sorted(k for k in current if previous.get(k, defaults[k]) != current[k])
    if differing:
        raise UserError(
            f"{run_dir}: holds a run with different settings ({', '.join(differing)}); "
            "choose a new --out or delete it"
        )


def train(config: TrainConfig, run_dir, verbose=True):
    """Train (or resume) one run; returns a summary dict, also saved in config.json."""
    config.validate()
    check_run_dir(run_dir, config)
    run_dir = Path(run_dir)
    if config.data == "stl10":  # fail (in seconds, offline) before the run folder exists
        data.stl10_builder(config.data_dir)
    source_info = data.describe_source(config.data, config.data_dir, config.data_split)
    extractor = None
    if config.loss == "perceptual":  # loaded before anything is written: a bad classifier writes nothing
        from stl_denoise.perceptual import load_extractor

        extractor = load_extractor(config.perceptual_classifier, config.crop_size)
    start_weights, init_record = initial_weights(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"config": config.to_dict(), "data": source_info, "environment": environment()}
    if init_record:
        record["init_from"] = init_record
    write_json(run_dir / "config.json", record)

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        import_tensorflow().config.experimental.enable_op_determinism()
    strategy = make_strategy(config.strategy)
    check_global_batch(strategy, config.batch_size)
    with strategy_scope(strategy), dtype_policy(config.mixed_precision):
        denoiser = denoiser_from_config(config)
        model = build_training_model(denoiser, config, extractor)
    steps_per_epoch = _epoch_size(config)
    epochs = config.steps // steps_per_epoch
    initial_epoch = _restored_epoch(run_dir)
    if start_weights is not None and initial_epoch == 0:  # a resumed run restores its own weights
        denoiser.set_weights(start_weights)
    dataset = data.training_dataset(
        config.data, config.batch_size, config.crop_size, config.seed, config.data_dir,
        skip_batches=initial_epoch * steps_per_epoch, split=config.data_split, short_side=config.resize_short_side,
    ).map(lambda clean: (clean, clean))

    step = cb.GlobalStep(steps_per_epoch, initial_epoch)
    nan_stop = cb.StopOnNaN(step)
    # Order matters at epoch ends: metrics are flushed before the backup that
    # declares their steps done, so a resumed run has no gap.
    callbacks = [
        cb.ResetEachBatch(metric_columns(config)),
        cb.EpochTracker(step),
        nan_stop,
        cb.MetricsCSV(run_dir / "metrics.csv", step, metric_columns(config)),
        cb.DenoiserCheckpoint(denoiser, str(run_dir / "checkpoint.keras")),
        cb.AtomicBackupAndRestore(str(run_dir / BACKUP_DIR), delete_checkpoint=False),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), update_freq=steps_per_epoch),
    ]
    if verbose:
        callbacks.append(cb.ProgressBar(step, config.steps))
    started = time.perf_counter()
    model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=0, shuffle=False)
    seconds = time.perf_counter() - started
    if nan_stop.failed_step is not None:
        raise TrainingDivergedError(
            f"loss became NaN/inf at step {nan_stop.failed_step} (learning rate {config.learning_rate:g}): "
            f"retry with a smaller --learning-rate such as {config.learning_rate / 10:g}, "
            "or bound updates with --clip-norm 1.0"
        )
    save_model(denoiser, run_dir / "model.keras")
    summary = summarize(run_dir / "metrics.csv", config.batch_size)
    summary["train_seconds_this_session"] = round(seconds, 2)
    record["summary"] = summary
    write_json(run_dir / "config.json", record)
    return summary


def read_metrics(path):
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def summarize(metrics_path, batch_size, tail=100):
    rows = read_metrics(metrics_path)
    mse = [float(r["mse"]) for r in rows]
    seconds = [float(r["seconds"]) for r in rows[1:]]  # the first step includes compilation
    last = mse[-tail:]
    return {
        "steps": len(rows),
        "final_mse_mean_last_100": round(statistics.fmean(last), 2),
        "first_mse": round(mse[0], 2),
        "median_images_per_second": round(batch_size / statistics.median(seconds), 1) if seconds else None,
    }
