import os
from pathlib import Path

import numpy as np
import pytest

import stl_denoise  # noqa: F401
from stl_denoise.cli import main
from stl_denoise.config import TrainConfig
from stl_denoise.figures import FIGURES, conv1_visualisation, draw_figures, fig06_skip
from stl_denoise.models import build_denoiser
from stl_denoise.plots import read_curve
from stl_denoise.train import train
from stl_denoise.transfer import ClassifierConfig, train_classifier

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Every kind of run the figures read, a few steps each on offline data (runs/ layout of the Makefile)."""
    runs = tmp_path_factory.mktemp("runs")
    quick = dict(data="sample", steps=20, steps_per_epoch=10, crop_size=32)
    train(TrainConfig(model="dsc", **quick), runs / "dsc", verbose=False)
    train(TrainConfig(model="plain", **quick), runs / "plain", verbose=False)
    classify = dict(data="digits", image_size=32, steps=20, steps_per_epoch=10, eval_every=10, eval_images=100)
    train_classifier(ClassifierConfig(init="truncnormal", **classify), runs / "classify" / "truncnormal", verbose=False)
    train_classifier(ClassifierConfig(init=str(runs / "dsc"), **classify), runs / "classify" / "pretrained",
                     verbose=False)
    train(TrainConfig(model="plain", loss="perceptual", perceptual_classifier=str(runs / "classify" / "truncnormal"),
                      learning_rate=1e-8, **quick), runs / "perceptual", verbose=False)
    return runs


@pytest.fixture(scope="module")
def drawn(tiny_runs):
    paths = [tiny_runs / name for name in ("dsc", "plain", "classify", "perceptual")]
    return draw_figures(paths, tiny_runs / "figures", report=lambda message: None)


def test_every_figure_file_is_written(tiny_runs, drawn):
    for figure in FIGURES:
        assert "skipped" not in drawn[figure], drawn[figure]
        assert (tiny_runs / "figures" / f"{figure}.png").stat().st_size > 5_000
    listing = (tiny_runs / "figures" / "figures.md").read_text()
    for figure in FIGURES:
        assert f"| {figure} | {figure}.png |" in listing
    assert "digits (paper)" in listing and "sample" in listing


def test_a_new_row_of_the_figure_table_is_drawn_by_the_one_loop(tmp_path, monkeypatch):
    """A figure is a row of ``figures.TABLE``: the loop draws it, or skips it naming the runs it needs."""
    from stl_denoise import figures

    drawn_with = []

    def draw_toy(inputs, figure):
        drawn_with.append((figure, inputs.out_dir, inputs.seed))
        (inputs.out_dir / f"{figure}.png").write_bytes(b"toy")
        return {"runs": [], "drawn": "toy", "notes": ["a toy figure's note"], "note": "toy"}

    def never(inputs, figure):
        raise AssertionError("drawn without the run it needs")

    monkeypatch.setattr(figures, "TABLE", figures.TABLE + (figures.Figure("fig98", ("dsc",), never),
                                                          figures.Figure("fig99", (), draw_toy)))
    messages = []
    results = draw_figures([], tmp_path, seed=3, report=messages.append)
    assert list(results) == [*FIGURES, "fig98", "fig99"]
    assert drawn_with == [("fig99", tmp_path, 3)] and results["fig99"]["drawn"] == "toy"
    assert results["fig98"] == {"skipped": "needs a dsc run"} and "skipping fig98: needs a dsc run" in messages
    listing = (tmp_path / "figures.md").read_text()
    assert "| fig99 | fig99.png |  |  | toy |" in listing and "## fig99.png\n\n- a toy figure's note" in listing
    assert "| fig98 | — | — | — | skipped: needs a dsc run |" in listing


def column(run, name):
    return read_curve(run, name)


def test_plotted_curves_equal_the_logged_metrics(tiny_runs, drawn):
    classify = tiny_runs / "classify"
    assert drawn["fig04"]["drawn"]["accuracy"][0][1:] == column(classify / "truncnormal", "accuracy")
    assert drawn["fig04"]["drawn"]["eval_accuracy"][0][1:] == column(classify / "truncnormal", "eval_accuracy")
    assert drawn["fig05"]["drawn"][0][1:] == column(tiny_runs / "perceptual", "mse")
    (dsc_label, *dsc), (plain_label, *plain) = drawn["fig06"]["drawn"]
    omitted = 2  # Fig. 6 drops the first 10% of a 20-step run
    # The legend says which gate reading and seed the DSC curve is.
    assert dsc_label == "DSC (equations' gates, seed 0)" and plain_label == "plain 10-layer (seed 0)"
    assert dsc == [c[omitted:] for c in column(tiny_runs / "dsc", "mse")]
    assert plain == [c[omitted:] for c in column(tiny_runs / "plain", "mse")]
    pretrained_ce, truncnormal_ce = drawn["fig10"]["drawn"]
    assert tuple(pretrained_ce[1:]) == column(classify / "pretrained", "cross_entropy")
    assert tuple(truncnormal_ce[1:]) == column(classify / "truncnormal", "cross_entropy")
    assert [tuple(c[1:]) for c in drawn["fig11"]["drawn"]["accuracy"]] == [
        column(classify / "pretrained", "accuracy"), column(classify / "truncnormal", "accuracy")]


def test_denoising_rows_come_from_the_saved_dsc_model(tiny_runs, drawn):
    import keras

    model = keras.saving.load_model(tiny_runs / "dsc" / "model.keras")
    for figure in ("fig07", "fig08", "fig09"):
        row = drawn[figure]["drawn"]
        assert row["clean"].shape == (96, 96, 3) and row["conv1"].shape == (96, 96)
        np.testing.assert_allclose(row["denoised"], np.asarray(model(row["noisy"][None]))[0], rtol=1e-5, atol=1e-3)
        assert not np.array_equal(row["noisy"], row["clean"])
    # Fig. 9 noises one box only: most pixels stay clean.
    row = drawn["fig09"]["drawn"]
    untouched = np.all(row["noisy"] == row["clean"], axis=-1).mean()
    assert 0.5 < untouched < 0.95


def test_conv1_visualisation_is_the_scaled_channel_mean(photo_crops):
    import keras

    model = build_denoiser(seed=0)
    picture = conv1_visualisation(model, photo_crops[:2])
    mean = np.asarray(keras.Model(model.input, model.get_layer("conv1").output)(photo_crops[:2])).mean(-1)
    expected = (mean - mean.min(axis=(1, 2), keepdims=True)) / np.ptp(mean, axis=(1, 2), keepdims=True) * 255
    np.testing.assert_allclose(picture, expected, rtol=1e-4, atol=1e-3)
    assert picture.min() == 0.0 and picture.max() == pytest.approx(255.0)


def test_fig06_skips_the_papers_share_of_iterations(tiny_runs, drawn, tmp_path):
    assert fig06_skip(tiny_runs / "dsc") == 2  # 20 steps: the first 10%, as 1,000 of the paper's 10,000
    assert fig06_skip(tiny_runs / "dsc", 5) == 5
    assert drawn["fig06"]["drawn"][0][1][0] == 3  # the plot starts after the omitted steps
    long_run = tmp_path / "long"
    long_run.mkdir()
    (long_run / "metrics.csv").write_text("step,mse,seconds\n" + "".join(f"{i},1.0,0.1\n" for i in range(1, 12001)))
    assert fig06_skip(long_run) == 1000


def test_missing_runs_are_reported_not_fatal(tiny_runs, tmp_path, capsys):
    code = main(["figures", str(tiny_runs / "dsc"), str(tmp_path / "no-such-run"), "--out", str(tmp_path / "fig")])
    out = capsys.readouterr().out
    assert code == 0
    assert f"skipping {tmp_path / 'no-such-run'}: no such run directory" in out
    assert "skipping fig04: needs a truncnormal run" in out and "skipping fig05: needs a perceptual run" in out
    written = sorted(p.name for p in (tmp_path / "fig").glob("*.png"))
    assert written == ["fig06.png", "fig07.png", "fig08.png", "fig09.png"]
    assert "skipped: needs a pretrained run" in (tmp_path / "fig" / "figures.md").read_text()


def test_notebook_runs_headless_against_the_tiny_runs(tiny_runs):
    """The README's headless command (`make notebook-run`), as Make would run it, on the tiny runs."""
    import subprocess
    import sys

    import nbformat

    path = REPO / "notebooks" / "walkthrough.ipynb"
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # committed clean
    dry = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(REPO), "notebook-run", f"RUNS={tiny_runs}",
                          f"PYTHON={sys.executable}"], capture_output=True, text=True, check=True).stdout
    command = dry.strip().splitlines()[-1]  # the line before only checks that the [notebook] extra is installed
    assert "nbconvert --to notebook --execute notebooks/walkthrough.ipynb" in command
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    subprocess.run(command, shell=True, cwd=REPO, env=env, check=True, capture_output=True, timeout=600)
    notebook = nbformat.read(tiny_runs / "notebook" / "walkthrough.ipynb", as_version=4)
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "Traceback" not in text and "{}" not in text
    assert (tiny_runs / "notebook-figures" / "fig06.png").exists()
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 8
    # each figure is followed by its notes: the runs that made it and what it shows
    assert text.count("Made by") >= 8 and "Offline stand-in" in text


def test_notebook_opens_on_the_committed_full_length_records(tmp_path):
    """Without STL_DENOISE_RUNS the walkthrough reads reports/reproduction: a reader needs no training."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(REPO / "notebooks" / "walkthrough.ipynb", as_version=4)
    env = {key: value for key, value in os.environ.items() if key != "STL_DENOISE_RUNS"}
    env["STL_DENOISE_FIGURES"] = str(tmp_path / "figures")
    previous = os.environ.copy()
    os.environ.clear()
    os.environ.update(env)
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(previous)
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "Traceback" not in text and not any(f"{figure} skipped" in text for figure in FIGURES)
    assert "reports/reproduction/dsc" in text and "From `docs/figures/fig07.png`" in text
    assert (tmp_path / "figures" / "fig06.png").exists() and not (tmp_path / "figures" / "fig07.png").exists()
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 8


def test_stl10_images_are_chosen_by_class(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    from stl_denoise import stl10
    from stl_denoise.errors import UserError
    from stl_denoise.figures import STL10_CLASSES as names
    from stl_denoise.figures import chosen_images

    monkeypatch.setattr(stl10, "_reachable", lambda *a, **k: True)
    with tfds.testing.mock_data(num_examples=80):
        chosen = chosen_images("stl10", str(tmp_path))
        examples = list(stl10.stl10_builder(str(tmp_path)).as_dataset(split="test").as_numpy_iterator())
        labels = [int(example["label"]) for example in examples]
        with pytest.raises(UserError, match="'whale' is not an STL-10 class"):
            chosen_images("stl10", str(tmp_path), ("whale",))
    assert [caption for caption, _ in chosen] == [
        "STL-10 test 'ship' #1", "STL-10 test 'ship' #2", "STL-10 test 'bird' #1"]
    assert all(image.shape == (96, 96, 3) for _, image in chosen)
    assert labels.count(names.index("ship")) >= 2 and names.index("bird") in labels
    ships = [e["image"] for e in examples if e["label"] == names.index("ship")]
    birds = [e["image"] for e in examples if e["label"] == names.index("bird")]
    for (_, image), expected in zip(chosen, (ships[0], ships[1], birds[0])):
        np.testing.assert_allclose(image, expected, atol=1e-3)  # 96x96 already: shown as is


def test_unfinished_or_unimageable_runs_skip_figs_7_to_9(tiny_runs, tmp_path):
    import shutil

    unfinished = tmp_path / "dsc"
    shutil.copytree(tiny_runs / "dsc", unfinished)
    (unfinished / "model.keras").unlink()
    messages = []
    results = draw_figures([unfinished], tmp_path / "fig", report=messages.append)
    assert "fig06" in [f for f in FIGURES if "skipped" not in results[f]]
    assert any(m.startswith("skipping fig07:") and "model.keras is missing" in m for m in messages)
    results = draw_figures([tiny_runs / "dsc"], tmp_path / "fig2", images=("unicorn",), report=messages.append)
    assert "'unicorn' is not a bundled sample" in results["fig09"]["skipped"]
    assert not (tmp_path / "fig2" / "fig07.png").exists()


def test_figures_md_names_each_figures_runs_and_settings(tiny_runs, drawn):
    listing = (tiny_runs / "figures" / "figures.md").read_text()
    for figure in FIGURES:
        section = listing.split(f"## {figure}.png")[1].split("\n## ")[0]
        for run in drawn[figure]["runs"]:
            if run is not None:
                assert f"Made by `{run}`" in section, (figure, section)
    fig07 = listing.split("## fig07.png")[1].split("\n## ")[0]
    assert "DSC, equations' gate reading" in fig07 and "--crop-size 32" in fig07  # a key and a changed setting
    assert "ran 20 of the paper's 10,000 iterations" in fig07


def copied_run(source, target, mse=None, **settings):
    """A copy of a run folder, with its MSE curve replaced and some settings changed in its config.json."""
    import json
    import shutil

    shutil.copytree(source, target)
    if mse is not None:
        (target / "metrics.csv").write_text("step,mse,seconds\n" + "".join(
            f"{step},{value},0.1\n" for step, value in enumerate(mse, 1)))
    record = json.loads((target / "config.json").read_text())
    record["config"].update(settings)
    (target / "config.json").write_text(json.dumps(record))
    return target


def test_fig06_notes_say_which_net_ends_lower_and_how_to_see_the_other_reading(tiny_runs, tmp_path):
    from stl_denoise.figure_notes import caption, fig06_notes

    dsc = copied_run(tiny_runs / "dsc", tmp_path / "dsc", mse=[900.0] * 10_000)
    plain = copied_run(tiny_runs / "plain", tmp_path / "plain", mse=[1000.0] * 9_900 + [300.0] * 100)
    notes = fig06_notes(dsc, plain, tmp_path / "figures")
    assert caption(notes) == "DSC ends above plain: mean MSE 900 vs 300 over the last 100 iterations (see figures.md)"
    assert not any("early training" in note for note in notes)  # 10,000 iterations: the paper's length
    assert any(f"`stl-denoise train --config {dsc} --gate-reading text --out {dsc}-text` then "
               f"`stl-denoise figures {dsc}-text {plain} --out {tmp_path / 'figures'}-text`" in note for note in notes)
    text = copied_run(dsc, tmp_path / "dsc-text", gate_reading="text")
    notes = fig06_notes(text, plain, tmp_path / "figures")  # DSC still above plain, but not the equations' doing
    assert caption(notes).startswith("DSC ends above plain") and not any("--gate-reading" in n for n in notes)
    lower = copied_run(tiny_runs / "dsc", tmp_path / "dsc-lower", mse=[200.0] * 300)
    notes = fig06_notes(lower, plain, tmp_path / "figures")
    assert caption(notes) is None
    assert any(note.startswith("DSC ends below plain (mean MSE of the last 100 iterations: 200 vs 300)")
               for note in notes)
    assert any("ran 300 of the paper's 10,000 iterations" in note for note in notes)


def test_dead_output_channels_are_named_with_the_colour_left(tiny_runs, tmp_path):
    from stl_denoise.figure_notes import caption, dead_channels, denoising_notes

    clean = np.random.default_rng(0).uniform(30, 220, (96, 96, 3)).astype("float32")
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 25, clean.shape), 0, 255)
    red_only = clean * np.array([1.0, 0.0, 0.0], "float32")
    row = {"noisy": noisy, "denoised": red_only, "clean": clean, "conv1": clean[..., 0]}
    assert dead_channels(red_only, clean) == {"green": 1.0, "blue": 1.0}
    notes = denoising_notes(row, tiny_runs / "dsc", tiny_runs / "plain", tmp_path / "fig")
    assert caption(notes) == ("The Denoised panel is red: the green and blue output channels are dead "
                              "(see figures.md)")
    assert any("equations' gate reading" in note and "--gate-reading text" in note for note in notes)
    assert notes[-1].startswith("Denoised is further from the clean image than the noisy input is")
    assert dead_channels(np.zeros_like(clean), clean) == {"red": 1.0, "green": 1.0, "blue": 1.0}
    assert "is black" in caption(denoising_notes(dict(row, denoised=np.zeros_like(clean)), tiny_runs / "dsc", None,
                                                 tmp_path / "fig"))
    # a good output: nothing dead, closer to the clean image than the noisy input
    notes = denoising_notes(dict(row, denoised=clean + 1.0), tiny_runs / "dsc", None, tmp_path / "fig")
    assert caption(notes) is None and notes == [
        f"Denoised is closer to the clean image than the noisy input is (MSE 1 vs "
        f"{np.mean((noisy.astype('float64') - clean) ** 2):,.0f})."]
    # a photograph that is itself black in a channel is no dead network
    dark = clean * np.array([1.0, 1.0, 0.0], "float32")
    assert dead_channels(dark * 1.0, dark) == {}
