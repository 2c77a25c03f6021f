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


# --- the camera noise model: each stage against its formula --------------------------------

from stl_denoise import noise as camera  # noqa: E402


def test_srgb_tone_curve_round_trips_and_matches_the_standard():
    values = np.linspace(0.0, 1.0, 1001, dtype="float32")
    linear = np.asarray(camera.srgb_to_linear(values))
    np.testing.assert_allclose(np.asarray(camera.linear_to_srgb(linear)), values, atol=2e-6)
    # IEC 61966-2-1 reference points: mid-grey 0.5 is 21.4% linear light; the linear toe below 0.04045.
    assert abs(linear[500] - 0.214041) < 1e-5
    np.testing.assert_allclose(linear[:40], values[:40] / 12.92, rtol=1e-6)
    assert np.all(np.diff(linear) > 0)


def _flat(levels, size=256):
    """One flat crop per level (0-255), all three channels equal: [len(levels), size, size, 3]."""
    return np.stack([np.full((size, size, 3), level, np.float32) for level in levels])


def _pipeline(images, shot, read, gains=(1.0, 1.0, 1.0), bayer=False, tone_curve=False, seed=0):
    batch = len(images)
    rng = np.random.default_rng(seed)
    channels = 1 if bayer else 3
    noise = rng.standard_normal(images.shape[:3] + (channels,)).astype("float32")
    phase = np.zeros((batch, 2), "int32") if bayer else None
    return np.asarray(camera.camera_pipeline(
        images, np.full(batch, shot, np.float32), np.full(batch, read, np.float32),
        np.tile(np.asarray(gains, np.float32), (batch, 1)), noise, phase, tone_curve))


def test_shot_and_read_noise_variance_is_shot_times_signal_plus_read():
    levels = [0.1, 0.3, 0.6]
    shot, read = 4e-3, 1e-4
    noisy = _pipeline(_flat([255.0 * x for x in levels]), shot, read) / 255.0
    for index, x in enumerate(levels):
        measured = (noisy[index] - x).var()
        assert abs(measured / (shot * x + read) - 1.0) < 0.03


def test_white_balance_makes_the_noise_differ_per_channel_as_its_gains_say():
    x, shot, read, gains = 0.2, 4e-3, 2e-4, (2.0, 1.0, 1.7)
    noisy = _pipeline(_flat([255.0 * x]), shot, read, gains)[0] / 255.0
    for channel, gain in enumerate(gains):
        # Raw value x / gain gets variance shot * x / gain + read, then is multiplied by the gain again.
        expected = shot * gain * x + read * gain**2
        assert abs((noisy[..., channel] - x).var() / expected - 1.0) < 0.03


def test_tone_curve_scales_the_noise_by_its_slope():
    level, shot, read = 128.0, 1e-4, 1e-6  # weak noise: the first-order (delta-method) formula holds
    noisy = _pipeline(_flat([level]), shot, read, tone_curve=True)[0]
    linear = float(camera.srgb_to_linear(np.float32(level / 255.0)))
    slope = 1.055 / 2.4 * linear ** (1.0 / 2.4 - 1.0)  # d sRGB / d linear on the power branch
    expected = 255.0 * slope * np.sqrt(shot * linear + read)
    assert abs((noisy - level).std() / expected - 1.0) < 0.03
    assert abs((noisy - level).mean()) < 0.05 * expected


def test_bilinear_demosaic_reproduces_a_linear_ramp_from_its_mosaic():
    rows, cols = np.meshgrid(np.arange(16.0), np.arange(20.0), indexing="ij")
    ramp = np.repeat((3.0 * rows + 2.0 * cols + 5.0)[None, ..., None], 3, axis=-1).astype("float32")
    masks = np.asarray(camera.bayer_masks((1, 16, 20, 3), np.zeros((1, 2), "int32")))
    assert np.all(masks.sum(-1) == 1.0) and masks[0, 0, 0, 0] == 1.0 and masks[0, 1, 1, 2] == 1.0  # RGGB
    assert masks[..., 1].mean() == 0.5
    filled = np.asarray(camera.bilinear_demosaic(ramp * masks))
    np.testing.assert_allclose(filled[0, 1:-1, 1:-1], ramp[0, 1:-1, 1:-1], atol=1e-4)  # exact inside


def test_bayer_noise_is_correlated_between_neighbours_as_bilinear_interpolation_says():
    x, shot, read = 0.3, 4e-3, 1e-4
    images = _flat([255.0 * x] * 4, size=128)
    deviation = (_pipeline(images, shot, read, bayer=True) / 255.0 - x)[..., 0]  # red channel
    variance = shot * x + read
    # Red sites keep their own draw; the green sites between two reds get the mean of two, blue sites of four.
    assert abs(deviation[:, 0::2, 0::2].var() / variance - 1.0) < 0.05
    assert abs(deviation[:, 0::2, 1::2].var() / (variance / 2) - 1.0) < 0.05
    assert abs(deviation[:, 1::2, 1::2].var() / (variance / 4) - 1.0) < 0.05
    left, right = deviation[:, :, :-1].ravel(), deviation[:, :, 1:].ravel()
    assert np.corrcoef(left, right)[0, 1] > 0.5  # 1/sqrt(2) between a red site and its neighbour
    white = (_pipeline(images, shot, read, bayer=False) / 255.0 - x)[..., 0]
    assert abs(np.corrcoef(white[:, :, :-1].ravel(), white[:, :, 1:].ravel())[0, 1]) < 0.02


def test_camera_levels_are_drawn_over_the_documented_ranges():
    shot, read, gains = (np.asarray(v) for v in camera.draw_camera_levels(20_000, keras.random.SeedGenerator(5)))
    low, high = np.log(camera.SHOT_NOISE_RANGE)
    log_shot = np.log(shot)
    assert log_shot.min() >= low - 1e-5 and log_shot.max() <= high + 1e-5
    assert abs(log_shot.mean() - (low + high) / 2) < 0.05  # log-uniform
    assert abs(log_shot.std() - (high - low) / np.sqrt(12)) < 0.05
    scatter = np.log(read) - (camera.READ_NOISE_SLOPE * log_shot + camera.READ_NOISE_INTERCEPT)
    assert abs(scatter.mean()) < 0.01 and abs(scatter.std() - camera.READ_NOISE_SCATTER) < 0.01
    assert np.all(gains[:, 1] == 1.0)
    assert camera.RED_GAIN_RANGE[0] <= gains[:, 0].min() and gains[:, 0].max() <= camera.RED_GAIN_RANGE[1]
    assert camera.BLUE_GAIN_RANGE[0] <= gains[:, 2].min() and gains[:, 2].max() <= camera.BLUE_GAIN_RANGE[1]


def test_camera_noise_on_a_photo_is_weak_to_moderate_eight_bit_noise(photo_crops):
    noisy = np.asarray(camera.camera_noise(photo_crops, keras.random.SeedGenerator(2)))
    assert np.array_equal(noisy, np.round(noisy)) and noisy.min() >= 0.0 and noisy.max() <= 255.0
    deviations = (noisy - photo_crops).std(axis=(1, 2, 3))
    assert 0.3 < deviations.min() and deviations.max() < 40.0  # sigma ~1-15 at mid-grey over the level range


def test_jpeg_quantisation_tables_follow_libjpeg_scaling():
    tables = np.asarray(camera.quantisation_table(camera.LUMA_TABLE, np.array([50.0, 100.0, 25.0, 90.0])))
    base = np.reshape(camera.LUMA_TABLE, (8, 8))
    np.testing.assert_array_equal(tables[0], base)  # quality 50 is the Annex K table itself
    assert np.all(tables[1] == 1.0)
    np.testing.assert_array_equal(tables[2], np.clip(np.floor((base * 200 + 50) / 100), 1, 255))
    np.testing.assert_array_equal(tables[3], np.clip(np.floor((base * 20 + 50) / 100), 1, 255))


@pytest.mark.parametrize("quality", [30, 75, 95])
def test_jpeg_compress_matches_pillow(quality):
    import io

    from PIL import Image

    from stl_denoise.data import sample_images
    from stl_denoise.metrics import psnr

    photo = sample_images()["astronaut"][100:228, 150:278].astype("float32")
    buffer = io.BytesIO()
    Image.fromarray(photo.astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    pillow = np.asarray(Image.open(buffer)).astype("float32")
    ours = np.asarray(camera.jpeg_compress(photo[None], np.array([quality], "float32")))[0]
    assert abs(psnr(photo, ours) - psnr(photo, pillow)) < 0.3  # the same loss as a real JPEG
    assert psnr(pillow, ours) > 42.0  # and nearly the same pixels (libjpeg's DCT is in integers)
    odd = np.asarray(camera.jpeg_compress(photo[None, :37, :50], np.array([quality], "float32")))
    assert odd.shape == (1, 37, 50, 3)


def test_camera_and_jpeg_noise_are_seeded_and_resume_from_the_saved_state(photo_crops):
    settings = dict(sigma=0.0, salt_pepper=0.0, sigma_max=50.0, clip=False, camera_share=0.5, jpeg_share=0.5)
    first, again = ImageNoise(seed=9, **settings), ImageNoise(seed=9, **settings)
    draw = np.asarray(first(photo_crops))
    np.testing.assert_array_equal(draw, np.asarray(again(photo_crops)))
    store = {}
    first.save_own_variables(store)
    following = np.asarray(first(photo_crops))
    assert not np.array_equal(draw, following)
    resumed = ImageNoise(seed=123, **settings)
    resumed.load_own_variables(store)
    np.testing.assert_array_equal(np.asarray(resumed(photo_crops)), following)


def test_camera_share_and_jpeg_share_pick_that_share_of_crops():
    clean = flat(128.0, (400, 16, 16, 3))
    noisy = np.asarray(add_noise(clean, 0.0, 0.0, seed=keras.random.SeedGenerator(3), camera_share=0.5))
    touched = (noisy != 128.0).any((1, 2, 3))
    assert abs(touched.mean() - 0.5) < 0.08
    ramp = np.broadcast_to(np.linspace(0, 255, 16, dtype="float32")[None, None, :, None], (400, 16, 16, 3))
    ramp = ramp + np.linspace(0, 40, 16, dtype="float32")[None, :, None, None] * np.array([1, -0.5, 0.3], "float32")
    ramp = np.clip(np.round(ramp), 0, 255)
    saved = np.asarray(add_noise(ramp, 0.0, 0.0, seed=keras.random.SeedGenerator(4), jpeg_share=0.5,
                                 jpeg_quality=(20, 40)))
    assert abs((saved != ramp).any((1, 2, 3)).mean() - 0.5) < 0.08


def test_camera_layer_config_round_trips_and_rejects_bad_settings():
    layer = ImageNoise(camera_share=0.3, camera_bayer=False, jpeg_share=0.2, jpeg_quality_min=70, seed=1)
    again = ImageNoise.from_config(layer.get_config())
    assert (again.camera_share, again.camera["bayer"], again.jpeg_share, again.jpeg_quality) == (0.3, False, 0.2,
                                                                                                  (70, 100))
    for bad in ({"camera_share": 1.5}, {"jpeg_share": -0.1}, {"jpeg_quality_min": 90, "jpeg_quality_max": 80}):
        with pytest.raises(ValueError):
            ImageNoise(**bad)


def test_camera_noise_compiles_with_xla():
    import tensorflow as tf

    layer = ImageNoise(sigma=10.0, salt_pepper=0.0, camera_share=0.5, jpeg_share=0.5, seed=2)
    noisy = tf.function(lambda images: layer(images), jit_compile=True)(flat(100.0, (2, 32, 32, 3)))
    assert noisy.shape == (2, 32, 32, 3) and np.isfinite(np.asarray(noisy)).all()


def test_real_mixed_preset_and_flags(tmp_path, capsys):
    from stl_denoise.cli import main
    from stl_denoise.config import PRESETS

    preset = PRESETS["real-mixed"]
    assert preset.camera_share > 0 and preset.jpeg_share > 0 and preset.noise_mix == "mixed"
    assert main(["train", "--preset", "real-mixed", "--data", "sample", "--camera-share", "1.5",
                 "--out", str(tmp_path / "run")]) == 2
    assert "--camera-share must be in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_make_train_real_mixed_is_one_valid_cli_call():
    import shlex
    import subprocess
    from pathlib import Path

    from stl_denoise import cli

    root = Path(__file__).resolve().parents[1]
    printed = subprocess.run(["make", "-n", "-C", str(root), "train-real-mixed", "PYTHON=python", "OUT=x"],
                             capture_output=True, text=True, check=True).stdout
    commands = [line for line in printed.splitlines() if "stl_denoise" in line]
    assert len(commands) == 1
    argv = shlex.split(commands[0])[3:]  # after "python -m stl_denoise"
    args = cli.build_parser(*cli.defaults_from_argv(argv)).parse_args(argv)
    config = cli.config_from_args(args).validate()
    assert (config.preset, config.init_from, config.data_split) == ("real-mixed", "dsc-blind-mixed", "train")
    assert config.camera_share == 0.5 and config.jpeg_share == 0.5 and config.warmup_steps > 0
