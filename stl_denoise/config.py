"""One object that describes a training run; saved as RUN_DIR/config.json.

Every paper default lives here, so the faithful targets need no flags.
"""

import dataclasses
import json
import math
import platform
import subprocess
import sys
from pathlib import Path

from stl_denoise.models import DEFAULT_BOTTLENECK_CHANNELS, DEFAULT_GATE_FACTORS


NOISE_MIXES = ("both", "mixed")


@dataclasses.dataclass
class TrainConfig:
    model: str = "dsc"  # dsc | plain (plain = dsc with connections off)
    data: str = "stl10"  # stl10 | sample | PATH
    data_dir: str | None = None  # TFDS data dir for stl10
    steps: int = 10_000  # paper §4.2: 100k images / batch 10
    batch_size: int = 10  # paper §4.2
    crop_size: int = 64  # Table 1 input
    # None: images as they are.  N: each image is first resized (area-averaged) so its shorter
    # side is N; 96 makes a 64x64 crop of a photo cover the share of the scene that a crop of a
    # 96x96 STL-10 image covers (the offline stand-in of `make reproduce`, docs/reproduction.md).
    resize_short_side: int | None = None
    # Paper gives no learning rate; chosen by a sweep (README, "Learning rate").
    learning_rate: float = 1e-6
    momentum: float = 0.0  # plain SGD, as the paper's "Stochastic Gradient Descent"
    loss: str = "mse"  # mse on the 0-255 scale (paper §3.2) | perceptual (§4.2)
    perceptual_classifier: str | None = None  # classifier run dir for loss=perceptual
    gate_factors: tuple = DEFAULT_GATE_FACTORS
    gate_reading: str = "equations"
    bottleneck_channels: int = DEFAULT_BOTTLENECK_CHANNELS
    kernel_size: int = 3
    init_stddev: str = "he"  # truncated normal; "he" = sqrt(2/fan_in), or a number
    sigma: float = 25.0  # Gaussian noise std on 0-255 (paper gives no level)
    salt_pepper: float = 0.02  # fraction of pixels set to 0 or 255
    seed: int = 0
    steps_per_epoch: int = 100  # backup / checkpoint granularity, in iterations
    clip_norm: float | None = None
    deterministic: bool = False  # TF op determinism: bit-identical reruns, slower
    strategy: str = "none"  # none | mirrored | multiworker (tf.distribute)
    mixed_precision: str = "off"  # off | float16 (GPUs) | bfloat16; float32 is the faithful default
    jit_compile: str = "auto"  # XLA: auto = on with a GPU, off on CPU (measured, docs/performance.md)
    preset: str = "faithful"
    # Modern-preset switches (issue 5); these defaults are the faithful recipe.
    optimizer: str = "sgd"  # sgd | adam
    lr_schedule: str = "constant"  # constant | cosine (decay to 0 over the run)
    warmup_steps: int = 0  # linear ramp of the learning rate from 0 over the first N steps
    input_range: float = 255.0  # the network sees pixels in [0, input_range]
    output_activation: str = "relu"  # relu | linear
    residual: bool = False  # global residual: the layers predict clean - noisy
    zero_init_output: bool = False  # deconv5 kernel starts at 0 (identity start with --residual)
    sigma_max: float | None = None  # set: sigma drawn per image from [sigma, sigma_max]
    clip_noise: bool = True  # False: unclipped Gaussian noise (the benchmark protocol)
    salt_pepper_max: float | None = None  # set: the salt-and-pepper fraction drawn per image from [salt_pepper, max]
    noise_mix: str = "both"  # both: every image gets both noises (§3.2) | mixed: Gaussian, impulse or both, 1/3 each
    eight_bit_share: float = 0.0  # share of noisy crops clipped and rounded as an 8-bit file is
    data_split: str = "all"  # all | train | validation (folders only, data.validation_split)
    init_from: str | None = None  # start from this denoiser's weights (shipped name or .keras): fine-tuning

    def validate(self):
        from stl_denoise.errors import UserError

        checks = [
            (self.model in ("dsc", "plain"), f"--model must be dsc or plain, got {self.model!r}"),
            (self.steps > 0, f"--steps must be positive, got {self.steps}"),
            (self.batch_size > 0, f"--batch-size must be positive, got {self.batch_size}"),
            (self.crop_size > 0 and self.crop_size % 16 == 0,
             f"--crop-size must be a positive multiple of 16, got {self.crop_size}"),
            (0 < self.learning_rate < math.inf,
             f"--learning-rate must be positive and finite, got {self.learning_rate}"),
            (0.0 <= self.momentum <= 1.0, f"--momentum must be in [0, 1], got {self.momentum}"),
            (len(self.gate_factors) == 4, f"--gate-factors needs 4 values, got {len(self.gate_factors)}"),
            (all(0.0 <= g <= 1.0 for g in self.gate_factors),
             f"--gate-factors must lie in [0, 1], got {list(self.gate_factors)}"),
            (self.gate_reading in ("equations", "text"),
             f"--gate-reading must be equations or text, got {self.gate_reading!r}"),
            (self.bottleneck_channels > 0, "--bottleneck-channels must be positive"),
            (self.kernel_size > 0, "--kernel-size must be positive"),
            (0.0 <= self.sigma <= 255.0, f"--sigma must be in [0, 255], got {self.sigma}"),
            (0.0 <= self.salt_pepper <= 1.0, f"--salt-pepper must be in [0, 1], got {self.salt_pepper}"),
            (self.steps_per_epoch > 0, "--steps-per-epoch must be positive"),
            (self.resize_short_side is None or self.resize_short_side >= self.crop_size,
             f"--resize-short-side must be at least --crop-size ({self.crop_size}), got {self.resize_short_side}"),
            (0 <= self.warmup_steps < self.steps, f"--warmup-steps must be in [0, --steps), got {self.warmup_steps}"),
            (0 <= self.seed < 2**32, f"--seed must be in [0, 2**32), got {self.seed}"),  # numpy/TF seed range
            (self.clip_norm is None or self.clip_norm > 0, "--clip-norm must be positive"),
            (self.loss in ("mse", "perceptual"), f"--loss must be mse or perceptual, got {self.loss!r}"),
            (self.loss != "perceptual" or self.perceptual_classifier,
             "--loss perceptual needs --perceptual-classifier RUN_DIR (a classifier run, e.g. runs/classify/truncnormal)"),
            (self.optimizer in ("sgd", "adam"), f"--optimizer must be sgd or adam, got {self.optimizer!r}"),
            (self.lr_schedule in ("constant", "cosine"),
             f"--lr-schedule must be constant or cosine, got {self.lr_schedule!r}"),
            (0 < self.input_range < math.inf, f"--input-range must be positive and finite, got {self.input_range}"),
            (self.output_activation in ("relu", "linear"),
             f"--output-activation must be relu or linear, got {self.output_activation!r}"),
            (self.sigma_max is None or self.sigma <= self.sigma_max <= 255.0,
             f"--sigma-max must lie in [--sigma, 255], got {self.sigma_max}"),
            (self.salt_pepper_max is None or self.salt_pepper <= self.salt_pepper_max <= 1.0,
             f"--salt-pepper-max must lie in [--salt-pepper, 1], got {self.salt_pepper_max}"),
            (self.noise_mix in NOISE_MIXES, f"--noise-mix must be one of {', '.join(NOISE_MIXES)}, got {self.noise_mix!r}"),
            (0.0 <= self.eight_bit_share <= 1.0, f"--eight-bit-share must be in [0, 1], got {self.eight_bit_share}"),
            (self.data_split in ("all", "train", "validation"),
             f"--data-split must be all, train or validation, got {self.data_split!r}"),
            (self.mixed_precision in ("off", "float16", "bfloat16"),
             f"--mixed-precision must be off, float16 or bfloat16, got {self.mixed_precision!r}"),
            (self.jit_compile in ("auto", "on", "off"), f"--jit-compile must be auto, on or off, got {self.jit_compile!r}"),
            (self.strategy in ("none", "mirrored", "multiworker"),
             f"--strategy must be none, mirrored or multiworker, got {self.strategy!r}"),
        ]
        if self.init_stddev != "he":
            try:
                ok = float(self.init_stddev) > 0
            except ValueError:
                ok = False
            checks.append((ok, f"--init-stddev must be 'he' or a positive number, got {self.init_stddev!r}"))
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        return self

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in fields}
        if "gate_factors" in values:
            values["gate_factors"] = tuple(values["gate_factors"])
        return cls(**values)

    @classmethod
    def load(cls, run_dir):
        return cls.from_dict(json.loads((Path(run_dir) / "config.json").read_text())["config"])


# What ``--preset modern`` changes (issue 5); every entry is also its own flag.
MODERN = dict(
    preset="modern",
    optimizer="adam",
    learning_rate=1e-3,
    lr_schedule="cosine",
    input_range=1.0,
    output_activation="linear",
    residual=True,
    zero_init_output=True,
    sigma=0.0,
    sigma_max=50.0,
    salt_pepper=0.0,
    clip_noise=False,
    steps=4_000,
    batch_size=8,
    crop_size=96,
    data_split="train",
)
# Issue 14: the modern recipe on the paper's own noise kinds, as users meet them: Gaussian
# sigma 0-50, salt-and-pepper 0-10% of the pixels, or both (a third of the crops each), half of
# the crops as saved 8-bit files (clipped and rounded), half unclipped float.
BLIND_MIXED = dict(
    MODERN,
    preset="blind-mixed",
    salt_pepper=0.0,
    salt_pepper_max=0.10,
    noise_mix="mixed",
    eight_bit_share=0.5,
)
PRESETS = {"faithful": TrainConfig(), "modern": TrainConfig(**MODERN), "blind-mixed": TrainConfig(**BLIND_MIXED)}


def environment():
    """Versions and code revision recorded beside every run."""
    import keras
    import numpy

    from stl_denoise._quiet import import_tensorflow, onednn_enabled

    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "tensorflow": import_tensorflow().__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "onednn": onednn_enabled(),
    }
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info
