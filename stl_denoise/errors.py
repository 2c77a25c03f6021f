"""Errors a user can fix: the CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """Bad input or missing data; the message says what and how to fix it."""

    exit_code = 2


class DataUnavailableError(UserError):
    """A data source cannot be read or fetched."""


class TrainingDivergedError(UserError):
    """The loss became NaN or infinite."""

    exit_code = 3
