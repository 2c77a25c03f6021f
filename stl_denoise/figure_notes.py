"""What each figure shows, in words: the settings that made it and, measured, what the viewer sees.

``figures.draw_figures`` adds these notes to ``figures.md`` (and the
notebook prints them under each figure).  Short runs and the equations'
gate reading draw figures that look broken -- red or black "denoised"
panels, DSC worse than plain -- so the notes measure what is on the
figure (dead output channels, the curves' final MSE) and say why and how
to see the other reading, rather than leave the viewer to guess.
"""

import dataclasses

import numpy as np

from stl_denoise.config import PRESETS, TRUNCNORMAL, ClassifierConfig, flag
from stl_denoise.runner import SUMMARY_TAIL
from stl_denoise.runs import load_run, read_metrics

PAPER_STEPS = 10_000  # §4.2: the denoisers' length, and Fig. 6's x axis
DEAD_SHARE = 0.9  # an output channel that is 0 at this share of a figure's pixels is dead
CHANNELS = ("red", "green", "blue")
# What an image looks like when only these output channels are alive.
COLOURS = {(): "black", ("red",): "red", ("green",): "green", ("blue",): "blue", ("red", "green"): "yellow",
           ("red", "blue"): "magenta", ("green", "blue"): "cyan"}
READINGS = {"equations": "equations' gate reading", "text": "prose's gate reading"}
READING_NAMES = {"equations": "the equations' gate reading (§3.1, the default)",
                 "text": "the prose's gate reading (§4.2, `--gate-reading text`)"}
WHY_DEAD = ("it sends 0.9 of conv1 straight into the output layer, whose ReLUs die for whole colour channels in "
            "the first SGD steps (docs/reproduction.md, \"What happened to the DSC net\")")
# Settings every note names for its kind of run; the others are named only when changed from their default.
KEY_SETTINGS = {"denoiser": ("model", "gate_reading", "learning_rate", "sigma", "salt_pepper", "seed"),
                "classifier": ("init", "labelled_split", "learning_rate", "seed")}
SHOWN_ELSEWHERE = ("data", "data_dir", "steps")  # the data column of figures.md


def _flag_text(name, value):
    if isinstance(value, bool):
        return flag(name) if value else "--no-" + flag(name)[2:]
    if isinstance(value, tuple):
        value = ",".join(f"{v:g}" for v in value)
    elif isinstance(value, float):
        value = f"{value:g}"
    return f"{flag(name)} {value}"


def describe_settings(run_dir):
    """`RUN`: what kind of run, then its key settings and every other one changed from its default, as flags."""
    record = load_run(run_dir)
    config = record.config
    if record.kind == "classifier":
        defaults = ClassifierConfig()
        kind = ("classifier from truncated normal" if config.init == TRUNCNORMAL
                else f"classifier from the denoiser {config.init}")
    else:
        defaults = PRESETS.get(config.preset, PRESETS["faithful"])
        kind = "DSC" if config.model == "dsc" else "plain"
        if config.loss == "perceptual":
            kind += ", perceptual loss"
        if config.model == "dsc":
            kind += f", {READINGS[config.gate_reading]}"
    key = KEY_SETTINGS[record.kind]
    names = ["preset"] if getattr(config, "preset", "faithful") != "faithful" else []  # the defaults compared with
    names += [name for name in key if not (name == "gate_reading" and getattr(config, "model", None) != "dsc")]
    names += [f.name for f in dataclasses.fields(config) if f.name not in key and f.name not in SHOWN_ELSEWHERE
              and getattr(config, f.name) != getattr(defaults, f.name)]
    flags = " ".join(_flag_text(name, getattr(config, name)) for name in names if getattr(config, name) is not None)
    return f"`{run_dir}`: {kind}; `{flags}`"


def final_mse(run_dir, last=SUMMARY_TAIL):  # as the runs' summaries
    """(mean MSE of the last ``last`` logged iterations, how many there were, last step); (None, 0, 0) if none."""
    rows = [row for row in read_metrics(run_dir) if row.get("mse") not in (None, "")]
    tail = [float(row["mse"]) for row in rows[-last:]]
    return (sum(tail) / len(tail) if tail else None), len(tail), (int(rows[-1]["step"]) if rows else 0)


def short_run_note(run_dir):
    """A sentence for a denoiser run shorter than the paper's 10,000 iterations, else None."""
    _, _, steps = final_mse(run_dir)
    if steps >= PAPER_STEPS:
        return None
    return (f"`{run_dir}` ran {steps:,} of the paper's {PAPER_STEPS:,} iterations: this is early training, "
            "not the paper's end point.")


def other_reading_commands(dsc_run, plain_run, figures_out):
    """The commands that redraw these figures with the other gate reading of ``dsc_run``."""
    reading = load_run(dsc_run).config.gate_reading
    other = "text" if reading == "equations" else "equations"
    again = f"{dsc_run}-{other}"
    runs = f"{again} {plain_run}" if plain_run else again
    return (f"`stl-denoise train --config {dsc_run} --gate-reading {other} --out {again}` "
            f"then `stl-denoise figures {runs} --out {figures_out}-{other}`")


def fig06_notes(dsc_run, plain_run, figures_out):
    """What Fig. 6 shows: which net ends lower, and why a DSC net with the equations' reading may not."""
    notes = [note for note in (short_run_note(dsc_run),) if note]
    dsc, count, _ = final_mse(dsc_run)
    plain = final_mse(plain_run)[0] if plain_run else None
    if dsc is None or plain is None:
        return notes
    if dsc <= plain:
        return notes + [f"DSC ends below plain (mean MSE of the last {count} iterations: {dsc:,.0f} vs "
                        f"{plain:,.0f}), as in the paper (~7,500 vs ~15,000)."]
    notes.append(f"**DSC ends above plain: mean MSE {dsc:,.0f} vs {plain:,.0f} over the last {count} iterations**; "
                 "the paper's DSC advantage (~7,500 vs ~15,000) does not show in these runs.")
    if load_run(dsc_run).config.gate_reading == "equations":
        notes.append(f"The DSC run uses {READING_NAMES['equations']}: {WHY_DEAD}; Figs. 7-9 show which channels. "
                     "At the paper's length this reading loses to plain too, and the prose's reading beats it "
                     "(docs/reproduction.md). To see the other reading: "
                     + other_reading_commands(dsc_run, plain_run, figures_out) + ".")
    return notes


def dead_channels(denoised, clean, share=DEAD_SHARE):
    """{colour: share of pixels at or below 0} for output channels that are 0 almost everywhere.

    A channel counts only where the clean image is not itself that dark,
    so a black photograph is not mistaken for a dead network.
    """
    output = (np.asarray(denoised) <= 0).reshape(-1, 3).mean(axis=0)
    truth = (np.asarray(clean) <= 0).reshape(-1, 3).mean(axis=0)
    return {name: float(z) for name, z, t in zip(CHANNELS, output, truth) if z >= share and t < share}


def _listed(words):
    return " and ".join(words) if len(words) < 3 else ", ".join(words[:-1]) + " and " + words[-1]


def denoising_notes(row, dsc_run, plain_run, figures_out):
    """What one row of Figs. 7-9 shows: dead output channels (the colour seen), or how far from clean it is."""
    notes = []
    dead = dead_channels(row["denoised"], row["clean"])
    if dead:
        alive = tuple(name for name in CHANNELS if name not in dead)
        shares = _listed([f"{share:.0%}" for share in dead.values()])
        notes.append(f"**The Denoised panel is {COLOURS[alive]}: the {_listed(list(dead))} output "
                     f"channel{'s are' if len(dead) > 1 else ' is'} dead**, 0 at {shares} of its pixels (ReLU "
                     "outputs that died in training), so "
                     + (f"only {_listed(list(alive))} is left." if alive else "the output is black."))
        config = load_run(dsc_run).config
        if config.model == "dsc" and config.gate_reading == "equations":
            notes.append(f"This run uses {READING_NAMES['equations']}: {WHY_DEAD}. To see the other reading: "
                         + other_reading_commands(dsc_run, plain_run, figures_out) + ".")
    mse = {key: float(np.mean((np.asarray(row[key], "float64") - row["clean"]) ** 2)) for key in ("noisy", "denoised")}
    closer = "closer to" if mse["denoised"] < mse["noisy"] else "further from"
    notes.append(f"Denoised is {closer} the clean image than the noisy input is (MSE {mse['denoised']:,.0f} vs "
                 f"{mse['noisy']:,.0f}).")
    return notes


def classifier_notes(runs):
    """The offline stand-in's caveat for Figs. 4, 10, 11."""
    if any(load_run(run).config.data == "digits" for run in runs):
        return ["Offline stand-in: scikit-learn's handwritten digits, far easier than STL-10's photographs, "
                "so the accuracies say nothing about the paper's ~25% and ~35%; only the two inits' relative "
                "behaviour compares."]
    return []


def caption(notes):
    """The first bolded finding of ``notes`` as one plain line for the PNG itself, or None."""
    for note in notes:
        if note.startswith("**"):
            return note.split("**")[1] + " (see figures.md)"
    return None
