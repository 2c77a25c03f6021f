"""What machine a benchmark ran on, for ``bench.py`` and ``gpu_check.py``.

A speed figure without its CPU is not comparable: TensorFlow's fast oneDNN
path, bfloat16 and PyTorch's channels_last kernels all depend on the ISA
(docs/performance.md), so the report names the CPU model and the flags that matter.
"""

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

# The ISA extensions that change which kernels TensorFlow and PyTorch pick;
# TensorFlow turns oneDNN on by itself only with AVX-512 VNNI/BF16 or AMX.
ISA_FLAGS = {
    "avx2": ("avx2",),
    "avx512f": ("avx512f",),
    "avx512_vnni": ("avx512_vnni",),
    "avx512_bf16": ("avx512_bf16",),
    "avx_vnni": ("avx_vnni",),
    "amx": ("amx_tile", "amx_bf16", "amx_int8"),
}


def parse_cpuinfo(text):
    """Model, vendor numbers and ISA flags from the first processor of /proc/cpuinfo text."""
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:  # every processor repeats the same block; the first is enough
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", fields.get("Features", "")).split())
    return {
        "model": fields.get("model name") or fields.get("Model") or None,
        "vendor": fields.get("vendor_id") or fields.get("CPU implementer") or None,
        # A hypervisor may hide the marketing name ("AMD EPYC"); family/model still tell
        # the generation apart (AMD family 25: Zen 3 and Zen 4).
        "family": fields.get("cpu family"),
        "model_number": fields.get("model"),
        "isa": {name: any(flag in flags for flag in names) for name, names in ISA_FLAGS.items()},
    }


def lscpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip() or None
    return None


def cpu():
    try:
        info = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:  # not Linux: no flags to read
        info = {"model": None, "vendor": None, "family": None, "model_number": None, "isa": {}}
    info["model"] = info["model"] or lscpu_model() or platform.processor() or "unknown"
    info["logical_cores"] = os.cpu_count()
    try:
        info["usable_cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["usable_cores"] = os.cpu_count()
    return info


def package_version(name):
    """Installed version without importing it (importing PyTorch beside TensorFlow starts a second thread pool)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe(tf, keras):
    """The machine and software a benchmark ran on, as a JSON-ready dict."""
    from stl_denoise._quiet import onednn_enabled

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": cpu(),
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "pytorch": package_version("torch"),
        "onednn": onednn_enabled(),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        # Other jobs on the machine change every figure; the load says how quiet it was.
        "load_average_at_start": load,
    }


def summary_line(machine):
    """One line naming the machine, printed above every report."""
    cpu_info = machine["cpu"]
    isa = ", ".join(name.upper() for name, present in cpu_info["isa"].items() if present) or "none of AVX2/AVX-512/AMX"
    generation = ""
    if cpu_info.get("family"):
        generation = f" (family {cpu_info['family']} model {cpu_info['model_number']})"
    onednn = {True: "on", False: "off", None: "unknown"}[machine["onednn"]]
    gpus = f", GPUs: {len(machine['gpus'])}" if machine.get("gpus") else ", no GPU"
    return (
        f"{cpu_info['model']}{generation}, {cpu_info['usable_cores']} cores usable of {cpu_info['logical_cores']}; "
        f"ISA: {isa}; oneDNN {onednn}{gpus}; TensorFlow {machine['tensorflow']}, Keras {machine['keras']}, "
        f"PyTorch {machine['pytorch'] or 'n/a'}; load average {machine['load_average_at_start']}"
    )
