import dataclasses
import json

import keras
import numpy as np
import pytest

from stl_denoise.cli import build_parser, config_from_args, defaults_from_argv
from stl_denoise.config import MODERN, TrainConfig
from stl_denoise.errors import UserError
from stl_denoise.models import build_denoiser
from stl_denoise.noise import ImageNoise
from stl_denoise.optimizers import optimizer_from_config
from stl_denoise.splits import is_validation_file, split_files
from stl_denoise.train import train


def parse(*argv):
    argv = ["train", "--out", "x", *argv]
    return config_from_args(build_parser(*defaults_from_argv(argv)).parse_args(argv))


def test_modern_preset_sets_its_defaults_and_flags_override():
    modern = parse("--preset", "modern")
    for key, value in MODERN.items():
        assert getattr(modern, key) == value, key
    tweaked = parse("--preset", "modern", "--optimizer", "sgd", "--no-residual", "--steps", "7")
    assert (tweaked.optimizer, tweaked.residual, tweaked.steps, tweaked.lr_schedule) == ("sgd", False, 7, "cosine")
    # Each modern switch also works on the faithful recipe.
    single = parse("--residual", "--output-activation", "linear", "--sigma-max", "50")
    assert single.residual and single.output_activation == "linear" and single.sigma_max == 50.0
    assert single.optimizer == "sgd" and single.preset == "faithful"
    assert parse() == TrainConfig()  # the faithful defaults are untouched


def test_sigma_range_draws_one_sigma_per_image_unclipped():
    clean = np.full((64, 32, 32, 3), 128.0, np.float32)
    noisy = np.asarray(ImageNoise(sigma=5.0, sigma_max=50.0, salt_pepper=0.0, clip=False, seed=0)(clean))
    stds = (noisy - 128.0).reshape(64, -1).std(axis=1)
    assert 4.0 < stds.min() < 12.0 and 42.0 < stds.max() < 55.0
    assert noisy.max() > 255.0 or noisy.min() < 0.0  # sigma ~50 around 128 leaves the range somewhere
    with pytest.raises(ValueError, match="sigma_max"):
        ImageNoise(sigma=30.0, sigma_max=10.0)


def test_zero_init_residual_model_starts_as_identity(photo_crops):
    model = build_denoiser(output_activation="linear", residual=True, input_range=1.0, zero_init_output=True, seed=0)
    np.testing.assert_allclose(np.asarray(model(photo_crops[:2])), photo_crops[:2], rtol=1e-5, atol=1e-3)
    faithful = build_denoiser(seed=0)
    assert [layer.name for layer in faithful.layers if "rescal" in type(layer).__name__.lower()] == []


def test_validation_split_is_fixed_and_disjoint(tmp_path):
    names = [tmp_path / f"{i:06d}.jpg" for i in range(400)]
    validation, training = split_files(names, "validation"), split_files(names, "train")
    assert set(validation).isdisjoint(training) and len(validation) + len(training) == 400
    assert 20 <= len(validation) <= 60
    # Decided by the file name alone: the same file is held out in any folder or subset.
    assert all(is_validation_file(tmp_path / "other" / p.name) for p in validation)
    assert split_files(names[:100], "validation") == [p for p in validation if p in names[:100]]


def test_modern_training_runs_and_learns(tmp_path):
    config = TrainConfig(**{**MODERN, "data": "sample", "data_split": "all", "steps": 40, "steps_per_epoch": 20,
                            "batch_size": 4, "crop_size": 64})
    summary = train(config, tmp_path / "run", verbose=False)
    # Blind sigma in [0, 50]: noisy MSE is 50²/3 ≈ 833 on average; the identity start plus 40 steps must beat it.
    assert summary["final_mse_mean_last_100"] < 600


def test_init_from_starts_at_the_given_weights_and_records_them(tmp_path, photo_crops):
    config = TrainConfig(**{**MODERN, "data": "sample", "data_split": "all", "steps": 20, "steps_per_epoch": 10,
                            "batch_size": 2, "crop_size": 32, "seed": 3})
    first = tmp_path / "first"
    train(config, first, verbose=False)
    fine_tuned = tmp_path / "fine-tuned"
    # learning rate ~0 for the first step (warmup from 0): the start must be exactly the source model.
    train(dataclasses.replace(config, init_from=str(first), steps=1, steps_per_epoch=1, warmup_steps=0,
                              learning_rate=1e-30), fine_tuned, verbose=False)
    source, tuned = (keras.saving.load_model(run / "model.keras") for run in (first, fine_tuned))
    for a, b in zip(source.get_weights(), tuned.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-12)
    recorded = json.loads((fine_tuned / "config.json").read_text())["init_from"]
    assert recorded["path"] == str((first / "model.keras").resolve()) and len(recorded["sha256"]) == 64
    fresh = build_denoiser(output_activation="linear", residual=True, input_range=1.0, zero_init_output=True, seed=3)
    assert not np.allclose(fresh.get_weights()[0], tuned.get_weights()[0])


def test_init_from_another_architecture_is_refused_before_writing(tmp_path):
    source = tmp_path / "modern.keras"
    build_denoiser(output_activation="linear", residual=True, input_range=1.0, seed=0).save(source)
    run_dir = tmp_path / "faithful"
    with pytest.raises(UserError, match=r"modern\.keras: --init-from model differs .* --input-range 1 there, 255 here"):
        train(TrainConfig(data="sample", steps=2, init_from=str(source)), run_dir, verbose=False)
    assert not run_dir.exists()
    with pytest.raises(UserError, match="no such model file"):
        train(TrainConfig(data="sample", steps=2, init_from=str(tmp_path / "missing.keras")), run_dir, verbose=False)
    assert not run_dir.exists()


@pytest.mark.parametrize("schedule, expected", [
    ("cosine", [0.0, 0.25, 0.5, 1.0, 0.5, 0.0]),  # ramp over 4 steps, then cosine over the other 4
    ("constant", [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]),
])
def test_warmup_ramps_the_learning_rate(schedule, expected):
    optimizer = optimizer_from_config(TrainConfig(lr_schedule=schedule, learning_rate=1.0, steps=8, warmup_steps=4))
    rates = [float(optimizer._learning_rate(step)) for step in (0, 1, 2, 4, 6, 8)]
    np.testing.assert_allclose(rates, expected, atol=1e-6)
