"""``make bench``: training and inference speed, memory, and distance from the hardware.

Usage: python benchmarks/bench.py [--out benchmarks/results.json] [--quick]

Every number is a median over repetitions after warm-up.  Keras and the
PyTorch yardstick are timed alternately in the same process so their ratio
is robust to a noisy machine.  Peak memory is measured in a fresh subprocess
per scenario (ru_maxrss of that process).
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import stl_denoise  # noqa: E402,F401  (quiet TF import)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from stl_denoise._quiet import import_tensorflow  # noqa: E402
from stl_denoise.config import TrainConfig  # noqa: E402
from stl_denoise.data import sample_images, training_dataset  # noqa: E402
from stl_denoise.train import build_training_model, denoiser_from_config  # noqa: E402

tf = import_tensorflow()

# Multiply-accumulates per 64x64 image, from Table 1 with 3x3 kernels:
# output positions x output channels x (3*3*input channels); a transposed conv
# costs input positions x in x out x 9.
def forward_macs(size=64, bottleneck=512, kernel=3):
    k2 = kernel * kernel
    s = size
    convs = [(s, 3, 64), (s // 2, 64, 64), (s // 4, 64, 128), (s // 8, 128, 256), (s // 16, 256, bottleneck)]
    deconvs = [(s // 16, bottleneck, 256), (s // 8, 256, 128), (s // 4, 128, 64), (s // 2, 64, 64), (s, 64, 3)]
    return sum(side * side * cout * k2 * cin for side, cin, cout in convs) + sum(
        side * side * cin * cout * k2 for side, cin, cout in deconvs
    )


def crops(batch_size, seed=0):
    return next(iter(training_dataset("sample", batch_size, seed=seed))).numpy()


def median_seconds(fn, reps, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def keras_trainer(model_kind, batch_size, jit_compile="auto"):
    """The project's training model; jit_compile: auto (project rule), on, off."""
    config = TrainConfig(model=model_kind, data="sample", batch_size=batch_size, jit_compile=jit_compile)
    return build_training_model(denoiser_from_config(config), config)


class ReadLossEachStep(keras.callbacks.Callback):
    """Reads the loss after every step, as the trainer's per-step metrics.csv does.

    Without any per-batch callback Keras does not wait for each step, and on
    this machine short ``fit`` calls then took whole multiples of ~2.56 s
    (up to twice the trainer's step time): a benchmark artefact, not cost.
    """

    def on_train_batch_end(self, batch, logs=None):
        float(logs["loss"])


def fit_steps(model, dataset, steps):
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False, callbacks=[ReadLossEachStep()])


def torch_images_per_second(model_kind, batch_size, steps):
    """PyTorch in its own process: two frameworks' thread pools in one process slow each other."""
    result = subprocess.run(
        [sys.executable, __file__, "--torch-yardstick", f"{model_kind}@{batch_size}@{steps}"],
        capture_output=True, text=True, timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])["images_per_second"]


def torch_yardstick(spec):
    from torch_reference import train_step_fn

    model_kind, batch_size, steps = spec.split("@")
    batch_size, steps = int(batch_size), int(steps)
    step = train_step_fn(model_kind == "dsc", crops(batch_size))
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    print(json.dumps({"images_per_second": batch_size * steps / (time.perf_counter() - start)}))


def train_throughput(model_kind, batch_size, steps, reps, jit_compile="auto", torch_too=True):
    """images/s for Keras on in-memory tensors, on the real pipeline, and for PyTorch.

    Repetitions alternate between the three so that a noisy machine slows
    all of them alike; the ratio of medians is what to quote.
    """
    clean = crops(batch_size)
    model = keras_trainer(model_kind, batch_size, jit_compile)
    in_memory = tf.data.Dataset.from_tensors((clean, clean)).repeat()
    pipeline = training_dataset("sample", batch_size, seed=1).map(lambda x: (x, x))
    # "Naive Keras": the same model compiled with Keras' defaults (jit_compile
    # "auto", which means XLA on every device).
    naive = keras_trainer(model_kind, batch_size, "on")
    results = {"keras_in_memory": [], "keras_pipeline": [], "keras_naive_in_memory": [], "torch": []}
    fit_steps(model, in_memory, 3)
    fit_steps(model, pipeline, 3)
    fit_steps(naive, in_memory, 3)
    for _ in range(reps):
        for name, trainer, dataset in (("keras_in_memory", model, in_memory), ("keras_pipeline", model, pipeline),
                                       ("keras_naive_in_memory", naive, in_memory)):
            start = time.perf_counter()
            fit_steps(trainer, dataset, steps)
            results[name].append(batch_size * steps / (time.perf_counter() - start))
        if torch_too:
            results["torch"].append(torch_images_per_second(model_kind, batch_size, steps))
    return {name: statistics.median(v) for name, v in results.items() if v} | {
        f"{name}_runs": [round(x, 1) for x in v] for name, v in results.items() if v
    }


def inference_seconds(size, reps):
    model = denoiser_from_config(TrainConfig(model="dsc"))
    image = np.stack([np.resize(sample_images()["astronaut"], (size, size, 3))]).astype("float32")
    infer = tf.function(lambda x: model(x, training=False), jit_compile=False)
    median, _ = median_seconds(lambda: infer(image).numpy(), reps, warmup=1)
    return median


def bm3d_seconds(size=512, sigma=25.0):
    """CBM3D (the ``bm3d`` package) once on the same photo as the inference timing."""
    try:
        import bm3d
    except ImportError:
        return None
    photo = np.resize(sample_images()["astronaut"], (size, size, 3)).astype("float32") / 255.0
    noisy = photo + np.random.default_rng(0).normal(0, sigma / 255.0, photo.shape)
    start = time.perf_counter()
    bm3d.bm3d_rgb(noisy, sigma / 255.0)
    return time.perf_counter() - start


def matmul_gflops(n=2048, reps=5):
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda: tf.matmul(a, b))
    median, _ = median_seconds(lambda: matmul().numpy(), reps)
    return 2 * n**3 / median / 1e9


def peak_memory_mib(scenario):
    """Run one scenario in a fresh process; its VmHWM is the peak."""
    result = subprocess.run([sys.executable, __file__, "--measure-memory", scenario], capture_output=True,
                            text=True, timeout=600)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mib"]


def measure_memory(scenario):
    kind, arg = scenario.split(":")
    if kind == "train":
        model_kind, batch_size = arg.split("@")
        model = keras_trainer(model_kind, int(batch_size))
        fit_steps(model, training_dataset("sample", int(batch_size)).map(lambda x: (x, x)), 5)
    elif kind == "tiled":  # tiled:6000x4000@1024 -> the CLI's padded, tiled path
        from stl_denoise.inference import denoise_image

        shape, tile = arg.split("@")
        width, height = map(int, shape.split("x"))
        photo = sample_images()["astronaut"]
        image = np.tile(photo, (height // photo.shape[0] + 1, width // photo.shape[1] + 1, 1))[:height, :width]
        model = denoiser_from_config(TrainConfig(model="dsc"))
        start = time.perf_counter()
        denoise_image(model, image, tile=int(tile))
        print(json.dumps({"peak_mib": peak_rss_mib(), "seconds": time.perf_counter() - start}))
        return
    else:
        inference_seconds(int(arg), reps=1)
    print(json.dumps({"peak_mib": peak_rss_mib()}))


def peak_rss_mib():
    """This process's resident high-water mark.

    ru_maxrss is not usable here: Linux carries it across fork+exec, so a
    child reports the (large) benchmark parent's peak.  VmHWM belongs to the
    process's own address space.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hardware():
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "tensorflow": tf.__version__, "keras": keras.__version__}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer steps; for a smoke test")
    parser.add_argument("--jit-compile", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--measure-memory", help=argparse.SUPPRESS)
    parser.add_argument("--torch-yardstick", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_memory:
        return measure_memory(args.measure_memory)
    if args.torch_yardstick:
        return torch_yardstick(args.torch_yardstick)
    jit_compile = args.jit_compile

    steps = 3 if args.quick else 20
    reps = 2 if args.quick else args.reps
    try:
        import torch  # noqa: F401
        torch_available = True
    except ImportError:
        torch_available = False
    report = {"hardware": hardware(), "torch_yardstick": torch_available, "jit_compile": args.jit_compile, "train": {}, "inference": {}, "memory_mib": {}}
    macs = forward_macs()
    report["forward_gflop_per_image"] = 2 * macs / 1e9
    report["train_gflop_per_image"] = 3 * 2 * macs / 1e9  # backward ~ 2x forward
    report["matmul_gflops"] = matmul_gflops()
    for model_kind in ("dsc", "plain"):
        for batch_size in (10, 64):
            n = steps if batch_size == 10 else max(2, steps // 4)
            result = train_throughput(model_kind, batch_size, n, reps, jit_compile, torch_too=torch_available)
            result["achieved_gflops"] = result["keras_in_memory"] * report["train_gflop_per_image"]
            result["input_wait_share"] = max(0.0, 1 - result["keras_pipeline"] / result["keras_in_memory"])
            report["train"][f"{model_kind}@{batch_size}"] = result
    for size in (512, 2048):
        seconds = inference_seconds(size, reps)
        report["inference"][str(size)] = {"seconds": seconds, "megapixels_per_second": size * size / 1e6 / seconds}
    if not args.quick:
        report["bm3d_512_seconds"] = bm3d_seconds()
        for scenario in ("train:dsc@10", "train:plain@10", "train:dsc@64", "infer:512", "tiled:6000x4000@512"):
            report["memory_mib"][scenario] = peak_memory_mib(scenario)
    dsc10 = report["train"]["dsc@10"]
    report["faithful_run_minutes"] = 100_000 / dsc10["keras_pipeline"] / 60
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    return 0


def print_table(report):
    hw = report["hardware"]
    print(f"# stl-denoise benchmark on {hw['cpu']} ({hw['cores']} cores), TF {hw['tensorflow']}")
    print(f"matmul 2048^2: {report['matmul_gflops']:.0f} GFLOP/s; "
          f"train step {report['train_gflop_per_image']:.2f} GFLOP/image")
    print("| model@batch | ours img/s (in-memory) | ours img/s (tf.data) | naive Keras (XLA) img/s | PyTorch img/s "
          "| ours/PyTorch | naive/PyTorch | input wait | GFLOP/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in report["train"].items():
        torch_rate = r.get("torch")

        def ratio(value):
            return f"{value / torch_rate:.2f}x" if torch_rate else "n/a"

        print(f"| {name} | {r['keras_in_memory']:.1f} | {r['keras_pipeline']:.1f} | {r['keras_naive_in_memory']:.1f} | "
              f"{torch_rate and round(torch_rate, 1)} | {ratio(r['keras_pipeline'])} | "
              f"{ratio(r['keras_naive_in_memory'])} | {100 * r['input_wait_share']:.1f}% | {r['achieved_gflops']:.0f} |")
    for size, r in report["inference"].items():
        print(f"inference {size}x{size}: {r['seconds']:.3f} s ({r['megapixels_per_second']:.2f} MP/s)")
    if report.get("bm3d_512_seconds"):
        ours = report["inference"]["512"]["seconds"]
        print(f"CBM3D 512x512: {report['bm3d_512_seconds']:.1f} s ({report['bm3d_512_seconds'] / ours:.0f}x our inference)")
    for scenario, mib in report["memory_mib"].items():
        print(f"peak memory {scenario}: {mib if mib is None else round(mib)} MiB")
    print(f"faithful run (100,000 images, batch 10) estimate: {report['faithful_run_minutes']:.1f} min")


if __name__ == "__main__":
    sys.exit(main())
