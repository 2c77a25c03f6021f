"""The yardstick: the same 10-layer DSC network written plainly in PyTorch.

nn.Conv2d / nn.ConvTranspose2d, float32, plain SGD and MSE: what a researcher
would write by hand, in either memory layout.  PyTorch's default is NCHW;
``torch.channels_last`` (model and input) is its usual fast CPU layout and on
AVX-512 CPUs ran this net ~2.4x faster than NCHW (docs/performance.md), so the benchmark
measures both and compares against the faster.  Only used by ``benchmarks/bench.py``.
"""

import functools

import torch
from torch import nn

from timing import median_seconds  # benchmarks/ is sys.path[0]: this file runs as a script

ENCODER = ((3, 64, 1), (64, 64, 2), (64, 128, 2), (128, 256, 2), (256, 512, 2))
DECODER = ((512, 256, 2), (256, 128, 2), (128, 64, 2), (64, 64, 2), (64, 3, 1))
LAYOUTS = ("nchw", "channels_last")


class TorchDenoiser(nn.Module):
    def __init__(self, skip_connections=True, gate_factors=(0.1, 0.2, 0.3, 0.4)):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, stride=s, padding=1) for i, o, s in ENCODER)
        self.deconvs = nn.ModuleList(
            nn.ConvTranspose2d(i, o, 3, stride=s, padding=1, output_padding=s - 1) for i, o, s in DECODER
        )
        self.skip_connections = skip_connections
        self.gate_factors = gate_factors

    def forward(self, x):
        skips = []
        for index, conv in enumerate(self.convs):
            x = torch.relu(conv(x))
            if self.skip_connections and index < 4:
                skips.append((1 - self.gate_factors[index]) * x)
                x = self.gate_factors[index] * x
        for index, deconv in enumerate(self.deconvs):
            if self.skip_connections and index >= 1:
                x = x + skips[4 - index]
            x = torch.relu(deconv(x))
        return x


def _memory_format(layout):
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return torch.channels_last if layout == "channels_last" else torch.contiguous_format


def _nchw(images_nhwc, layout):
    batch = torch.as_tensor(images_nhwc, dtype=torch.float32).permute(0, 3, 1, 2)
    return batch.contiguous(memory_format=_memory_format(layout))


def train_step_fn(skip_connections, clean_nhwc, learning_rate=1e-6, layout="nchw"):
    """One SGD step on a fixed batch of real crops (NHWC uint8/float, 0-255)."""
    torch.manual_seed(0)
    model = TorchDenoiser(skip_connections).to(memory_format=_memory_format(layout))
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    clean = _nchw(clean_nhwc, layout)

    def step():
        noisy = (clean + 25 * torch.randn_like(clean)).clamp(0, 255)  # randn_like keeps the layout
        optimizer.zero_grad(set_to_none=True)
        loss = torch.mean((model(noisy) - clean) ** 2)
        loss.backward()
        optimizer.step()
        return loss.item()  # per-step loss on the host, as our trainer's metrics.csv

    return step


def inference_fn(skip_connections=True, layout="nchw"):
    """HxWx3 array (0-255) -> denoised HxWx3 float32 array, one pass, as a user would call it."""
    torch.manual_seed(0)
    model = TorchDenoiser(skip_connections).to(memory_format=_memory_format(layout)).eval()

    def run(image_hwc):
        with torch.inference_mode():
            output = model(_nchw(image_hwc[None], layout))
            return output[0].permute(1, 2, 0).numpy()

    return run


def measure(spec):
    """Both layouts, in the order ``spec["first"]`` picks (alternated by the caller across repetitions).

    spec: {"kind": "train", "skip_connections", "batch_size", "steps", "input": .npy of NHWC crops}
       or {"kind": "infer", "skip_connections", "reps", "input": .npy of one HxWx3 image}.
    """
    import numpy as np

    data = np.load(spec["input"])
    layouts = LAYOUTS if spec.get("first", 0) == 0 else LAYOUTS[::-1]
    result = {"threads": torch.get_num_threads(), "mkldnn": torch.backends.mkldnn.is_available(), "layouts": {}}
    for layout in layouts:
        if spec["kind"] == "train":
            step = train_step_fn(spec["skip_connections"], data, layout=layout)
            # Median step after warm-up, as the trainer's side is read from metrics.csv.
            seconds, _ = median_seconds(step, spec["steps"], warmup=3)
            result["layouts"][layout] = {"images_per_second": spec["batch_size"] / seconds}
        else:
            run = inference_fn(spec["skip_connections"], layout)
            result["layouts"][layout] = {"seconds": median_seconds(functools.partial(run, data), spec["reps"],
                                                                   warmup=1)[0]}
    return result


if __name__ == "__main__":
    # Run by bench.py in its own process, without TensorFlow: two frameworks'
    # thread pools in one process slow each other.
    import json
    import sys

    print(json.dumps(measure(json.loads(sys.argv[1]))))
