"""`stl-denoise export`: each export, loaded by its own runtime, reproduces the Keras model (issue 14)."""

import sys
import warnings

import numpy as np
import pytest
import skimage.data

import stl_denoise
from stl_denoise.cli import main
from stl_denoise.io import atomic_new_path

# Measured on the shipped model and a noisy astronaut crop: 0 (SavedModel), 1.8e-4 (TFLite),
# 1.4e-4 (ONNX), all on 0-255.  A lost padding or missing weights is off by whole grey levels.
TOLERANCE = 0.01


def noisy_photo(height, width, top=100, left=150, seed=0):
    clean = skimage.data.astronaut()[top : top + height, left : left + width].astype(np.float32)
    return clean, clean + np.random.default_rng(seed).normal(0, 25, clean.shape).astype(np.float32)


def reference(model, images):
    """What the CLI's denoise gives for float images (padded, clipped, not rounded)."""
    return np.stack([stl_denoise.denoise(image, model=model) for image in images])


@pytest.fixture(scope="module")
def small_denoiser(tmp_path_factory):
    """An untrained DSC net (GatedSkip layers included), narrow so conversions are quick.

    deconv5 is scaled down so that most outputs stay inside [0, 255]: at He init most would be
    clipped, and a comparison of clipped pixels proves little.
    """
    model = stl_denoise.build_denoiser(bottleneck_channels=32, output_activation="linear", residual=True,
                                       input_range=1.0, seed=1)
    deconv5 = model.get_layer("deconv5")
    deconv5.kernel.assign(deconv5.kernel * 0.05)
    path = tmp_path_factory.mktemp("models") / "small.keras"
    model.save(path)
    return model, path


def export_ok(capsys, *argv):
    code = main(["export", *map(str, argv)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("wrote ") and captured.err == "", captured
    return captured.out


def assert_matches(exported, expected):
    assert exported.shape == expected.shape
    inside = (expected > 0) & (expected < 255)
    assert inside.mean() > 0.8  # the comparison is not just of clipped pixels
    assert np.abs(exported - expected).max() <= TOLERANCE


def test_saved_model_of_the_shipped_model_serves_any_size(tmp_path, capsys):
    import tensorflow as tf

    out = tmp_path / "serving" / "1"  # TF Serving's layout: model/version
    export_ok(capsys, "dsc-modern-blind", "--format", "saved_model", "--out", out)
    signature = tf.saved_model.load(str(out)).signatures["serving_default"]
    spec = signature.structured_input_signature[1]["images"]
    assert spec.shape.as_list() == [None, None, None, 3] and spec.dtype == tf.float32
    model = stl_denoise.load_denoiser("dsc-modern-blind")
    stored = tf.train.load_checkpoint(str(out / "variables" / "variables"))
    shapes = [shape for name, shape in stored.get_variable_to_shape_map().items() if "VARIABLE_VALUE" in name]
    assert sum(int(np.prod(shape)) for shape in shapes) == model.count_params()  # each weight once (keras#23553)

    clean, noisy = noisy_photo(201, 233)  # not multiples of 16: padded and cropped inside the graph
    denoised = signature(images=tf.constant(noisy[None]))["denoised"].numpy()
    assert_matches(denoised, reference(model, noisy[None]))
    # The real weights came along: the export denoises (σ 25 noise, ~+9 dB from the shipped model).
    mse_noisy, mse_out = np.mean((noisy - clean) ** 2), np.mean((denoised[0] - clean) ** 2)
    assert 10 * np.log10(mse_noisy / mse_out) > 6

    batch = np.stack([noisy_photo(48, 80, top=t)[1] for t in (0, 300)])  # a batch, a size already on the grid
    assert_matches(signature(images=tf.constant(batch))["denoised"].numpy(), reference(model, batch))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least 16x16"):
        signature(images=tf.zeros([1, 8, 40, 3]))


def tflite_interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow 2.21 still has it, deprecated
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Interpreter(model_path=str(path))


def test_tflite_has_a_fixed_tile_and_matches(small_denoiser, tmp_path, capsys):
    model, path = small_denoiser
    out = tmp_path / "denoiser.tflite"
    printed = export_ok(capsys, path, "--format", "tflite", "--out", out)  # default tile
    assert "[1, 512, 512, 3]" in printed
    interpreter = tflite_interpreter(out)
    interpreter.allocate_tensors()
    (given,), (returned,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert list(given["shape"]) == list(returned["shape"]) == [1, 512, 512, 3]

    _, noisy = noisy_photo(512, 512, top=0, left=0)
    interpreter.set_tensor(given["index"], noisy[None])
    interpreter.invoke()
    assert_matches(interpreter.get_tensor(returned["index"]), reference(model, noisy[None]))


def test_tflite_tile_option(small_denoiser, tmp_path, capsys):
    _, path = small_denoiser
    out = tmp_path / "denoiser.tflite"
    export_ok(capsys, path, "--format", "tflite", "--tile", "96", "--out", out)
    interpreter = tflite_interpreter(out)
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 96, 96, 3]


def test_onnx_serves_any_size_and_matches(small_denoiser, tmp_path, capsys):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    model, path = small_denoiser
    out = tmp_path / "denoiser.onnx"
    export_ok(capsys, path, "--format", "onnx", "--out", out)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    _, noisy = noisy_photo(201, 233)
    batch = np.stack([noisy_photo(48, 80, top=t)[1] for t in (0, 300)])
    for images in (noisy[None], batch):
        assert_matches(session.run(["denoised"], {"images": images})[0], reference(model, images))


def test_a_failed_check_leaves_nothing(small_denoiser, tmp_path, capsys, monkeypatch):
    from stl_denoise import export

    monkeypatch.setattr(export, "max_difference", lambda *args: 3.0)  # as if the conversion were wrong
    out = tmp_path / "out" / "model"
    code = main(["export", str(small_denoiser[1]), "--format", "saved_model", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "does not reproduce the Keras model" in err and err.count("\n") == 1, err
    assert list((tmp_path / "out").iterdir()) == []  # no half-written folder, no temporary


@pytest.fixture
def existing(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "saved_model.pb").write_bytes(b"old")
    (tmp_path / "file.tflite").write_bytes(b"old")
    (tmp_path / "junk.keras").write_text("not a model\n")
    return tmp_path


@pytest.mark.parametrize("argv, message", [
    (["dsc-modern-blind", "--format", "saved_model", "--out", "folder"], "folder: already exists"),
    (["dsc-modern-blind", "--format", "tflite", "--out", "file.tflite"], "file.tflite: already exists"),
    (["junk.keras", "--format", "tflite", "--out", "new.tflite"], "junk.keras: not a loadable Keras model"),
    (["no-such-model", "--format", "saved_model", "--out", "new"], "no-such-model: no such model file"),
    (["dsc-modern-blind", "--format", "tflite", "--out", "file.tflite/new.tflite"], "file.tflite is not a folder"),
    (["dsc-modern-blind", "--format", "tflite", "--tile", "100", "--out", "new.tflite"],
     "--tile must be a positive multiple of 16"),
    (["dsc-modern-blind", "--format", "saved_model", "--tile", "512", "--out", "new"],
     "--tile applies to --format tflite only"),
])
def test_bad_input_is_one_line_and_writes_nothing(existing, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(existing)
    before = sorted(str(p) for p in existing.rglob("*"))
    code = main(["export", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert sorted(str(p) for p in existing.rglob("*")) == before
    assert (existing / "folder" / "saved_model.pb").read_bytes() == (existing / "file.tflite").read_bytes() == b"old"


def test_onnx_without_its_packages_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if not installed
    code = main(["export", "dsc-modern-blind", "--format", "onnx", "--out", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'stl-denoise[onnx]'" in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_a_classifier_is_not_exported(tmp_path, capsys):
    path = tmp_path / "classifier.keras"
    stl_denoise.build_classifier(bottleneck_channels=16).save(path)
    code = main(["export", str(path), "--format", "tflite", "--out", str(tmp_path / "x.tflite")])
    err = capsys.readouterr().err
    assert code == 2 and "not a denoiser" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classifier.keras"]


@pytest.mark.parametrize("folder", [False, True])
def test_atomic_new_path_never_replaces(tmp_path, folder):
    target = tmp_path / "target"
    with atomic_new_path(target, folder=folder) as temp:
        if not folder:
            open(temp, "w").write("first")
    assert target.is_dir() if folder else target.read_text() == "first"
    # Something appears at the path during the write: it is kept, ours is dropped.
    with pytest.raises(FileExistsError):
        with atomic_new_path(tmp_path / "late", folder=folder) as temp:
            (tmp_path / "late").write_text("theirs")
    assert (tmp_path / "late").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late", "target"]
