"""The fixed validation split of an image folder (``--data-split``, ``evaluate --split``).

Hash-based, so the split of a file never depends on which other files exist.
"""

import hashlib
import os
from pathlib import Path

from stl_denoise.errors import DataUnavailableError

VALIDATION_BUCKETS = 10  # 1 in 10 files (about 43 of CBSD432's 432) is held out
DATA_SPLITS = ("all", "train", "validation")  # --data-split / evaluate --split


def is_validation_file(path):
    """True for the fixed ~10% of files held out from training (``--data-split``)."""
    # os.fsencode: the bytes of .encode() for UTF-8 names (the split stays as it was), no crash on other names.
    digest = hashlib.sha256(os.fsencode(Path(path).name)).hexdigest()
    return int(digest, 16) % VALIDATION_BUCKETS == 0


def split_files(files, split):
    """``all`` files, only the ``train`` ones, or only the ``validation`` ones."""
    if split == "all":
        return list(files)
    chosen = [f for f in files if is_validation_file(f) == (split == "validation")]
    if not chosen:
        raise DataUnavailableError(f"no files in the {split} split of {len(files)} image(s)")
    return chosen
