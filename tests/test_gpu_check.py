"""``make gpu-check`` (benchmarks/gpu_check.py) where there is no GPU, and the checks it runs where there is one."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stl_denoise._quiet import import_tensorflow
from stl_denoise.config import TrainConfig
from stl_denoise.data import training_dataset
from stl_denoise.runner import dtype_policy, resolve_jit_compile
from stl_denoise.train import build_training_model, denoiser_from_config, train

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
HAS_GPU = bool(import_tensorflow().config.list_physical_devices("GPU"))
needs_gpu = pytest.mark.skipif(not HAS_GPU,
                               reason="needs a GPU: TensorFlow sees none here (make gpu-check runs it on one)")


def run_gpu_check(*args, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=900)


def test_without_a_gpu_it_says_no_gpu_and_exits_0(tmp_path):
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so this checks the CPU-machine path on every machine.
    out = tmp_path / "gpu-check.json"
    result = run_gpu_check("--out", str(out), env=os.environ | {"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no GPU" in result.stdout
    assert not out.exists()  # nothing measured, so no results file that could pass for one


@pytest.mark.slow
def test_every_section_runs_and_lands_in_one_json(tmp_path):
    """The GPU path, run on the CPU with tiny settings, so a lent GPU's minutes are not spent finding typos."""
    out = tmp_path / "gpu-check.json"
    result = run_gpu_check("--pretend-gpu", "--out", str(out), "--steps", "4", "--throughput-steps", "3",
                           "--batch-sizes", "2", "--inference-sizes", "256")
    report = json.loads(out.read_text())
    assert report["machine"]["cpu"]["model"]
    assert report["tests"]["pytest -m gpu"]["ok"], report["tests"]
    for label in ("xla_on_float32", "xla_off_float32", "xla_on_float16"):
        run = report["training_500_steps"][label]
        assert run["steps"] == 4 and run["ok"] and run["images_per_second"] > 0, run
    assert set(report["training_500_steps"]) == {"xla_on_float32", "xla_off_float32", "xla_on_float16"}
    timings = report["inference"]["256x256"]
    assert all(timings[key] > 0 for key in ("denoise_default_tiles_seconds", "denoise_one_tile_seconds",
                                            "compiled_single_pass_seconds")), timings
    throughput = report["throughput"]["batch 2"]
    assert throughput["trainer_float32"]["steps"] == 3 and throughput["in_memory_float32"] > 0, throughput
    # Nothing failed (float16 included, since the per-step MSE is kept in float32), and the exit status says so.
    assert report["failed"] == [] and result.returncode == 0, (result.returncode, report["failed"])


# Regression: the per-step MSE metric squared float16 errors (~3,000 on the 0-255 scale) and overflowed, so the
# trainer stopped at step 1 with a NaN/inf error although the float32 loss was finite.
def test_mixed_float16_trains_through_the_real_trainer(tmp_path):
    summary = train(TrainConfig(data="sample", steps=2, mixed_precision="float16", jit_compile="off"),
                    tmp_path / "run", verbose=False)
    assert summary["steps"] == 2 and math.isfinite(summary["final_mse_mean_last_100"])


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("mixed_precision", ["off", "float16"])
def test_a_training_step_runs_on_the_gpu_with_xla(mixed_precision):
    assert resolve_jit_compile("auto") is True  # the project's rule: XLA on with a GPU
    config = TrainConfig(data="sample", mixed_precision=mixed_precision)
    with dtype_policy(mixed_precision):
        model = build_training_model(denoiser_from_config(config), config)
    clean = next(iter(training_dataset("sample", 10))).numpy()
    logs = model.train_on_batch(clean, clean, return_dict=True)
    assert math.isfinite(logs["loss"]) and math.isfinite(logs["mse"]), logs
    assert "GPU" in model.trainable_weights[0].value.device
