"""Curves from run directories' ``metrics.csv`` (paper Figs. 4-6, 10-11)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from stl_denoise.io import atomic_path  # noqa: E402
from stl_denoise.runner import SUMMARY_TAIL  # noqa: E402


def save_figure(figure, out_path):
    """Lay out, write atomically (no half-written PNG on a kill), and free the figure."""
    figure.tight_layout()
    with atomic_path(out_path) as temp:
        figure.savefig(temp, dpi=120, format="png")
    plt.close(figure)


def read_curve(run_dir, column):
    from stl_denoise.runs import read_metrics

    rows = [r for r in read_metrics(run_dir) if r.get(column) not in (None, "")]
    return [int(r["step"]) for r in rows], [float(r[column]) for r in rows]


def add_caption(figure, caption):
    """One line under the figure saying what the viewer should know (figures.md has the rest)."""
    if caption:
        figure.supxlabel(caption, fontsize=8, color="tab:red")


def plot_curves(curves, out_path, title, ylabel, skip_first=0, xlabel="iteration", caption=None):
    """``curves``: list of (label, steps, values, colour).  Returns what was drawn.

    ``skip_first`` drops the first iterations, as Fig. 6 omits its first 1,000
    "due to large range fluctuations".
    """
    figure, axes = plt.subplots(figsize=(7, 4))
    drawn = _draw(axes, curves, skip_first, linewidth=0.8)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if len(curves) > 1:
        axes.legend()
    add_caption(figure, caption)
    save_figure(figure, out_path)
    return drawn


def run_label(run_dir, name):
    """``name`` with the run's gate reading (DSC runs) and seed, from its config.json."""
    from stl_denoise.runs import load_run

    config = load_run(run_dir).config
    reading = {"equations": "equations' gates", "text": "prose's gates"}
    details = ([reading.get(config.gate_reading, config.gate_reading)] if config.model == "dsc" else []) + \
        [f"seed {config.seed}"]
    return f"{name} ({', '.join(details)})"


def plot_mse_comparison(dsc_run, plain_run, out_path, skip_first=0, caption=None):
    """Fig. 6: MSE vs iteration, DSC (blue) against plain (red); the legend names gate reading and seed."""
    runs = [(run_label(dsc_run, "DSC"), dsc_run, "tab:blue"),
            (run_label(plain_run, "plain 10-layer") if plain_run is not None else None, plain_run, "tab:red")]
    curves = run_curves([run for run in runs if run[1] is not None], "mse")
    title = "MSE vs iteration (Fig. 6)" + (f", first {skip_first} iterations omitted" if skip_first else "")
    return plot_curves(curves, out_path, title, "MSE (0-255 scale)", skip_first, caption=caption)


def plot_reproduction_curves(runs, out_path, window=SUMMARY_TAIL):
    """Every MSE run of ``make reproduce`` on one axis, as a ``window``-iteration running mean.

    Raw per-batch MSE swings by 2x from batch to batch; the running mean (as
    long as the runs' summaries average) makes a gap between seeds or gate
    readings readable.  ``runs``: [(label, run_dir)].
    """
    import numpy as np

    curves = []
    for label, run_dir in runs:
        steps, values = read_curve(run_dir, "mse")
        if len(values) >= window:
            means = np.convolve(values, np.ones(window) / window, mode="valid")
            curves.append((label, steps[window - 1:], list(means), None))
    figure, axes = plt.subplots(figsize=(7, 4))
    for label, steps, values, _ in curves:
        axes.plot(steps, values, label=label, linewidth=1.0)
    axes.set_yscale("log")
    axes.set_title(f"MSE vs iteration, {window}-iteration running mean")
    axes.set_xlabel("iteration")
    axes.set_ylabel("MSE (0-255 scale, log)")
    axes.grid(alpha=0.3, which="both")
    if curves:
        axes.legend(fontsize=8)
    save_figure(figure, out_path)
    return [(label, steps, values) for label, steps, values, _ in curves]


THIN_LINE = dict(linewidth=0.8, alpha=0.8)
MARKERS = dict(marker="o", markersize=3, linewidth=1.2)


def _draw(axes, curves, skip_first=0, **style):
    """Plot (label, steps, values, colour) curves after ``skip_first``; returns [(label, xs, ys)]."""
    drawn = []
    for label, steps, values, colour in curves:
        kept = [(s, v) for s, v in zip(steps, values) if s > skip_first]
        xs, ys = [s for s, _ in kept], [v for _, v in kept]
        axes.plot(xs, ys, color=colour, label=label, **style)
        drawn.append((label, xs, ys))
    return drawn


def draw_accuracy(axes, runs):
    """Training-batch accuracy (thin lines) and the periodic accuracy on the evaluation images
    (markers) of each (label, run_dir, colour); returns {"accuracy": ..., "eval_accuracy": ...} as drawn."""
    def relabelled(column, suffix):
        return [(f"{label} ({suffix})", *rest) for label, *rest in run_curves(runs, column)]

    return {"accuracy": _draw(axes, relabelled("accuracy", "training batch"), **THIN_LINE),
            "eval_accuracy": _draw(axes, relabelled("eval_accuracy", "evaluation images"), **MARKERS)}


def run_curves(runs, column):
    """(label, steps, values, colour) for each (label, run_dir, colour) that logged ``column``."""
    curves = []
    for label, run_dir, colour in runs:
        steps, values = read_curve(run_dir, column)
        curves.append((label, steps, values, colour))
    return curves


def plot_classifier_panels(runs, out_path, title):
    """Cross-entropy (left) and accuracy (right) vs iteration for each run.

    ``runs``: list of (label, run_dir, colour); the accuracy panel is
    ``draw_accuracy``'s.  Returns {panel: [(label, xs, ys), ...]} as drawn.
    """
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    drawn = {"cross_entropy": _draw(left, run_curves(runs, "cross_entropy"), **THIN_LINE), **draw_accuracy(right, runs)}
    left.set(title="Cross-entropy", xlabel="iteration", ylabel="cross-entropy (training batch)")
    right.set(title="Accuracy", xlabel="iteration", ylabel="accuracy", ylim=(0, 1))
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(title)
    save_figure(figure, out_path)
    return drawn


def plot_classifier_comparison(truncnormal_run, pretrained_run, out_path):
    """Both initialisations of §4.3 side by side (the `make pretrain-classify` plot)."""
    runs = [("truncated normal", truncnormal_run, "tab:red"), ("denoiser-pretrained", pretrained_run, "tab:blue")]
    return plot_classifier_panels(runs, out_path, "Classifier: truncated-normal vs denoiser-pretrained init")
