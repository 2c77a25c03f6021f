"""The benchmark: its FLOP count against the built model, the machine it names, and its PyTorch yardstick."""

import importlib.util
import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from stl_denoise._quiet import import_tensorflow
from stl_denoise.models import build_denoiser

tf = import_tensorflow()

spec = importlib.util.spec_from_file_location("bench", Path(__file__).parent.parent / "benchmarks" / "bench.py")


@pytest.fixture(scope="module")
def bench():
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def macs_from_model(model, size=64):
    total = 0
    x = np.zeros((1, size, size, 3), "float32")
    convolutions = (keras.layers.Conv2D, keras.layers.Conv2DTranspose)
    names = [layer.name for layer in model.layers if isinstance(layer, convolutions)]
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    outputs = probe(x)
    for name, out in zip(names, outputs):
        layer = model.get_layer(name)
        kernel_h, kernel_w, *_ = layer.kernel.shape
        if isinstance(layer, keras.layers.Conv2DTranspose):
            # Every input position scatters a k x k x C_out patch.
            in_h = out.shape[1] // layer.strides[0]
            in_w = out.shape[2] // layer.strides[1]
            total += in_h * in_w * layer.kernel.shape[3] * layer.filters * kernel_h * kernel_w
        else:
            total += out.shape[1] * out.shape[2] * layer.filters * kernel_h * kernel_w * layer.kernel.shape[2]
    return total


@pytest.mark.parametrize("bottleneck", [512, 518])
def test_forward_macs_match_the_model(bench, bottleneck):
    model = build_denoiser(bottleneck_channels=bottleneck)
    assert bench.forward_macs(bottleneck=bottleneck) == macs_from_model(model)


ZEN3_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx avx2 fma bmi2

processor\t: 1
model name\t: ignored second block
"""
SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8481C
flags\t\t: avx2 avx512f avx512_vnni avx512_bf16 avx_vnni amx_bf16 amx_tile amx_int8
"""


@pytest.fixture(scope="module")
def machine_info(bench):  # bench puts benchmarks/ on sys.path
    import machine_info

    return machine_info


def test_cpuinfo_gives_the_model_and_the_isa_that_picks_the_kernels(machine_info):
    zen3 = machine_info.parse_cpuinfo(ZEN3_AVX2)
    assert (zen3["model"], zen3["family"], zen3["model_number"]) == ("AMD EPYC 7B13", "25", "1")
    assert zen3["isa"] == {"avx2": True, "avx512f": False, "avx512_vnni": False, "avx512_bf16": False,
                           "avx_vnni": False, "amx": False}
    intel = machine_info.parse_cpuinfo(SAPPHIRE_RAPIDS)
    assert intel["model"] == "Intel(R) Xeon(R) Platinum 8481C"
    assert all(intel["isa"].values())


def test_quick_bench_names_the_machine_in_its_json_and_report(bench, tmp_path, monkeypatch, capsys):
    """`bench.py --quick` end to end, the real trainer included; PyTorch hidden, so its cells must read n/a."""
    from stl_denoise._quiet import onednn_enabled

    monkeypatch.setattr(bench, "torch_available", lambda: None)
    out = tmp_path / "results.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    printed = capsys.readouterr().out
    machine = report["machine"]
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        assert machine["cpu"]["model"] == first_model_name(cpuinfo.read_text())
        assert set(machine["cpu"]["isa"]) == {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx"}
    assert machine["cpu"]["logical_cores"] == os.cpu_count()
    assert machine["onednn"] == onednn_enabled()
    assert machine["tensorflow"] == tf.__version__ and machine["keras"] == keras.__version__
    machine_line = next(line for line in printed.splitlines() if line.startswith("machine: "))
    assert machine["cpu"]["model"] in machine_line and f"TensorFlow {tf.__version__}" in machine_line
    assert f"oneDNN {'on' if machine['onednn'] else 'off'}" in machine_line
    listed = set(machine_line.split("ISA: ")[1].split(";")[0].split(", "))
    assert {name.upper() for name, present in machine["cpu"]["isa"].items() if present} <= listed
    # The headline goes through the real trainer; without PyTorch there is no ratio to invent.
    e2e = report["end_to_end"]["dsc@10"]
    assert e2e["steps"] == bench.WARMUP_STEPS + 3 and e2e["ours"] > 0 and "pytorch" not in e2e
    assert "n/a (PyTorch not installed)" in printed
    assert report["busy_machine"] == ("WARNING: other jobs were running" in printed)
    assert report["inference"]["512"]["ours_seconds"] > 0


@pytest.mark.parametrize("start, end, expected", [([0.3, 0, 0], [0.9, 0, 0], False), ([1.5, 0, 0], [0.2, 0, 0], True),
                                                   ([0.2, 0, 0], None, False)])
def test_a_busy_machine_is_flagged(bench, start, end, expected):
    machine = {"cpu": {"usable_cores": 2}, "load_average_at_start": start, "load_average_at_end": end}
    assert bench.busy(machine) is expected


def first_model_name(text):
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def test_ours_is_compared_with_the_faster_pytorch_layout(bench, monkeypatch):
    """Ratios per repetition against whichever layout was faster in it; no timing involved."""
    rates = iter([{"nchw": 40.0, "channels_last": 100.0}, {"nchw": 50.0, "channels_last": 45.0}])
    monkeypatch.setattr(bench, "crops", lambda batch_size: np.zeros((batch_size, 64, 64, 3), "float32"))
    monkeypatch.setattr(bench, "trainer_images_per_second", lambda *args: {
        "images_per_second": 90.0, "mean_images_per_second": 80.0, "wall_seconds": 1.0})
    monkeypatch.setattr(bench, "run_torch", lambda spec, array: {
        "threads": 2, "layouts": {k: {"images_per_second": v} for k, v in next(rates).items()}})
    result = bench.end_to_end("dsc", 10, 6, 3, reps=2, jit_compile="auto", with_torch=True)
    assert result["ratio_runs"] == [0.9, 1.8]
    assert result["ours_vs_faster_pytorch"] == pytest.approx(1.35)
    assert result["pytorch"] == {"nchw": 45.0, "channels_last": 72.5}
    assert result["faster_pytorch_layout"] == "channels_last"


def test_pytorch_yardstick_runs_both_layouts_and_they_compute_the_same(bench):
    torch = pytest.importorskip("torch", reason="PyTorch is optional (the yardstick); without it the bench says n/a")
    import torch_reference

    image = np.random.default_rng(0).uniform(0, 255, (32, 48, 3)).astype("float32")
    nchw = torch_reference.inference_fn(True, "nchw")(image)
    channels_last = torch_reference.inference_fn(True, "channels_last")(image)
    assert nchw.shape == (32, 48, 3)
    np.testing.assert_allclose(channels_last, nchw, rtol=1e-4, atol=1e-3)
    assert torch.get_num_threads() >= 1
    # The way bench.py runs it: in its own process, both layouts, on real crops.
    result = bench.run_torch({"kind": "train", "skip_connections": True, "batch_size": 2, "steps": 1},
                             bench.crops(2))
    assert set(result["layouts"]) == {"nchw", "channels_last"}
    assert all(r["images_per_second"] > 0 for r in result["layouts"].values())
