"""``make gpu-check``: one prepared run that says whether, and how fast, the project works on a GPU.

Usage: python benchmarks/gpu_check.py [--out runs/gpu-check.json] [--budget 420]

On a machine where TensorFlow sees no GPU it prints "no GPU" and exits 0:
nothing to check.  With a GPU (``pip install -e '.[gpu]'``) it

1. names the machine and the GPU (model, compute capability, CUDA/cuDNN of the TensorFlow build);
2. runs the tests marked ``gpu`` (``pytest -m gpu``);
3. trains the faithful DSC model for 500 steps through the real trainer
   (batch 10, per-step metrics) with XLA on, with XLA off, and with
   ``--mixed-precision float16`` (XLA on), each checked for a finite, falling MSE;
4. times 512x512 and 4096x4096 inference through ``stl_denoise.denoise`` (default
   tiles, and the whole image in one pass) and as one compiled pass;
5. measures training throughput at batch 10, 64 and 256 through the real
   trainer and on in-memory batches (float32 and float16).

Training uses the bundled sample photos (``--data sample``): a lent GPU machine
has no network for STL-10, and speed does not depend on which photos are cropped.
Results go to one JSON file, rewritten after every section, so a run cut
short still leaves what it measured.  Sections that would start after
``--budget`` seconds are recorded as skipped, which keeps the whole run under
8 minutes on one GPU.  Exit status 1 if any section failed.
"""

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TRAIN_RUNS = {  # label -> TrainConfig overrides; the faithful model, batch 10
    "xla_on_float32": {"jit_compile": "on"},
    "xla_off_float32": {"jit_compile": "off"},
    "xla_on_float16": {"jit_compile": "on", "mixed_precision": "float16"},
}
THROUGHPUT_BATCHES = (10, 64, 256)
INFERENCE_SIZES = (512, 4096)


def gpu_description(tf, gpus):
    info = {"devices": []}
    for gpu in gpus:
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except Exception as error:  # details are informative only
            details = {"error": str(error)}
        info["devices"].append({"name": gpu.name} | {k: str(v) for k, v in details.items()})
    build = tf.sysconfig.get_build_info()
    info["tensorflow_cuda"] = build.get("cuda_version")
    info["tensorflow_cudnn"] = build.get("cudnn_version")
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30,
        )
        info["nvidia_smi"] = smi.stdout.strip().splitlines() if smi.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        info["nvidia_smi"] = None
    return info


def run_gpu_tests(timeout):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests"],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )
    # pytest's exit status 5: nothing selected, i.e. no test is marked gpu.
    return {
        "returncode": result.returncode,
        "ok": result.returncode in (0, 5),
        "output_tail": (result.stdout + result.stderr)[-3000:],
    }


def train_run(overrides, steps, batch_size=10):
    """The real trainer (``stl-denoise train --data sample``), every callback on."""
    from stl_denoise.config import TrainConfig

    import bench

    rows, summary, wall = bench.run_trainer(TrainConfig(data="sample", steps=steps, batch_size=batch_size, **overrides))
    seconds = [float(row["seconds"]) for row in rows[min(3, len(rows) - 1):]]  # the first steps compile
    mse = [float(row["mse"]) for row in rows]
    window = max(1, min(20, len(mse) // 4))
    first, last = statistics.fmean(mse[:window]), statistics.fmean(mse[-window:])
    # Training works if the MSE stays finite and, over a real run, falls; a few
    # smoke-test steps at the paper's learning rate need not move it.
    healthy = all(math.isfinite(value) for value in mse) and (len(mse) < 100 or last < first)
    return {
        "steps": len(rows),
        "wall_seconds": round(wall, 2),
        "median_step_ms": round(1000 * statistics.median(seconds), 3),
        "images_per_second": round(batch_size / statistics.median(seconds), 1),
        "mean_images_per_second": round(batch_size * len(seconds) / sum(seconds), 1),
        f"mse_first_{window}": round(first, 1),
        f"mse_last_{window}": round(last, 1),
        "final_mse_mean_last_100": summary["final_mse_mean_last_100"],
        "ok": healthy,
    }


def in_memory_images_per_second(batch_size, mixed_precision, steps=50):
    """``fit`` on one in-memory batch: the GPU's rate without input or trainer callbacks."""
    from stl_denoise.config import TrainConfig
    from stl_denoise.runner import dtype_policy
    from stl_denoise.train import build_training_model, denoiser_from_config

    import bench

    tf = bench.tf
    config = TrainConfig(data="sample", batch_size=batch_size, mixed_precision=mixed_precision)
    with dtype_policy(mixed_precision):
        model = build_training_model(denoiser_from_config(config), config)
    clean = bench.crops(batch_size)
    dataset = tf.data.Dataset.from_tensors((clean, clean)).repeat()
    bench.fit_steps(model, dataset, 3)
    start = time.perf_counter()
    bench.fit_steps(model, dataset, steps)
    return round(batch_size * steps / (time.perf_counter() - start), 1)


def inference_times(size, reps=3):
    import stl_denoise
    from stl_denoise.config import TrainConfig
    from stl_denoise.train import denoiser_from_config

    import bench

    model = denoiser_from_config(TrainConfig(model="dsc"))
    image = bench.bench_photo(size)
    tiled, _ = bench.median_seconds(lambda: stl_denoise.denoise(image, model=model), reps, warmup=1)
    whole, _ = bench.median_seconds(lambda: stl_denoise.denoise(image, model=model, tile=size), reps, warmup=1)
    return {
        "denoise_default_tiles_seconds": round(tiled, 4),
        "denoise_one_tile_seconds": round(whole, 4),
        "compiled_single_pass_seconds": round(bench.inference_seconds(size, reps), 4),
    }


class Report:
    """The JSON file, rewritten after every section; sections past the budget are skipped."""

    def __init__(self, path, budget):
        self.path = Path(path)
        self.deadline = time.perf_counter() + budget
        self.started = time.perf_counter()
        self.data = {}
        self.failed = []

    def section(self, name, key, fn):
        target = self.data.setdefault(name, {})
        if time.perf_counter() > self.deadline:
            target[key] = {"skipped": "time budget spent"}
        else:
            try:
                target[key] = fn()
                if isinstance(target[key], dict) and target[key].get("ok") is False:
                    self.failed.append(f"{name}/{key}")
            except Exception as error:  # one failing section must not lose the others
                target[key] = {"error": f"{type(error).__name__}: {error}"[:2000]}
                self.failed.append(f"{name}/{key}")
            print(f"{name} {key}: {json.dumps(target[key])[:300]}", flush=True)
        self.save()

    def save(self):
        self.data["seconds"] = round(time.perf_counter() - self.started, 1)
        self.data["failed"] = self.failed
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        temp.write_text(json.dumps(self.data, indent=2) + "\n")
        temp.replace(self.path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "runs" / "gpu-check.json"))
    parser.add_argument("--steps", type=int, default=500, help="training steps per XLA/precision run")
    parser.add_argument("--throughput-steps", type=int, default=100)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(THROUGHPUT_BATCHES))
    parser.add_argument("--inference-sizes", type=int, nargs="+", default=list(INFERENCE_SIZES))
    parser.add_argument("--budget", type=float, default=420.0,
                        help="seconds after which remaining sections are skipped (default %(default)s)")
    # Tests only: run every section on the CPU, so the GPU path is exercised where no GPU is.
    parser.add_argument("--pretend-gpu", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import keras

    import stl_denoise  # noqa: F401  (quiet TF import, oneDNN setting)
    from stl_denoise._quiet import import_tensorflow

    tf = import_tensorflow()
    gpus = (tf.config.list_physical_devices("GPU")
            or (tf.config.list_physical_devices("CPU") if args.pretend_gpu else []))
    if not gpus:
        print("no GPU: TensorFlow sees no GPU on this machine, so there is nothing to check "
              "(on a CUDA machine: pip install -e '.[gpu]', then make gpu-check)")
        return 0

    from machine_info import describe, summary_line

    report = Report(args.out, args.budget)
    report.data["machine"] = describe(tf, keras)
    report.data["gpu"] = gpu_description(tf, gpus)
    print(f"machine: {summary_line(report.data['machine'])}")
    print(f"GPU: {json.dumps(report.data['gpu'])}", flush=True)
    report.data["data"] = "sample (the bundled photos; speed does not depend on them)"
    report.section("tests", "pytest -m gpu", lambda: run_gpu_tests(timeout=max(60, args.budget / 3)))
    for label, overrides in TRAIN_RUNS.items():
        report.section("training_500_steps", label, lambda o=overrides: train_run(o, args.steps))
    for size in args.inference_sizes:
        report.section("inference", f"{size}x{size}", lambda s=size: inference_times(s))
    for batch_size in args.batch_sizes:
        report.section("throughput", f"batch {batch_size}", lambda b=batch_size: {
            "trainer_float32": train_run({"jit_compile": "auto"}, args.throughput_steps, b),
            "in_memory_float32": in_memory_images_per_second(b, "off", args.throughput_steps),
            "in_memory_float16": in_memory_images_per_second(b, "float16", args.throughput_steps),
        })
    report.save()
    print(f"wrote {args.out} in {report.data['seconds']:.0f} s; failed: {report.failed or 'none'}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
