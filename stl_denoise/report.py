"""The reproduction's tables, computed from run records alone (config.json, metrics.csv, heldout.json).

Every number docs/reproduction.md quotes in a table comes from here:
``stl-denoise report RECORDS --doc docs/reproduction.md`` rewrites the blocks
between ``<!-- generated:NAME -->`` and ``<!-- /generated -->`` in the document,
and ``--check`` fails when a block differs from what the records give (a test
runs it on the committed records).  RECORDS is a ``reproduce`` output folder
or its committed copy (``reports/reproduction``: no models, the same files).
"""

import math
import re
import statistics
from pathlib import Path

from stl_denoise.errors import UserError
from stl_denoise.heldout import read_heldout
from stl_denoise.io import write_text
from stl_denoise.reproduce import (
    ABLATION,
    ABLATION_NETS,
    ABLATION_SEEDS,
    FIG6_NETS,
    PAPER_MSE,
    PERCEPTUAL_SWEEP,
    SEEDS,
    diverged_at,
    experiments,
    mse_tail,
)
from stl_denoise.runner import SUMMARY_TAIL
from stl_denoise.runs import CONFIG_FILE, METRICS_FILE, load_run, read_metrics

PERCEPTUAL_BLOCK = 500  # iterations per mean in the perceptual table
NET_LABELS = {"dsc": "DSC, equations' gates", "plain": "plain", "dsc-text": "DSC, prose's gates"}
BLOCK = re.compile(r"(<!-- generated:(?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)


def _has_metrics(run_dir):
    return (Path(run_dir) / METRICS_FILE).is_file()


def _mean_sd(values):
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:,.0f}"
    return f"{statistics.fmean(values):,.0f} ± {statistics.stdev(values):,.0f}"


def _seed_run(records, net, seed):
    return Path(records) / (net if seed == 0 else f"{net}-seed{seed}")


def _dead(run_dir):
    """Dead output channels on the held-out photos as 'green, blue' / 'none', or '?' when not scored."""
    heldout = read_heldout(run_dir)
    if heldout is None:
        return "?"
    return ", ".join(heldout["dead_channels"]) or "none"


def seeds_table(records):
    """Fig. 6's three nets, every seed: final training MSE, held-out PSNR, dead channels; mean ± sd."""
    lines = [f"| net | seed | iterations | mean training MSE, last {SUMMARY_TAIL} | held-out PSNR (dB) | "
             "held-out MSE | dead output channels (held-out) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for net in FIG6_NETS:
        for seed in SEEDS:
            run = _seed_run(records, net, seed)
            if not _has_metrics(run):
                lines.append(f"| {NET_LABELS[net]} | {seed} | not run | | | | |")
                continue
            mean, steps, _ = mse_tail(run)
            heldout = read_heldout(run)
            psnr = f"{heldout['mean_psnr']:.2f}" if heldout else "?"
            held_mse = f"{heldout['mean_mse']:,.0f}" if heldout else "?"
            lines.append(f"| {NET_LABELS[net]} | {seed} | {steps:,} | {mean:,.0f} | {psnr} | {held_mse} | "
                         f"{_dead(run)} |")
    return "\n".join(lines)


CURVE_BLOCKS = ((1, 1_000), (1_001, 2_000), (4_001, 5_000), (9_001, 10_000))


def curves_table(records):
    """How each full-length run got there: its first MSE and the mean MSE of four 1,000-iteration blocks."""
    blocks = " | ".join(f"iterations {a:,}-{b:,}" for a, b in CURVE_BLOCKS)
    lines = [f"| net | seed | first MSE | {blocks} |",
             "| --- | ---: | ---: | " + " | ".join("---:" for _ in CURVE_BLOCKS) + " |"]
    for net in FIG6_NETS:
        for seed in SEEDS:
            run = _seed_run(records, net, seed)
            if not _has_metrics(run):
                continue
            mse = [float(r["mse"]) for r in read_metrics(run)]
            means = [f"{statistics.fmean(mse[a - 1:b]):,.0f}" if len(mse) >= b else "—" for a, b in CURVE_BLOCKS]
            lines.append(f"| {NET_LABELS[net]} | {seed} | {mse[0]:,.0f} | " + " | ".join(means) + " |")
    return "\n".join(lines)


def seed_summary_table(records):
    """Per net: mean ± sd over seeds of the final training MSE, runs with dead channels, the paper's number."""
    lines = [f"| net | seeds at 10,000 | mean training MSE, last {SUMMARY_TAIL} (mean ± sd over seeds) | "
             "held-out MSE (mean ± sd) | runs with a dead output channel | paper (§5) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for net in FIG6_NETS:
        tails = [mse_tail(run) + (read_heldout(run),) for run in (_seed_run(records, net, seed) for seed in SEEDS)
                 if _has_metrics(run)]
        full = [(mean, heldout) for mean, steps, _, heldout in tails if steps >= 10_000]
        finals = [mean for mean, _ in full]
        scores = [heldout for _, heldout in full if heldout]
        held = [heldout["mean_mse"] for heldout in scores]
        dead = sum(1 for heldout in scores if heldout["dead_channels"])
        scored = len(scores)
        paper = f"~{PAPER_MSE[net]:,}" if net in PAPER_MSE else "—"
        lines.append(f"| {NET_LABELS[net]} | {len(full)} | {_mean_sd(finals)} | {_mean_sd(held)} | "
                     f"{dead} of {scored} scored | {paper} |")
    return "\n".join(lines)


def first_heldout(records):
    """The held-out scores of the first scored Fig. 6 run (every run sees the same noisy photos), or None."""
    for seed in SEEDS:
        for net in FIG6_NETS:
            heldout = read_heldout(_seed_run(records, net, seed))
            if heldout:
                return heldout
    return None


def scale_table(records):
    """What the MSE levels mean: the noisy input and an all-black output on the same held-out photos."""
    heldout = first_heldout(records)
    if heldout is None:
        return "(no held-out scores yet)"
    noise = heldout["noise"]
    return "\n".join([
        "| on the held-out photos | MSE | PSNR (dB) |", "| --- | ---: | ---: |",
        f"| noisy input (σ {noise['sigma']:g} + {noise['salt_pepper']:.0%} salt-and-pepper, clipped) | "
        f"{heldout['mean_noisy_mse']:,.0f} | {heldout['mean_noisy_psnr']:.2f} |",
        f"| an all-black output | {heldout['mean_black_mse']:,.0f} | "
        f"{10 * math.log10(255**2 / heldout['mean_black_mse']):.2f} (of the mean MSE) |",
        f"| photos | {heldout['photos']} ({heldout['split']} split) | |"])


def _ablation_cell(run, steps=None):
    """'MSE' of a run's first ``steps`` iterations, or 'NaN at N'."""
    stopped = diverged_at(run)
    if stopped is not None:
        return f"NaN after {stopped:,}"
    if not _has_metrics(run):
        return "not run"
    mean, done, _ = mse_tail(run, steps=steps)
    return f"{mean:,.0f}" if not steps or done >= steps else f"{mean:,.0f} ({done:,} it.)"


def ablation_table(records, steps=2_000):
    """The settings the paper leaves open: final training MSE at ``steps`` per net and seed, NaN, dead channels."""
    seeds = " | ".join(f"seed {s}" for s in ABLATION_SEEDS)
    lines = [f"| setting | net | {seeds} | dead output channels (held-out, per seed) |",
             "| --- | --- | " + " | ".join("---:" for _ in ABLATION_SEEDS) + " | --- |"]
    for net in ABLATION_NETS:  # the faithful run: the first `steps` iterations of the full-length seeds
        cells = [_ablation_cell(_seed_run(records, net, s), steps) for s in ABLATION_SEEDS]
        lines.append(f"| faithful (He init, 1e-6, ReLU output, 0-255): first {steps:,} iterations of the full runs | "
                     f"{NET_LABELS[net]} | " + " | ".join(cells) + " | (at 10,000: see above) |")
    for tag, changes in ABLATION.items():
        setting = ", ".join(f"{field} {value:g}" if isinstance(value, float) else f"{field} {value}"
                            for field, value in changes)
        for net in ABLATION_NETS:
            runs = [Path(records) / f"ablation/{net}-{tag}-seed{s}" for s in ABLATION_SEEDS]
            dead = " / ".join(_dead(run) if _has_metrics(run) and diverged_at(run) is None else "—" for run in runs)
            lines.append(f"| {setting} | {NET_LABELS[net]} | " + " | ".join(_ablation_cell(r) for r in runs) +
                         f" | {dead} |")
    return "\n".join(lines)


NEAR = 0.25  # "near" a level: within 25% of it


def black_mse(records):
    """The all-black output's MSE on the held-out photos (the scale of the paper's ~15,000), or None."""
    heldout = first_heldout(records)
    return heldout["mean_black_mse"] if heldout else None


def _seed_means(runs, steps=None):
    finals = []
    for run in runs:
        if diverged_at(run) is not None:
            finals.append(math.nan)
        elif _has_metrics(run):
            finals.append(mse_tail(run, steps=steps)[0])
    return finals


def paper_match_table(records, steps=2_000):
    """Which setting puts the plain net near the all-black MSE and the DSC net near half of it (the paper's pair)."""
    black = black_mse(records)
    if black is None:
        return "(no held-out scores yet: the all-black level is measured on the held-out photos)"
    lines = [f"| setting | plain: mean of seeds / all-black ({black:,.0f}) | "
             "DSC (equations): mean of seeds / all-black | "
             f"plain near all-black and DSC near half (±{NEAR:.0%})? |",
             "| --- | ---: | ---: | --- |"]
    settings = [("faithful (first 2,000 iterations of the full runs)",
                 {net: [_seed_run(records, net, s) for s in ABLATION_SEEDS] for net in ABLATION_NETS})]
    settings += [(tag, {net: [Path(records) / f"ablation/{net}-{tag}-seed{s}" for s in ABLATION_SEEDS]
                        for net in ABLATION_NETS}) for tag in ABLATION]
    for label, runs in settings:
        cells, ratios = [], {}
        for net in ABLATION_NETS:
            finals = _seed_means(runs[net], steps if label.startswith("faithful") else None)
            if not finals:
                cells.append("not run")
                continue
            if any(math.isnan(f) for f in finals):
                cells.append(f"NaN in {sum(math.isnan(f) for f in finals)} of {len(finals)}")
                continue
            ratios[net] = statistics.fmean(finals) / black
            cells.append(f"{ratios[net]:.2f}")
        match = "—"
        if len(ratios) == 2:
            plain_ok = abs(ratios["plain"] - 1.0) <= NEAR
            dsc_ok = abs(ratios["dsc"] / 0.5 - 1.0) <= NEAR
            verdicts = f"plain {'yes' if plain_ok else 'no'}, DSC {'yes' if dsc_ok else 'no'}"
            match = "**yes**" if plain_ok and dsc_ok else f"no ({verdicts})"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {match} |")
    return "\n".join(lines)


def _block_means(run, column, block=PERCEPTUAL_BLOCK):
    rows = read_metrics(run)
    values = [float(r[column]) for r in rows]
    return [statistics.fmean(values[i:i + block]) for i in range(0, len(values), block)]


def controls_table(records):
    """The perceptual run, its MSE control at the same rate, and the perceptual sweep."""
    lines = [f"| run | learning rate | iterations | pixel MSE, first {SUMMARY_TAIL} | pixel MSE, last {SUMMARY_TAIL} | "
             f"pixel MSE per {PERCEPTUAL_BLOCK} iterations | perceptual distance, first and last {PERCEPTUAL_BLOCK} |",
             "| --- | ---: | ---: | ---: | ---: | --- | --- |"]
    runs = [("perceptual (Fig. 5)", Path(records) / "perceptual"),
            ("control: plain, MSE loss", Path(records) / "controls/plain-mse-lr1e-8"),
            *(("perceptual sweep", Path(records) / f"controls/perceptual-sweep/lr{rate:g}")
              for rate in PERCEPTUAL_SWEEP),
            ("perceptual at the largest finite rate", Path(records) / "controls/perceptual-largest-lr")]
    for label, run in runs:
        if not (run / CONFIG_FILE).is_file():
            lines.append(f"| {label} | | not run | | | | |")
            continue
        rate = load_run(run).config.learning_rate
        stopped = diverged_at(run)
        rows = read_metrics(run)
        mse = [float(r["mse"]) for r in rows]
        first, last = statistics.fmean(mse[:SUMMARY_TAIL]), statistics.fmean(mse[-SUMMARY_TAIL:])
        blocks = " → ".join(f"{v:,.0f}" for v in _block_means(run, "mse"))
        if "perceptual" in rows[0] and rows[0]["perceptual"] != "":
            distance = _block_means(run, "perceptual")
            distance = f"{distance[0]:,.0f} → {distance[-1]:,.0f}"
        else:
            distance = "—"
        steps = f"{len(rows):,}" + (f" (NaN after {stopped:,})" if stopped is not None else "")
        lines.append(f"| {label} | {rate:g} | {steps} | {first:,.0f} | {last:,.0f} | {blocks} | {distance} |")
    return "\n".join(lines)


def _classifier_summary(run):
    record = load_run(run)
    return record.summary if record.summary else None


def classifier_table(records):
    """§4.3: the paper split (evaluation images = training images) and the held-out standard split, per init."""
    lines = ["| split (evaluation images) | initialisation | seeds | first cross-entropy | "
             "final accuracy on the evaluation images (mean ± sd) | evaluations per run |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    paper = [("truncated normal", Path(records) / "classify/truncnormal"),
             ("DSC seed 0 conv1-5", Path(records) / "classify/pretrained")]
    for label, run in paper:
        if (run / CONFIG_FILE).is_file() and _classifier_summary(run):
            s = _classifier_summary(run)
            lines.append(f"| paper (the training images: not held out) | {label} | 1 | "
                         f"{s['first_cross_entropy']:.0f} | "
                         f"{s['final_eval_accuracy']:.1%} | {len(s['eval_accuracy'])} |")
    for init in ("truncnormal", *(f"from-{net}" for net in FIG6_NETS)):
        runs = [Path(records) / f"classify-standard/seed{s}/{init}" for s in SEEDS]
        summaries = [_classifier_summary(r) for r in runs if (r / CONFIG_FILE).is_file()]
        summaries = [s for s in summaries if s]
        if not summaries:
            continue
        label = "truncated normal" if init == "truncnormal" else f"{NET_LABELS[init[5:]]} conv1-5 (same seed)"
        accuracy = [s["final_eval_accuracy"] for s in summaries]
        spread = f" ± {statistics.stdev(accuracy):.1%}" if len(accuracy) > 1 else ""
        first = statistics.fmean(s["first_cross_entropy"] for s in summaries)
        lines.append(f"| standard (held out) | {label} | {len(summaries)} | {first:.0f} | "
                     f"{statistics.fmean(accuracy):.1%}{spread} | {min(len(s['eval_accuracy']) for s in summaries)} |")
    return "\n".join(lines)


def time_table(records):
    """Training time per run: the sum of metrics.csv's per-iteration seconds (evaluation and start-up excluded)."""
    lines = ["| run | iterations | training time (sum of per-iteration seconds) | CPU (config.json platform) |",
             "| --- | ---: | ---: | --- |"]
    for experiment in experiments():
        run = Path(records) / experiment.name
        if experiment.group not in ("paper", "seeds") or not _has_metrics(run):
            continue
        rows = read_metrics(run)
        seconds = sum(float(r["seconds"]) for r in rows)
        onednn = load_run(run).environment.get("onednn")
        lines.append(f"| {experiment.name} | {len(rows):,} | {seconds / 60:.1f} min | "
                     f"oneDNN {'on' if onednn else 'off'} |")
    return "\n".join(lines)


TABLES = {
    "seeds": seeds_table,
    "seed-summary": seed_summary_table,
    "curves": curves_table,
    "scale": scale_table,
    "ablation": ablation_table,
    "paper-match": paper_match_table,
    "controls": controls_table,
    "classifier": classifier_table,
    "time": time_table,
}


def tables(records):
    """Every table, by block name, computed from the records under ``records``."""
    if not Path(records).is_dir():
        raise UserError(f"{records}: no such folder of run records")
    return {name: make(records) + "\n" for name, make in TABLES.items()}


def report_markdown(records):
    """report.md: every table under a heading."""
    parts = ["# Reproduction runs", ""]
    for name, body in tables(records).items():
        parts += [f"## {TABLES[name].__doc__.splitlines()[0]}", "", body]
    return "\n".join(parts)


def fill_document(text, computed, source):
    """``text`` with every generated block replaced by its computed table; unknown blocks are an error."""
    def replace(match):
        name = match.group("name")
        if name not in computed:
            raise UserError(f"{source}: unknown generated block {name!r}; known: {', '.join(computed)}")
        return match.group(1) + computed[name] + match.group(4)

    return BLOCK.sub(replace, text)


def update_document(records, doc, check=False):
    """Rewrite (or, with ``check``, compare) the generated blocks of ``doc``; returns the names that differ."""
    doc = Path(doc)
    if not doc.is_file():
        raise UserError(f"{doc}: no such document")
    text = doc.read_text()
    computed = tables(records)
    filled = fill_document(text, computed, doc)
    found = {m.group("name"): m.group("body") for m in BLOCK.finditer(text)}
    stale = [name for name, body in found.items() if body != computed[name]]
    if not check and filled != text:
        write_text(doc, filled)
    return stale
