import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stl_denoise.config import TrainConfig
from stl_denoise.errors import UserError

SCRIPT = Path(__file__).parent / "scripts" / "replicas.py"


def test_two_replicas_follow_the_single_device_curve(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                            timeout=400, cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    curves = json.loads(result.stdout.strip().splitlines()[-1])
    single, mirrored = np.array(curves["none"]), np.array(curves["mirrored"])
    assert len(single) == len(mirrored) == 20
    # Same data and global batch; each replica draws its own noise, so the
    # curves agree closely but not bit for bit.
    np.testing.assert_allclose(mirrored, single, rtol=0.05)


def test_unknown_strategy_is_refused():
    with pytest.raises(UserError, match="--strategy"):
        TrainConfig(strategy="tpu").validate()
