"""The environment recorded beside every run: versions and the code's git revision."""

import platform
import subprocess
import sys
from pathlib import Path


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
