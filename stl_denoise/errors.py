"""Errors a user can fix: the CLI prints them as one line and exits non-zero."""

import contextlib
import errno
import os
import re
import signal
import threading


class UserError(Exception):
    """Bad input or missing data; the message says what and how to fix it."""

    exit_code = 2


class DataUnavailableError(UserError):
    """A data source cannot be read or fetched."""


class TrainingDivergedError(UserError):
    """The loss became NaN or infinite."""

    exit_code = 3


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# TensorFlow wraps op errors in "{{function_node ...}} ... [Op:DecodeImage]": noise around the reason.
_TF_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:[^\]]*\](\s*name:\s*\S*)?")


def first_line(error, limit=200):
    """The first non-empty line of a library's error, without ANSI colour codes (Keras prints them)."""
    text = _TF_NOISE.sub("", _ANSI.sub("", str(error)))
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return (line[:limit] + "...") if len(line) > limit else (line or type(error).__name__)


def printable(text):
    """``text`` safe for a one-line message on any terminal.

    File names may hold newlines, carriage returns or escape sequences (which
    would forge or hide lines) and bytes that are not UTF-8 (which Python
    carries as lone surrogates and a strict UTF-8 stdout refuses); both are
    shown as backslash escapes.
    """
    text = str(text)
    if text.isprintable():  # the usual case; lone surrogates are not printable
        return text
    shown = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            shown.append(f"\\x{code - 0xDC00:02x}")
        elif char.isprintable():
            shown.append(char)
        else:
            shown.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(shown)


DISK_FULL_FIX = ("free space on that disk (or choose an --out on another) and run the same command again: "
                 "nothing half-written is left, and a training run resumes from its last backup")


def disk_full(error):
    return getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT)


def os_error_reason(error):
    # Some libraries (h5py) put pages of detail into strerror: for a full disk the system's words are enough.
    return os.strerror(error.errno) if disk_full(error) else first_line(error.strerror or error)


def os_error_line(error):
    """One line for a file-system refusal: the file, the reason and, for a full disk, the fix."""
    line = (f"{printable(error.filename)}: " if error.filename else "") + os_error_reason(error)
    return line + ("; " + DISK_FULL_FIX if disk_full(error) else "")


def printing_never_fails(*streams):
    """Show characters the terminal's encoding lacks as backslash escapes instead of failing.

    ``PYTHONIOENCODING=ascii`` or a C locale would otherwise make a line
    naming ``sortie_é`` raise UnicodeEncodeError after the work was done.
    """
    for stream in streams:
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):  # not a text file (a StringIO in tests), or closed
            pass


class Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler, ``docker stop``, ``kill``), raised where Ctrl-C would be.

    Python's default for SIGTERM ends the process on the spot, leaving
    temporary files behind; raised as an exception it unwinds like Ctrl-C:
    ``finally`` blocks remove temporaries, and backups already written stay.
    """

    exit_code = 128 + signal.SIGTERM


@contextlib.contextmanager
def sigterm_stops_like_ctrl_c():
    """Within the block, SIGTERM raises ``Terminated`` (unless someone else already handles it)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
