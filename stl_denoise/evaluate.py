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
  holds it: clipped to [0, 255] and rounded; ``--jpeg-quality Q`` as a JPEG
  file of quality Q holds it (Pillow's encoder, 4:2:0 chroma, decoded back);
* seconds per image is the median wall-clock time of one method on one
  image (the model: padding and tiling included, after one warm-up call).

Real noise (``--pairs``): each noisy photo is scored against its clean
reference (the mean of many shots of the scene), both 8-bit as they come.
Nobody knows a real photo's noise level, so the baselines are told the one
``noise_level.estimate_sigma`` estimates from the noisy photo (or, as an
oracle for reference, the standard deviation of noisy minus clean); both are
in the report, with the estimator's error.  Pairs are found by name:
``NAME_real.EXT`` (or ``_noisy``) beside ``NAME_mean.EXT`` (or ``_clean``,
``_gt``), any image extension, case ignored -- the PolyU benchmark's naming
(Xu et al. 2018); the camera is the name up to its first underscore
(``Canon5D2_...``), and scores are summarised per camera and over all.
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
from stl_denoise.checks import check_name_given
from stl_denoise.config import BASELINE_SIGMAS
from stl_denoise.errors import UserError
from stl_denoise.image_io import ImageFileError, as_rgb, read_image
from stl_denoise.inference import DEFAULT_MARGIN, DEFAULT_TILE, MIN_SIDE, denoise_rgb
from stl_denoise.io import write_text
from stl_denoise.metrics import psnr, ssim
from stl_denoise.noise_level import estimate_sigma

NOISY = "noisy input"
COLUMNS = ["sigma", "salt_pepper", "jpeg_quality", "method", "psnr", "ssim", "seconds_per_image", "images"]
NOISY_SUFFIXES = ("_real", "_noisy")
CLEAN_SUFFIXES = ("_mean", "_clean", "_gt")
ALL_CAMERAS = "all"
PAIR_COLUMNS = ["camera", "method", "psnr", "ssim", "seconds_per_image", "images"]
PAIR_IMAGE_COLUMNS = ["file", "camera", "true_sigma", "estimated_sigma", "baseline_sigma", "method", "psnr", "ssim",
                      "seconds"]
LEVEL_COLUMNS = ["camera", "true_sigma", "estimated_sigma", "mean_abs_error", "mean_ratio", "images"]


def check_request(images, pairs, limit, sigmas, salt_peppers, eight_bit=False, jpeg_quality=None):
    """The ``evaluate`` command's checks of its options, before any model loads (one-line UserErrors)."""
    if (images is None) == (pairs is None):
        raise UserError("give either --images (clean images, synthetic noise) or --pairs (real noisy/clean pairs)")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be positive, got {limit}")
    if pairs is not None:
        if eight_bit or jpeg_quality is not None:
            raise UserError("--eight-bit and --jpeg-quality make synthetic noisy images; --pairs photos are scored "
                            "as they come")
        check_name_given(pairs, "--pairs", "a folder of noisy/clean pairs")
        return
    check_name_given(images, "--images", "a folder or file of clean images")
    if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
        raise UserError(f"--jpeg-quality must be in [1, 100], got {jpeg_quality}")
    # "not 0 <= x <= 255" also rejects NaN, which would otherwise fail deep in the noise seeding.
    if not all(0 <= sigma <= 255 for sigma in sigmas) or not all(0 <= p <= 1 for p in salt_peppers):
        raise UserError(f"--sigma must be in [0, 255] and --salt-pepper in [0, 1], got --sigma "
                        f"{' '.join(f'{s:g}' for s in sigmas)} "
                        f"--salt-pepper {' '.join(f'{p:g}' for p in salt_peppers)}")


def saved_as_jpeg(noisy, quality):
    """``noisy`` (float 0-255) as written to a JPEG of ``quality`` by Pillow and read back (float64)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(noisy, 0.0, 255.0)).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def noisy_copy(clean, sigma, salt_pepper, seed, name, eight_bit=False, jpeg_quality=None):
    """The noisy version of ``clean`` that every method is given (float64, 0-255 scale).

    The training noise of the section ``NoiseSettings(sigma, salt_pepper,
    clip_noise=False)`` (``noise.add_noise``), drawn with NumPy from a seed
    of its own per file and setting, so that every method and every rerun
    sees the same noisy image and the committed scores stay reproducible;
    ``tests/test_evaluate.py`` checks both draw the same distribution.

    ``eight_bit``: clipped to [0, 255] and rounded, as a noisy photo saved to
    an 8-bit file is (the same draws, so both protocols share their noise).
    ``jpeg_quality``: saved as a JPEG of that quality and read back (the same
    draws again).
    """
    # os.fsencode: the same bytes as .encode() for UTF-8 names, and no crash on names that are not UTF-8.
    key = [seed, zlib.crc32(os.fsencode(str(name))), round(sigma * 1000), round(salt_pepper * 1_000_000)]
    rng = np.random.default_rng(key)
    noisy = np.asarray(clean, dtype=np.float64) + rng.normal(0.0, sigma, np.shape(clean))
    if salt_pepper > 0:
        draw = rng.random(np.shape(clean)[:2])
        noisy[draw < salt_pepper / 2] = 255.0
        noisy[(draw >= salt_pepper / 2) & (draw < salt_pepper)] = 0.0
    if jpeg_quality is not None:
        return saved_as_jpeg(noisy, jpeg_quality)
    return np.round(np.clip(noisy, 0.0, 255.0)) if eight_bit else noisy


def read_rgb(path):
    pixels = read_image(path)
    if min(pixels.shape[:2]) < MIN_SIDE:  # the models cannot run on it (and SSIM needs 7x7): say which file
        raise ImageFileError(f"{path}: image is {pixels.shape[0]}x{pixels.shape[1]}: evaluation needs at least "
                             f"{MIN_SIDE}x{MIN_SIDE} pixels")
    if pixels.dtype != np.uint8:
        pixels = np.round(pixels / 257.0).astype(np.uint8)
    return as_rgb(pixels).astype(np.float64)


def _model_method(model, tile, margin, self_ensemble=False, pixel_shuffle=1, refine=False):
    def run(noisy, sigma):
        return denoise_rgb(model, noisy, tile, margin, self_ensemble=self_ensemble, pixel_shuffle=pixel_shuffle,
                           refine=refine)

    return run


def pixel_shuffle_label(label, stride, refine=False):
    return f"{label} PD{stride}" + (" refined" if refine else "")


def _methods(models, baseline_names, tile, margin, self_ensemble, pixel_shuffle, pd_refine):
    """{row name: f(noisy, sigma)}: each model (and its x8 / pixel-shuffled / both variants), then the baselines."""
    classical.check_available(baseline_names)
    methods = {}
    for label, model in models.items():
        methods[label] = _model_method(model, tile, margin)
        if self_ensemble:
            methods[f"{label} x8"] = _model_method(model, tile, margin, self_ensemble=True)
        for stride in pixel_shuffle:
            methods[pixel_shuffle_label(label, stride)] = _model_method(model, tile, margin, pixel_shuffle=stride)
            if self_ensemble:  # `denoise --pixel-shuffle S --self-ensemble` does both
                methods[pixel_shuffle_label(label, stride) + " x8"] = _model_method(
                    model, tile, margin, self_ensemble=True, pixel_shuffle=stride)
            if pd_refine:
                methods[pixel_shuffle_label(label, stride, True)] = _model_method(
                    model, tile, margin, pixel_shuffle=stride, refine=True)
    methods.update({name: classical.BASELINES[name] for name in baseline_names})
    return methods


def _warm_up(models, image, tile, margin):
    """The first call of a model pays one-off set-up costs; keep them out of the timings."""
    for model in models.values():
        denoise_rgb(model, image[:64, :64].astype(np.float32), tile, margin)


def _run_methods(methods, noisy, sigma, clean):
    """[(method name, PSNR, SSIM, seconds)] of every method on one noisy image."""
    scores = []
    for label, method in methods.items():
        started = time.perf_counter()
        estimate = method(noisy.copy(), sigma)
        seconds = time.perf_counter() - started
        estimate = np.clip(estimate, 0, 255)
        scores.append((label, psnr(clean, estimate), ssim(clean, estimate), seconds))
    return scores


def evaluate(files, settings, models, baseline_names, seed=0, tile=DEFAULT_TILE, margin=DEFAULT_MARGIN,
             progress=None, self_ensemble=False, eight_bit=False, jpeg_quality=None, pixel_shuffle=(),
             pd_refine=False):
    """Score every method on every file and noise setting; returns per-image rows.

    ``self_ensemble``: also score each model with the x8 flip/rotation
    ensemble, as a method named "<label> x8".  ``eight_bit``: the noisy
    input is clipped and rounded as an 8-bit file; ``jpeg_quality``: saved as
    a JPEG of that quality (``noisy_copy``).  ``pixel_shuffle``: strides; each
    adds a row "<label> PD<stride>" per model (and "... refined" with
    ``pd_refine``); "auto" a row "<label> PDauto", the stride chosen per
    image by ``noise_level.choose_pixel_shuffle``.
    """
    methods = _methods(models, baseline_names, tile, margin, self_ensemble, pixel_shuffle, pd_refine)
    rows = []
    for index, path in enumerate(files):
        clean = read_rgb(path)
        if index == 0:
            _warm_up(models, clean, tile, margin)
        for sigma, salt_pepper in settings:
            noisy = noisy_copy(clean, sigma, salt_pepper, seed, Path(path).name, eight_bit, jpeg_quality)
            exact = salt_pepper == 0 and not eight_bit and jpeg_quality is None
            known_sigma = sigma if exact else float(np.std(noisy - clean))
            setting = {"file": str(path), "sigma": sigma, "salt_pepper": salt_pepper, "jpeg_quality": jpeg_quality}
            noisy_scores = (NOISY, psnr(clean, np.clip(noisy, 0, 255)), ssim(clean, np.clip(noisy, 0, 255)), 0.0)
            for label, psnr_db, ssim_value, seconds in [noisy_scores] + _run_methods(methods, noisy, known_sigma,
                                                                                     clean):
                rows.append({**setting, "method": label, "psnr": psnr_db, "ssim": ssim_value, "seconds": seconds})
        if progress:
            progress(f"[{index + 1}/{len(files)}] {path}")
    return rows


def _means(group):
    return {"psnr": statistics.fmean(r["psnr"] for r in group), "ssim": statistics.fmean(r["ssim"] for r in group),
            "seconds_per_image": statistics.median(r["seconds"] for r in group), "images": len(group)}


def summarize(rows):
    """Mean PSNR/SSIM and median seconds per (noise setting, method), in first-seen order."""
    groups = {}
    for row in rows:
        groups.setdefault((row["sigma"], row["salt_pepper"], row.get("jpeg_quality"), row["method"]), []).append(row)
    return [{"sigma": sigma, "salt_pepper": salt_pepper, "jpeg_quality": jpeg_quality, "method": method,
             **_means(group)}
            for (sigma, salt_pepper, jpeg_quality, method), group in groups.items()]


# --- real noise: noisy/clean pairs ----------------------------------------------------------

def _role(path):
    """("noisy" or "clean", the name without its suffix), or None for a name that follows neither rule."""
    stem = path.stem
    for role, suffixes in (("noisy", NOISY_SUFFIXES), ("clean", CLEAN_SUFFIXES)):
        for suffix in suffixes:
            if stem.lower().endswith(suffix) and len(stem) > len(suffix):
                return role, stem[: -len(suffix)]
    return None


def camera_of(path):
    """The camera a pair's file name names: the name up to its first underscore (PolyU's ``Canon5D2_...``)."""
    return Path(path).name.split("_", 1)[0]


def find_pairs(folder):
    """[(noisy path, clean path)] in ``folder`` (recursive), by the naming rule; a UserError for any stray file.

    Every image must take part in exactly one pair, so that a typo cannot
    quietly leave a photo out of the scores.
    """
    from stl_denoise.folders import list_image_files

    found = {"noisy": {}, "clean": {}}
    for path in list_image_files(folder):
        role = _role(path)
        if role is None:
            raise UserError(f"{path}: not part of a pair: a noisy photo's name ends in "
                            f"{' or '.join(NOISY_SUFFIXES)}, its clean reference's in {', '.join(CLEAN_SUFFIXES)} "
                            "(e.g. scene_real.jpg beside scene_mean.jpg)")
        kind, name = role
        key = (path.parent, name.lower())
        if key in found[kind]:
            raise UserError(f"{path}: a second {kind} file for {found[kind][key]}; keep one")
        found[kind][key] = path
    pairs = []
    for key, noisy in sorted(found["noisy"].items(), key=lambda item: str(item[1])):
        clean = found["clean"].pop(key, None)
        if clean is None:
            raise UserError(f"{noisy}: no clean reference beside it (looked for "
                            f"{', '.join(key[1] + s + '.*' for s in CLEAN_SUFFIXES)})")
        pairs.append((noisy, clean))
    if found["clean"]:
        stray = sorted(found["clean"].values())[0]
        raise UserError(f"{stray}: a clean reference without its noisy photo (looked for "
                        f"{' or '.join(NOISY_SUFFIXES)})")
    return pairs


def evaluate_pairs(pairs, models, baseline_names, tile=DEFAULT_TILE, margin=DEFAULT_MARGIN, progress=None,
                   self_ensemble=False, pixel_shuffle=(), pd_refine=False, baseline_sigma="estimated"):
    """Score every method on real noisy/clean pairs; returns per-image rows (with the true and estimated sigma).

    ``baseline_sigma``: what the baselines are told, the ``estimated`` noise
    level (``noise_level.estimate_sigma`` of the noisy photo) or the
    ``true`` one (the standard deviation of noisy minus clean: an oracle).
    """
    if baseline_sigma not in BASELINE_SIGMAS:
        raise ValueError(f"baseline_sigma must be one of {BASELINE_SIGMAS}, got {baseline_sigma!r}")
    from stl_denoise.folders import image_size

    methods = _methods(models, baseline_names, tile, margin, self_ensemble, pixel_shuffle, pd_refine)
    model_names = set(methods) - set(baseline_names)
    for noisy_path, clean_path in pairs:  # from the headers, before any work: a bad pair stops the run at once
        _check_same_size(noisy_path, clean_path, image_size(noisy_path), image_size(clean_path))
    rows = []
    for index, (noisy_path, clean_path) in enumerate(pairs):
        noisy, clean = read_rgb(noisy_path), read_rgb(clean_path)
        _check_same_size(noisy_path, clean_path, noisy.shape[:2], clean.shape[:2])  # EXIF may turn one of them
        if index == 0:
            _warm_up(models, clean, tile, margin)
        true_sigma, estimated = float(np.std(noisy - clean)), estimate_sigma(noisy)
        told = estimated if baseline_sigma == "estimated" else true_sigma
        common = {"file": str(noisy_path), "camera": camera_of(noisy_path), "true_sigma": true_sigma,
                  "estimated_sigma": estimated}
        rows.append({**common, "baseline_sigma": "", "method": NOISY, "psnr": psnr(clean, noisy),
                     "ssim": ssim(clean, noisy), "seconds": 0.0})
        for label, psnr_db, ssim_value, seconds in _run_methods(methods, noisy, told, clean):
            rows.append({**common, "baseline_sigma": "" if label in model_names else told, "method": label,
                         "psnr": psnr_db, "ssim": ssim_value, "seconds": seconds})
        if progress:
            progress(f"[{index + 1}/{len(pairs)}] {noisy_path}: "
                     f"noise sigma {true_sigma:.2f}, estimated {estimated:.2f}")
    return rows


def _check_same_size(noisy_path, clean_path, noisy_size, clean_size):
    if tuple(noisy_size) != tuple(clean_size):
        raise ImageFileError(f"{noisy_path}: {noisy_size[1]}x{noisy_size[0]} pixels, but its clean reference "
                             f"{clean_path} is {clean_size[1]}x{clean_size[0]}")


def summarize_pairs(rows):
    """(per camera and method, then over all cameras: mean PSNR/SSIM rows; the estimator's error per camera)."""
    cameras = list(dict.fromkeys(row["camera"] for row in rows)) + [ALL_CAMERAS]
    scores, levels = [], []
    for camera in cameras:
        chosen = [row for row in rows if camera in (ALL_CAMERAS, row["camera"])]
        methods = {}
        for row in chosen:
            methods.setdefault(row["method"], []).append(row)
        scores.extend({"camera": camera, "method": method, **_means(group)} for method, group in methods.items())
        images = methods[NOISY]
        levels.append({
            "camera": camera, "true_sigma": statistics.fmean(r["true_sigma"] for r in images),
            "estimated_sigma": statistics.fmean(r["estimated_sigma"] for r in images),
            "mean_abs_error": statistics.fmean(abs(r["estimated_sigma"] - r["true_sigma"]) for r in images),
            "mean_ratio": statistics.fmean(r["estimated_sigma"] / r["true_sigma"] for r in images),
            "images": len(images)})
    return scores, levels


def pairs_markdown(scores, levels):
    lines = ["| camera | method | PSNR (dB) | SSIM | s/image | images |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for row in scores:
        seconds = "—" if row["method"] == NOISY else f"{row['seconds_per_image']:.3g}"
        lines.append(f"| {row['camera']} | {row['method']} | {row['psnr']:.2f} | {row['ssim']:.4f} | {seconds} | "
                     f"{row['images']} |")
    lines += ["", "| camera | noise σ (noisy − clean) | estimated σ | mean abs error | estimated / true | images |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in levels:
        lines.append(f"| {row['camera']} | {row['true_sigma']:.2f} | {row['estimated_sigma']:.2f} | "
                     f"{row['mean_abs_error']:.2f} | {row['mean_ratio']:.2f} | {row['images']} |")
    return "\n".join(lines) + "\n"


def write_pairs_report(out_dir, rows, scores, levels, header):
    """summary.csv (per camera and method), noise_level.csv, summary.md and per_image.csv in ``out_dir``."""
    out_dir = Path(out_dir)
    write_text(out_dir / "summary.csv", _csv_text(scores, PAIR_COLUMNS))
    write_text(out_dir / "noise_level.csv", _csv_text(levels, LEVEL_COLUMNS))
    write_text(out_dir / "per_image.csv", _csv_text(rows, PAIR_IMAGE_COLUMNS))
    table = pairs_markdown(scores, levels)
    write_text(out_dir / "summary.md", "".join(f"{line}  \n" for line in header) + "\n" + table)
    return table


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
    write_text(out_dir / "per_image.csv", _csv_text(rows, ["file", "sigma", "salt_pepper", "jpeg_quality", "method",
                                                           "psnr", "ssim", "seconds"]))
    table = markdown_table(summary)
    write_text(out_dir / "summary.md", "".join(f"{line}  \n" for line in header) + "\n" + table)
    return table
