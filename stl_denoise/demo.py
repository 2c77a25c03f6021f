"""``make demo``: DSC and plain trained briefly on the bundled photos, a Fig. 6-style plot, then Figs. 6-9."""

import dataclasses

from stl_denoise.config import MODELS
from stl_denoise.distribute import writes_shared_files
from stl_denoise.figures import FIGURES, draw_figures
from stl_denoise.plots import plot_mse_comparison
from stl_denoise.runs import SUMMARY_TAIL, tail_key
from stl_denoise.train import train


def demo(config, out, say=print):
    """Train every model of ``MODELS`` with ``config`` into OUT/<model>, then draw what their runs support."""
    runs = {}
    for model in MODELS:
        run_dir = f"{out}/{model}"
        say(f"== training {model} on {config.data} for {config.steps} steps -> {run_dir}")
        runs[model] = (run_dir, train(dataclasses.replace(config, model=model), run_dir))
    if not writes_shared_files(config.strategy):  # a multi-worker run's other workers: the chief draws
        return
    plot_path = f"{out}/mse_dsc_vs_plain.png"
    # Like Fig. 6, leave out the first tenth: the opening swings (~4e5) flatten the rest.
    plot_mse_comparison(runs["dsc"][0], runs["plain"][0], plot_path, skip_first=config.steps // 10)
    for model, (_, summary) in runs.items():
        say(f"{model}: mean MSE of the last {SUMMARY_TAIL} steps {summary[tail_key('final_mse_mean')]} "
            f"(first step {summary['first_mse']}), {summary['median_images_per_second']} images/s")
    say(f"wrote {plot_path}")
    results = draw_figures([runs["dsc"][0], runs["plain"][0]], f"{out}/figures")
    say(f"wrote {', '.join(f for f in FIGURES if 'skipped' not in results[f])} to {out}/figures "
        f"({out}/figures/figures.md says what each shows)")
