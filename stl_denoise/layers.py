"""Custom layers of the denoiser.

``GatedSkip`` is the Direct Symmetric Connection gate of paper §3.1.
"""

import keras
from keras import ops

from stl_denoise.config import GATE_READINGS


@keras.saving.register_keras_serializable(package="stl_denoise")
class GatedSkip(keras.layers.Layer):
    """Split a conv output X_i into a forward part and a skip part (paper §3.1).

    The paper's equations (§3.1) are

        X_{i+1}  = ReLU(Conv(δ_i · X_i, W_{i+1}) + b_{i+1})
        X'_{j+1} = ReLU(Deconv(X'_j + (1 - δ_i) · X_i, W'_{j+1}) + b'_{j+1})

    i.e. a fraction δ_i of conv-i's output flows on through the encoder and
    (1 - δ_i) flows across to the deconv layer of the same shape.

    ``reading="equations"`` (the faithful default) returns
    ``(δ·X, (1-δ)·X)``.  With the paper's gate factors 0.1..0.4 for
    conv1..conv4 that sends 0.9 of conv1 across the outermost connection.

    ``reading="text"`` follows §4.2's prose instead ("minute amounts" across
    the outermost connection, "larger influence" near the bottleneck) and
    returns ``((1-δ)·X, δ·X)``: 0.1 of conv1 goes across, 0.9 flows on.

    Call returns a tuple ``(forward, skip)``.
    """

    def __init__(self, gate_factor, reading="equations", **kwargs):
        super().__init__(**kwargs)
        gate_factor = float(gate_factor)
        if not 0.0 <= gate_factor <= 1.0:
            raise ValueError(f"gate_factor must be in [0, 1], got {gate_factor}")
        if reading not in GATE_READINGS:
            raise ValueError(f"reading must be one of {GATE_READINGS}, got {reading!r}")
        self.gate_factor = gate_factor
        self.reading = reading

    @property
    def forward_fraction(self):
        return self.gate_factor if self.reading == "equations" else 1.0 - self.gate_factor

    @property
    def skip_fraction(self):
        return 1.0 - self.forward_fraction

    def build(self, input_shape):
        # Fixed factors, no weights: the paper sets δ by hand (§4.2).
        self.built = True

    def call(self, inputs):
        forward = ops.multiply(inputs, ops.cast(self.forward_fraction, inputs.dtype))
        skip = ops.multiply(inputs, ops.cast(self.skip_fraction, inputs.dtype))
        return forward, skip

    def compute_output_shape(self, input_shape):
        return input_shape, input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"gate_factor": self.gate_factor, "reading": self.reading})
        return config
