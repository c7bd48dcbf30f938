"""Typed, documented config fields for components and spec sections.

A config class is a frozen attrs class whose fields are made with :func:`option`. The field's
``doc`` feeds the generated spec reference (``ldns spec-docs``); its bounds feed validation,
whose message says what was expected (``expected int >= 1, got 0``).
"""

from __future__ import annotations

import difflib
import math
import typing
from typing import Any, Callable, Iterable

import attrs

from ldns_framework.errors import MAX_ECHO, shown

DOC_KEY = "ldns_doc"
BOUNDS_KEY = "ldns_bounds"
CHOICES_KEY = "ldns_choices"
COERCE_KEY = "ldns_coerce"


def _bounds_text(ge: float | None, gt: float | None, le: float | None, lt: float | None) -> str:
    parts = [f"{op} {v}" for op, v in ((">=", ge), (">", gt), ("<=", le), ("<", lt)) if v is not None]
    return " and ".join(parts)


def type_label(annotation: Any) -> str:
    """Readable name of a field's type, whether attrs holds it as a string or an object."""
    if isinstance(annotation, str):
        return annotation
    if typing.get_args(annotation) or not hasattr(annotation, "__name__"):
        return str(annotation).replace("typing.", "").replace("NoneType", "None")
    return annotation.__name__


def did_you_mean(word: Any, options: Iterable[Any]) -> str:
    """' (did you mean 'x'?)' for the closest option, or '' when nothing is close (or ``word`` is
    too long to be a typo: difflib's cost grows with the product of the lengths)."""
    if not isinstance(word, str) or len(word) > 2 * MAX_ECHO:
        return ""
    close = difflib.get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _make_validator(bounds: str, ge, gt, le, lt, choices) -> Callable[[Any, Any, Any], None] | None:
    if not bounds and choices is None:
        return None

    def check(_instance: Any, attribute: Any, value: Any) -> None:
        if value is None:
            return
        items = value if isinstance(value, (tuple, list)) else (value,)
        for item in items:
            if isinstance(item, bool) and choices is None:
                raise ValueError(f"expected {expectation(attribute)}, got {shown(value)}")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"expected a finite {expectation(attribute)}, got {shown(value)}")
            ok = choices is None or item in choices
            ok = ok and (ge is None or item >= ge) and (gt is None or item > gt)
            ok = ok and (le is None or item <= le) and (lt is None or item < lt)
            if not ok:
                hint = did_you_mean(item, choices) if choices is not None else ""
                raise ValueError(f"expected {expectation(attribute)}, got {shown(value)}{hint}")

    return check


def option(
    default: Any = attrs.NOTHING,
    *,
    doc: str,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Iterable[Any] | None = None,
    factory: Callable[[], Any] | None = None,
    coerce: Callable[[Any], Any] | None = None,
) -> Any:
    """An attrs field with a documented default and range/choice checks.

    Without ``default`` (and ``factory``) the option is required: a spec must give it, and a
    spec that does not gets ``section.key: required option missing (doc)``. A required field is
    keyword-only, so it may follow fields with defaults.

    ``coerce`` converts a spec value before type checking (e.g. ``str`` so that ``precision: 32``
    reads as ``"32"``); without it, values must already have the field's type.
    """
    choices = tuple(choices) if choices is not None else None
    bounds = _bounds_text(ge, gt, le, lt)
    metadata = {DOC_KEY: doc, BOUNDS_KEY: bounds, CHOICES_KEY: choices, COERCE_KEY: coerce}
    validator = _make_validator(bounds, ge, gt, le, lt, choices)
    if factory is not None:
        return attrs.field(factory=factory, validator=validator, metadata=metadata)
    if default is attrs.NOTHING:
        return attrs.field(validator=validator, metadata=metadata, kw_only=True)
    return attrs.field(default=default, validator=validator, metadata=metadata)


def is_required(field: attrs.Attribute) -> bool:
    """True for an option declared without a default: a spec must give it."""
    return field.default is attrs.NOTHING


def field_doc(field: attrs.Attribute) -> str:
    return field.metadata.get(DOC_KEY, "")


def expectation(field: attrs.Attribute) -> str:
    """What a valid value of ``field`` looks like, e.g. ``int >= 1`` or ``one of 'a', 'b'``."""
    choices = field.metadata.get(CHOICES_KEY)
    if choices is not None:
        return "one of " + ", ".join(repr(c) for c in choices)
    bounds = field.metadata.get(BOUNDS_KEY, "")
    return " ".join(p for p in (type_label(field.type), bounds) if p)


@attrs.frozen
class NoOptions:
    """Config of a component (or sampler) that has no options (here, without torch, so that a
    registration can name it as its ``config`` and a spec validates without importing torch)."""
