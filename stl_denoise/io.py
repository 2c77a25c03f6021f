"""Atomic file output: write beside the target, then rename over it.

A crash or kill mid-write leaves either the old file or the new one, never a
truncated one.
"""

import contextlib
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the same folder; rename it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real suffix: Keras picks the format from it (.keras, .weights.h5).
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix="".join(path.suffixes))
    os.close(handle)
    # mkstemp makes the file private (0600); give it the usual umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp, 0o666 & ~umask)
    try:
        yield temp
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def write_text(path, text):
    with atomic_path(path) as temp:
        Path(temp).write_text(text)


def write_json(path, value):
    write_text(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def save_model(model, path):
    with atomic_path(path) as temp:
        model.save(temp)


def save_weights(model, path):
    with atomic_path(path) as temp:
        model.save_weights(temp)
