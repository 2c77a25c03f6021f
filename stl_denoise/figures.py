"""Paper Figures 4-11 from run directories (paper §5); reads runs, never trains.

Run directories are read with ``runs.load_run``: a classifier run
(``init`` truncnormal or a denoiser) gives Figs. 4, 10, 11; a perceptual-loss
denoiser Fig. 5; DSC and plain MSE denoisers Fig. 6; the DSC denoiser's model
Figs. 7-9.  Each figure is a row of ``TABLE`` (the runs it needs, its
drawing function) and one loop draws them; a figure whose inputs are
missing is skipped with a reason.
"""

import dataclasses
import typing
from pathlib import Path

import keras
import numpy as np

from stl_denoise import figure_notes, plots
from stl_denoise.errors import UserError
from stl_denoise.io import write_text
from stl_denoise.noise import add_noise
from stl_denoise.runs import CONFIG_FILE, METRICS_FILE, check_metrics, load_run

PAPER_SKIP = 1000  # Fig. 6 omits the first 1,000 iterations "due to large range fluctuations"
FIGURE_SIZE = 96  # STL-10's image size: rows of Figs. 7-9 are shown at 96x96
BOX = (0.3, 0.6)  # Fig. 9: one noised rectangle, 30-60% of each side
# STL-10's label order (its class_names.txt); tfds' label i is STL10_CLASSES[i].
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
# Images for Figs. 7, 8, 9: the paper shows a ship, a ship and a bird (STL-10 classes).
DEFAULT_IMAGES = {"stl10": ("ship", "ship", "bird"), "sample": ("rocket", "astronaut", "chelsea")}


def discover_runs(paths, report=print):
    """{kind: run_dir} from run directories or their parents (e.g. runs/classify)."""
    runs = {}
    for path in map(Path, paths):
        if not path.is_dir():
            report(f"skipping {path}: no such run directory")
            continue
        candidates = [path] if (path / CONFIG_FILE).exists() else sorted(
            child for child in path.iterdir() if (child / CONFIG_FILE).exists()
        )
        if not candidates:
            report(f"skipping {path}: no config.json (not a run directory)")
        for run in candidates:
            if not (run / METRICS_FILE).exists():
                report(f"skipping {run}: no metrics.csv (the run never started)")
                continue
            try:
                kind = load_run(run).figure_role
                check_metrics(run)
            except UserError as error:
                report(f"skipping {run}: {error}")
                continue
            if kind in runs:
                report(f"skipping {run}: a {kind} run was already given ({runs[kind]})")
                continue
            runs[kind] = run
    return runs


def describe_data(run_dir):
    """A short 'which data' line from a run's config.json."""
    record = load_run(run_dir)
    kind = record.data.get("kind", record.config.data)
    detail = record.data.get("split") if record.kind == "classifier" else record.data.get("path")
    if record.summary is not None:
        steps = f"{record.summary.get('steps')} steps"
    else:  # still running or stopped: the curves end where metrics.csv ends
        steps = f"unfinished ({record.config.steps} steps planned)"
    return f"{kind}{f' ({detail})' if detail else ''}, {steps}"


def conv1_visualisation(denoiser, noisy):
    """The paper's undefined "Conv-1 Visualization": conv1's output averaged over its channels.

    ``mean_c ReLU(conv1(noisy))_c`` per pixel, then min-max scaled to 0-255
    per image for display.  Input [B, H, W, 3] on 0-255; output [B, H, W].
    """
    conv1 = keras.Model(denoiser.input, denoiser.get_layer("conv1").output)
    mean = np.asarray(conv1(noisy)).mean(axis=-1)
    low = mean.min(axis=(1, 2), keepdims=True)
    span = mean.max(axis=(1, 2), keepdims=True) - low
    return np.where(span > 0, (mean - low) / np.where(span > 0, span, 1.0) * 255.0, 0.0)


# --- the images of Figs. 7-9 ------------------------------------------------------------

def _square(image, size=FIGURE_SIZE):
    """Centre square crop resized to size x size, float32 0-255."""
    from stl_denoise._quiet import import_tensorflow

    tf = import_tensorflow()
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = np.asarray(image[top : top + side, left : left + side, :3], "float32")
    return np.clip(tf.image.resize(square, (size, size), method="area").numpy(), 0, 255)


def _stl10_by_class(class_names, data_dir):
    """The first, second, ... test image of each named class (repeats take the next one)."""
    from stl_denoise.labelled import stl10_examples
    from stl_denoise.stl10 import stl10_builder

    stl10_builder(data_dir)  # fails fast, with the fix, when STL-10 is not prepared
    names = STL10_CLASSES
    unknown = [name for name in class_names if name not in names]
    if unknown:
        raise UserError(f"--images: {unknown[0]!r} is not an STL-10 class ({', '.join(names)})")
    wanted = [names.index(name) for name in class_names]
    found = {index: [] for index in set(wanted)}
    for image, label in stl10_examples("test", data_dir).as_numpy_iterator():
        if label in found and len(found[label]) < wanted.count(label):
            found[label].append(image)
        if all(len(found[k]) == wanted.count(k) for k in found):
            break
    short = [names[k] for k in found if len(found[k]) < wanted.count(k)]
    if short:
        raise UserError(f"the STL-10 test split has too few {short[0]!r} images for Figs. 7-9")
    used = {index: 0 for index in found}
    chosen = []
    for name, index in zip(class_names, wanted):
        chosen.append((f"STL-10 test '{name}' #{used[index] + 1}", found[index][used[index]]))
        used[index] += 1
    return chosen


def chosen_images(source, data_dir=None, names=None):
    """[(caption, 96x96x3 float image)] for Figs. 7, 8, 9 from a denoiser's data source.

    ``names``: STL-10 class names, bundled sample names, or file paths inside a
    folder source; by default a ship, a ship, a bird on STL-10 (as the paper).
    """
    from stl_denoise import data
    from stl_denoise.folders import list_image_files

    if source == "stl10":
        return [(caption, _square(image))
                for caption, image in _stl10_by_class(names or DEFAULT_IMAGES["stl10"], data_dir)]
    if source == "sample":
        photos = data.sample_images()
        names = names or DEFAULT_IMAGES["sample"]
        unknown = [n for n in names if n not in photos]
        if unknown:
            raise UserError(f"--images: {unknown[0]!r} is not a bundled sample ({', '.join(photos)})")
        return [(f"sample '{name}'", _square(photos[name])) for name in names]
    from stl_denoise.image_io import as_rgb, read_image

    def rgb(path):
        try:
            pixels = read_image(path)
        except UserError as error:  # a missing, unreadable or non-image file: one line naming it
            raise UserError(f"{'--images: ' if names else ''}{error} (in the run's data folder {source})") from None
        if pixels.dtype != np.uint8:  # 16-bit: to the 0-255 scale the denoiser works on
            pixels = pixels / 257.0
        return as_rgb(pixels)  # grey repeated, alpha dropped, as Pillow's convert("RGB") did

    files = [Path(source) / n for n in names] if names else list_image_files(source)[:3]
    files = (files * 3)[:3]
    return [(f"file {path.name}", _square(rgb(path))) for path in files]


def denoising_row(denoiser, clean, sigma, salt_pepper, seed=0, box=None):
    """{noisy, conv1, denoised, clean} arrays for one image (the columns of Figs. 7-9)."""
    noisy = np.asarray(add_noise(clean[None], sigma, salt_pepper, keras.random.SeedGenerator(seed), box=box))
    return {"noisy": noisy[0], "conv1": conv1_visualisation(denoiser, noisy)[0],
            "denoised": np.asarray(denoiser(noisy))[0], "clean": clean}


def plot_row(row, out_path, title, caption=None):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 4, figsize=(10, 3))
    for ax, (key, label) in zip(axes, (("noisy", "Noisy"), ("conv1", "Conv-1 visualisation"),
                                       ("denoised", "Denoised"), ("clean", "Clean"))):
        image = np.clip(row[key], 0, 255).astype("uint8")
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(label)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(title)
    plots.add_caption(figure, caption)
    plots.save_figure(figure, out_path)
    return row


def plot_denoised_comparison(models, clean, sigma, salt_pepper, out_path, title, seed=0):
    """One noisy image, each model's output beside it, then the clean image.

    ``models``: [(label, denoiser)]; every model gets the very same noisy input.
    """
    import matplotlib.pyplot as plt

    noisy = np.asarray(add_noise(clean[None], sigma, salt_pepper, keras.random.SeedGenerator(seed)))
    panels = [("Noisy", noisy[0])] + [(label, np.asarray(model(noisy))[0]) for label, model in models]
    panels.append(("Clean", clean))
    figure, axes = plt.subplots(1, len(panels), figsize=(2.5 * len(panels), 2.9))
    for ax, (label, image) in zip(axes, panels):
        ax.imshow(np.clip(image, 0, 255).astype("uint8"))
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(title)
    plots.save_figure(figure, out_path)
    return [label for label, _ in panels]


# --- figures ------------------------------------------------------------------------------

def fig06_skip(dsc_run, skip_first=None):
    """Fig. 6 omits the first 1,000 of 10,000 iterations; shorter runs omit their first 10%.

    The paper drops them "due to large range fluctuations"; a 300-step run
    has the same first-steps spike, so it keeps the paper's proportion.
    """
    if skip_first is not None:
        return skip_first
    steps, _ = plots.read_curve(dsc_run, "mse")
    last = steps[-1] if steps else 0
    return PAPER_SKIP if last >= 10 * PAPER_SKIP else last // 10


def _accuracy_figure(runs, out_path, title):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    drawn = plots.draw_accuracy(axes, runs)
    axes.set(title=title, xlabel="iteration", ylabel="accuracy", ylim=(0, 1))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    plots.save_figure(figure, out_path)
    return drawn


class FigureSkipped(Exception):
    """Why a figure cannot be drawn from the runs given (a reason, not an error)."""


@dataclasses.dataclass
class FigureInputs:
    """What every figure's drawing function reads: the runs by role and ``draw_figures``' options."""

    runs: dict
    out_dir: Path
    skip_first: int | None = None
    images: tuple | None = None
    seed: int = 0
    _rows: object = None  # Figs. 7-9's images and denoiser, or the FigureSkipped that stops all three

    def curve(self, role, label, colour):
        return (label, self.runs.get(role), colour)

    def denoising_inputs(self):
        """(DSC run config, [(caption, clean image)], denoiser) for Figs. 7-9, prepared once for the three."""
        if self._rows is None:
            try:
                self._rows = self._prepare_denoising()
            except FigureSkipped as skipped:
                self._rows = skipped
        if isinstance(self._rows, FigureSkipped):
            raise self._rows
        return self._rows

    def _prepare_denoising(self):
        from stl_denoise.pretrained import load_keras_file

        record = load_run(self.runs["dsc"])
        if not record.model_path.exists():
            raise FigureSkipped(f"{record.model_path} is missing (the run has not finished)")
        try:
            chosen = chosen_images(record.data_source, record.config.data_dir, self.images)
        except UserError as error:  # e.g. trained on STL-10 elsewhere, not prepared here
            raise FigureSkipped(f"no images for Figs. 7-9: {error}") from None
        try:
            denoiser = load_keras_file(record.model_path, "not a readable denoiser")
        except UserError as error:  # a truncated or foreign model.keras: skip Figs. 7-9, still draw the others
            raise FigureSkipped(str(error)) from None
        return record.config, chosen, denoiser


def _truncnormal(inputs):
    return inputs.curve("truncnormal", "truncated normal", "tab:red")


def _classifier_curves(inputs):
    """Fig. 10-11's runs: the denoiser-pretrained classifier, and the truncated-normal one when given."""
    truncnormal = _truncnormal(inputs)
    return [inputs.curve("pretrained", "denoiser-pretrained", "tab:blue")] + ([truncnormal] if truncnormal[1] else [])


def draw_fig04(inputs, figure):
    run = inputs.runs["truncnormal"]
    return {"runs": [run], "drawn": _accuracy_figure(
        [_truncnormal(inputs)], inputs.out_dir / f"{figure}.png", "Fig. 4: accuracy, truncated-normal initialisation"),
        "notes": figure_notes.classifier_notes([run])}


def draw_fig05(inputs, figure):
    run = inputs.runs["perceptual"]
    return {"runs": [run], "drawn": plots.plot_curves(
        plots.run_curves([("perceptual-loss training", run, "tab:purple")], "mse"), inputs.out_dir / f"{figure}.png",
        "Fig. 5: pixel MSE while training with the perceptual loss", "MSE (0-255 scale)"),
        "notes": [note for note in (figure_notes.short_run_note(run),) if note]}


def draw_fig06(inputs, figure):
    dsc, plain = inputs.runs["dsc"], inputs.runs.get("plain")
    skip = fig06_skip(dsc, inputs.skip_first)
    notes = figure_notes.fig06_notes(dsc, plain, inputs.out_dir)
    return {"runs": [dsc, plain], "note": f"first {skip} iterations omitted", "notes": notes,
            "drawn": plots.plot_mse_comparison(dsc, plain, inputs.out_dir / f"{figure}.png", skip,
                                               caption=figure_notes.caption(notes))}


def denoising_figure(index, what, box=None):
    """Figs. 7-9: the ``index``-th chosen image through the DSC denoiser (``what``: where it is noised)."""

    def draw(inputs, figure):
        config, chosen, denoiser = inputs.denoising_inputs()
        caption, clean = chosen[index]
        dsc = inputs.runs["dsc"]
        row = denoising_row(denoiser, clean, config.sigma, config.salt_pepper, inputs.seed, box)
        notes = [note for note in (figure_notes.short_run_note(dsc),) if note]
        notes += figure_notes.denoising_notes(row, dsc, inputs.runs.get("plain"), inputs.out_dir)
        return {"runs": [dsc], "note": caption, "notes": notes, "drawn": plot_row(
            row, inputs.out_dir / f"{figure}.png", f"Fig. {int(figure[3:])}: {caption}, {what} (DSC denoiser)",
            figure_notes.caption(notes))}

    return draw


def draw_fig10(inputs, figure):
    curves = _classifier_curves(inputs)
    drawn = plots.plot_curves(plots.run_curves(curves, "cross_entropy"), inputs.out_dir / f"{figure}.png",
                              "Fig. 10: cross-entropy, DSC-pretrained vs truncated-normal initialisation",
                              "cross-entropy (training batch)")
    return {"runs": [r for _, r, _ in curves], "drawn": drawn, "notes": figure_notes.classifier_notes(
        [r for _, r, _ in curves])}


def draw_fig11(inputs, figure):
    curves = _classifier_curves(inputs)
    return {"runs": [r for _, r, _ in curves], "notes": figure_notes.classifier_notes([r for _, r, _ in curves]),
            "drawn": _accuracy_figure(curves, inputs.out_dir / f"{figure}.png",
                                      "Fig. 11: accuracy, DSC-pretrained vs truncated-normal initialisation")}


@dataclasses.dataclass(frozen=True)
class Figure:
    """One figure: its file name, the run roles (``runs.RunRecord.figure_role``) it cannot do without, how to draw it.

    ``draw(inputs, name)`` writes OUT/``name``.png and returns {"runs", "drawn", "notes"} (optionally a
    "note" for figures.md's table), or raises ``FigureSkipped`` with the reason.
    """

    name: str
    needs: tuple
    draw: typing.Callable


# Drawn in this order; a new figure is a row here (and its notes in figure_notes.py if it needs any).
TABLE = (
    Figure("fig04", ("truncnormal",), draw_fig04),
    Figure("fig05", ("perceptual",), draw_fig05),
    Figure("fig06", ("dsc",), draw_fig06),
    Figure("fig07", ("dsc",), denoising_figure(0, "noised")),
    Figure("fig08", ("dsc",), denoising_figure(1, "noised")),
    Figure("fig09", ("dsc",), denoising_figure(2, "noised inside a box only", BOX)),
    Figure("fig10", ("pretrained",), draw_fig10),
    Figure("fig11", ("pretrained",), draw_fig11),
)
FIGURES = tuple(figure.name for figure in TABLE)


def draw_figures(paths, out_dir, skip_first=None, images=None, seed=0, report=print):
    """Write every figure of ``TABLE`` and figures.md; returns {figure: {"runs", "drawn", "notes"} | {"skipped"}}.

    ``notes`` (``figure_notes``): what the viewer sees and why, measured on the figure's runs.
    """
    out_dir = Path(out_dir)
    inputs = FigureInputs(discover_runs(paths, report), out_dir, skip_first, images, seed)
    results = {}
    for figure in TABLE:
        missing = [role for role in figure.needs if role not in inputs.runs]
        try:
            if missing:
                raise FigureSkipped(f"needs a {' and a '.join(missing)} run")
            results[figure.name] = figure.draw(inputs, figure.name)
        except FigureSkipped as skipped:
            results[figure.name] = {"skipped": str(skipped)}
    for result in results.values():
        if "skipped" not in result:
            made_by = [f"Made by {figure_notes.describe_settings(run)}" for run in result["runs"] if run]
            result["notes"] = made_by + result["notes"]
    for figure, result in results.items():
        if "skipped" in result:
            report(f"skipping {figure}: {result['skipped']}")
        elif figure_notes.caption(result["notes"]):
            report(f"note {figure}: {figure_notes.caption(result['notes'])}")
    write_text(out_dir / "figures.md", figures_markdown(results))
    return results


def figures_markdown(results):
    lines = ["# Figures", "", "| figure | file | runs | data | note |", "| --- | --- | --- | --- | --- |"]
    for figure, result in results.items():
        if "skipped" in result:
            lines.append(f"| {figure} | — | — | — | skipped: {result['skipped']} |")
            continue
        used = [r for r in result["runs"] if r is not None]
        lines.append(f"| {figure} | {figure}.png | {', '.join(str(r) for r in used)} | "
                     f"{'; '.join(describe_data(r) for r in used)} | {result.get('note', '')} |")
    for figure, result in results.items():
        if "skipped" in result:
            continue
        lines += ["", f"## {figure}.png", ""] + [f"- {note}" for note in result["notes"]]
    return "\n".join(lines) + "\n"
