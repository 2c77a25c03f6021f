import json

import numpy as np
import pytest

from stl_denoise import data
from stl_denoise.cli import main
from stl_denoise.reproduce import RUN_ORDER, experiments, mse_tail


def test_resize_short_side_keeps_the_aspect_and_the_pixel_range():
    image = np.random.default_rng(0).integers(0, 256, (321, 481, 3), dtype=np.uint8)
    resized = data.resize_short_side(image, 96).numpy()
    assert resized.shape == (96, 144, 3) and resized.dtype == np.uint8
    # Area averaging: the mean colour survives, the pixel noise is averaged down.
    assert abs(resized.mean() - image.mean()) < 1.0 and resized.std() < image.std() / 2


def test_training_crops_come_from_the_resized_images(tmp_path):
    from PIL import Image

    ramp = (np.arange(400) * 255 // 399).astype(np.uint8)  # 0..255 across 400 px
    Image.fromarray(np.tile(ramp[None, :, None], (200, 1, 3))).save(tmp_path / "ramp.png")
    crops = next(iter(data.training_dataset(str(tmp_path), 4, crop_size=64, short_side=64)))
    # At a 64 px short side the ramp is 128 px wide: a 64 px crop spans half its values (~41 unresized).
    spans = crops.numpy()[..., 0].max(axis=(1, 2)) - crops.numpy()[..., 0].min(axis=(1, 2))
    assert crops.shape == (4, 64, 64, 3) and spans.min() > 100


def test_every_experiment_is_in_the_run_order():
    assert [e.name for e in experiments()] == [name for name in RUN_ORDER if name != "classify"]


@pytest.mark.slow
def test_reproduce_runs_everything_then_resumes_without_retraining(tmp_path, capsys):
    out = tmp_path / "repro"
    args = ["reproduce", "--data", "sample", "--steps", "8", "--seed-steps", "4", "--perceptual-steps", "4",
            "--classifier-steps", "4", "--out", str(out)]
    assert main(args + ["--only", "dsc"]) == 0
    assert (out / "dsc" / "model.keras").exists() and not (out / "plain").exists()
    dsc = json.loads((out / "dsc" / "config.json").read_text())["config"]
    assert (dsc["steps"], dsc["resize_short_side"], dsc["model"]) == (8, 96, "dsc")
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "== dsc: finished earlier" in printed and "== plain (" in printed
    configs = {name: json.loads((out / name / "config.json").read_text())["config"]
               for name in ("plain", "dsc-text", "dsc-seed1", "plain-seed1", "perceptual")}
    assert configs["dsc-text"]["gate_reading"] == "text"
    assert configs["dsc-seed1"]["seed"] == 1 and configs["dsc-seed1"]["steps"] == 4
    assert configs["perceptual"]["loss"] == "perceptual" and configs["perceptual"]["model"] == "plain"
    assert configs["perceptual"]["perceptual_classifier"] == str(out / "classify" / "truncnormal")
    for label in ("truncnormal", "pretrained"):
        assert (out / "classify" / label / "classifier.keras").exists()
    report = (out / "report.md").read_text()
    mean, steps, _ = mse_tail(out / "plain")
    assert "| plain | " in report and f"| {mean:,.0f} | ~15,000 |" in report and steps == 8
    for figure in ("fig04", "fig05", "fig06", "fig07", "fig09", "fig10", "fig11", "mse_all_runs", "denoised_by_each_run"):
        assert (out / "figures" / f"{figure}.png").exists()
    modified = (out / "dsc" / "model.keras").stat().st_mtime_ns
    assert main(args) == 0
    assert "finished earlier" in capsys.readouterr().out
    assert (out / "dsc" / "model.keras").stat().st_mtime_ns == modified  # nothing retrained


def test_reproduce_refuses_unknown_runs_before_any_work(tmp_path, capsys):
    assert main(["reproduce", "--data", "sample", "--only", "dsc,nonsense", "--out", str(tmp_path / "r")]) == 2
    assert "nonsense" in capsys.readouterr().err and not (tmp_path / "r").exists()
