"""The reproduction as evidence: held-out scores, NaN runs as results, tables computed from committed records."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stl_denoise import reproduce
from stl_denoise.cli import main
from stl_denoise.evaluate import noisy_copy
from stl_denoise.heldout import NOISE_SEED, score_run
from stl_denoise.report import BLOCK, tables

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "reports" / "reproduction"
DOC = ROOT / "docs" / "reproduction.md"


def _photo_folder(folder, validation=2, train=3):
    """Photos named so that ``validation`` of them fall in the held-out split (sha256 of the name, 1 in 10)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    counts = {True: 0, False: 0}
    index = 0
    while counts[True] < validation or counts[False] < train:
        name = f"photo{index}.png"
        held_out = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10 == 0
        index += 1
        if counts[held_out] >= (validation if held_out else train):
            continue
        counts[held_out] += 1
        Image.fromarray(rng.integers(0, 256, (72, 80, 3), dtype=np.uint8)).save(folder / name)
    return folder


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("heldout")
    photos = _photo_folder(base / "photos")
    run = base / "run"
    assert main(["train", "--data", str(photos), "--data-split", "train", "--steps", "2", "--steps-per-epoch", "2",
                 "--out", str(run)]) == 0
    return photos, run


def test_held_out_scores_use_the_validation_photos_and_the_runs_noise(tiny_run):
    photos, run = tiny_run
    summary = score_run(run)
    assert summary["photos"] == 2 and (run / "heldout.csv").exists()
    assert json.loads((run / "heldout.json").read_text()) == summary
    rows = (run / "heldout.csv").read_text().splitlines()
    assert len(rows) == 3
    # The noisy input's MSE is the run's own noise (sigma 25 + 2% impulses, clipped), drawn per photo.
    expected = []
    for name in [line.split(",")[0] for line in rows[1:]]:
        clean = np.asarray(Image.open(photos / name), np.float64)
        noisy = np.clip(noisy_copy(clean, 25.0, 0.02, NOISE_SEED, name), 0, 255)
        expected.append(np.mean((noisy - clean) ** 2))
    assert summary["mean_noisy_mse"] == pytest.approx(np.mean(expected), rel=1e-4)
    assert summary["mean_black_mse"] > summary["mean_noisy_mse"]


def test_an_output_channel_that_is_always_zero_is_counted_dead(tiny_run):
    _, run = tiny_run

    def red_only(images, training=False):
        return np.asarray(images) * np.array([1.0, 0.0, 0.0], np.float32)

    summary = score_run(run, model=red_only)
    assert summary["dead_channels"] == ["green", "blue"] and summary["zero_share"]["green"] == 1.0


def test_a_run_that_goes_nan_is_recorded_as_a_result_and_not_retried(tmp_path, monkeypatch, capsys):
    exploding = reproduce.Experiment("ablation/plain-huge-lr", "a rate that must diverge",
                                     (("model", "plain"), ("learning_rate", 1e6)), "ablation", group="ablation")
    monkeypatch.setattr(reproduce, "experiments", lambda: (exploding,))
    args = ["reproduce", "--data", "sample", "--ablation-steps", "30", "--only", exploding.name,
            "--out", str(tmp_path)]
    assert main(args) == 0
    stopped = json.loads((tmp_path / exploding.name / "diverged.json").read_text())["stopped_after_step"]
    assert 0 < stopped < 30 and "diverged after step" in capsys.readouterr().out
    assert main(args) == 0 and "finished earlier" in capsys.readouterr().out
    assert reproduce.diverged_at(tmp_path / exploding.name) == stopped


def test_the_reports_tables_are_what_the_committed_records_give():
    """docs/reproduction.md quotes its tables from reports/reproduction: regenerate them and compare."""
    computed = tables(RECORDS)
    found = {m.group("name"): m.group("body") for m in BLOCK.finditer(DOC.read_text())}
    assert set(found) == set(computed)
    for name, body in found.items():
        assert body == computed[name], f"generated:{name} is stale: run `stl-denoise report reports/reproduction`"


def test_report_check_fails_on_a_changed_number(tmp_path, capsys):
    doc = tmp_path / "doc.md"
    text = DOC.read_text()
    match = next(BLOCK.finditer(text))
    doc.write_text(text[:match.start("body")] + "| 1 | 2 |\n" + text[match.end("body"):])
    assert main(["report", str(RECORDS), "--doc", str(doc), "--check"]) == 2
    assert match.group("name") in capsys.readouterr().err
    assert main(["report", str(RECORDS), "--doc", str(doc)]) == 0
    assert doc.read_text() == text


def test_report_tables_survive_a_records_folder_with_nothing_run(tmp_path):
    shutil.copytree(RECORDS / "plain", tmp_path / "plain")
    computed = tables(tmp_path)
    assert "not run" in computed["seeds"] and "| plain | 0 | 10,000 |" in computed["seeds"]
