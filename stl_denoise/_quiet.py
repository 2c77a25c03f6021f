"""Import TensorFlow without its C++ start-up chatter.

TensorFlow 2.21 writes oneDNN/CUDA/CPU-feature notices from C++ before absl
logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them; the
only reliable way is to point file descriptor 2 at /dev/null while the shared
libraries load.  Python-level errors raised by the import are still shown
because the descriptor is restored before they propagate.
"""

import contextlib
import os
import platform
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

X86_MACHINES = ("x86_64", "amd64", "i386", "i686", "x86")
# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512
# VNNI/BF16 or AMX; on AVX2-only x86 CPUs they train this network ~1.85x faster
# (measured in docs/performance.md).  It reads the variable once, when its
# libraries load, so it must be set before the first ``import tensorflow``;
# a value the user exported wins.
if platform.machine().lower() in X86_MACHINES:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def onednn_enabled():
    """Whether this process's TensorFlow runs its oneDNN kernels (None if unknown)."""
    import_tensorflow()
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # private module: moved in some future TensorFlow
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


@contextlib.contextmanager
def silenced_stderr_fd():
    if os.environ.get("STL_DENOISE_VERBOSE_TF"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. some notebook kernels)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with silenced_stderr_fd():
        import tensorflow as tf

        # The CPU-feature notice is printed lazily by the first op.  A multi-worker process must
        # configure its collective ops before the first op, so it runs none here.
        if not os.environ.get("TF_CONFIG"):
            tf.constant(0.0) + 1.0
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    tf.get_logger().setLevel("ERROR")
    return tf
