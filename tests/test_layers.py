import keras
import numpy as np
import pytest

from stl_denoise.layers import GatedSkip


@pytest.mark.parametrize("reading, forward, skip", [("equations", 0.3, 0.7), ("text", 0.7, 0.3)])
def test_gate_splits_input(reading, forward, skip):
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    out_forward, out_skip = GatedSkip(0.3, reading=reading)(x)
    np.testing.assert_allclose(out_forward, forward * x, rtol=1e-6)
    np.testing.assert_allclose(out_skip, skip * x, rtol=1e-6)


def test_gate_config_round_trip():
    layer = GatedSkip(0.2, reading="text", name="gate")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, GatedSkip)
    assert (clone.gate_factor, clone.reading, clone.name) == (0.2, "text", "gate")


@pytest.mark.parametrize("kwargs", [{"gate_factor": 1.5}, {"gate_factor": -0.1},
                                    {"gate_factor": 0.1, "reading": "prose"}])
def test_gate_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        GatedSkip(**kwargs)
