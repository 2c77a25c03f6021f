"""``stl-denoise evaluate``: PSNR, SSIM and speed of denoisers vs classical baselines.

Protocol (the usual one for Gaussian denoising benchmarks):

* each clean image is read as 8-bit RGB and turned to float;
* for each noise setting, noise is drawn once per image in float from a
  generator seeded by (seed, file name, setting), so every method sees the
  *same* noisy input and reruns see the same noise; Gaussian noise is not
  clipped, salt-and-pepper sets whole pixels to 0 or 255;
* every output (and the noisy input, in its own row) is clipped to [0, 255],
  not rounded, and scored against the clean image on the full image, 0-255
  scale, with scikit-image's PSNR and SSIM (``stl_denoise.metrics``);
* baselines are told the noise level (the true sigma; with salt-and-pepper
  or an 8-bit noisy input, the standard deviation of the actual noise);
* ``--eight-bit`` gives every method the noisy image as a saved 8-bit file
  holds it: clipped to [0, 255] and rounded;
* seconds per image is the median wall-clock time of one method on one
  image (the model: padding and tiling included, after one warm-up call).
"""

import csv
import io
import math
import os
import statistics
import time
import zlib
from pathlib import Path

import numpy as np

from stl_denoise import baselines as classical
from stl_denoise.image_io import ImageFileError, as_rgb, read_image
from stl_denoise.inference import DEFAULT_MARGIN, DEFAULT_TILE, MIN_SIDE, denoise_rgb
from stl_denoise.io import write_text
from stl_denoise.metrics import psnr, ssim

NOISY = "noisy input"
COLUMNS = ["sigma", "salt_pepper", "method", "psnr", "ssim", "seconds_per_image", "images"]


def noisy_copy(clean, sigma, salt_pepper, seed, name, eight_bit=False):
    """The noisy version of ``clean`` that every method is given (float64, 0-255 scale).

    ``eight_bit``: clipped to [0, 255] and rounded, as a noisy photo saved to
    an 8-bit file is (the same draws, so both protocols share their noise).
    """
    # os.fsencode: the same bytes as .encode() for UTF-8 names, and no crash on names that are not UTF-8.
    key = [seed, zlib.crc32(os.fsencode(str(name))), round(sigma * 1000), round(salt_pepper * 1_000_000)]
    rng = np.random.default_rng(key)
    noisy = np.asarray(clean, dtype=np.float64) + rng.normal(0.0, sigma, np.shape(clean))
    if salt_pepper > 0:
        draw = rng.random(np.shape(clean)[:2])
        noisy[draw < salt_pepper / 2] = 255.0
        noisy[(draw >= salt_pepper / 2) & (draw < salt_pepper)] = 0.0
    return np.round(np.clip(noisy, 0.0, 255.0)) if eight_bit else noisy


def read_rgb(path):
    pixels = read_image(path)
    if min(pixels.shape[:2]) < MIN_SIDE:  # the models cannot run on it (and SSIM needs 7x7): say which file
        raise ImageFileError(f"{path}: image is {pixels.shape[0]}x{pixels.shape[1]}: evaluation needs at least "
                             f"{MIN_SIDE}x{MIN_SIDE} pixels")
    if pixels.dtype != np.uint8:
        pixels = np.round(pixels / 257.0).astype(np.uint8)
    return as_rgb(pixels).astype(np.float64)


def _model_method(model, tile, margin, self_ensemble=False):
    def run(noisy, sigma):
        return denoise_rgb(model, noisy, tile, margin, self_ensemble=self_ensemble)

    return run


def evaluate(files, settings, models, baseline_names, seed=0, tile=DEFAULT_TILE, margin=DEFAULT_MARGIN,
             progress=None, self_ensemble=False, eight_bit=False):
    """Score every method on every file and noise setting; returns per-image rows.

    ``self_ensemble``: also score each model with the x8 flip/rotation
    ensemble, as a method named "<label> x8".  ``eight_bit``: the noisy
    input is clipped and rounded as an 8-bit file (``noisy_copy``).
    """
    classical.check_available(baseline_names)
    methods = {}
    for label, model in models.items():
        methods[label] = _model_method(model, tile, margin)
        if self_ensemble:
            methods[f"{label} x8"] = _model_method(model, tile, margin, self_ensemble=True)
    methods.update({name: classical.BASELINES[name] for name in baseline_names})
    rows = []
    warmed = False
    for index, path in enumerate(files):
        clean = read_rgb(path)
        if not warmed:
            for model in models.values():  # the first call pays one-off set-up costs
                denoise_rgb(model, clean[:64, :64].astype(np.float32), tile, margin)
            warmed = True
        for sigma, salt_pepper in settings:
            noisy = noisy_copy(clean, sigma, salt_pepper, seed, Path(path).name, eight_bit)
            known_sigma = sigma if salt_pepper == 0 and not eight_bit else float(np.std(noisy - clean))
            rows.append(_row(path, sigma, salt_pepper, NOISY, clean, np.clip(noisy, 0, 255), 0.0))
            for label, method in methods.items():
                started = time.perf_counter()
                estimate = method(noisy.copy(), known_sigma)
                seconds = time.perf_counter() - started
                rows.append(_row(path, sigma, salt_pepper, label, clean, np.clip(estimate, 0, 255), seconds))
        if progress:
            progress(f"[{index + 1}/{len(files)}] {path}")
    return rows


def _row(path, sigma, salt_pepper, method, clean, estimate, seconds):
    return {"file": str(path), "sigma": sigma, "salt_pepper": salt_pepper, "method": method,
            "psnr": psnr(clean, estimate), "ssim": ssim(clean, estimate), "seconds": seconds}


def summarize(rows):
    """Mean PSNR/SSIM and median seconds per (noise setting, method), in first-seen order."""
    groups = {}
    for row in rows:
        groups.setdefault((row["sigma"], row["salt_pepper"], row["method"]), []).append(row)
    return [
        {"sigma": sigma, "salt_pepper": salt_pepper, "method": method,
         "psnr": statistics.fmean(r["psnr"] for r in group), "ssim": statistics.fmean(r["ssim"] for r in group),
         "seconds_per_image": statistics.median(r["seconds"] for r in group), "images": len(group)}
        for (sigma, salt_pepper, method), group in groups.items()
    ]


def markdown_table(summary):
    lines = ["| sigma | salt & pepper | method | PSNR (dB) | SSIM | s/image | images |",
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for row in summary:
        seconds = "—" if row["method"] == NOISY else f"{row['seconds_per_image']:.3g}"
        lines.append(f"| {row['sigma']:g} | {row['salt_pepper']:g} | {row['method']} | {row['psnr']:.2f} | "
                     f"{row['ssim']:.4f} | {seconds} | {row['images']} |")
    if any(math.isinf(row["psnr"]) for row in summary):
        lines += ["", "PSNR inf: no error at all (mean squared error 0) on at least one image of the row."]
    return "\n".join(lines) + "\n"


def _csv_text(rows, columns):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_report(out_dir, rows, summary, header):
    """summary.csv, summary.md (header lines + table) and per_image.csv in ``out_dir``."""
    out_dir = Path(out_dir)
    write_text(out_dir / "summary.csv", _csv_text(summary, COLUMNS))
    write_text(out_dir / "per_image.csv", _csv_text(rows, ["file", "sigma", "salt_pepper", "method", "psnr", "ssim",
                                                           "seconds"]))
    table = markdown_table(summary)
    write_text(out_dir / "summary.md", "".join(f"{line}  \n" for line in header) + "\n" + table)
    return table
