"""The 10-layer conv-deconv denoiser of paper §3.1 / Table 1, with and without DSC.

The plain model is the DSC model with its connections switched off
(``skip_connections=False``): the same function builds both.  A run builds
its network from its config's architecture section, ``denoiser(**section)``;
the model records that section (``model.architecture``), and
``architecture_of`` reads it back from any denoiser's layers, a saved one
too, so ``--init-from`` compares sections.
"""

import math

import keras

# The module, not its names: Keras's first import may come from inside layers.py, and the package then
# registers its classes, this module among the importers, while layers.py is half-loaded (__init__.py).
from stl_denoise import layers as gated_layers
from stl_denoise.config import (  # noqa: F401
    DEFAULT_BOTTLENECK_CHANNELS,
    DEFAULT_GATE_FACTORS,
    SIZE_MULTIPLE,
    padded_size,  # (SIZE_MULTIPLE and padded_size re-exported)
)

# Table 1, for a 64x64x3 input: (name, filters, stride).
ENCODER = (("conv1", 64, 1), ("conv2", 64, 2), ("conv3", 128, 2), ("conv4", 256, 2))
DECODER = (("deconv1", 256, 2), ("deconv2", 128, 2), ("deconv3", 64, 2), ("deconv4", 64, 2))
# Which conv feeds which deconv's *input* (same spatial shape), paper §3.1.
SKIP_TARGETS = {"conv4": "deconv2", "conv3": "deconv3", "conv2": "deconv4", "conv1": "deconv5"}


def kernel_initializer(init_stddev, seed):
    """Truncated normal; ``"he"`` scales it by sqrt(2 / fan_in) (keras HeNormal)."""
    if init_stddev == "he":
        return keras.initializers.HeNormal(seed=seed)
    return keras.initializers.TruncatedNormal(stddev=float(init_stddev), seed=seed)


def encoder_specs(bottleneck_channels=DEFAULT_BOTTLENECK_CHANNELS):
    """(name, filters, stride) of conv1..conv5, shared by Tables 1 and 2."""
    return ENCODER + (("conv5", bottleneck_channels, 2),)


def decoder_specs():
    """(name, filters, stride) of deconv1..deconv5; deconv5 maps back to the 3 colour channels."""
    return DECODER + (("deconv5", 3, 1),)


def layer_seeds(seed):
    """One seed per layer (conv1..conv5, deconv1..deconv5, then heads), or Nones.

    A distinct seed per layer: one shared seed would give equal kernels.
    """
    if seed is None:
        while True:
            yield None
    yield from range(seed * 100, seed * 100 + 100)


def conv_layer_kwargs(kernel_size, init_stddev, seed):
    return dict(
        kernel_size=kernel_size,
        padding="same",
        activation="relu",
        kernel_initializer=kernel_initializer(init_stddev, seed),
        bias_initializer="zeros",
    )


def encoder_convs(bottleneck_channels=DEFAULT_BOTTLENECK_CHANNELS, kernel_size=3, init_stddev="he", seeds=None):
    """Fresh Conv2D layers conv1..conv5 (ReLU, strides 1,2,2,2,2).

    The denoiser (Table 1) and the classifier (Table 2) build their encoders
    here, so their layer names and weight shapes match by construction and
    transfer (§4.3) can copy weights layer by layer.
    """
    seeds = layer_seeds(None) if seeds is None else seeds
    return [
        keras.layers.Conv2D(filters, strides=stride, name=name,
                            **conv_layer_kwargs(kernel_size, init_stddev, next(seeds)))
        for name, filters, stride in encoder_specs(bottleneck_channels)
    ]


def build_denoiser(
    skip_connections=True,
    gate_factors=DEFAULT_GATE_FACTORS,
    gate_reading="equations",
    bottleneck_channels=DEFAULT_BOTTLENECK_CHANNELS,
    kernel_size=3,
    init_stddev="he",
    output_activation="relu",
    residual=False,
    input_range=255.0,
    zero_init_output=False,
    seed=None,
    name=None,
):
    """Build the denoiser as a Keras functional model.

    Input: [B, H, W, 3] on the 0-255 scale (H, W divisible by 16); output the
    same.  ``output_activation`` and ``residual`` exist for the non-faithful
    presets; the faithful model keeps ReLU on every layer (paper §3.1).
    ``input_range``: the network works on pixels scaled to [0, input_range]
    (255: the paper's raw pixels; 1: the modern preset).  The scaling happens
    inside the model, so every saved model takes and returns 0-255 pixels.
    ``residual``: the layers predict the noise-free image minus the input
    (a global residual connection, added on the scaled pixels).
    ``zero_init_output``: start deconv5's kernel at zero, so a residual model
    starts as the identity.  Keras computes a transposed conv's fan-in from
    its *output* channels (3 for deconv5), which makes He init ~4.6x too wide
    there and the first outputs huge.

    Example::

        >>> import numpy as np, stl_denoise
        >>> model = stl_denoise.build_denoiser(output_activation="linear", residual=True, input_range=1.0)
        >>> tuple(model(np.zeros((1, 64, 96, 3), "float32")).shape)
        (1, 64, 96, 3)
    """
    gate_factors = tuple(float(g) for g in gate_factors)
    if len(gate_factors) != len(ENCODER):
        raise ValueError(f"need {len(ENCODER)} gate factors (conv1..conv4), got {len(gate_factors)}")
    seeds = layer_seeds(seed)
    *gated_convs, conv5 = encoder_convs(bottleneck_channels, kernel_size, init_stddev, seeds)

    noisy = keras.Input(shape=(None, None, 3), name="noisy")
    scale = float(input_range) / 255.0
    # No extra layer when unscaled: the faithful model keeps its exact layer list.
    scaled = noisy if scale == 1.0 else keras.layers.Rescaling(scale, name="to_input_range")(noisy)
    x = scaled
    skips = {}
    for conv, gate_factor in zip(gated_convs, gate_factors):
        x = conv(x)
        if skip_connections:
            x, skips[SKIP_TARGETS[conv.name]] = gated_layers.GatedSkip(
                gate_factor, reading=gate_reading, name=f"gate_{conv.name}"
            )(x)
    x = conv5(x)
    for layer_name, filters, stride in decoder_specs():
        if layer_name in skips:
            x = keras.layers.Add(name=f"merge_{layer_name}")([x, skips[layer_name]])
        kwargs = conv_layer_kwargs(kernel_size, init_stddev, next(seeds))
        if layer_name == "deconv5":
            kwargs["activation"] = output_activation
            if zero_init_output:
                kwargs["kernel_initializer"] = "zeros"
        x = keras.layers.Conv2DTranspose(filters, strides=stride, name=layer_name, **kwargs)(x)
    if residual:
        x = keras.layers.Add(name="global_residual")([scaled, x])
    if scale != 1.0:
        x = keras.layers.Rescaling(1.0 / scale, name="to_pixels")(x)
    if name is None:
        name = "dsc_denoiser" if skip_connections else "plain_denoiser"
    return keras.Model(noisy, x, name=name)


def denoiser(model="dsc", seed=None, name=None, **architecture):
    """The denoiser an architecture section describes (``config.DenoiserArchitecture``), as keyword arguments.

    ``model``: ``"dsc"`` or ``"plain"``, the DSC net with its connections
    off.  The returned model records the section as ``model.architecture``,
    as keras-hub backbones record their constructor arguments.
    """
    built = build_denoiser(skip_connections=model == "dsc", seed=seed, name=name, **architecture)
    built.architecture = {"model": model, **architecture}
    return built


# Settings that only choose the initial weights: two denoisers differing in them take each other's weights.
INITIALISATION_ONLY = ("init_stddev", "zero_init_output")
# What a plain net (no gates) does not use.
GATE_SETTINGS = ("gate_factors", "gate_reading")


def architecture_of(network):
    """The architecture section of a denoiser, read from its layers (those that decide its weights and outputs).

    Works for models saved before the section was recorded.  Settings that
    only choose initial weights (``INITIALISATION_ONLY``), and a plain
    net's gate settings, are left out: they cannot be read from the layers.
    """
    layers = {layer.name: layer for layer in network.layers}
    missing = [name for name, _, _ in encoder_specs() + decoder_specs() if name not in layers]
    if missing:
        raise ValueError(f"not a denoiser of this package: no layer {missing[0]!r}")
    gates = [layers[f"gate_{name}"] for name, _, _ in ENCODER if f"gate_{name}" in layers]
    section = {
        "model": "dsc" if gates else "plain",
        "bottleneck_channels": layers["conv5"].filters,
        "kernel_size": layers["conv1"].kernel_size[0],
        "input_range": layers["to_input_range"].scale * 255.0 if "to_input_range" in layers else 255.0,
        "output_activation": keras.activations.serialize(layers["deconv5"].activation),
        "residual": "global_residual" in layers,
    }
    if gates:
        section.update(gate_factors=tuple(gate.gate_factor for gate in gates), gate_reading=gates[0].reading)
    return section


def architecture_difference(network, section):
    """The settings in which ``network`` differs from an architecture ``section``: {name: (network's, section's)}."""
    found = architecture_of(network)
    compared = [name for name in section
                if name in found and (name not in GATE_SETTINGS or section.get("model") == "dsc")]
    return {name: (found[name], section[name]) for name in compared if not _same(found[name], section[name])}


def _same(found, wanted):
    if isinstance(wanted, float) and isinstance(found, (int, float)):
        return math.isclose(found, wanted, rel_tol=1e-6)
    if isinstance(wanted, tuple) and isinstance(found, tuple) and len(found) == len(wanted):
        return all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(found, wanted))
    return found == wanted

