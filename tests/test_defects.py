"""Regression tests for defects found in review, one test per defect."""

import configparser
import inspect
import math
from pathlib import Path

import keras
import numpy as np
import pytest

import stl_denoise  # noqa: F401
from stl_denoise.errors import UserError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_dsc_run(tmp_path_factory):
    """A finished two-step DSC run on the bundled sample photographs."""
    from stl_denoise.config import TrainConfig
    from stl_denoise.train import train

    run = tmp_path_factory.mktemp("runs") / "dsc"
    train(TrainConfig(data="sample", steps=2, steps_per_epoch=2, batch_size=2, crop_size=32), run, verbose=False)
    return run


def test_corrupt_dsc_model_skips_figs_7_to_9(tiny_dsc_run, tmp_path):
    import shutil

    from stl_denoise.figures import draw_figures

    run = tmp_path / "dsc"
    shutil.copytree(tiny_dsc_run, run)
    (run / "model.keras").write_bytes(b"PK\x03\x04 not the rest of a zip archive")
    messages = []
    results = draw_figures([run], tmp_path / "figures", report=messages.append)
    assert "skipped" not in results["fig06"]  # the other figures are still drawn
    assert (tmp_path / "figures" / "fig06.png").exists()
    for figure in ("fig07", "fig08", "fig09"):
        reason = results[figure]["skipped"]
        assert str(run / "model.keras") in reason and "not a readable denoiser" in reason
        assert "\n" not in reason
        assert not (tmp_path / "figures" / f"{figure}.png").exists()
    assert any(m.startswith("skipping fig07:") and "model.keras" in m for m in messages)


def test_missing_or_unreadable_images_in_a_folder_source_are_one_line_errors(tmp_path):
    from PIL import Image

    from stl_denoise.figures import chosen_images

    Image.fromarray(np.full((40, 50, 3), 100, np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(UserError, match=r"^--images: .*missing\.png: no such file") as missing:
        chosen_images(str(tmp_path), names=["good.png", "missing.png"])
    assert str(tmp_path / "missing.png") in str(missing.value) and "\n" not in str(missing.value)
    with pytest.raises(UserError, match=r"^--images: .*notes\.png: not a readable image") as unreadable:
        chosen_images(str(tmp_path), names=["notes.png"])
    assert "\n" not in str(unreadable.value)
    chosen = chosen_images(str(tmp_path), names=["good.png"])  # a readable file still gives three rows
    assert [caption for caption, _ in chosen] == ["file good.png"] * 3
    np.testing.assert_allclose(chosen[0][1], 100.0, atol=0.01)  # area resizing rounds in float32
    assert chosen[0][1].shape == (96, 96, 3)


def test_load_denoiser_gives_each_caller_its_own_model():
    from stl_denoise import api, pretrained

    first = pretrained.load_denoiser("dsc-modern-blind")
    second = pretrained.load_denoiser("dsc-modern-blind")
    assert first is not second
    assert first.name == second.name == "dsc_denoiser"
    image = np.random.default_rng(0).uniform(0, 255, (1, 32, 48, 3)).astype("float32")
    before = np.asarray(second(image))
    first.set_weights([np.zeros_like(w) for w in first.get_weights()])
    first.trainable = False
    np.testing.assert_array_equal(np.asarray(second(image)), before)
    assert second.trainable
    # Inference shares one private instance, so its traced graph is built once, not per call.
    shared = pretrained.shared_denoiser("dsc-modern-blind")
    assert pretrained.shared_denoiser("dsc-modern-blind") is shared
    assert shared is not first and shared is not second
    api.denoise(np.zeros((32, 32, 3), np.uint8), model="dsc-modern-blind")
    forward = shared._stl_denoise_forward
    api.denoise(np.zeros((32, 32, 3), np.uint8), model="dsc-modern-blind")
    assert shared._stl_denoise_forward is forward


def test_stop_on_nan_checks_the_loss_as_well_as_the_metric():
    from stl_denoise.callbacks import GlobalStep, StopOnNaN

    def stopped(logs):
        callback = StopOnNaN(GlobalStep(steps_per_epoch=10, initial_epoch=1))
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.stop_training = False
        callback.set_model(model)
        callback.on_train_batch_end(4, logs)
        return callback.failed_step, model.stop_training

    assert stopped({"loss": math.nan, "mse": 12.0}) == (15, True)  # perceptual loss NaN, pixel MSE finite
    assert stopped({"loss": 3.0, "mse": math.inf}) == (15, True)
    assert stopped({"loss": math.nan}) == (15, True)
    assert stopped({"loss": 3.0, "mse": 12.0}) == (None, False)


def test_named_constants_and_public_crop():
    import sklearn.datasets

    from stl_denoise import data, labelled, models
    from stl_denoise.classifier import build_classifier

    assert labelled.DIGITS_COUNT == len(sklearn.datasets.load_digits().target)
    assert labelled.train_count("digits", "paper") == labelled.DIGITS_COUNT
    assert callable(data.random_or_centre_crop) and not hasattr(data, "_crop")
    image = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    np.testing.assert_array_equal(data.random_or_centre_crop(image, 4, None, False), image[1:5, 2:6])
    # The classifier's head draws the seeds after conv1..conv5 and every decoder layer of the denoiser.
    assert [name for name, _, _ in models.decoder_specs()] == [f"deconv{i}" for i in range(1, 6)]
    classifier = build_classifier(image_size=32, seed=3)
    assert classifier.get_layer("fc").kernel_initializer.seed == 3 * 100 + 10
    assert classifier.get_layer("softmax").kernel_initializer.seed == 3 * 100 + 12


def test_classifier_softmax_is_float32_under_mixed_precision(tmp_path):
    from stl_denoise.classifier import build_classifier

    try:
        keras.config.set_dtype_policy("mixed_bfloat16")
        classifier = build_classifier(image_size=32, seed=0)
        probabilities = classifier(np.zeros((2, 32, 32, 3), "float32"))
        assert classifier.get_layer("fc").compute_dtype == "bfloat16"  # the rest stays mixed
    finally:
        keras.config.set_dtype_policy("float32")
    assert classifier.get_layer("softmax").dtype_policy.name == "float32"
    assert probabilities.dtype == "float32"
    np.testing.assert_allclose(np.asarray(probabilities).sum(axis=-1), 1.0, rtol=1e-5)
    classifier.save(tmp_path / "classifier.keras")
    loaded = keras.saving.load_model(tmp_path / "classifier.keras")
    assert loaded.get_layer("softmax").dtype_policy.name == "float32"


def test_keras_private_callback_api_is_pinned():
    """callbacks.py overrides and calls Keras-private names: a Keras that renames them must fail here."""
    from keras.src.backend.tensorflow import trainer as tensorflow_trainer

    from stl_denoise.callbacks import AtomicBackupAndRestore, SavedModelCheckpoint

    backup = keras.callbacks.BackupAndRestore
    assert "self._load_model()" in inspect.getsource(backup.on_train_begin)
    assert "self._save_model()" in inspect.getsource(backup.on_epoch_end)
    assert list(inspect.signature(backup._save_model).parameters) == ["self"]
    assert list(inspect.signature(backup._load_model).parameters) == ["self"]
    init = inspect.getsource(backup.__init__)
    for name in ("self._training_metadata_path", "self._current_epoch", "self.backup_dir"):
        assert f"{name} =" in init, name
    assert "self._current_epoch = epoch + 1" in inspect.getsource(backup.on_epoch_end)
    # Our _load_model resumes by setting model._initial_epoch, as Keras' own does; fit reads it.
    assert "self.model._initial_epoch" in inspect.getsource(backup._load_model)
    assert "self._initial_epoch" in inspect.getsource(tensorflow_trainer.TensorFlowTrainer.fit)

    checkpoint = keras.callbacks.ModelCheckpoint
    assert "self._save_model(" in inspect.getsource(checkpoint.on_epoch_end)
    assert "self._save_model(" in inspect.getsource(checkpoint.on_train_batch_end)
    assert list(inspect.signature(checkpoint._save_model).parameters) == ["self", "epoch", "batch", "logs"]
    assert list(inspect.signature(checkpoint._get_file_path).parameters) == ["self", "epoch", "batch", "logs"]
    assert list(inspect.signature(checkpoint._should_save_model).parameters) == [
        "self", "epoch", "batch", "logs", "filepath"]
    assert AtomicBackupAndRestore._save_model is not backup._save_model
    assert SavedModelCheckpoint._save_model is not checkpoint._save_model

    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    requirements = [line.strip() for line in setup["options"]["install_requires"].splitlines()]
    keras_requirement = next(r for r in requirements if r.startswith("keras"))
    assert "<" in keras_requirement, f"setup.cfg: {keras_requirement!r} has no upper bound"
    upper = keras_requirement.split("<")[1].split(",")[0].lstrip("=")
    installed = tuple(int(part) for part in keras.__version__.split(".")[:2])
    assert installed < tuple(int(part) for part in upper.split(".")[:2])


def test_summary_keys_name_the_tail_they_average():
    """Summary keys said ``_last_100`` whatever tail was asked for."""
    from stl_denoise import train, transfer

    rows = [{"step": str(i), "mse": str(float(i)), "cross_entropy": "1.0", "accuracy": "0.5", "eval_accuracy": "",
             "seconds": "0.1"} for i in range(1, 11)]
    assert train.summarize(rows, batch_size=10, tail=4)["final_mse_mean_last_4"] == 8.5
    assert train.summarize(rows, batch_size=10)["final_mse_mean_last_100"] == 5.5
    assert set(transfer.summarize(rows, tail=3)) >= {"cross_entropy_mean_last_3", "batch_accuracy_mean_last_3"}
