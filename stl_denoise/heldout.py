"""Held-out scores of a trained denoiser run: its data folder's validation photos, its own training noise.

The training MSE of a run is measured on the crops it learns from.  This
scores the saved model on the photos the run never saw (``--data-split
train`` keeps the fixed validation split out, ``splits.is_validation_file``),
each prepared as the run prepared its training photos (resized so the shorter
side is ``resize_short_side`` when the run did that) and noised once with the
run's own noise (Gaussian ``sigma`` + ``salt_pepper``, clipped as the run
clipped it), the noise seeded per photo (``evaluate.noisy_copy``), so every
run of the same noise sees the same noisy inputs.

Per photo: PSNR and MSE of the output (clipped to 0-255) against the clean
photo, the same for the noisy input and for an all-black output (the scale
of the paper's numbers), and the share of output pixels at or below 0 per
colour channel.  A ReLU output channel that is 0 on (nearly) every held-out
pixel is *dead*: it gets no gradient back and never recovers.
"""

import csv
import io
import json
import statistics
from pathlib import Path

import numpy as np

from stl_denoise.errors import UserError
from stl_denoise.evaluate import noisy_copy
from stl_denoise.folders import list_image_files
from stl_denoise.inference import denoise_rgb
from stl_denoise.io import write_text
from stl_denoise.metrics import psnr
from stl_denoise.pretrained import load_keras_file
from stl_denoise.runs import load_run
from stl_denoise.splits import split_files

HELDOUT_JSON = "heldout.json"
HELDOUT_CSV = "heldout.csv"
HELDOUT_SPLIT = "validation"
NOISE_SEED = 0  # one noise draw per photo, shared by every run scored
DEAD_SHARE = 0.95  # a channel that is <= 0 at this share of held-out pixels or more is counted dead
CHANNELS = ("red", "green", "blue")


def prepared_photo(path, short_side):
    """The clean photo as float64 0-255, resized as the run resized its training photos."""
    from stl_denoise._quiet import import_tensorflow
    from stl_denoise.data import decode_image_file, resize_short_side

    tf = import_tensorflow()
    image = decode_image_file(str(path))
    if short_side:
        image = resize_short_side(image, short_side)
    return np.asarray(tf.cast(image, tf.float64))


def mse(a, b):
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def score_photo(model, clean, sigma, salt_pepper, clip, name):
    """One row of heldout.csv for one clean photo."""
    noisy = noisy_copy(clean, sigma, salt_pepper, NOISE_SEED, name)
    if clip:
        noisy = np.clip(noisy, 0.0, 255.0)
    output = denoise_rgb(model, noisy.astype(np.float32))
    denoised = np.clip(output, 0.0, 255.0)
    row = {"file": name, "psnr": psnr(clean, denoised), "mse": mse(clean, denoised),
           "noisy_psnr": psnr(clean, np.clip(noisy, 0, 255)), "noisy_mse": mse(clean, np.clip(noisy, 0, 255)),
           "black_mse": mse(clean, 0.0)}
    for index, channel in enumerate(CHANNELS):
        row[f"zero_share_{channel}"] = float(np.mean(output[..., index] <= 0.0))
    return row


def score_run(run_dir, model=None, data=None):
    """Score a finished denoiser run on its data folder's validation photos; writes heldout.json/.csv into the run.

    ``data``: the folder to read instead of the recorded one (a run moved to
    another machine).  Returns the summary written to heldout.json.
    """
    record = load_run(run_dir)
    config = record.config
    if record.kind != "denoiser":
        raise UserError(f"{run_dir}: a {record.kind} run; held-out scores are for denoiser runs")
    folder = Path(data or record.data_source)
    if record.data.get("kind") != "folder" and data is None:
        raise UserError(f"{run_dir}: trained on {config.data!r}, not a photo folder with a validation split; "
                        f"pass the folder to score on")
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (the run's data); pass --data to score on another copy")
    files = split_files(list_image_files(folder), HELDOUT_SPLIT)
    if model is None:
        model = load_keras_file(record.model_path, "not a readable denoiser")
    rows = [score_photo(model, prepared_photo(path, config.resize_short_side), config.sigma, config.salt_pepper,
                        config.clip_noise, path.name)
            for path in files]
    summary = summarize(rows)
    summary.update({"run": Path(run_dir).name, "split": HELDOUT_SPLIT, "photos": len(rows),
                    "noise": {"sigma": config.sigma, "salt_pepper": config.salt_pepper, "clip": config.clip_noise,
                              "seed": NOISE_SEED},
                    "resize_short_side": config.resize_short_side, "dead_share": DEAD_SHARE})
    write_text(Path(run_dir) / HELDOUT_CSV, csv_text(rows))
    write_text(Path(run_dir) / HELDOUT_JSON, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def summarize(rows):
    """Means over photos; channels dead on the held-out photos (their pooled zero share >= DEAD_SHARE)."""
    mean = {key: statistics.fmean(row[key] for row in rows)
            for key in ("psnr", "mse", "noisy_psnr", "noisy_mse", "black_mse")}
    shares = {channel: statistics.fmean(row[f"zero_share_{channel}"] for row in rows) for channel in CHANNELS}
    return {**{f"mean_{key}": round(value, 4) for key, value in mean.items()},
            "zero_share": {channel: round(share, 4) for channel, share in shares.items()},
            "dead_channels": [channel for channel, share in shares.items() if share >= DEAD_SHARE]}


def csv_text(rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(rows[0]) if rows else ["file"], lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: f"{value:.6g}" if isinstance(value, float) else value for key, value in row.items()}
                     for row in rows)
    return buffer.getvalue()


def read_heldout(run_dir):
    """The summary in RUN/heldout.json, or None when the run was not scored."""
    path = Path(run_dir) / HELDOUT_JSON
    return json.loads(path.read_text()) if path.is_file() else None
