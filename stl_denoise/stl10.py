"""STL-10's TFDS copy: found prepared, or downloaded, failing within seconds when offline.

tfds itself retries an offline download for minutes; ``stl10_builder``
checks for a prepared copy, then whether the download host answers.
"""

import os
import socket
import threading

from stl_denoise.errors import DataUnavailableError


def _stl10_host():
    """Where tfds downloads stl10_binary.tar.gz (overridable for tests)."""
    host, _, port = os.environ.get("STL_DENOISE_STL10_HOST", "ai.stanford.edu:80").rpartition(":")
    return host, int(port)


STL10_HOST = _stl10_host()
STL10_FIX = (
    "run `make stl10` (or `stl-denoise download-stl10`) on a connected machine and copy "
    "its TFDS data dir here, point TFDS_DATA_DIR at a prepared copy, or train offline "
    "with DATA=sample (bundled photographs) or DATA=/path/to/images"
)


def _reachable(host_port, timeout=3.0):
    """True if a TCP connection opens within ``timeout`` (DNS included)."""
    result = []

    def connect():
        try:
            socket.create_connection(host_port, timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    # DNS lookups ignore socket timeouts; a daemon thread bounds them too.
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result)


def stl10_builder(data_dir=None, download=True):
    """The tfds ``stl10`` builder, prepared; fails fast when it cannot be."""
    import tensorflow_datasets as tfds

    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
    builder = tfds.builder("stl10", data_dir=data_dir)
    if builder.is_prepared():
        return builder
    where = builder.data_dir_root
    if not download:
        raise DataUnavailableError(f"STL-10 is not prepared in {where}: {STL10_FIX}")
    if not _reachable(STL10_HOST):
        raise DataUnavailableError(
            f"STL-10 is not prepared in {where} and {STL10_HOST[0]} cannot be reached: {STL10_FIX}"
        )
    builder.download_and_prepare()
    return builder
