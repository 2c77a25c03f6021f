"""The optimiser section of a run config (``config.OptimizerSettings``) as a Keras optimiser.

Imported by the package, so a saved classifier (compiled, its optimiser and
learning-rate schedule inside) loads after ``import stl_denoise``.
"""

import keras


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
