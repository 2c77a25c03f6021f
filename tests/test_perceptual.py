import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import stl_denoise  # noqa: F401
from stl_denoise.classifier import build_classifier, feature_extractor
from stl_denoise.config import TrainConfig
from stl_denoise.errors import UserError
from stl_denoise.models import build_denoiser
from stl_denoise.perceptual import PerceptualLoss, load_extractor
from stl_denoise.runs import read_metrics
from stl_denoise.train import build_training_model, train


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    """A classifier run directory (weights need not be trained to test the loss's mechanics)."""
    run = tmp_path_factory.mktemp("classifier")
    build_classifier(image_size=64, seed=2).save(run / "classifier.keras")
    return run


def test_zero_for_identical_positive_otherwise(classifier_run, photo_crops):
    loss = PerceptualLoss(load_extractor(classifier_run, 64))
    assert float(loss(photo_crops, photo_crops)) == 0.0
    assert float(loss(photo_crops, photo_crops[::-1])) > 0.0


def test_squared_l2_of_the_fc_features(classifier_run, photo_crops):
    extractor = load_extractor(classifier_run, 64)
    clean, denoised = photo_crops[:2], np.clip(photo_crops[:2] + 20.0, 0, 255)
    features = np.asarray(extractor(denoised)) - np.asarray(extractor(clean))
    expected = np.mean(np.sum(features**2, axis=-1))
    assert float(PerceptualLoss(extractor)(clean, denoised)) == pytest.approx(expected, rel=1e-4)
    assert extractor.output.shape[-1] == 1024


def test_gradient_reaches_the_denoiser_not_the_extractor(classifier_run, photo_crops):
    config = TrainConfig(model="plain", loss="perceptual", perceptual_classifier=str(classifier_run), seed=1)
    extractor = load_extractor(classifier_run, 64)
    assert extractor.trainable_weights == []
    denoiser = build_denoiser(skip_connections=False, seed=1)
    model = build_training_model(denoiser, config, extractor)
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=photo_crops, y=photo_crops, y_pred=model(photo_crops, training=True))
    gradients = tape.gradient(loss, model.trainable_weights)
    assert {v.path for v in model.trainable_weights} == {v.path for v in denoiser.trainable_weights}
    kernels = [g for v, g in zip(model.trainable_weights, gradients) if "kernel" in v.path]
    assert len(kernels) == 10 and all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in kernels)
    frozen = [w.copy() for w in extractor.get_weights()]
    trained = [w.copy() for w in denoiser.get_weights()]
    model.fit(photo_crops, photo_crops, batch_size=3, epochs=1, verbose=0)
    for was, now in zip(frozen, extractor.get_weights()):
        np.testing.assert_array_equal(was, now)
    assert any(not np.array_equal(was, now) for was, now in zip(trained, denoiser.get_weights()))


def test_perceptual_training_logs_pixel_mse_every_step(classifier_run, tmp_path):
    config = TrainConfig(model="plain", loss="perceptual", perceptual_classifier=str(classifier_run), data="sample",
                         steps=20, steps_per_epoch=10, learning_rate=1e-8)
    train(config, tmp_path / "perceptual", verbose=False)
    rows = read_metrics(tmp_path / "perceptual" / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 21))
    assert all(float(r["mse"]) > 0 and float(r["perceptual"]) > 0 for r in rows)
    record = json.loads((tmp_path / "perceptual" / "config.json").read_text())
    assert record["config"]["loss"] == "perceptual"
    assert keras.saving.load_model(tmp_path / "perceptual" / "model.keras").name == "plain_denoiser"


def test_bad_classifier_runs_are_clear_errors(classifier_run, tmp_path):
    with pytest.raises(UserError, match="no trained classifier"):
        load_extractor(tmp_path, 64)
    with pytest.raises(UserError, match="--crop-size 64"):
        load_extractor(classifier_run, 32)
    with pytest.raises(UserError, match="needs --perceptual-classifier"):
        TrainConfig(loss="perceptual").validate()
    config = TrainConfig(loss="perceptual", perceptual_classifier=str(tmp_path / "none"), data="sample", steps=10)
    with pytest.raises(UserError, match="no trained classifier"):
        train(config, tmp_path / "run", verbose=False)
    assert not (tmp_path / "run").exists()


def test_extractor_of_a_built_classifier_matches_loaded(classifier_run, photo_crops):
    built = feature_extractor(keras.saving.load_model(classifier_run / "classifier.keras"))
    np.testing.assert_allclose(np.asarray(built(photo_crops[:1])),
                               np.asarray(load_extractor(classifier_run, 64)(photo_crops[:1])))


def test_logged_perceptual_value_is_the_batchs_own(classifier_run, photo_crops):
    """With noise off and a vanishing learning rate each batch's loss is known; a running mean would differ."""
    from stl_denoise import callbacks as cb
    from stl_denoise.perceptual import feature_distance

    config = TrainConfig(model="plain", loss="perceptual", perceptual_classifier=str(classifier_run),
                         sigma=0.0, salt_pepper=0.0, learning_rate=1e-30, seed=0)
    extractor = load_extractor(classifier_run, 64)
    denoiser = build_denoiser(skip_connections=False, seed=0)
    model = build_training_model(denoiser, config, extractor)
    batches = [photo_crops[:3], photo_crops[3:6]]
    expected = [float(np.mean(feature_distance(extractor, b, denoiser(b)))) for b in batches]
    logged = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: logged.append(logs["perceptual"]))
    model.fit(photo_crops[:6], photo_crops[:6], batch_size=3, shuffle=False, verbose=0,
              callbacks=[cb.ResetEachBatch(["mse", "perceptual"]), record])
    np.testing.assert_allclose(logged, expected, rtol=1e-4)
    assert abs(expected[0] - expected[1]) > 1e-3 * expected[0]  # the check can tell batch from running mean
