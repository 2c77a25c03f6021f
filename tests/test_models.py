import keras
import numpy as np
import pytest

import stl_denoise  # noqa: F401
from stl_denoise.models import build_denoiser

TABLE_1 = {
    "conv1": (64, 64, 64), "conv2": (32, 32, 64), "conv3": (16, 16, 128), "conv4": (8, 8, 256),
    "conv5": (4, 4, 512), "deconv1": (8, 8, 256), "deconv2": (16, 16, 128), "deconv3": (32, 32, 64),
    "deconv4": (64, 64, 64), "deconv5": (64, 64, 3),
}


def output_shapes(model, size=64):
    probe = keras.Model(model.input, [model.get_layer(name).output for name in TABLE_1])
    outputs = probe(np.zeros((1, size, size, 3), "float32"))
    return {name: tuple(out.shape[1:]) for name, out in zip(TABLE_1, outputs)}


@pytest.mark.parametrize("skip_connections", [True, False])
def test_table_1_shapes(skip_connections):
    assert output_shapes(build_denoiser(skip_connections=skip_connections)) == TABLE_1


def test_literal_table_bottleneck():
    shapes = output_shapes(build_denoiser(bottleneck_channels=518))
    assert shapes["conv5"] == (4, 4, 518)


def test_plain_model_has_no_gates_and_same_weights_layout():
    dsc, plain = build_denoiser(True), build_denoiser(False)
    assert not any(isinstance(layer, stl_denoise.GatedSkip) for layer in plain.layers)
    assert sum(isinstance(layer, stl_denoise.GatedSkip) for layer in dsc.layers) == 4
    assert [w.shape for w in dsc.weights] == [w.shape for w in plain.weights]


def test_relu_on_every_layer_including_output():
    model = build_denoiser()
    for name in TABLE_1:
        assert model.get_layer(name).activation is keras.activations.relu, name


def reference_forward(model, noisy, forward, skip):
    """The §3.1 equations written out with plain Keras layers and explicit factors."""
    weights = {name: model.get_layer(name).get_weights() for name in TABLE_1}

    def layer(name, x):
        source = model.get_layer(name)
        kind = keras.layers.Conv2D if name.startswith("conv") else keras.layers.Conv2DTranspose
        plain = kind(source.filters, source.kernel_size, strides=source.strides, padding="same", activation="relu")
        plain.build(x.shape)
        plain.set_weights(weights[name])
        return plain(x)

    x1 = layer("conv1", noisy)
    x2 = layer("conv2", forward[0] * x1)
    x3 = layer("conv3", forward[1] * x2)
    x4 = layer("conv4", forward[2] * x3)
    x5 = layer("conv5", forward[3] * x4)
    d1 = layer("deconv1", x5)
    d2 = layer("deconv2", d1 + skip[3] * x4)
    d3 = layer("deconv3", d2 + skip[2] * x3)
    d4 = layer("deconv4", d3 + skip[1] * x2)
    return layer("deconv5", d4 + skip[0] * x1)


@pytest.mark.parametrize("reading", ["equations", "text"])
def test_gate_arithmetic_matches_reference(reading, photo_crops):
    gates = (0.1, 0.2, 0.3, 0.4)
    model = build_denoiser(gate_factors=gates, gate_reading=reading, init_stddev=0.02, seed=1)
    if reading == "equations":  # paper §3.1: δ flows on, 1-δ across
        forward, skip = gates, tuple(1 - g for g in gates)
    else:  # §4.2 prose: minute amounts (δ) across the outer connection
        forward, skip = tuple(1 - g for g in gates), gates
    noisy = photo_crops[:2]
    expected = np.asarray(reference_forward(model, noisy, forward, skip))
    np.testing.assert_allclose(np.asarray(model(noisy)), expected, rtol=1e-4, atol=1e-3)
    assert expected.std() > 0  # a dead network would make the check vacuous


def test_keras_file_round_trip(tmp_path, photo_crops):
    model = build_denoiser(gate_reading="text", seed=3)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(model(photo_crops[:2])), np.asarray(loaded(photo_crops[:2])))
    assert loaded.get_layer("gate_conv1").reading == "text"


def test_fully_convolutional_on_other_sizes():
    model = build_denoiser()
    assert tuple(model(np.zeros((1, 96, 128, 3), "float32")).shape) == (1, 96, 128, 3)


def test_wrong_number_of_gates():
    with pytest.raises(ValueError, match="4 gate factors"):
        build_denoiser(gate_factors=(0.1, 0.2))
