"""Printing the command line's lines: escaped, and surviving a reader that went away (no TensorFlow)."""

import os
import sys

from stl_denoise.errors import printable


def say(line, stream=None):
    """Print one line, escaped (names may hold newlines, escapes or non-UTF-8 bytes); survive a closed pipe.

    ``denoise ... | head -n 1``: once the reader is gone, the rest of the
    output goes nowhere, but the work goes on and the exit status still
    tells whether every file was done.
    """
    stream = stream or sys.stdout
    try:
        print(printable(line), file=stream, flush=True)
    except BrokenPipeError:
        discard(stream)


def discard(stream):
    """Point ``stream``'s descriptor at /dev/null (what was buffered for the closed pipe goes too)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no descriptor (e.g. a StringIO in tests)
        pass
