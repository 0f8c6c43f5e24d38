"""The project's exception tree: every error a user may see derives from WhoisError."""

from __future__ import annotations


class WhoisError(Exception):
    """Base of every error mfa-whois reports to a person in one line."""


class ConfigError(WhoisError):
    """Missing or malformed configuration; the message names the variable."""


class UnusableNumber(WhoisError, ValueError):
    """Text that is not a phone number we can match on; the message says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImportFileError(WhoisError):
    """An export file that cannot be imported; names the file and line, never a number."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class DatabaseError(WhoisError):
    """The database cannot be reached or its schema is not usable."""
