"""The benchmark's FLOP count, checked against the built model's own shapes."""

import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest

from stl_denoise.models import build_denoiser

spec = importlib.util.spec_from_file_location("bench", Path(__file__).parent.parent / "benchmarks" / "bench.py")


@pytest.fixture(scope="module")
def bench():
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def macs_from_model(model, size=64):
    total = 0
    x = np.zeros((1, size, size, 3), "float32")
    names = [layer.name for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    outputs = probe(x)
    for name, out in zip(names, outputs):
        layer = model.get_layer(name)
        kernel_h, kernel_w, *_ = layer.kernel.shape
        if isinstance(layer, keras.layers.Conv2DTranspose):
            # Every input position scatters a k x k x C_out patch.
            in_h = out.shape[1] // layer.strides[0]
            in_w = out.shape[2] // layer.strides[1]
            total += in_h * in_w * layer.kernel.shape[3] * layer.filters * kernel_h * kernel_w
        else:
            total += out.shape[1] * out.shape[2] * layer.filters * kernel_h * kernel_w * layer.kernel.shape[2]
    return total


@pytest.mark.parametrize("bottleneck", [512, 518])
def test_forward_macs_match_the_model(bench, bottleneck):
    model = build_denoiser(bottleneck_channels=bottleneck)
    assert bench.forward_macs(bottleneck=bottleneck) == macs_from_model(model)
