"""The README's code map is enough: a toy noise type and a toy setting, added by its edits alone.

A temporary copy of the package gets exactly the edits the map names (a
``NoiseSettings`` field and its draw in ``add_noise``; one ``TrainConfig``
field), and the copy's command line then shows their flags, records them in
config.json, restores them on a ``--config`` rerun and draws the new noise.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _edit(path, anchor, insertion, before=False):
    text = path.read_text()
    assert text.count(anchor) == 1, f"{path.name}: the map's anchor {anchor!r} moved"
    path.write_text(text.replace(anchor, insertion + anchor if before else anchor + insertion))


@pytest.mark.slow
def test_the_code_map_edits_add_a_noise_type_and_a_setting(tmp_path):
    readme = (ROOT / "README.md").read_text()
    code_map = readme[readme.index("## Code map"):]
    noise_row = next(line for line in code_map.splitlines() if line.startswith("| a noise type |"))
    setting_row = next(line for line in code_map.splitlines() if line.startswith("| a setting |"))
    assert "`config.py`" in noise_row and "`noise.py`" in noise_row and "`cli.py`" not in noise_row
    assert "`config.py`" in setting_row and "`cli.py`" not in setting_row

    package = tmp_path / "copy" / "stl_denoise"
    shutil.copytree(ROOT / "stl_denoise", package, ignore=shutil.ignore_patterns("weights", "__pycache__"))
    # The noise type: a field of NoiseSettings, and its draw in add_noise.
    quality_max = '    jpeg_quality_max: int = setting(JPEG_QUALITY_RANGE[1], "(default %(default)s)")\n'
    _edit(package / "config.py", quality_max,
          '    toy_offset: float = setting(0.0, "toy noise: add this to every noisy pixel (default %(default)g)")\n')
    _edit(package / "noise.py", "    if box is not None:\n        mask = _box_mask",
          "    if noise.toy_offset:\n        noisy = noisy + noise.toy_offset\n", before=True)
    # The setting: one field.
    _edit(package / "config.py", '    init_from: str | None = setting(',
          '    toy_note: str | None = setting(None, "toy setting: a note kept with the run")\n', before=True)

    env = {**os.environ, "PYTHONPATH": str(package.parent)}
    python = [sys.executable, "-m", "stl_denoise"]
    shown = subprocess.run([*python, "train", "--help"], capture_output=True, text=True, env=env, check=True,
                           cwd=tmp_path).stdout
    assert "--toy-offset" in shown and "toy noise: add this" in shown and "--toy-note" in shown

    run = tmp_path / "run"
    trained = subprocess.run([*python, "train", "--data", "sample", "--steps", "1", "--batch-size", "2",
                              "--crop-size", "32", "--toy-offset", "3", "--toy-note", "hello", "--out", str(run)],
                             capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    recorded = json.loads((run / "config.json").read_text())["config"]
    assert (recorded["toy_offset"], recorded["toy_note"]) == (3.0, "hello")

    check = f"""
import numpy as np
from stl_denoise import cli
from stl_denoise.noise import ImageNoise
argv = ["train", "--config", {str(run)!r}, "--out", "again"]
config = cli.config_from_args(cli.build_parser(*cli.defaults_from_argv(argv)).parse_args(argv))
assert (config.toy_offset, config.toy_note) == (3.0, "hello"), config
layer = ImageNoise(**dict(config.noise, sigma=0.0, salt_pepper=0.0), seed=0)
assert np.allclose(np.asarray(layer(np.full((1, 16, 16, 3), 100.0, "float32"))), 103.0)
print("restored")
"""
    rerun = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=300,
                           cwd=tmp_path)
    assert rerun.returncode == 0 and "restored" in rerun.stdout, rerun.stderr
