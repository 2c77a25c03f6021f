"""Curves from run directories' ``metrics.csv`` (paper Figs. 4-6, 10-11)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from stl_denoise.io import atomic_path  # noqa: E402


def read_curve(run_dir, column):
    import csv

    with open(Path(run_dir) / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get(column) not in (None, "")]
    return [int(r["step"]) for r in rows], [float(r[column]) for r in rows]


def plot_curves(curves, out_path, title, ylabel, skip_first=0, xlabel="iteration"):
    """``curves``: list of (label, steps, values, colour).  Returns what was drawn.

    ``skip_first`` drops the first iterations, as Fig. 6 omits its first 1,000
    "due to large range fluctuations".
    """
    figure, axes = plt.subplots(figsize=(7, 4))
    drawn = []
    for label, steps, values, colour in curves:
        kept = [(s, v) for s, v in zip(steps, values) if s > skip_first]
        xs, ys = [s for s, _ in kept], [v for _, v in kept]
        axes.plot(xs, ys, color=colour, label=label, linewidth=0.8)
        drawn.append((label, xs, ys))
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if len(curves) > 1:
        axes.legend()
    figure.tight_layout()
    with atomic_path(out_path) as temp:
        figure.savefig(temp, dpi=120, format="png")
    plt.close(figure)
    return drawn


def plot_mse_comparison(dsc_run, plain_run, out_path, skip_first=0):
    """Fig. 6: MSE vs iteration, DSC (blue) against plain (red)."""
    curves = []
    for label, run, colour in (("DSC", dsc_run, "tab:blue"), ("plain 10-layer", plain_run, "tab:red")):
        if run is not None:
            steps, values = read_curve(run, "mse")
            curves.append((label, steps, values, colour))
    title = "MSE vs iteration (Fig. 6)" + (f", first {skip_first} iterations omitted" if skip_first else "")
    return plot_curves(curves, out_path, title, "MSE (0-255 scale)", skip_first)
