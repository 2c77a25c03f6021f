import csv
import sys

import numpy as np
import pytest
from PIL import Image

from stl_denoise import evaluate
from stl_denoise.cli import main
from stl_denoise.data import sample_images


@pytest.fixture
def clean_folder(tmp_path):
    photos = sample_images()
    Image.fromarray(photos["coffee"][100:164, 200:280]).save(tmp_path / "coffee.png")
    Image.fromarray(photos["chelsea"][50:110, 100:170]).save(tmp_path / "chelsea.png")
    return tmp_path


def test_noise_is_fixed_per_image_and_setting():
    clean = np.full((64, 64, 3), 128.0)
    first = evaluate.noisy_copy(clean, 25.0, 0.0, seed=0, name="a.png")
    np.testing.assert_array_equal(first, evaluate.noisy_copy(clean, 25.0, 0.0, seed=0, name="a.png"))
    assert not np.array_equal(first, evaluate.noisy_copy(clean, 25.0, 0.0, seed=0, name="b.png"))
    assert not np.array_equal(first, evaluate.noisy_copy(clean, 25.0, 0.0, seed=1, name="a.png"))
    assert abs((first - clean).std() - 25.0) < 1.0
    assert first.max() > 200  # float noise, not clipped to the image range first


def test_every_method_sees_the_same_noisy_input(clean_folder):
    seen = {}

    def spy(label):
        def method(noisy, sigma):
            seen[label] = noisy.copy()
            return noisy
        return method

    original = dict(evaluate.classical.BASELINES)
    try:
        evaluate.classical.BASELINES.update(a=spy("a"), b=spy("b"))
        rows = evaluate.evaluate([clean_folder / "coffee.png"], [(25.0, 0.0)], {}, ["a", "b"])
    finally:
        evaluate.classical.BASELINES.clear()
        evaluate.classical.BASELINES.update(original)
    np.testing.assert_array_equal(seen["a"], seen["b"])
    noisy_psnr = {row["method"]: row["psnr"] for row in rows}
    assert noisy_psnr["a"] == noisy_psnr["b"] == noisy_psnr[evaluate.NOISY]


def test_evaluate_command_writes_the_report(clean_folder, tmp_path, random_denoiser_path, capsys):
    out = tmp_path / "report"
    code = main(["evaluate", "--model", str(random_denoiser_path), "--images", str(clean_folder), "--sigma", "25",
                 "--salt-pepper", "0.02", "--baselines", "bm3d", "nlm", "tv", "wavelet", "median", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| bm3d |" in printed and "| random |" in printed
    rows = {row["method"]: row for row in csv.DictReader(open(out / "summary.csv"))}
    assert set(rows) == {evaluate.NOISY, "random", "bm3d", "nlm", "tv", "wavelet", "median"}
    assert all(row["images"] == "2" for row in rows.values())
    noisy = float(rows[evaluate.NOISY]["psnr"])
    assert 12 < noisy < 20  # sigma 25 alone gives about 20 dB; 2% salt and pepper lowers it
    # Salt and pepper is what the median filter is for.
    assert float(rows["median"]["psnr"]) > noisy + 3
    assert float(rows["bm3d"]["psnr"]) > noisy
    per_image = list(csv.DictReader(open(out / "per_image.csv")))
    assert len(per_image) == 2 * 7
    assert "noise seed 0" in (out / "summary.md").read_text()


def test_self_ensemble_adds_a_row_per_model(clean_folder, tmp_path, random_denoiser_path):
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(random_denoiser_path), "--images", str(clean_folder), "--sigma", "25",
                 "--baselines", "--self-ensemble", "--limit", "1", "--out", str(out)]) == 0
    rows = {row["method"]: row for row in csv.DictReader(open(out / "summary.csv"))}
    assert set(rows) == {evaluate.NOISY, "random", "random x8"}
    assert rows["random"]["psnr"] != rows["random x8"]["psnr"]


def test_missing_bm3d_is_a_clear_error(clean_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # import bm3d now raises ImportError
    code = main(["evaluate", "--images", str(clean_folder), "--baselines", "bm3d", "--model", "x.keras",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'stl-denoise[bm3d]'" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_eight_bit_noisy_copy_is_the_clipped_rounded_float_one():
    clean = np.full((64, 64, 3), 250.0)
    float_copy = evaluate.noisy_copy(clean, 25.0, 0.05, seed=0, name="a.png")
    eight_bit = evaluate.noisy_copy(clean, 25.0, 0.05, seed=0, name="a.png", eight_bit=True)
    assert float_copy.max() > 255.0
    np.testing.assert_array_equal(eight_bit, np.round(np.clip(float_copy, 0, 255)))


def test_cli_crosses_every_sigma_with_every_salt_pepper(clean_folder, tmp_path):
    out = tmp_path / "report"
    code = main(["evaluate", "--model", "dsc-modern-blind", "--images", str(clean_folder), "--sigma", "10", "25",
                 "--salt-pepper", "0", "0.05", "--eight-bit", "--baselines", "median", "--out", str(out)])
    assert code == 0
    with open(out / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    settings = {(float(r["sigma"]), float(r["salt_pepper"])) for r in rows}
    assert settings == {(10.0, 0.0), (25.0, 0.0), (10.0, 0.05), (25.0, 0.05)}
    assert "8-bit" in (out / "summary.md").read_text().splitlines()[0]
