"""``stl-denoise reproduce``: every experiment of the paper at its length, then figures and tables.

The runs are data (``experiments``), in the order a short budget should spend
them: the Fig. 6 pair first.  Each is an ordinary run folder under OUT, so
rerunning the command resumes the unfinished one and skips the finished.

With ``--data stl10`` this is the paper's experiment.  With a folder of photos
(offline) each photo is resized so its shorter side is 96 px, like STL-10's
96x96 images, and only the folder's train split is used; the classifier then
uses the offline labelled set (``digits``).  docs/reproduction.md says what
that changes.
"""

import dataclasses
from pathlib import Path

from stl_denoise.config import TrainConfig
from stl_denoise.errors import UserError
from stl_denoise.io import write_text
from stl_denoise.runner import SUMMARY_TAIL, tail_key, tail_mean
from stl_denoise.runs import CONFIG_FILE, METRICS_FILE, load_run, read_metrics, run_is_finished, saved_model_path

FULL_STEPS = 10_000  # paper §4.2: 100k images at batch 10
STL10_SIDE = 96  # STL-10 images are 96x96 (paper §4.1)
PERCEPTUAL_LEARNING_RATE = 1e-8  # README, "Perceptual loss": 1e-6 gives NaN at step 5
PAPER_MSE = {"dsc": 7_500, "plain": 15_000}  # §5, Fig. 6: "at 10000 iterations"


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str  # run folder under OUT
    claim: str  # what of the paper it tests
    changes: tuple  # (field, value) pairs applied to the faithful TrainConfig
    steps: str = "full"  # full | seed | perceptual: which --*-steps option sets its length


def experiments():
    """The paper's denoiser runs (the order they run in is ``RUN_ORDER``)."""
    return (
        Experiment("dsc", "§4.2 / Fig. 6: DSC, gates 0.1-0.4, equations' reading", (("model", "dsc"),)),
        Experiment("plain", "§4.2 / Fig. 6: the same net, connections off", (("model", "plain"),)),
        Experiment("dsc-text", "§3.1 vs §4.2: the prose's gate reading", (("model", "dsc"), ("gate_reading", "text"))),
        Experiment("dsc-seed1", "seed spread (DSC)", (("model", "dsc"), ("seed", 1)), steps="seed"),
        Experiment("plain-seed1", "seed spread (plain)", (("model", "plain"), ("seed", 1)), steps="seed"),
        Experiment("perceptual", "§4.2 / Fig. 5: plain net, perceptual loss",
                   (("model", "plain"), ("loss", "perceptual"), ("learning_rate", PERCEPTUAL_LEARNING_RATE)),
                   steps="perceptual"),
    )


def data_settings(data):
    """(denoiser data fields, classifier data name) for ``--data``."""
    if data == "stl10":
        return {"data": "stl10"}, "stl10"
    # Photos: shorter side 96 like STL-10, and the held-out validation split kept out.
    split = "all" if data == "sample" else "train"
    return {"data": data, "resize_short_side": STL10_SIDE, "data_split": split}, "digits"


CLASSIFY = "classify"  # the §4.3 step between the denoiser runs: it needs the finished DSC run
RUN_ORDER = ("dsc", "plain", CLASSIFY, "dsc-text", "dsc-seed1", "plain-seed1", "perceptual")


def reproduce(out_dir, data="stl10", data_dir=None, steps=FULL_STEPS, seed_steps=3_000, perceptual_steps=3_000,
              classifier_steps=None, only=None, verbose=True):
    """Run (or resume) every experiment in ``RUN_ORDER``, then draw Figs. 4-11 and write OUT/report.md."""
    from stl_denoise.train import train

    out_dir = Path(out_dir)
    lengths = {"full": steps, "seed": seed_steps, "perceptual": perceptual_steps}
    if min(lengths.values()) <= 0:
        raise UserError(f"every step count must be positive, got {lengths}")
    unknown = set(only or ()) - set(RUN_ORDER)
    if unknown:
        raise UserError(f"--only: unknown run(s) {', '.join(sorted(unknown))}; choose from {', '.join(RUN_ORDER)}")
    denoiser_data, classifier_data = data_settings(data)
    base = TrainConfig(data_dir=data_dir, **denoiser_data)
    planned = {e.name: (e, dataclasses.replace(base, steps=lengths[e.steps], **dict(e.changes))) for e in experiments()}
    experiment, perceptual = planned["perceptual"]
    planned["perceptual"] = (experiment, dataclasses.replace(
        perceptual, perceptual_classifier=str(out_dir / CLASSIFY / "truncnormal")))
    for _, config in planned.values():  # every setting checked before the first run starts
        config.validate()

    for name in RUN_ORDER:
        if only and name not in only:
            continue
        if name == CLASSIFY:
            _classify(out_dir, classifier_data, data_dir, classifier_steps, verbose)
            continue
        experiment, config = planned[name]
        run_dir = out_dir / name
        if run_is_finished(run_dir):
            if verbose:
                print(f"== {name}: finished earlier ({run_dir})")
            continue
        if verbose:
            print(f"== {name} ({experiment.claim}): {config.steps} steps on {config.data} -> {run_dir}")
        train(config, run_dir, verbose=verbose)
    return write_report(out_dir)


def _classify(out_dir, data, data_dir, steps, verbose):
    """§4.3 / Figs. 4, 10, 11: the classifier from truncated normal and from the DSC run."""
    from stl_denoise.config import ClassifierConfig
    from stl_denoise.transfer import pretrain_classify

    classify_dir = out_dir / CLASSIFY
    if all(run_is_finished(classify_dir / label) for label in ("truncnormal", "pretrained")):
        if verbose:
            print(f"== {CLASSIFY}: finished earlier ({classify_dir})")
        return
    if not run_is_finished(out_dir / "dsc"):
        raise UserError(f"{out_dir / 'dsc'}: the DSC run must finish before the classifier runs (include dsc in --only)")
    if verbose:
        print(f"== {CLASSIFY} (§4.3 / Figs. 4, 10, 11) on {data} -> {classify_dir}")
    pretrain_classify(ClassifierConfig(data=data, data_dir=data_dir, steps=steps), out_dir / "dsc", classify_dir,
                      verbose=verbose)


def mse_tail(run_dir, tail=SUMMARY_TAIL):
    """(mean MSE of the last ``tail`` iterations, steps, training seconds) from a run's metrics.csv."""
    rows = read_metrics(run_dir)
    mse = [float(r["mse"]) for r in rows]
    return tail_mean(mse, tail), len(rows), sum(float(r["seconds"]) for r in rows)


def _compare_denoisers(out_dir, names, out_path):
    """The first figure image, noised once, through each finished full-length denoiser."""
    if not names:
        return
    from stl_denoise.figures import chosen_images, plot_denoised_comparison
    from stl_denoise.pretrained import load_keras_file

    record = load_run(out_dir / names[0])
    config = record.config
    caption, clean = chosen_images(record.data_source, config.data_dir)[0]
    labels = {"dsc": "DSC (equations' gates)", "plain": "plain", "dsc-text": "DSC (prose's gates)"}
    models = [(labels.get(name, name), load_keras_file(saved_model_path(out_dir / name, TrainConfig.KIND),
                                                       "not a readable denoiser"))
              for name in names]
    plot_denoised_comparison(models, clean, config.sigma, config.salt_pepper, out_path,
                             f"{caption}: the same noisy input through each denoiser")


def write_report(out_dir):
    """Figures from the finished runs, then OUT/report.md: each run's numbers beside the paper's."""
    from stl_denoise.figures import draw_figures
    from stl_denoise.plots import plot_reproduction_curves

    out_dir = Path(out_dir)
    lines = ["# Reproduction runs", "",
             "| run | what it tests | iterations | mean MSE, last 100 | paper (§5) | training time |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    finished = []
    for experiment in experiments():
        run_dir = out_dir / experiment.name
        if not (run_dir / METRICS_FILE).exists():
            lines.append(f"| {experiment.name} | {experiment.claim} | not run | | | |")
            continue
        mean, steps, seconds = mse_tail(run_dir)
        finished.append(experiment.name)
        paper = PAPER_MSE.get(experiment.name, "")
        paper = f"~{paper:,}" if paper else "—"
        state = "" if run_is_finished(run_dir) else " (unfinished)"
        lines.append(f"| {experiment.name} | {experiment.claim} | {steps:,}{state} | {mean:,.0f} | {paper} | "
                     f"{seconds / 60:.1f} min |")
    lines += ["", "| classifier | final evaluation accuracy | mean batch accuracy, last 100 | iterations |",
              "| --- | ---: | ---: | ---: |"]
    for label in ("truncnormal", "pretrained"):
        run_dir = out_dir / CLASSIFY / label
        summary = load_run(run_dir).summary if (run_dir / CONFIG_FILE).exists() else None
        if summary:
            lines.append(f"| {label} | {summary['final_eval_accuracy']:.3f} | "
                         f"{summary[tail_key('batch_accuracy_mean')]:.3f} | {summary['steps']} |")
        else:
            lines.append(f"| {label} | not run | | |")
    figures_dir = out_dir / "figures"
    runs = [out_dir / name for name in ("dsc", "plain", "perceptual") if name in finished]
    runs.append(out_dir / CLASSIFY)
    if any(name in finished for name in ("dsc", "plain")):
        draw_figures(runs, figures_dir, report=lambda message: None)
        curves = [(name, out_dir / name) for name in finished if name != "perceptual"]
        plot_reproduction_curves(curves, figures_dir / "mse_all_runs.png")
        _compare_denoisers(out_dir, [name for name in ("dsc", "plain", "dsc-text") if run_is_finished(out_dir / name)],
                           figures_dir / "denoised_by_each_run.png")
        lines += ["", "Figures: `figures/fig04.png` .. `fig11.png` (see `figures/figures.md`), "
                  "`figures/mse_all_runs.png` (every MSE run, 100-iteration running mean) and "
                  "`figures/denoised_by_each_run.png` (one noisy image through each 10,000-step denoiser)."]
    write_text(out_dir / "report.md", "\n".join(lines) + "\n")
    return out_dir / "report.md"
