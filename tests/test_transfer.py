import json

import keras
import numpy as np
import pytest

import stl_denoise  # noqa: F401
from stl_denoise.classifier import build_classifier
from stl_denoise.cli import main
from stl_denoise.errors import UserError
from stl_denoise.models import build_denoiser
from stl_denoise.runs import read_metrics
from stl_denoise.transfer import ClassifierConfig, classifier_from_config, load_encoder_weights

ENCODER = ("conv1", "conv2", "conv3", "conv4", "conv5")


def denoiser_run(path, **build):
    """A run directory holding a denoiser's model.keras (weights need not be trained to test copying)."""
    path.mkdir(parents=True)
    build_denoiser(seed=7, **build).save(path / "model.keras")
    return path


def test_transfer_copies_the_encoder_and_not_the_head(tmp_path):
    run = denoiser_run(tmp_path / "dsc")
    denoiser = keras.saving.load_model(run / "model.keras")
    config = ClassifierConfig(init=str(run), data="digits", image_size=32, seed=0)
    transferred = classifier_from_config(config)
    fresh = build_classifier(image_size=32, seed=0)
    for name in ENCODER:
        for have, want, fresh_weight in zip(transferred.get_layer(name).get_weights(),
                                            denoiser.get_layer(name).get_weights(),
                                            fresh.get_layer(name).get_weights()):
            np.testing.assert_array_equal(have, want)
            assert not np.array_equal(have, fresh_weight) or not have.any()  # biases are zero in both
    # The head is freshly initialised: the truncated-normal build's, not anything from the denoiser.
    for name in ("fc", "softmax"):
        for have, want in zip(transferred.get_layer(name).get_weights(), fresh.get_layer(name).get_weights()):
            np.testing.assert_array_equal(have, want)
    kernel = transferred.get_layer("conv3").get_weights()[0]
    assert not np.array_equal(kernel, fresh.get_layer("conv3").get_weights()[0])


def test_mismatched_denoiser_is_a_clear_error(tmp_path):
    run = denoiser_run(tmp_path / "wide", bottleneck_channels=518)
    classifier = build_classifier(image_size=32)
    before = [w.copy() for w in classifier.get_weights()]
    with pytest.raises(UserError, match=r"conv5 kernel has shape \(3, 3, 256, 518\).*\(3, 3, 256, 512\)"
                                        r".*--bottleneck-channels 518"):
        load_encoder_weights(classifier, run)
    for was, now in zip(before, classifier.get_weights()):
        np.testing.assert_array_equal(was, now)  # nothing half-copied


def test_cli_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    run = denoiser_run(tmp_path / "wide", bottleneck_channels=518)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.keras").write_text("truncated")
    cases = [(str(run), "--bottleneck-channels 518"), (str(tmp_path / "not-a-run"), "no denoiser model.keras"),
             (str(tmp_path / "broken"), "cannot load the denoiser")]
    for init, message in cases:
        code = main(["transfer", "--init", init, "--data", "digits", "--image-size", "32",
                     "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, err
        assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def classify_runs(tmp_path_factory):
    """`stl-denoise pretrain-classify` on the offline digits: both inits, 60 steps each."""
    root = tmp_path_factory.mktemp("classify")
    run = denoiser_run(root / "dsc")
    code = main(["pretrain-classify", "--pretrained", str(run), "--data", "digits", "--image-size", "32",
                 "--steps", "60", "--steps-per-epoch", "30", "--eval-every", "20", "--eval-images", "200",
                 "--out", str(root / "classify")])
    assert code == 0
    return root / "classify"


def test_pretrain_classify_writes_both_runs_and_the_plot(classify_runs):
    assert (classify_runs / "classify_comparison.png").stat().st_size > 10_000
    for name, init in (("truncnormal", "truncnormal"), ("pretrained", "dsc")):
        run = classify_runs / name
        assert (run / "classifier.keras").exists()
        record = json.loads((run / "config.json").read_text())
        assert record["config"]["init"].endswith(init) and record["data"]["kind"] == "digits"
        assert record["summary"]["steps"] == 60
        rows = read_metrics(run / "metrics.csv")
        assert [int(r["step"]) for r in rows] == list(range(1, 61))
        evaluated = [int(r["step"]) for r in rows if r["eval_accuracy"] != ""]
        assert evaluated == [20, 40, 60]
        assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)


def test_cross_entropy_falls_on_real_digits(classify_runs):
    for name in ("truncnormal", "pretrained"):
        cross_entropy = [float(r["cross_entropy"]) for r in read_metrics(classify_runs / name / "metrics.csv")]
        early, late = np.mean(cross_entropy[:10]), np.mean(cross_entropy[-20:])
        assert late < 0.5 * early, (name, early, late)


def test_saved_classifier_reproduces_logged_accuracy(classify_runs):
    from stl_denoise.labelled import evaluation_arrays

    model = keras.saving.load_model(classify_runs / "truncnormal" / "classifier.keras")
    images, labels = evaluation_arrays("digits", "paper", image_size=32, limit=200)
    accuracy = np.mean(np.argmax(np.asarray(model(images, training=False)), axis=-1) == labels)
    logged = float(read_metrics(classify_runs / "truncnormal" / "metrics.csv")[-1]["eval_accuracy"])
    assert accuracy == pytest.approx(logged, abs=1e-6)


def test_default_steps_are_one_pass():
    assert ClassifierConfig(data="stl10").validate().resolved().steps == 1300
    assert ClassifierConfig(data="stl10", labelled_split="standard").validate().resolved().steps == 500
    assert ClassifierConfig(data="digits").validate().resolved().steps == 180
    unresolved = ClassifierConfig(data="digits")
    assert unresolved.validate().steps is None and unresolved.steps is None  # validate only checks


def test_offline_stl10_fails_fast_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from stl_denoise import stl10

    monkeypatch.setattr(stl10, "STL10_HOST", ("127.0.0.1", 9))  # closed port: refused at once
    code = main(["transfer", "--init", "truncnormal", "--data-dir", str(tmp_path / "tfds"),
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "STL-10 is not prepared" in err and "DATA=digits" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()
