import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import uniform_filter

from stl_denoise.cli import main
from stl_denoise.inference import denoise_rgb
from stl_denoise.pixel_shuffle import denoise_pixel_shuffled, shuffle_down, shuffle_up


@pytest.mark.parametrize("shape", [(32, 48, 3), (33, 47, 3), (31, 31)])
@pytest.mark.parametrize("stride", [2, 3])
def test_shuffle_up_undoes_shuffle_down(shape, stride):
    image = np.random.default_rng(0).uniform(0, 255, shape)
    subs = shuffle_down(image, stride)
    assert len(subs) == stride**2 and len({s.shape for s in subs}) == 1
    expected = image[0::stride, 1::stride]
    np.testing.assert_array_equal(subs[1][: expected.shape[0], : expected.shape[1]], expected)
    np.testing.assert_array_equal(shuffle_up(subs, stride, shape), image)


def test_pixel_shuffled_filter_acts_on_pixels_stride_apart():
    image = np.random.default_rng(1).uniform(0, 255, (24, 30, 3)).astype(np.float32)

    def box(part):  # a 3x3 mean on whatever image it is given
        return uniform_filter(part, size=(3, 3, 1), mode="nearest")

    shuffled = denoise_pixel_shuffled(box, image, 2)
    # Inside, each output is the mean of the 3x3 pixels two apart around it in the photo.
    np.testing.assert_allclose(shuffled[10, 12], image[8:13:2, 10:15:2].mean(axis=(0, 1)), rtol=1e-5)
    np.testing.assert_array_equal(denoise_pixel_shuffled(lambda part: part, image, 2, refine=True), image)
    np.testing.assert_allclose(denoise_pixel_shuffled(box, image, 1), box(image), rtol=1e-6)


def test_refine_denoises_each_refilled_image_and_averages(random_denoiser):
    image = np.random.default_rng(2).uniform(0, 255, (64, 64, 3)).astype(np.float32)
    shuffled = denoise_rgb(random_denoiser, image, pixel_shuffle=2)
    expected = np.zeros_like(image)
    for i in range(2):
        for j in range(2):
            refilled = shuffled.copy()
            refilled[i::2, j::2] = image[i::2, j::2]
            expected += denoise_rgb(random_denoiser, refilled) / 4
    np.testing.assert_allclose(denoise_rgb(random_denoiser, image, pixel_shuffle=2, refine=True), expected,
                               atol=1e-3)


def test_denoise_command_takes_pixel_shuffle(tmp_path, random_denoiser_path, capsys):
    from PIL import Image

    from stl_denoise.data import sample_images

    Image.fromarray(sample_images()["chelsea"][:70, :90]).save(tmp_path / "cat.png")
    Image.fromarray(sample_images()["chelsea"][:20, :90]).save(tmp_path / "thin.png")
    out = tmp_path / "out"
    code = main(["denoise", str(tmp_path / "cat.png"), str(tmp_path / "thin.png"), "--model",
                 str(random_denoiser_path), "--pixel-shuffle", "2", "--out", str(out)])
    assert code == 1  # the thin image fails alone
    assert np.asarray(Image.open(out / "cat.png")).shape == (70, 90, 3)
    err = capsys.readouterr().err
    assert "thin.png: image is 20x90: pixel-shuffle stride 2 needs at least 32x32 pixels" in err
    assert main(["denoise", str(tmp_path / "cat.png"), "--pixel-shuffle", "0", "--out", str(out)]) == 2
    assert main(["denoise", str(tmp_path / "cat.png"), "--pd-refine", "--out", str(out)]) == 2
    assert "--pd-refine refines a pixel-shuffled result" in capsys.readouterr().err


def _noisy_photo(path, correlated):
    """A 96x80 sample crop with white noise, or the same noise averaged over 2x2 blocks (neighbours correlate)."""
    from PIL import Image

    from stl_denoise.data import sample_images

    clean = sample_images()["coffee"][100:180, 200:296].astype(np.float64)
    white = np.random.default_rng(3).normal(0.0, 12.0, (81, 97, 3))
    noise = (white[:-1, :-1] + white[1:, :-1] + white[:-1, 1:] + white[1:, 1:]) / 2 if correlated else white[:-1, :-1]
    Image.fromarray(np.round(np.clip(clean + noise, 0, 255)).astype(np.uint8)).save(path)


def test_denoise_pixel_shuffle_auto_chooses_per_file_and_says_which(tmp_path, random_denoiser_path, capsys):
    _noisy_photo(tmp_path / "white.png", correlated=False)
    _noisy_photo(tmp_path / "camera.png", correlated=True)
    out = tmp_path / "out"
    code = main(["denoise", str(tmp_path / "white.png"), str(tmp_path / "camera.png"), "--model",
                 str(random_denoiser_path), "--pixel-shuffle", "auto", "--pd-refine", "--out", str(out)])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.endswith(f"{out / 'white.png'} (pixel-shuffle auto: 1)") for line in lines)
    assert any(line.endswith(f"{out / 'camera.png'} (pixel-shuffle auto: 2)") for line in lines)
    assert np.asarray(Image.open(out / "camera.png")).shape == (80, 96, 3)


def test_evaluate_pixel_shuffle_auto_adds_a_row(tmp_path, random_denoiser_path):
    from PIL import Image

    from stl_denoise.data import sample_images

    (tmp_path / "clean").mkdir()
    Image.fromarray(sample_images()["chelsea"][:64, :80]).save(tmp_path / "clean" / "cat.png")
    code = main(["evaluate", "--images", str(tmp_path / "clean"), "--sigma", "25", "--baselines", "--model",
                 str(random_denoiser_path), "--pixel-shuffle", "auto", "2", "--out", str(tmp_path / "report")])
    assert code == 0
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "| random PDauto |" in summary and "| random PD2 |" in summary


def test_pixel_shuffle_takes_only_a_stride_or_auto(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["denoise", "x.png", "--pixel-shuffle", "two", "--out", "out"])
    assert stopped.value.code == 2
    assert "a stride (an integer) or auto, got 'two'" in capsys.readouterr().err
