"""``make bench``: training and inference speed, memory, and distance from the hardware.

Usage: python benchmarks/bench.py [--out benchmarks/results.json] [--quick] [--no-memory]

The report opens with the machine (CPU model, ISA flags, cores, oneDNN state,
versions): figures from different CPUs are not comparable.  The headline is
the real trainer (``stl_denoise.train.train``, batch 10, per-step metrics.csv)
and 512x512 inference through ``stl_denoise.denoise`` against the same network
in PyTorch, in both its NCHW and channels_last layouts, compared with the
faster of the two.  Every number is a median over repetitions after warm-up;
repetitions alternate between us and PyTorch so a noisy machine slows both
alike, and each ratio is taken within one repetition.  Without PyTorch
installed its columns read n/a.  Peak memory is measured in a fresh
subprocess per scenario.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# stl_denoise first: its TensorFlow settings (oneDNN, quiet logs) must be in place before Keras loads TensorFlow.
import stl_denoise  # noqa: E402

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402

from stl_denoise._quiet import import_tensorflow  # noqa: E402
from stl_denoise.config import TrainConfig  # noqa: E402
from stl_denoise.data import sample_images, training_dataset  # noqa: E402
from stl_denoise.runs import read_metrics  # noqa: E402
from stl_denoise.train import build_training_model, denoiser_from_config, train  # noqa: E402

from machine_info import describe, package_version, summary_line  # noqa: E402
from timing import median_seconds  # noqa: E402,F401  (also bench.median_seconds for gpu_check.py)

tf = import_tensorflow()
TORCH_LAYOUTS = ("nchw", "channels_last")
# The first steps of a run include tracing and compilation, on both sides.
WARMUP_STEPS = 3

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


def torch_available():
    """PyTorch's version, or None; read without importing it into this TensorFlow process."""
    return package_version("torch")


def run_torch(spec, array):
    """The PyTorch yardstick in its own process, both layouts; ``array`` is its input."""
    with tempfile.TemporaryDirectory(prefix="stl-bench-torch-") as tmp:
        path = Path(tmp) / "input.npy"
        np.save(path, array)
        result = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "torch_reference.py"), json.dumps(spec | {"input": str(path)})],
            capture_output=True, text=True, timeout=600,
        )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_trainer(config):
    """The real trainer (every callback on) in a temporary run folder: (metrics.csv rows, summary, wall seconds)."""
    with tempfile.TemporaryDirectory(prefix="stl-bench-train-") as tmp:
        run_dir = Path(tmp) / "run"
        start = time.perf_counter()
        summary = train(config, run_dir, verbose=False)
        wall = time.perf_counter() - start
        rows = read_metrics(run_dir)
    return rows, summary, wall


def trainer_images_per_second(model_kind, batch_size, steps, jit_compile):
    """The real trainer on the offline photos, as ``stl-denoise train --data sample`` runs it.

    Every callback is on (per-step metrics.csv, checkpoints, backups,
    TensorBoard); the rate comes from metrics.csv's per-step seconds, the
    figure a user sees, after the warm-up steps.
    """
    config = TrainConfig(model=model_kind, data="sample", batch_size=batch_size, steps=steps, jit_compile=jit_compile)
    rows, _, wall = run_trainer(config)
    seconds = [float(row["seconds"]) for row in rows][WARMUP_STEPS:]
    return {
        "images_per_second": batch_size / statistics.median(seconds),
        "mean_images_per_second": batch_size * len(seconds) / sum(seconds),
        "wall_seconds": wall,
    }


def faster_layout(medians):
    return max(medians, key=medians.get)


def end_to_end(model_kind, batch_size, steps, torch_steps, reps, jit_compile, with_torch):
    """Our trainer against PyTorch's two layouts, alternating; ratios within each repetition."""
    clean = crops(batch_size)
    runs = {"ours": [], "ours_mean": [], "ours_wall": [], "ratio": []} | {layout: [] for layout in TORCH_LAYOUTS}
    torch_info = {}
    for rep in range(reps):
        ours = trainer_images_per_second(model_kind, batch_size, steps, jit_compile)
        runs["ours"].append(ours["images_per_second"])
        runs["ours_mean"].append(ours["mean_images_per_second"])
        runs["ours_wall"].append(ours["wall_seconds"])
        if with_torch:
            spec = {"kind": "train", "skip_connections": model_kind == "dsc", "batch_size": batch_size,
                    "steps": torch_steps, "first": rep % 2}
            torch_info = run_torch(spec, clean)
            rates = {layout: torch_info["layouts"][layout]["images_per_second"] for layout in TORCH_LAYOUTS}
            for layout, rate in rates.items():
                runs[layout].append(rate)
            runs["ratio"].append(ours["images_per_second"] / max(rates.values()))
    result = {
        "steps": steps,
        "ours": statistics.median(runs["ours"]),
        "ours_runs": [round(x, 1) for x in runs["ours"]],
        "ours_mean_images_per_second": statistics.median(runs["ours_mean"]),
        "ours_wall_seconds": statistics.median(runs["ours_wall"]),
    }
    if with_torch:
        medians = {layout: statistics.median(runs[layout]) for layout in TORCH_LAYOUTS}
        result |= {
            "torch_steps": torch_steps,
            "pytorch": medians,
            "pytorch_runs": {layout: [round(x, 1) for x in runs[layout]] for layout in TORCH_LAYOUTS},
            "pytorch_threads": torch_info["threads"],
            "faster_pytorch_layout": faster_layout(medians),
            "ours_vs_faster_pytorch": statistics.median(runs["ratio"]),
            "ratio_runs": [round(x, 2) for x in runs["ratio"]],
        }
    return result


def train_throughput(model_kind, batch_size, steps, reps, jit_compile="auto"):
    """Diagnostics: images/s of our model in ``fit`` on in-memory tensors, on the
    real pipeline, and compiled with Keras' defaults (XLA on).

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
    results = {"keras_in_memory": [], "keras_pipeline": [], "keras_naive_in_memory": []}
    fit_steps(model, in_memory, WARMUP_STEPS)
    fit_steps(model, pipeline, WARMUP_STEPS)
    fit_steps(naive, in_memory, WARMUP_STEPS)
    for _ in range(reps):
        for name, trainer, dataset in (("keras_in_memory", model, in_memory), ("keras_pipeline", model, pipeline),
                                       ("keras_naive_in_memory", naive, in_memory)):
            start = time.perf_counter()
            fit_steps(trainer, dataset, steps)
            results[name].append(batch_size * steps / (time.perf_counter() - start))
    return {name: statistics.median(v) for name, v in results.items()} | {
        f"{name}_runs": [round(x, 1) for x in v] for name, v in results.items()
    }


def bench_photo(size):
    """A size x size uint8 RGB photo (the astronaut, tiled as needed)."""
    photo = sample_images()["astronaut"]
    return np.tile(photo, (size // photo.shape[0] + 1, size // photo.shape[1] + 1, 1))[:size, :size].copy()


def inference_vs_torch(size, reps, inner, with_torch):
    """``stl_denoise.denoise`` (the API and CLI path: pad, tile, run, clip) against
    PyTorch's forward pass in both layouts under ``torch.inference_mode``.

    Same untrained faithful DSC network on both sides: speed does not depend on the weights.
    """
    model = denoiser_from_config(TrainConfig(model="dsc"))
    image = bench_photo(size)
    runs = {"ours": [], "ratio": []} | {layout: [] for layout in TORCH_LAYOUTS}
    for rep in range(reps):
        ours, _ = median_seconds(lambda: stl_denoise.denoise(image, model=model), inner, warmup=1)
        runs["ours"].append(ours)
        if with_torch:
            spec = {"kind": "infer", "skip_connections": True, "reps": inner, "first": rep % 2}
            seconds = {layout: r["seconds"] for layout, r in run_torch(spec, image)["layouts"].items()}
            for layout in TORCH_LAYOUTS:
                runs[layout].append(seconds[layout])
            runs["ratio"].append(min(seconds.values()) / ours)  # > 1: ours is faster
    result = {"ours_seconds": statistics.median(runs["ours"]), "ours_runs": [round(x, 3) for x in runs["ours"]]}
    if with_torch:
        medians = {layout: statistics.median(runs[layout]) for layout in TORCH_LAYOUTS}
        result |= {
            "pytorch_seconds": medians,
            "pytorch_runs": {layout: [round(x, 3) for x in runs[layout]] for layout in TORCH_LAYOUTS},
            "faster_pytorch_layout": min(medians, key=medians.get),
            "ours_vs_faster_pytorch": statistics.median(runs["ratio"]),
        }
    return result


def inference_seconds(size, reps):
    model = denoiser_from_config(TrainConfig(model="dsc"))
    image = bench_photo(size)[None].astype("float32")
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


def settings(quick, reps):
    """How much to measure: the default takes a few minutes on a quiet 2-core machine; --quick is a smoke run."""
    if quick:
        return {"reps": 1, "e2e_steps": WARMUP_STEPS + 3, "torch_steps": 3, "diag_configs": [("dsc", 10, 3)],
                "inference_inner": 1, "single_pass_sizes": [512], "matmul_n": 512}
    return {"reps": reps, "e2e_steps": 60, "torch_steps": 20,
            "diag_configs": [("dsc", 10, 20), ("dsc", 64, 5), ("plain", 10, 20), ("plain", 64, 5)],
            "inference_inner": 3, "single_pass_sizes": [512, 2048], "matmul_n": 2048}


def collect(plan, jit_compile="auto", with_torch=True):
    """Every measurement of ``plan`` (see ``settings``), as the JSON report."""
    report = {"machine": describe(tf, keras), "settings": plan, "jit_compile": jit_compile,
              "end_to_end": {}, "train": {}, "inference": {}, "memory_mib": {}, "section_seconds": {}}
    clock = [time.perf_counter()]

    def section_done(name):  # where a long bench spends its time, for whoever trims it next
        now = time.perf_counter()
        report["section_seconds"][name] = round(now - clock[0], 1)
        clock[0] = now

    macs = forward_macs()
    report["forward_gflop_per_image"] = 2 * macs / 1e9
    report["train_gflop_per_image"] = 3 * 2 * macs / 1e9  # backward ~ 2x forward
    report["matmul_gflops"] = matmul_gflops(plan["matmul_n"])
    section_done("matmul")
    report["end_to_end"]["dsc@10"] = end_to_end(
        "dsc", 10, plan["e2e_steps"], plan["torch_steps"], plan["reps"], jit_compile, with_torch
    )
    section_done("end_to_end")
    for model_kind, batch_size, steps in plan["diag_configs"]:
        result = train_throughput(model_kind, batch_size, steps, plan["reps"], jit_compile)
        result["achieved_gflops"] = result["keras_in_memory"] * report["train_gflop_per_image"]
        result["input_wait_share"] = max(0.0, 1 - result["keras_pipeline"] / result["keras_in_memory"])
        report["train"][f"{model_kind}@{batch_size}"] = result
    section_done("train_diagnostics")
    report["inference"]["512"] = inference_vs_torch(512, plan["reps"], plan["inference_inner"], with_torch)
    for size in plan["single_pass_sizes"]:
        # 2048 px takes seconds a pass: one repetition is enough to see its rate.
        reps = plan["reps"] if size <= 512 else 1
        report["inference"].setdefault(str(size), {})["single_pass_seconds"] = inference_seconds(size, reps)
    section_done("inference")
    if plan["memory"]:
        report["bm3d_512_seconds"] = bm3d_seconds()
        for scenario in ("train:dsc@10", "train:plain@10", "train:dsc@64", "infer:512", "tiled:6000x4000@512"):
            report["memory_mib"][scenario] = peak_memory_mib(scenario)
        section_done("memory_and_bm3d")
    e2e = report["end_to_end"]["dsc@10"]
    # Step time only (mean, so slow steps count); epoch-end backups add a few seconds in all.
    report["faithful_run_minutes"] = 100_000 / e2e["ours_mean_images_per_second"] / 60
    try:
        report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    report["busy_machine"] = busy(report["machine"])
    return report


def busy(machine):
    """Whether other work ran beside the bench (1-minute load above half the usable cores, at start or end)."""
    cores = machine["cpu"]["usable_cores"] or 1
    loads = [load[0] for load in (machine.get("load_average_at_start"), machine.get("load_average_at_end")) if load]
    return any(load > cores / 2 for load in loads)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each measurement (default %(default)s)")
    parser.add_argument("--quick", action="store_true", help="one repetition of a few steps, no memory; a smoke test")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory scenarios and CBM3D")
    parser.add_argument("--jit-compile", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--measure-memory", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_memory:
        return measure_memory(args.measure_memory)

    started = time.perf_counter()
    plan = settings(args.quick, args.reps) | {"memory": not (args.quick or args.no_memory)}
    report = collect(plan, args.jit_compile, with_torch=torch_available() is not None)
    report["bench_seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    return 0


def ratio_text(value, layout):
    return f"**{value:.2f}x** (vs {layout})"


def pytorch_cells(result, key, number_format):
    """'NCHW | channels_last | ours vs the faster' table cells of one result, or n/a without PyTorch."""
    if key not in result:
        return "n/a | n/a | n/a (PyTorch not installed)"
    layouts = result[key]
    return (f"{layouts['nchw']:{number_format}} | {layouts['channels_last']:{number_format}} | "
            f"{ratio_text(result['ours_vs_faster_pytorch'], result['faster_pytorch_layout'])}")


def print_report(report):
    machine = report["machine"]
    print("# stl-denoise benchmark")
    print(f"machine: {summary_line(machine)}")
    if machine.get("load_average_at_end"):
        print(f"load average at end: {machine['load_average_at_end']}")
    if report.get("busy_machine"):
        # PyTorch's and TensorFlow's thread pools react differently to busy cores, so not even
        # the ratios are to be trusted then.
        print("WARNING: other jobs were running (load average above); figures and ratios are not comparable")
    print(f"matmul: {report['matmul_gflops']:.0f} GFLOP/s; "
          f"train step {report['train_gflop_per_image']:.2f} GFLOP/image")
    print()
    print("## Training end to end: the real trainer, per-step metrics on; images/s from the median step")
    print("| model@batch | ours | PyTorch NCHW | PyTorch channels_last | ours / faster PyTorch |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in report["end_to_end"].items():
        print(f"| {name} | {r['ours']:.1f} | {pytorch_cells(r, 'pytorch', '.1f')} |")
    print()
    print("## Inference 512x512 (seconds; ours = stl_denoise.denoise, PyTorch = one forward pass, inference_mode)")
    print("| ours | ours, single compiled pass | PyTorch NCHW | PyTorch channels_last | ours vs faster PyTorch |")
    print("| --- | --- | --- | --- | --- |")
    r = report["inference"]["512"]
    single = r.get("single_pass_seconds")
    single = f"{single:.3f}" if single is not None else "n/a"
    print(f"| {r['ours_seconds']:.3f} | {single} | {pytorch_cells(r, 'pytorch_seconds', '.3f')} |")
    for size, r in report["inference"].items():
        if size != "512" and "single_pass_seconds" in r:
            print(f"inference {size}x{size}, single compiled pass: {r['single_pass_seconds']:.3f} s")
    if report["train"]:
        print()
        print("## Training diagnostics: our model in fit, without the trainer's callbacks")
        print("| model@batch | in-memory img/s | tf.data img/s | Keras defaults (XLA) img/s | input wait | GFLOP/s |")
        print("| --- | --- | --- | --- | --- | --- |")
    for name, r in report["train"].items():
        print(f"| {name} | {r['keras_in_memory']:.1f} | {r['keras_pipeline']:.1f} | {r['keras_naive_in_memory']:.1f} | "
              f"{100 * r['input_wait_share']:.1f}% | {r['achieved_gflops']:.0f} |")
    if report.get("bm3d_512_seconds"):
        ours = report["inference"]["512"]["ours_seconds"]
        print(f"CBM3D 512x512: {report['bm3d_512_seconds']:.1f} s "
              f"({report['bm3d_512_seconds'] / ours:.0f}x our inference)")
    for scenario, mib in report["memory_mib"].items():
        print(f"peak memory {scenario}: {mib if mib is None else round(mib)} MiB")
    print(f"faithful run (100,000 images, batch 10) estimate from the trainer's mean step: "
          f"{report['faithful_run_minutes']:.1f} min")
    if "bench_seconds" in report:
        sections = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in report["section_seconds"].items())
        print(f"bench took {report['bench_seconds']:.0f} s ({sections})")


if __name__ == "__main__":
    sys.exit(main())
