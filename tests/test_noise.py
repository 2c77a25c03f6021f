import keras
import numpy as np
import pytest

from stl_denoise.noise import ImageNoise, add_noise


def flat(value, shape=(8, 64, 64, 3)):
    return np.full(shape, value, dtype="float32")


def test_gaussian_sigma_is_recovered():
    noisy = np.asarray(add_noise(flat(128.0), sigma=25.0, salt_pepper=0.0, seed=1))
    assert abs((noisy - 128.0).std() - 25.0) < 0.5
    assert abs((noisy - 128.0).mean()) < 0.5


def test_salt_and_pepper_fraction_and_values():
    noisy = np.asarray(add_noise(flat(128.0), sigma=0.0, salt_pepper=0.1, seed=2))
    hit = noisy[..., 0] != 128.0
    assert abs(hit.mean() - 0.1) < 0.01
    # Whole pixels flip (all channels), half to white, half to black.
    assert np.all((noisy[hit] == 0.0) | (noisy[hit] == 255.0))
    assert np.all(noisy[hit].min(axis=-1) == noisy[hit].max(axis=-1))
    white = (noisy[..., 0] == 255.0).mean()
    assert abs(white - 0.05) < 0.01


def test_output_is_clipped():
    noisy = np.asarray(add_noise(flat(250.0), sigma=50.0, salt_pepper=0.05, seed=3))
    assert noisy.max() == 255.0 and noisy.min() >= 0.0
    low = np.asarray(add_noise(flat(5.0), sigma=50.0, salt_pepper=0.0, seed=3))
    assert low.min() == 0.0


def test_seeded_layer_is_reproducible_and_fresh_each_step():
    clean = flat(128.0, (2, 16, 16, 3))
    first, second = ImageNoise(seed=7), ImageNoise(seed=7)
    a1, a2 = np.asarray(first(clean)), np.asarray(first(clean))
    b1 = np.asarray(second(clean))
    np.testing.assert_array_equal(a1, b1)  # same seed, same first draw
    assert not np.array_equal(a1, a2)  # a fresh draw on the next step
    assert not np.array_equal(a1, np.asarray(ImageNoise(seed=8)(clean)))


def test_box_mode_noises_only_one_rectangle():
    clean = flat(128.0, (4, 64, 64, 3))
    noisy = np.asarray(add_noise(clean, sigma=25.0, salt_pepper=0.0, seed=4, box=(0.25, 0.5)))
    for image in noisy:
        changed = np.any(image != 128.0, axis=-1)
        rows, cols = np.nonzero(changed)
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert 14 <= height <= 33 and 14 <= width <= 33
        # Inside its bounding box (almost) every pixel is noisy: a rectangle.
        assert changed[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].mean() > 0.95
        assert changed.mean() < 0.3


def test_noise_layer_serializes():
    layer = ImageNoise(sigma=15.0, salt_pepper=0.01, box=(0.2, 0.4), seed=3)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert (clone.sigma, clone.salt_pepper, clone.box, clone.seed) == (15.0, 0.01, (0.2, 0.4), 3)


@pytest.mark.parametrize("kwargs", [{"sigma": -1.0}, {"salt_pepper": 1.5}])
def test_noise_rejects_bad_levels(kwargs):
    with pytest.raises(ValueError):
        ImageNoise(**kwargs)


def _cases(noisy, clean=128.0):
    """Per image: (has impulse pixels, has Gaussian noise) of a flat grey batch."""
    impulse = ((noisy == 0.0) | (noisy == 255.0)).all(-1)
    rest = np.where(impulse[..., None], clean, noisy)
    return impulse.any((1, 2)), np.abs(rest - clean).max((1, 2, 3)) > 0.5


def test_mixed_noise_gives_gaussian_impulse_or_both_a_third_each():
    noisy = np.asarray(add_noise(flat(128.0, (900, 32, 32, 3)), 0.0, 0.0, seed=keras.random.SeedGenerator(4),
                                 sigma_max=50.0, clip=False, salt_pepper_max=0.10, mixed=True))
    impulse, gaussian = _cases(noisy)
    for share in (impulse & ~gaussian, gaussian & ~impulse, impulse & gaussian):
        assert abs(share.mean() - 1 / 3) < 0.06
    fractions = ((noisy == 0.0) | (noisy == 255.0)).all(-1).mean((1, 2))[impulse]
    assert fractions.max() < 0.10 + 0.04 and fractions.min() < 0.01  # per-image fraction drawn from [0, 0.10]
    assert noisy.min() < 0.0 and noisy.max() > 255.0  # unclipped float input exists


def test_both_noises_on_every_image_without_mixing():
    noisy = np.asarray(add_noise(flat(128.0, (50, 32, 32, 3)), 25.0, 0.05, seed=5))
    impulse, gaussian = _cases(noisy)
    assert impulse.all() and gaussian.all()


def test_eight_bit_share_clips_and_rounds_that_share_of_images():
    noisy = np.asarray(add_noise(flat(128.5, (600, 16, 16, 3)), 40.0, 0.0, seed=keras.random.SeedGenerator(6),
                                 clip=False, eight_bit_share=0.5))
    as_file = (noisy == np.round(noisy)).all((1, 2, 3))
    assert abs(as_file.mean() - 0.5) < 0.08
    assert noisy[as_file].min() >= 0.0 and noisy[as_file].max() <= 255.0
    assert noisy[~as_file].min() < 0.0 or noisy[~as_file].max() > 255.0


def test_mixed_layer_config_round_trips():
    layer = ImageNoise(sigma=0.0, salt_pepper=0.0, sigma_max=50.0, salt_pepper_max=0.1, mixed=True,
                       eight_bit_share=0.5, clip=False, seed=3)
    again = ImageNoise.from_config(layer.get_config())
    assert (again.salt_pepper_max, again.mixed, again.eight_bit_share) == (0.1, True, 0.5)
    with pytest.raises(ValueError):
        ImageNoise(salt_pepper=0.2, salt_pepper_max=0.1)
