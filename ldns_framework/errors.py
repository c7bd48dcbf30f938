"""Errors a user can act on, and the helpers that keep their messages short.

Every error raised for bad input derives from :class:`LdnsError`; the CLI prints its message
on one line and exits with status 2, without a traceback (``--debug`` shows one).

A message echoes what the user gave, but never whole: a value is shown with :func:`shown` (a
bounded repr, cheap even for a huge nested structure) and a key or other text with
:func:`shorten`, a path with :func:`shown_path`. As a last guard, ``str()`` of any :class:`LdnsError` is cut to
:data:`MAX_LINES` lines of at most :data:`MAX_LINE` characters each.
"""

from __future__ import annotations

import reprlib
from typing import Any

#: Longest echo of one value (or key) inside a message.
MAX_ECHO = 80
#: Longest line of an error message, and most lines (a :class:`SpecErrors` lists one per line).
MAX_LINE = 1000
MAX_LINES = 25


class _BoundedRepr(reprlib.Repr):
    """reprlib with small limits, and no full ``repr`` of huge ints (Python refuses > 4300 digits)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple, self.maxset = 3, 4, 6, 6, 6
        self.maxstring, self.maxlong, self.maxother = MAX_ECHO, 40, MAX_ECHO

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_REPR = _BoundedRepr()


def shorten(text: Any, limit: int = MAX_ECHO) -> str:
    """A key or other text for a message: on one line, cut to ``limit`` characters with a marker
    saying how long it was. Anything but a string is shown as :func:`shown` shows a value."""
    if not isinstance(text, str):
        return shown(text)
    one_line = text[: limit + 1]
    if not one_line.isprintable():  # line breaks and control characters, escaped as repr does
        one_line = repr(one_line)[1:-1]
    return one_line if len(text) <= limit else f"{one_line[: limit - 20]}... ({len(text)} chars)"


def shown_path(path: Any, limit: int = 4 * MAX_ECHO) -> str:
    """A path for a message: whole up to ``limit`` characters, else its start and its end (the
    file name is the part a user needs to recognise), on one line."""
    text = str(path)
    if len(text) <= limit:
        return shorten(text, limit)
    return f"{shorten(text[: limit // 4], limit)}...{shorten(text[-(limit // 2):], limit)}"


def shown(value: Any) -> str:
    """A bounded, one-line repr of a user's value for an error message (``'abc'``, ``[1, 2, ...]``)."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a value whose repr itself fails is still named by its type
        text = f"<{type(value).__name__}>"
    return shorten(text, 2 * MAX_ECHO)


def _bounded(message: str) -> str:
    lines = message.splitlines() or [""]
    kept = [line if len(line) <= MAX_LINE else f"{line[: MAX_LINE - 30]}... ({len(line)} chars)"
            for line in lines[:MAX_LINES]]
    if len(lines) > MAX_LINES:
        kept.append(f"... and {len(lines) - MAX_LINES} more")
    return "\n".join(kept)


class LdnsError(Exception):
    """Base class of all user-facing errors (bad spec, bad data, missing plugin)."""

    def __str__(self) -> str:
        return _bounded(super().__str__())


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
