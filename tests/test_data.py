import time

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from stl_denoise import data, folders, stl10
from stl_denoise.errors import DataUnavailableError


def first_batch(dataset):
    return next(iter(dataset)).numpy()


def test_sample_source_gives_real_photo_crops():
    batch = first_batch(data.training_dataset("sample", batch_size=6, seed=0))
    assert batch.shape == (6, 64, 64, 3) and batch.dtype == np.float32
    assert 0.0 <= batch.min() and batch.max() <= 255.0
    # Real photographs: neighbouring pixels are strongly correlated, unlike noise.
    horizontal = np.corrcoef(batch[:, :, :-1].ravel(), batch[:, :, 1:].ravel())[0, 1]
    assert horizontal > 0.8


def test_training_stream_is_seeded_and_resumable():
    full = data.training_dataset("sample", batch_size=4, seed=3)
    batches = [b.numpy() for b in full.take(3)]
    again = [b.numpy() for b in data.training_dataset("sample", batch_size=4, seed=3).take(3)]
    resumed = first_batch(data.training_dataset("sample", batch_size=4, seed=3, skip_batches=2))
    other = first_batch(data.training_dataset("sample", batch_size=4, seed=4))
    np.testing.assert_array_equal(batches[0], again[0])
    np.testing.assert_array_equal(batches[2], resumed)
    assert not np.array_equal(batches[0], other)


@pytest.fixture
def image_folder(tmp_path):
    photos = list(data.sample_images().values())
    (tmp_path / "nested").mkdir()
    Image.fromarray(photos[0][:100, :120]).save(tmp_path / "a.png")
    Image.fromarray(photos[1][:80, :90]).save(tmp_path / "nested" / "b.jpg")
    Image.fromarray(photos[2][:70, :70, 0]).save(tmp_path / "nested" / "grey.png")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_folder_source_recursive_any_size(image_folder):
    assert len(folders.list_image_files(image_folder)) == 3
    batch = first_batch(data.training_dataset(str(image_folder), batch_size=5, seed=0))
    assert batch.shape == (5, 64, 64, 3)
    described = data.describe_source(str(image_folder))
    assert described["files"] == 3
    (image_folder / "a.png").write_bytes((image_folder / "nested" / "b.jpg").read_bytes())
    assert data.describe_source(str(image_folder))["sha256"] != described["sha256"]


def test_folder_too_small_image_is_named(tmp_path):
    Image.fromarray(np.zeros((40, 80, 3), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(DataUnavailableError, match=r"small\.png.*40x80"):
        data.training_dataset(str(tmp_path), batch_size=2)


def test_folder_errors(tmp_path):
    with pytest.raises(DataUnavailableError, match="no such file"):
        data.training_dataset(str(tmp_path / "missing"), batch_size=2)
    with pytest.raises(DataUnavailableError, match="no images found"):
        data.training_dataset(str(tmp_path), batch_size=2)
    (tmp_path / "fake.png").write_text("hello")
    with pytest.raises(DataUnavailableError, match=r"fake\.png: not a readable image"):
        data.training_dataset(str(tmp_path), batch_size=2)


def test_stl10_path_through_tfds_mock(monkeypatch, tmp_path):
    monkeypatch.setattr(stl10, "_reachable", lambda *a, **k: True)
    with tfds.testing.mock_data(num_examples=12):
        batch = first_batch(data.training_dataset("stl10", batch_size=4, data_dir=str(tmp_path)))
        evaluation = first_batch(data.evaluation_dataset("stl10", batch_size=3, data_dir=str(tmp_path)))
    assert batch.shape == (4, 64, 64, 3)
    assert evaluation.shape == (3, 64, 64, 3)


def test_stl10_offline_fails_fast_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(stl10, "STL10_HOST", ("127.0.0.1", 9))  # closed port: refused at once
    started = time.monotonic()
    with pytest.raises(DataUnavailableError) as error:
        data.training_dataset("stl10", batch_size=4, data_dir=str(tmp_path))
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert "make stl10" in message and "TFDS_DATA_DIR" in message and "DATA=sample" in message


def test_reachable_is_bounded():
    started = time.monotonic()
    assert stl10._reachable(("127.0.0.1", 9), timeout=1.0) is False
    assert time.monotonic() - started < 3
