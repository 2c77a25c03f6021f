import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import stl_denoise  # noqa: F401
from stl_denoise import labelled, stl10
from stl_denoise.classifier import BatchAccuracy, BatchCrossEntropy, build_classifier, feature_extractor
from stl_denoise.errors import UserError
from stl_denoise.models import build_denoiser

TABLE_2 = {"conv1": (64, 64, 64), "conv2": (32, 32, 64), "conv3": (16, 16, 128), "conv4": (8, 8, 256),
           "conv5": (4, 4, 512), "fc": (1024,), "softmax": (10,)}


def test_table_2_shapes_and_names():
    model = build_classifier()
    probe = keras.Model(model.input, [model.get_layer(name).output for name in TABLE_2])
    outputs = probe(np.zeros((1, 64, 64, 3), "float32"))
    assert {name: tuple(out.shape[1:]) for name, out in zip(TABLE_2, outputs)} == TABLE_2
    assert model.get_layer("softmax").activation is keras.activations.softmax
    assert isinstance(model.get_layer("dropout"), keras.layers.Dropout)


def test_encoder_weights_have_the_denoisers_shapes():
    classifier, denoiser = build_classifier(bottleneck_channels=518), build_denoiser(bottleneck_channels=518)
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        assert ([w.shape for w in classifier.get_layer(name).weights]
                == [w.shape for w in denoiser.get_layer(name).weights])


def test_default_init_is_truncated_normal():
    model = build_classifier()
    for name in ("conv3", "fc", "softmax"):
        initializer = model.get_layer(name).kernel_initializer
        assert initializer.distribution == "truncated_normal"  # HeNormal: scaled truncated normal
    fixed = build_classifier(init_stddev=0.1).get_layer("fc").kernel_initializer
    assert isinstance(fixed, keras.initializers.TruncatedNormal) and fixed.stddev == 0.1


def test_batch_metrics_match_numpy():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.4, 0.4, 0.2]], "float32")
    labels = np.array([0, 2, 0, 1])
    accuracy, cross_entropy = BatchAccuracy(), BatchCrossEntropy()
    accuracy.update_state(labels, probabilities)
    cross_entropy.update_state(labels, probabilities)
    assert float(accuracy.result()) == pytest.approx(0.5)
    expected = -np.mean(np.log(probabilities[np.arange(4), labels]))
    assert float(cross_entropy.result()) == pytest.approx(expected, rel=1e-5)
    # Per batch, not a running mean: ResetEachBatch clears it before each step,
    # so the next batch's value replaces the first.
    accuracy.reset_state()
    accuracy.update_state(labels[:1], probabilities[:1])
    assert float(accuracy.result()) == 1.0


def test_feature_extractor_is_the_frozen_fc_layer(photo_crops):
    classifier = build_classifier(seed=0)
    extractor = feature_extractor(classifier)
    assert extractor.trainable_weights == []
    features = np.asarray(extractor(photo_crops[:2]))
    assert features.shape == (2, 1024) and features.min() >= 0.0  # post-ReLU


def test_digits_are_real_labelled_images():
    images, labels = labelled.digits_arrays(64)
    assert images.shape == (1797, 64, 64, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 255.0 and images.max() > 200
    assert sorted(np.unique(labels)) == list(range(10))
    assert np.bincount(labels).min() > 150  # ~180 of each digit
    # Grey: the three channels are copies.
    np.testing.assert_array_equal(images[..., 0], images[..., 2])


def test_digits_splits():
    standard, standard_count = labelled._examples("digits", "standard", "train", 32, None)
    paper, paper_count = labelled._examples("digits", "paper", "train", 32, None)
    held_out, _ = labelled.evaluation_arrays("digits", "standard", image_size=32)
    assert (standard_count, paper_count, len(held_out)) == (1000, 1797, 797)
    images, labels = next(iter(labelled.training_batches("digits", "paper", batch_size=8, image_size=32)))
    assert images.shape == (8, 32, 32, 3) and labels.shape == (8,)


def count(dataset):
    return sum(1 for _ in dataset)


def test_stl10_labelled_splits_through_mock_data(monkeypatch, tmp_path):
    monkeypatch.setattr(stl10, "_reachable", lambda *a, **k: True)
    with tfds.testing.mock_data(num_examples=7):
        paper, _ = labelled._examples("stl10", "paper", "train", 64, str(tmp_path))
        standard, _ = labelled._examples("stl10", "standard", "train", 64, str(tmp_path))
        eval_images, eval_labels = labelled.evaluation_arrays("stl10", "standard", 64, str(tmp_path))
        images, labels = next(iter(labelled.training_batches("stl10", "standard", 4, 64, data_dir=str(tmp_path))))
        # paper = train + test (13k on the real data), standard = train only (5k).
        assert (count(paper), count(standard), len(eval_labels)) == (14, 7, 7)
        with pytest.raises(UserError, match="unlabelled"):
            labelled.stl10_examples("unlabelled", str(tmp_path))
        with pytest.raises(UserError, match="unlabelled"):
            labelled.stl10_examples("train+unlabelled", str(tmp_path))
    assert images.shape == (4, 64, 64, 3) and eval_images.shape == (7, 64, 64, 3)
    assert labels.numpy().min() >= 0 and labels.numpy().max() < 10


def test_an_unlabelled_example_is_rejected_not_dropped():
    images = np.zeros((3, 8, 8, 3), "uint8")
    examples = tf.data.Dataset.from_tensor_slices((images, np.array([3, -1, 5], "int64")))
    checked = labelled.reject_unlabelled(examples).as_numpy_iterator()
    assert next(checked)[1] == 3
    with pytest.raises(tf.errors.InvalidArgumentError, match="unlabelled example"):
        next(checked)


def test_unknown_source_and_split():
    with pytest.raises(UserError, match="--data must be one of stl10, digits"):
        labelled.check_source("sample", "paper")
    with pytest.raises(UserError, match="--labelled-split"):
        labelled.check_source("digits", "all")


def test_unlabelled_examples_from_tfds_stop_the_classifier_data(monkeypatch, tmp_path):
    """A labelled split that (wrongly) carried tfds' unlabelled marker -1 is rejected, not trained on."""
    monkeypatch.setattr(stl10, "_reachable", lambda *a, **k: True)

    def as_dataset(self, split, **kwargs):
        labels = np.array([4, -1, 2], "int64")  # -1: how tfds labels STL-10's unlabelled images
        return tf.data.Dataset.from_tensor_slices({"image": np.zeros((3, 96, 96, 3), "uint8"), "label": labels})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        batches = labelled.training_batches("stl10", "standard", batch_size=2, data_dir=str(tmp_path))
        with pytest.raises(tf.errors.InvalidArgumentError, match="unlabelled example"):
            for _ in batches.take(3):  # 6 examples: every pass over the 3 holds the -1
                pass


def test_make_targets_are_one_cli_call_each():
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    for target, expected in (
            ("pretrain-classify", "-m stl_denoise pretrain-classify --data digits --pretrained runs/dsc"),
            ("train-perceptual", "-m stl_denoise train --model plain --loss perceptual"),
            ("figures", "-m stl_denoise figures runs/dsc runs/plain runs/classify runs/perceptual")):
        lines = subprocess.run(["make", "-n", "--no-print-directory", target, "DATA=digits"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], lines
