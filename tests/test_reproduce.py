import json

import numpy as np
import pytest

from stl_denoise import data
from stl_denoise.cli import main
from stl_denoise.reproduce import GROUPS, choose, experiments, mse_tail


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


def test_the_experiments_table_is_the_run_order_and_each_run_comes_after_what_it_needs():
    table = experiments()
    names = [e.name for e in table]
    assert len(set(names)) == len(names) and {e.group for e in table} == set(GROUPS)
    for index, experiment in enumerate(table):
        assert set(experiment.needs) <= set(names[:index]), experiment.name
    # Three seeds of each Fig. 6 net at full length, and at least 20 ablation runs of two seeds each.
    for net in ("dsc", "plain", "dsc-text"):
        seeds = [e for e in table if e.name in (net, f"{net}-seed1", f"{net}-seed2")]
        assert len(seeds) == 3 and all(e.length == "full" for e in seeds)
    ablation = [e for e in table if e.group == "ablation"]
    assert len(ablation) >= 20 and {dict(e.changes)["seed"] for e in ablation} == {0, 1}
    assert any(dict(e.changes).get("init_stddev") == 0.1 for e in ablation)


def test_choosing_a_run_brings_the_runs_it_needs_in_table_order():
    chosen = [e.name for e in choose(only=("controls/perceptual-largest-lr",))]
    assert chosen[0] == "classify/truncnormal" and chosen[-1] == "controls/perceptual-largest-lr"
    assert sum("perceptual-sweep" in name for name in chosen) == 4
    assert [e.name for e in choose(groups=("seeds",))] == ["dsc-seed1", "plain-seed1", "dsc-text-seed1",
                                                           "dsc-seed2", "plain-seed2", "dsc-text-seed2"]


@pytest.mark.slow
def test_reproduce_runs_everything_then_resumes_without_retraining(tmp_path, capsys):
    out = tmp_path / "repro"
    args = ["reproduce", "--data", "sample", "--steps", "8", "--perceptual-steps", "4", "--classifier-steps", "4",
            "--groups", "paper", "--out", str(out)]
    assert main(args + ["--only", "dsc"]) == 0
    assert (out / "dsc" / "model.keras").exists() and not (out / "plain").exists()
    dsc = json.loads((out / "dsc" / "config.json").read_text())["config"]
    assert (dsc["steps"], dsc["resize_short_side"], dsc["model"]) == (8, 96, "dsc")
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "== dsc: finished earlier" in printed and "== plain (" in printed
    configs = {name: json.loads((out / name / "config.json").read_text())["config"]
               for name in ("plain", "dsc-text", "perceptual")}
    assert configs["dsc-text"]["gate_reading"] == "text"
    assert not (out / "dsc-seed1").exists()  # another group
    assert configs["perceptual"]["loss"] == "perceptual" and configs["perceptual"]["model"] == "plain"
    assert configs["perceptual"]["perceptual_classifier"] == str(out / "classify" / "truncnormal")
    for label in ("truncnormal", "pretrained"):
        assert (out / "classify" / label / "classifier.keras").exists()
    report = (out / "report.md").read_text()
    mean, steps, _ = mse_tail(out / "plain")
    assert f"| plain | 0 | 8 | {mean:,.0f} |" in report and steps == 8
    for figure in ("fig04", "fig05", "fig06", "fig07", "fig09", "fig10", "fig11", "mse_all_runs",
                   "denoised_by_each_run"):
        assert (out / "figures" / f"{figure}.png").exists()
    modified = (out / "dsc" / "model.keras").stat().st_mtime_ns
    assert main(args) == 0
    assert "finished earlier" in capsys.readouterr().out
    assert (out / "dsc" / "model.keras").stat().st_mtime_ns == modified  # nothing retrained


def test_reproduce_refuses_unknown_runs_before_any_work(tmp_path, capsys):
    assert main(["reproduce", "--data", "sample", "--only", "dsc,nonsense", "--out", str(tmp_path / "r")]) == 2
    assert "nonsense" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_a_new_row_of_the_experiments_table_is_chosen_and_run_with_no_other_edit(tmp_path, monkeypatch, capsys):
    """The run order is the table's order: a row added to ``experiments()`` runs, after the runs it needs."""
    from stl_denoise import reproduce
    from stl_denoise import train as train_module

    toy = reproduce.Experiment("toy/plain-seed7", "toy: the plain net at seed 7", (("model", "plain"), ("seed", 7)),
                               group="controls")
    needing = reproduce.Experiment("toy/classifier-from-toy", "toy: a classifier from the toy denoiser",
                                   (("init", "@toy/plain-seed7"),), "classifier", group="controls",
                                   kind=reproduce.ClassifierConfig.KIND)
    table = experiments()
    # The needing row first in the table, its need last: choosing follows the needs, running the table order.
    monkeypatch.setattr(reproduce, "experiments", lambda: (needing,) + table + (toy,))
    assert [e.name for e in choose(only=("toy/classifier-from-toy",))] == [needing.name, toy.name]
    assert toy in choose(groups=("controls",)) and toy not in choose(groups=("paper",))

    monkeypatch.setattr(reproduce, "experiments", lambda: table + (toy,))
    trained = []
    monkeypatch.setattr(train_module, "train", lambda config, run_dir, verbose: trained.append((config, run_dir)))
    monkeypatch.setattr(reproduce, "_score", lambda run_dir, verbose: None)
    monkeypatch.setattr(reproduce, "write_report", lambda out_dir: out_dir / "report.md")
    reproduce.reproduce(tmp_path / "out", data="sample", only=("toy/plain-seed7",), verbose=True)
    [(config, run_dir)] = trained
    assert run_dir == tmp_path / "out" / "toy" / "plain-seed7"
    assert (config.model, config.seed, config.steps, config.resize_short_side) == ("plain", 7, 10_000, 96)
    assert "== toy/plain-seed7 (toy: the plain net at seed 7)" in capsys.readouterr().out
