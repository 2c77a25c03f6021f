"""Noise-level estimators against the true level of real noisy/clean pairs.

    python benchmarks/noise_level_estimators.py --pairs ../shared/data/polyu-dev --out reports/real-noise/noise-level

The true level of a pair is the standard deviation of noisy minus clean (as
``stl-denoise evaluate --pairs`` reports it); each estimator sees only the
noisy photo.  Writes per_image.csv and summary.md (per camera: mean
estimate, mean estimate/true, mean absolute error, median seconds).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stl_denoise.evaluate import ALL_CAMERAS, _csv_text, camera_of, find_pairs, read_rgb  # noqa: E402
from stl_denoise.io import write_text  # noqa: E402
from stl_denoise.noise_level import estimate_sigma  # noqa: E402


def _wavelet(image):
    from skimage.restoration import estimate_sigma as wavelet_sigma

    return wavelet_sigma(image, channel_axis=-1, average_sigmas=True)


ESTIMATORS = {
    "scikit-image wavelet (Donoho MAD)": _wavelet,
    "patch PCA (Chen 2015)": lambda image: estimate_sigma(image, stride=1),
    "patch PCA, pixel-shuffle 2 (default)": lambda image: estimate_sigma(image, stride=2),
    "patch PCA, pixel-shuffle 3": lambda image: estimate_sigma(image, stride=3),
    "patch PCA, pixel-shuffle 2, weak texture (Liu 2013)": lambda image: estimate_sigma(image, stride=2,
                                                                                        weak_texture=True),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rows = []
    for noisy_path, clean_path in find_pairs(args.pairs):
        noisy, clean = read_rgb(noisy_path), read_rgb(clean_path)
        true_sigma = float(np.std(noisy - clean))
        for name, estimator in ESTIMATORS.items():
            started = time.perf_counter()
            estimate = float(estimator(noisy))
            rows.append({"file": str(noisy_path), "camera": camera_of(noisy_path), "estimator": name,
                         "true_sigma": true_sigma, "estimated_sigma": estimate,
                         "seconds": time.perf_counter() - started})
        print(f"{noisy_path}: true {true_sigma:.2f}, "
              + ", ".join(f"{r['estimated_sigma']:.2f}" for r in rows[-len(ESTIMATORS):]), flush=True)
    lines = ["| camera | estimator | true σ (mean) | estimated σ (mean) | estimated / true (mean) | mean abs error | "
             "s/image | images |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for camera in list(dict.fromkeys(r["camera"] for r in rows)) + [ALL_CAMERAS]:
        for name in ESTIMATORS:
            group = [r for r in rows if r["estimator"] == name and camera in (ALL_CAMERAS, r["camera"])]
            lines.append(
                f"| {camera} | {name} | {statistics.fmean(r['true_sigma'] for r in group):.2f} | "
                f"{statistics.fmean(r['estimated_sigma'] for r in group):.2f} | "
                f"{statistics.fmean(r['estimated_sigma'] / r['true_sigma'] for r in group):.2f} | "
                f"{statistics.fmean(abs(r['estimated_sigma'] - r['true_sigma']) for r in group):.2f} | "
                f"{statistics.median(r['seconds'] for r in group):.2f} | {len(group)} |")
    out = Path(args.out)
    write_text(out / "per_image.csv", _csv_text(rows, list(rows[0])))
    write_text(out / "summary.md",
               f"`python benchmarks/noise_level_estimators.py --pairs {args.pairs} --out {args.out}`"
               "  \n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
