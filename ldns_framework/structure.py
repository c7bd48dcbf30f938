"""Spec sections -> typed config objects, with errors that name the full key path.

Leaf values are structured by a strict cattrs converter (no silent ``"3" -> 3`` or
``3.7 -> 3``); attrs classes are walked here so that every unknown key, wrong type and
out-of-range value is reported with its dotted path and, for typos, a did-you-mean.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import attrs
import cattrs

from ldns_framework.config import COERCE_KEY, did_you_mean, expectation, field_doc, is_required
from ldns_framework.errors import SpecError, SpecErrors, shorten, shown
from ldns_framework.limits import INT64_MAX, INT64_MIN


class _Rejected(ValueError):
    """A value of the right type that no option accepts; its message says why (appended to the error)."""


def _strict_int(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise _Rejected("beyond the 64-bit integer range")
    return value


def _strict_float(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)
    try:
        result = float(value)
    except OverflowError:  # an int too large for a float
        raise _Rejected("beyond the float range") from None
    if not math.isfinite(result):
        raise _Rejected("a finite number is needed")
    return result


def _strict_str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _strict_bool(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(float, _strict_float)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(bool, _strict_bool)
    return converter


_CONVERTER = _make_converter()


def _join(path: str, key: Any) -> str:
    return f"{path}.{shorten(key)}" if path else shorten(key)


def structure_config(cls: type, data: Any, path: str = "") -> Any:
    """Build ``cls`` (a frozen attrs config class) from a mapping; raise :class:`SpecErrors` listing every problem."""
    errors: list[SpecError] = []
    value = _structure_class(cls, data, path, errors)
    if errors:
        raise SpecErrors(errors)
    return value


def _structure_class(cls: type, data: Any, path: str, errors: list[SpecError]) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        errors.append(SpecError(path, f"expected a mapping of {cls.__name__} options, got {shown(data)}"))
        return None
    fields = {f.name: f for f in attrs.fields(attrs.resolve_types(cls))}
    for key in data:
        if key not in fields:
            known = f"known keys: {', '.join(fields)}" if fields else "this section takes no options"
            errors.append(SpecError(_join(path, key), f"unknown key{did_you_mean(key, fields)}; {known}"))
    n_errors = len(errors)
    kwargs = {}
    for name, field in fields.items():
        if name not in data:
            if is_required(field):
                doc = field_doc(field)
                errors.append(SpecError(_join(path, name), "required option missing" + (f" ({doc})" if doc else "")))
            continue
        kwargs[name] = _structure_field(field, data[name], _join(path, name), errors)
    if len(errors) > n_errors or len(kwargs) < sum(1 for k in data if k in fields):
        return None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, ArithmeticError) as exc:  # cross-field checks in __attrs_post_init__
        errors.append(SpecError(path, str(exc)))
        return None


def _structure_field(field: attrs.Attribute, value: Any, path: str, errors: list[SpecError]) -> Any:
    field_type = field.type
    if attrs.has(field_type):
        return _structure_class(field_type, value, path, errors)
    given, coerce = value, field.metadata.get(COERCE_KEY)
    try:
        if coerce is not None and value is not None:
            value = coerce(value)
        result = _CONVERTER.structure(value, field_type)
    except Exception as exc:  # cattrs raises many types; each becomes one line with the path
        errors.append(SpecError(path, f"expected {expectation(field)}, got {shown(given)}{_why(exc)}"))
        return None
    if field.validator is not None:
        try:
            field.validator(None, field, result)
        except (TypeError, ValueError) as exc:
            errors.append(SpecError(path, str(exc)))
            return None
    return result


def _why(exc: Exception) -> str:
    """' (at [1]: a finite number is needed)': where inside a list or tuple the bad element is, and
    why a value of the right type was refused; '' when neither applies."""
    parts = []
    if isinstance(exc, cattrs.BaseValidationError):
        locations = [m.split(" @ $", 1)[1] for m in cattrs.transform_error(exc) if " @ $" in m]
        parts += [f"at {loc}" for loc in locations[:1] if loc]
    rejected = _first_rejection(exc)
    if rejected is not None:
        parts.append(str(rejected))
    return f" ({': '.join(parts)})" if parts else ""


def _first_rejection(exc: BaseException) -> _Rejected | None:
    if isinstance(exc, _Rejected):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _first_rejection(inner)
        if found is not None:
            return found
    return None


def unstructure_config(instance: Any) -> dict[str, Any]:
    """Plain, YAML-ready dict of a config object (tuples become lists)."""
    return _plain(attrs.asdict(instance, recurse=True))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
