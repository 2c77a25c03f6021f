"""Errors a user can fix: the CLI prints them as one line and exits non-zero."""

import re


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
