import dataclasses
import json

import keras
import numpy as np
import pytest

import stl_denoise  # noqa: F401
from stl_denoise.config import TrainConfig
from stl_denoise.errors import TrainingDivergedError, UserError
from stl_denoise.runs import check_run_dir, read_metrics
from stl_denoise.train import train


def tiny(**overrides):
    values = dict(model="dsc", data="sample", steps=60, steps_per_epoch=20, seed=0)
    values.update(overrides)
    return TrainConfig(**values)


def mse_column(run_dir):
    return [float(row["mse"]) for row in read_metrics(run_dir / "metrics.csv")]


@pytest.fixture(scope="module")
def dsc_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "dsc"
    summary = train(tiny(steps=120), run_dir, verbose=False)
    return run_dir, summary


def test_run_directory_contents(dsc_run):
    run_dir, summary = dsc_run
    for name in ("config.json", "metrics.csv", "model.keras", "checkpoint.keras", "tensorboard"):
        assert (run_dir / name).exists(), name
    record = json.loads((run_dir / "config.json").read_text())
    assert record["config"]["learning_rate"] == TrainConfig().learning_rate
    assert record["data"]["kind"] == "sample"
    assert {"tensorflow", "keras", "numpy"} <= set(record["environment"])
    assert record["summary"]["steps"] == 120
    steps = [int(row["step"]) for row in read_metrics(run_dir / "metrics.csv")]
    assert steps == list(range(1, 121))


def test_mse_falls_on_real_photographs(dsc_run):
    run_dir, _ = dsc_run
    mse = mse_column(run_dir)
    # Skip the first steps: they swing widely from the random init (paper Fig. 6 drops 1,000).
    early, late = np.mean(mse[5:25]), np.mean(mse[-20:])
    assert late < 0.8 * early, (early, late)


def test_saved_model_is_the_bare_denoiser(dsc_run, photo_crops):
    run_dir, _ = dsc_run
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.name == "dsc_denoiser"
    assert not any(isinstance(layer, stl_denoise.ImageNoise) for layer in model.layers)
    assert model(photo_crops[:1]).shape == (1, 64, 64, 3)


def test_rerun_with_other_settings_is_refused(dsc_run):
    run_dir, _ = dsc_run
    with pytest.raises(UserError, match="different settings.*learning_rate"):
        train(tiny(steps=120, learning_rate=1e-3), run_dir, verbose=False)


def test_divergence_stops_with_the_step(tmp_path):
    with pytest.raises(TrainingDivergedError, match=r"NaN/inf at step \d+.*--learning-rate"):
        train(tiny(steps=20, learning_rate=1e-3), tmp_path / "boom", verbose=False)
    assert not (tmp_path / "boom" / "model.keras").exists()
    # Keras still ends the epoch after the stop: neither a backup nor a checkpoint may hold the NaN weights.
    assert not (tmp_path / "boom" / "backup" / "training_metadata.json").exists()
    assert not (tmp_path / "boom" / "checkpoint.keras").exists()


def test_resume_continues_to_the_requested_steps(tmp_path):
    run_dir = tmp_path / "resume"
    train(tiny(steps=20, steps_per_epoch=10), run_dir, verbose=False)
    # Simulate a run stopped after its first backup: drop the finished model.
    (run_dir / "model.keras").unlink()
    metadata = json.loads((run_dir / "backup" / "training_metadata.json").read_text())
    assert metadata["epoch"] == 2
    # The same command again finds the run complete and only writes the model.
    train(tiny(steps=20, steps_per_epoch=10), run_dir, verbose=False)
    steps = [int(row["step"]) for row in read_metrics(run_dir / "metrics.csv")]
    assert steps == list(range(1, 21))
    assert (run_dir / "model.keras").exists()


@pytest.mark.parametrize("overrides, message", [
    ({"steps": -1}, "--steps"), ({"sigma": 300.0}, "--sigma"),
    ({"gate_factors": (0.1, 2.0, 0.3, 0.4)}, "--gate-factors"),
    ({"crop_size": 50}, "--crop-size"), ({"init_stddev": "wide"}, "--init-stddev"),
])
def test_config_validation(overrides, message):
    with pytest.raises(UserError, match=message):
        tiny(**overrides).validate()


def test_mixed_precision_flag_trains_and_restores_the_policy(tmp_path, photo_crops):
    # bfloat16 runs on CPUs (float16 is the GPU choice); float32 stays the default.
    train(tiny(steps=10, steps_per_epoch=10, mixed_precision="bfloat16"), tmp_path / "mixed", verbose=False)
    assert keras.config.dtype_policy().name == "float32"
    model = keras.saving.load_model(tmp_path / "mixed" / "model.keras")
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    assert model.get_layer("conv1").kernel.dtype == "float32"
    assert np.all(np.isfinite(mse_column(tmp_path / "mixed")))
    with pytest.raises(UserError, match="--mixed-precision"):
        tiny(mixed_precision="half").validate()


def test_settings_added_later_do_not_block_resuming_an_older_run(tmp_path):
    # A run recorded before a setting existed ran with that setting's default.
    config = tiny(steps=4)
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    recorded = config.to_dict()
    del recorded["eight_bit_share"], recorded["noise_mix"]
    (run_dir / "config.json").write_text(json.dumps({"config": recorded}))
    check_run_dir(run_dir, config)
    with pytest.raises(UserError, match="different settings.*noise_mix"):
        check_run_dir(run_dir, dataclasses.replace(config, noise_mix="mixed"))
