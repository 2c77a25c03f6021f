"""Error rates of ``noise_level.choose_pixel_shuffle``, the detector behind ``--pixel-shuffle auto``.

    OPENBLAS_NUM_THREADS=1 python benchmarks/pd_detector.py --pairs ../shared/data/polyu-dev \\
        --images ../shared/data/CBSD432 --out reports/real-noise/pd-detector --score-jpeg

Sets, each with the stride that should be chosen:

* real camera photos (``--pairs``, the noisy ones): 2, pixel-shuffling helps there;
* the validation photos of ``--images`` with synthetic white noise (Gaussian
  σ 5-50 in float and as 8-bit files, σ 25 + 5% salt-and-pepper as 8-bit): 1,
  pixel-shuffling costs 2-3 dB there;
* the same photos clean, and with Gaussian σ 20 saved as JPEG quality 75:
  reported, no stride wanted (``--score-jpeg`` scores the model plain and
  pixel-shuffled on the JPEGs to tell which would have been right).

Noise comes from ``evaluate.noisy_copy`` (seeded per file and setting, as
``stl-denoise evaluate`` draws it).  Writes per_image.csv, summary.md
(and jpeg_psnr.csv with ``--score-jpeg``).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stl_denoise.evaluate import _csv_text, find_pairs, noisy_copy, read_rgb  # noqa: E402
from stl_denoise.folders import list_image_files  # noqa: E402
from stl_denoise.io import write_text  # noqa: E402
from stl_denoise.noise_level import (  # noqa: E402
    CORRELATION_BLOCK,
    FLATTEST_FRACTION,
    PIXEL_SHUFFLE_THRESHOLD,
    choose_pixel_shuffle,
    noise_correlation,
)
from stl_denoise.splits import split_files  # noqa: E402

REAL_SET = "real camera photos (pairs)"
JPEG_SET = "Gaussian σ 20, JPEG q75"
# (name, sigma, salt-and-pepper, eight_bit, jpeg_quality, wanted stride or None)
SYNTHETIC = ([("clean", 0.0, 0.0, False, None, None)]
             + [(f"Gaussian σ {s:g}, float", s, 0.0, False, None, 1) for s in (5, 10, 15, 25, 50)]
             + [(f"Gaussian σ {s:g}, 8-bit", s, 0.0, True, None, 1) for s in (5, 10, 15, 25, 50)]
             + [("Gaussian σ 25 + 5% salt-and-pepper, 8-bit", 25.0, 0.05, True, None, 1),
                (JPEG_SET, 20.0, 0.0, False, 75, None)])
COLUMNS = ["set", "file", "wanted", "correlation", "chosen", "seconds"]


def _measure(set_name, path, image, wanted):
    started = time.perf_counter()
    try:
        correlation = noise_correlation(image)
    except ValueError:
        correlation = float("nan")
    chosen = choose_pixel_shuffle(image)
    return {"set": set_name, "file": Path(path).name, "wanted": "" if wanted is None else wanted,
            "correlation": correlation, "chosen": chosen, "seconds": time.perf_counter() - started}


def _score_jpeg(model_name, files, seed):
    """Mean PSNR of the model plain, pixel-shuffled (stride 2) and as the detector chooses, on the JPEG set."""
    from stl_denoise.inference import denoise_rgb
    from stl_denoise.metrics import psnr
    from stl_denoise.pretrained import load_denoiser

    model = load_denoiser(model_name)
    scores = {"noisy input": [], "plain": [], "PD2": [], "PDauto": []}
    per_image = []
    for path in files:
        clean = read_rgb(path)
        noisy = noisy_copy(clean, 20.0, 0.0, seed, Path(path).name, jpeg_quality=75)
        plain = np.clip(denoise_rgb(model, noisy), 0, 255)
        shuffled = np.clip(denoise_rgb(model, noisy, pixel_shuffle=2), 0, 255)
        scores["noisy input"].append(psnr(clean, noisy))
        scores["plain"].append(psnr(clean, plain))
        scores["PD2"].append(psnr(clean, shuffled))
        scores["PDauto"].append(scores["PD2" if choose_pixel_shuffle(noisy) == 2 else "plain"][-1])
        per_image.append({"file": Path(path).name, **{name: values[-1] for name, values in scores.items()}})
        print(f"{path}: plain {scores['plain'][-1]:.2f}, PD2 {scores['PD2'][-1]:.2f}", flush=True)
    wins = sum(s > p for s, p in zip(scores["PD2"], scores["plain"]))
    worse = sum(auto < max(plain, shuffled) for auto, plain, shuffled in
                zip(scores["PDauto"], scores["plain"], scores["PD2"]))
    means = {name: statistics.fmean(values) for name, values in scores.items()}
    return means, (wins, worse), len(files), per_image


def _summary_lines(rows, jpeg_scores, model_name):
    lines = ["| set | images | stride wanted | chose 2 | wrong | wrong % | correlation min / median / max |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for set_name in dict.fromkeys(row["set"] for row in rows):
        group = [row for row in rows if row["set"] == set_name]
        wanted = group[0]["wanted"]
        twos = sum(row["chosen"] == 2 for row in group)
        wrong = "—" if wanted == "" else sum(row["chosen"] != wanted for row in group)
        rate = "—" if wanted == "" else f"{100 * wrong / len(group):.1f}"
        values = [row["correlation"] for row in group]
        lines.append(f"| {set_name} | {len(group)} | {wanted or '—'} | {twos} | {wrong} | {rate} | "
                     f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f} |")
    seconds = statistics.median(row["seconds"] for row in rows)
    lines += ["", f"Median seconds per image (noise_correlation + choose_pixel_shuffle): {seconds:.3f}"]
    if jpeg_scores:
        means, (wins, worse), count, _ = jpeg_scores
        lines += ["", f"{JPEG_SET}: mean PSNR (dB) of `{model_name}` ({count} images; PD2 beats plain on {wins}; "
                  f"the detector chose the worse of the two on {worse}, {100 * worse / count:.1f}%)", "",
                  "| method | PSNR (dB) |", "| --- | ---: |"]
        lines += [f"| {name} | {value:.2f} |" for name, value in means.items()]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", required=True, help="real noisy/clean pairs (evaluate --pairs naming)")
    parser.add_argument("--images", required=True, help="clean photos; their validation split is used")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--score-jpeg", action="store_true", help="also score --model plain vs PD2 on the JPEG set")
    parser.add_argument("--model", default="dsc-real-mixed")
    args = parser.parse_args()
    rows = [_measure(REAL_SET, noisy, read_rgb(noisy), 2) for noisy, _ in find_pairs(args.pairs)]
    files = split_files(list_image_files(args.images), "validation")
    for path in files:
        clean = read_rgb(path)
        for name, sigma, salt_pepper, eight_bit, quality, wanted in SYNTHETIC:
            noisy = clean if sigma == 0 else noisy_copy(clean, sigma, salt_pepper, args.seed, Path(path).name,
                                                        eight_bit, quality)
            rows.append(_measure(name, path, noisy, wanted))
    order = [REAL_SET] + [setting[0] for setting in SYNTHETIC]
    rows.sort(key=lambda row: order.index(row["set"]))  # stable: files stay in order within a set
    jpeg_scores = _score_jpeg(args.model, files, args.seed) if args.score_jpeg else None
    header = [f"`noise_level.choose_pixel_shuffle`: stride 2 when `noise_correlation` < {PIXEL_SHUFFLE_THRESHOLD} "
              f"(E[h1²]/E[h2²] over the flattest {FLATTEST_FRACTION:.0%} of {CORRELATION_BLOCK}x{CORRELATION_BLOCK} "
              "blocks)",
              f"{len(files)} validation photos of {args.images}, noise seed {args.seed}; real photos from {args.pairs}",
              "command: OPENBLAS_NUM_THREADS=1 python benchmarks/pd_detector.py " + " ".join(sys.argv[1:])]
    out = Path(args.out)
    write_text(out / "per_image.csv", _csv_text(rows, COLUMNS))
    if jpeg_scores:
        write_text(out / "jpeg_psnr.csv", _csv_text(jpeg_scores[3], ["file", *jpeg_scores[0]]))
    lines = _summary_lines(rows, jpeg_scores, args.model)
    write_text(out / "summary.md", "".join(f"{line}  \n" for line in header) + "\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
