"""Errors a user can act on.

Every error raised for bad input derives from :class:`LdnsError`; the CLI prints its message
on one line and exits with status 2, without a traceback (``--debug`` shows one).
"""

from __future__ import annotations


class LdnsError(Exception):
    """Base class of all user-facing errors (bad spec, bad data, missing plugin)."""


class SpecError(LdnsError):
    """A spec key is unknown, ill-typed or out of range; ``path`` is its dotted location."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.detail = message
        super().__init__(f"{path}: {message}" if path else message)


class SpecErrors(LdnsError):
    """Several spec errors found in one pass; printed one per line."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class DataError(LdnsError):
    """Spike data failed validation; ``field`` names the offending field or file."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.detail = message
        super().__init__(f"{field}: {message}")


class PluginError(LdnsError):
    """A plugin could not be loaded, conflicts with another one, or is missing."""
