import csv
import sys
from pathlib import Path

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


def test_self_ensemble_with_pixel_shuffle_adds_the_combined_row(random_denoiser_path):
    from stl_denoise.inference import DEFAULT_MARGIN, DEFAULT_TILE, denoise_rgb
    from stl_denoise.pretrained import load_denoiser

    model = load_denoiser(str(random_denoiser_path))
    methods = evaluate._methods({"random": model}, [], DEFAULT_TILE, DEFAULT_MARGIN, True, (2,), False)
    assert list(methods) == ["random", "random x8", "random PD2", "random PD2 x8"]
    noisy = np.random.default_rng(0).uniform(0, 255, (48, 40, 3)).astype(np.float32)
    both = methods["random PD2 x8"](noisy, 25)
    np.testing.assert_allclose(both, denoise_rgb(model, noisy, self_ensemble=True, pixel_shuffle=2))
    assert not np.allclose(both, methods["random PD2"](noisy, 25))


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


# --- real noise: --pairs ----------------------------------------------------------------------

from scipy.ndimage import median_filter  # noqa: E402

from stl_denoise.errors import UserError  # noqa: E402
from stl_denoise.metrics import psnr  # noqa: E402


@pytest.fixture
def pair_folder(tmp_path):
    """Two cameras' noisy/clean pairs made here: photo crops with known Gaussian noise (sigma 10), saved 8-bit."""
    photos = sample_images()
    folder = tmp_path / "pairs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    made = {}
    for name, photo, (noisy_suffix, clean_suffix, ext) in [
            ("CamA_coffee", photos["coffee"][100:196, 200:296], ("_real", "_mean", ".png")),
            ("CamA_rocket", photos["rocket"][200:296, 100:196], ("_real", "_mean", ".png")),
            ("CamB_chelsea", photos["chelsea"][50:146, 100:196], ("_noisy", "_GT", ".PNG"))]:
        noisy = np.clip(np.round(photo + rng.normal(0.0, 10.0, photo.shape)), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"{name}{noisy_suffix}{ext}")
        Image.fromarray(photo).save(folder / f"{name}{clean_suffix}{ext}")
        made[name] = (photo.astype(np.float64), noisy.astype(np.float64))
    return folder, made


def test_pairs_are_found_by_name_and_strays_are_refused(pair_folder, tmp_path):
    folder, made = pair_folder
    pairs = evaluate.find_pairs(folder)
    assert [(n.name, c.name) for n, c in pairs] == [("CamA_coffee_real.png", "CamA_coffee_mean.png"),
                                                    ("CamA_rocket_real.png", "CamA_rocket_mean.png"),
                                                    ("CamB_chelsea_noisy.PNG", "CamB_chelsea_GT.PNG")]
    assert [evaluate.camera_of(n) for n, _ in pairs] == ["CamA", "CamA", "CamB"]
    lone = folder / "CamC_x_real.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(lone)
    with pytest.raises(UserError, match="CamC_x_real.png: no clean reference"):
        evaluate.find_pairs(folder)
    lone.rename(folder / "CamC_x_mean.png")
    with pytest.raises(UserError, match="CamC_x_mean.png: a clean reference without its noisy photo"):
        evaluate.find_pairs(folder)
    (folder / "CamC_x_mean.png").rename(folder / "holiday.png")
    with pytest.raises(UserError, match="holiday.png: not part of a pair"):
        evaluate.find_pairs(folder)


def test_pairs_scores_are_the_known_ones_per_camera(pair_folder, tmp_path):
    folder, made = pair_folder
    told = []

    def spy(noisy, sigma):
        told.append(sigma)
        return noisy

    original = dict(evaluate.classical.BASELINES)
    try:
        evaluate.classical.BASELINES["spy"] = spy
        rows = evaluate.evaluate_pairs(evaluate.find_pairs(folder), {}, ["median", "spy"])
        oracle_rows = evaluate.evaluate_pairs(evaluate.find_pairs(folder), {}, ["spy"], baseline_sigma="true")
    finally:
        evaluate.classical.BASELINES.clear()
        evaluate.classical.BASELINES.update(original)
    by = {(Path(r["file"]).name.split("_")[1], r["method"]): r for r in rows}
    for name, (clean, noisy) in made.items():
        scene = name.split("_")[1]
        assert by[(scene, evaluate.NOISY)]["psnr"] == pytest.approx(psnr(clean, noisy))
        expected_median = median_filter(noisy, size=(3, 3, 1), mode="reflect")
        assert by[(scene, "median")]["psnr"] == pytest.approx(psnr(clean, expected_median))
        assert by[(scene, "median")]["psnr"] > by[(scene, evaluate.NOISY)]["psnr"]
        assert abs(by[(scene, evaluate.NOISY)]["true_sigma"] - 10.0) < 0.5  # the noise the fixture added
        assert abs(by[(scene, evaluate.NOISY)]["estimated_sigma"] / 10.0 - 1.0) < 0.35
    assert told[: len(made)] == [by[(n.split("_")[1], evaluate.NOISY)]["estimated_sigma"] for n in made]
    assert told[len(made):] == [r["true_sigma"] for r in oracle_rows if r["method"] == evaluate.NOISY]
    scores, levels = evaluate.summarize_pairs(rows)
    summary = {(s["camera"], s["method"]): s for s in scores}
    assert summary[("CamA", evaluate.NOISY)]["images"] == 2 and summary[("CamB", evaluate.NOISY)]["images"] == 1
    assert summary[("all", "median")]["images"] == 3
    assert summary[("CamA", "median")]["psnr"] == pytest.approx(
        np.mean([by[("coffee", "median")]["psnr"], by[("rocket", "median")]["psnr"]]))
    assert {level["camera"] for level in levels} == {"CamA", "CamB", "all"}


def test_evaluate_pairs_command_writes_the_report(pair_folder, tmp_path, random_denoiser_path, capsys):
    folder, made = pair_folder
    out = tmp_path / "report"
    code = main(["evaluate", "--pairs", str(folder), "--model", str(random_denoiser_path), "--baselines", "median",
                 "--pixel-shuffle", "2", "--out", str(out)])
    assert code == 0
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {(r["camera"], r["method"]) for r in rows} == {
        (camera, method) for camera in ("CamA", "CamB", "all")
        for method in (evaluate.NOISY, "random", "random PD2", "median")}
    noisy_all = next(r for r in rows if r["camera"] == "all" and r["method"] == evaluate.NOISY)
    assert float(noisy_all["psnr"]) == pytest.approx(np.mean([psnr(c, n) for c, n in made.values()]), abs=1e-4)
    assert len(list(csv.DictReader(open(out / "per_image.csv")))) == 3 * 4
    assert "estimated from the noisy photo" in (out / "summary.md").read_text()
    assert (out / "noise_level.csv").is_file()


def test_pairs_of_different_sizes_are_a_one_line_error(pair_folder, tmp_path, capsys):
    folder, _ = pair_folder
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(folder / "CamB_chelsea_GT.PNG")
    out = tmp_path / "report"
    assert main(["evaluate", "--pairs", str(folder), "--model", "dsc-blind-mixed", "--baselines", "median",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "CamB_chelsea_noisy.PNG: 96x96 pixels, but its clean reference" in err and err.count("\n") == 1
    assert not out.exists()


def test_images_or_pairs_but_not_both(pair_folder, clean_folder, tmp_path, capsys):
    folder, _ = pair_folder
    assert main(["evaluate", "--pairs", str(folder), "--images", str(clean_folder), "--out", str(tmp_path / "r")]) == 2
    assert main(["evaluate", "--pairs", str(folder), "--jpeg-quality", "75", "--out", str(tmp_path / "r")]) == 2
    assert "either --images" in capsys.readouterr().err


def test_jpeg_noisy_copy_is_the_eight_bit_one_saved_as_jpeg():
    import io

    clean = np.asarray(sample_images()["coffee"][100:164, 200:264], np.float64)
    eight_bit = evaluate.noisy_copy(clean, 20.0, 0.0, seed=0, name="a.png", eight_bit=True)
    as_jpeg = evaluate.noisy_copy(clean, 20.0, 0.0, seed=0, name="a.png", jpeg_quality=75)
    buffer = io.BytesIO()
    Image.fromarray(eight_bit.astype(np.uint8)).save(buffer, "JPEG", quality=75)
    np.testing.assert_array_equal(as_jpeg, np.asarray(Image.open(buffer), np.float64))
    assert psnr(clean, as_jpeg) > psnr(clean, eight_bit)  # JPEG smooths part of the noise away


def test_cli_jpeg_quality_is_recorded(clean_folder, tmp_path):
    out = tmp_path / "report"
    assert main(["evaluate", "--images", str(clean_folder), "--sigma", "20", "--jpeg-quality", "75", "--baselines",
                 "median", "--model", "dsc-blind-mixed", "--limit", "1", "--out", str(out)]) == 0
    assert "JPEG of quality 75" in (out / "summary.md").read_text()
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {r["jpeg_quality"] for r in rows} == {"75"}
    assert main(["evaluate", "--images", str(clean_folder), "--jpeg-quality", "0", "--out", str(out)]) == 2


def test_evaluate_noise_is_the_training_noise_of_the_same_section_in_distribution_and_seeding():
    """``noisy_copy`` (NumPy, seeded per file) draws what ``ImageNoise(**section)`` draws for (sigma, salt_pepper)."""
    from stl_denoise.config import NoiseSettings
    from stl_denoise.noise import ImageNoise

    section = NoiseSettings(sigma=25.0, salt_pepper=0.06, clip_noise=False)
    clean = np.full((256, 256, 3), 128.0)
    numpy_draw = evaluate.noisy_copy(clean, section.sigma, section.salt_pepper, seed=0, name="a.png")
    layer_draw = np.asarray(ImageNoise(**vars(section), seed=0)(clean[None].astype("float32")))[0]
    for noisy in (numpy_draw, layer_draw):
        salt, pepper = (noisy == 255.0).all(-1), (noisy == 0.0).all(-1)
        assert abs(salt.mean() - 0.03) < 0.004 and abs(pepper.mean() - 0.03) < 0.004  # whole pixels, half each
        gaussian = noisy[~(salt | pepper)] - 128.0
        assert abs(gaussian.std() - 25.0) < 0.5 and abs(gaussian.mean()) < 0.5
        assert gaussian.min() < -80 and gaussian.max() > 80  # unclipped, as clip_noise=False
    # Seeding: the same seed draws the same noise, another seed other noise, in both.
    again = np.asarray(ImageNoise(**vars(section), seed=0)(clean[None].astype("float32")))[0]
    other = np.asarray(ImageNoise(**vars(section), seed=1)(clean[None].astype("float32")))[0]
    np.testing.assert_array_equal(layer_draw, again)
    assert not np.array_equal(layer_draw, other)
    np.testing.assert_array_equal(numpy_draw, evaluate.noisy_copy(clean, 25.0, 0.06, seed=0, name="a.png"))
