import json
import os
import platform
import subprocess
import sys
import time

import pytest

from stl_denoise._quiet import X86_MACHINES
from stl_denoise.cli import build_parser, main


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "stl_denoise", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_train_flags_map_to_config():
    from stl_denoise.cli import config_from_args

    args = build_parser().parse_args(
        ["train", "--out", "x", "--model", "plain", "--gate-factors", "0.2,0.2,0.3,0.5", "--gate-reading", "text",
         "--bottleneck-channels", "518", "--sigma", "15", "--salt-pepper", "0", "--learning-rate", "1e-5"])
    config = config_from_args(args)
    assert config.model == "plain" and config.gate_reading == "text"
    assert config.gate_factors == (0.2, 0.2, 0.3, 0.5) and config.bottleneck_channels == 518
    assert (config.sigma, config.salt_pepper, config.learning_rate) == (15.0, 0.0, 1e-5)
    # Faithful defaults (paper §4.2).
    defaults = config_from_args(build_parser().parse_args(["train", "--out", "x"]))
    assert (defaults.batch_size, defaults.steps, defaults.data, defaults.loss) == (10, 10_000, "stl10", "mse")
    assert defaults.gate_factors == (0.1, 0.2, 0.3, 0.4) and defaults.gate_reading == "equations"


@pytest.mark.parametrize("args, message", [
    (["--steps", "-5"], "--steps must be positive"),
    (["--gate-factors", "0.1,0.2,0.3,1.4"], "--gate-factors must lie in [0, 1]"),
    (["--sigma", "-3"], "--sigma must be in [0, 255]"),
    (["--data", "/no/such/folder"], "/no/such/folder: no such file or directory"),
])
def test_bad_arguments_give_one_line_error(tmp_path, capsys, args, message):
    code = main(["train", "--out", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing written before validation


def test_missing_stl10_fails_fast_in_a_real_process(tmp_path):
    started = time.monotonic()
    result = run_cli("train", "--data", "stl10", "--data-dir", str(tmp_path / "tfds"), "--out", str(tmp_path / "run"),
                     env={"STL_DENOISE_STL10_HOST": "127.0.0.1:9"})
    assert time.monotonic() - started < 60  # import + a refused connection, not tfds' minutes of retries
    assert result.returncode == 2
    assert "STL-10 is not prepared" in result.stderr and "make stl10" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line: no TensorFlow start-up noise either
    assert not (tmp_path / "run").exists()  # nothing written


def test_terminal_is_clean_of_tensorflow_noise():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "train" in result.stdout
    assert result.stderr == ""


@pytest.fixture
def one_image(tmp_path):
    from PIL import Image

    from stl_denoise.data import sample_images

    Image.fromarray(sample_images()["coffee"][:32, :32]).save(tmp_path / "a.png")
    return tmp_path / "a.png"


# Issue 7: every subcommand rejects out-of-range values with one line and exit 2, before writing
# anything.  NaN/inf and negative seeds used to reach Keras or numpy and end in a traceback.
@pytest.mark.parametrize("command, message", [
    (["denoise", "IMAGE", "--tile", "-16"], "--tile/--margin"),
    (["denoise", "IMAGE", "--margin", "-16"], "margin >= 0"),
    (["evaluate", "--images", "IMAGE", "--sigma", "-1"], "--sigma must be in [0, 255]"),
    (["evaluate", "--images", "IMAGE", "--sigma", "nan"], "--sigma must be in [0, 255]"),
    (["evaluate", "--images", "IMAGE", "--sigma", "25", "300"], "--sigma must be in [0, 255]"),
    (["evaluate", "--images", "IMAGE", "--salt-pepper", "1.5"], "--salt-pepper in [0, 1]"),
    (["evaluate", "--images", "IMAGE", "--tile", "-16"], "--tile/--margin"),
    (["evaluate", "--images", "IMAGE", "--seed", "-1"], "--seed must be in [0, 2**32)"),
    (["evaluate", "--images", "/no/such/folder"], "/no/such/folder: no such file or directory"),
    (["train", "--data", "sample", "--momentum", "-1"], "--momentum must be in [0, 1]"),
    (["train", "--data", "sample", "--learning-rate", "inf"], "--learning-rate must be positive and finite"),
    (["train", "--data", "sample", "--learning-rate", "nan"], "--learning-rate must be positive and finite"),
    (["train", "--data", "sample", "--input-range", "inf"], "--input-range must be positive and finite"),
    (["train", "--data", "sample", "--seed", "-1"], "--seed must be in [0, 2**32)"),
    (["train", "--data", "sample", "--steps", "0"], "--steps must be positive"),
    (["train", "--data", "sample", "--gate-factors", "0.1,0.2,0.3"], "--gate-factors needs 4 values"),
    (["train", "--data", "sample", "--gate-factors", "nan,0.2,0.3,0.4"], "--gate-factors must lie in [0, 1]"),
    (["train", "--data", "sample", "--sigma", "nan"], "--sigma must be in [0, 255]"),
    (["train", "--data", "sample", "--sigma-max", "300"], "--sigma-max must lie in [--sigma, 255]"),
    (["transfer", "--data", "digits", "--init", "/no/such/run"], "/no/such/run: no denoiser model.keras there"),
    (["transfer", "--data", "digits", "--init", "truncnormal", "--momentum", "2"], "--momentum must be in [0, 1]"),
    (["transfer", "--data", "digits", "--init", "truncnormal", "--seed", "-1"], "--seed must be in [0, 2**32)"),
    (["transfer", "--data", "digits", "--init", "truncnormal", "--steps", "-3"], "--steps must be positive"),
    (["transfer", "--data", "digits", "--init", "truncnormal", "--learning-rate", "inf"],
     "--learning-rate must be positive and finite"),
    (["pretrain-classify", "--data", "digits", "--pretrained", "/no/such/run"], "/no/such/run: no denoiser"),
    (["figures", "/no/such/run"], "no usable run directory among /no/such/run"),
    (["figures", "/no/such/run", "--skip-first", "-5"], "--skip-first must be >= 0"),
    (["figures", "/no/such/run", "--seed", "-2"], "--seed must be in [0, 2**32)"),
])
def test_every_command_validates_before_work(tmp_path, one_image, capsys, command, message):
    out = tmp_path / "out"
    argv = [str(one_image) if arg == "IMAGE" else arg for arg in command] + ["--out", str(out)]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()  # rejected before anything was written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]



@pytest.mark.skipif(platform.machine().lower() not in X86_MACHINES, reason="oneDNN default applies to x86 CPUs")
@pytest.mark.parametrize("user_value, expected", [(None, True), ("0", False)])
def test_cli_process_runs_with_onednn_unless_the_user_says_no(tmp_path, user_value, expected):
    # TensorFlow enables oneDNN by itself only on AVX-512 VNNI/AMX CPUs: the CLI must turn it on
    # everywhere on x86 (2x on AVX2, issue 12) and leave an explicit TF_ENABLE_ONEDNN_OPTS alone.
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if user_value is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = user_value
    result = subprocess.run(
        [sys.executable, "-m", "stl_denoise", "train", "--data", "sample", "--steps", "2", "--steps-per-epoch", "2",
         "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["environment"]
    assert recorded["onednn"] is expected


def test_parsing_loads_no_tensorflow_and_import_still_registers_the_layers():
    """``--help`` and argument errors need no TensorFlow; ``import stl_denoise`` then ``load_model`` still works."""
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "stl_denoise" / "weights" / "dsc-blind-mixed.keras"
    script = f"""
import sys
from stl_denoise import cli
cli.build_parser().parse_args(["train", "--out", "x"])
assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "the parser loaded TensorFlow"
import stl_denoise
assert "tensorflow" not in sys.modules
import keras
model = keras.saving.load_model({str(shipped)!r})
print(type(model.get_layer("gate_conv1")).__name__)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "GatedSkip"
