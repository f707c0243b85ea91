"""Options of a registered component (a positional encoding, a task), read from a mapping into
its frozen options dataclass.  Below :mod:`interp.config` and every registry that uses it
(``interp.models.positional``, ``interp.tasks``), so none of them imports another to parse."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from interp.errors import ConfigError


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expected(annotation: Any, value: Any) -> str | None:
    """None when ``value`` fits ``annotation`` (a field type of an options dataclass), else
    what was expected ("an integer", "true or false", ...).  Unknown annotations accept all."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        wants = [_expected(a, value) for a in args]
        return None if any(w is None for w in wants) else " or ".join(w for w in wants if w)
    if annotation is type(None):
        return None if value is None else "null"
    if annotation is bool:
        return None if isinstance(value, bool) else "true or false"
    if annotation is int:
        return None if _is_int(value) else "an integer"
    if annotation is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok and math.isfinite(value) else "a finite number"
    if annotation is str:
        return None if isinstance(value, str) else "a string"
    if origin is Literal:
        return (
            None
            if value in args and isinstance(value, str)
            else ("one of " + ", ".join(repr(a) for a in args))
        )
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return "a list"
        item = args[0] if args else Any
        wants = [_expected(item, v) for v in value]
        bad = next((w for w in wants if w is not None), None)
        return None if bad is None else f"a list of {bad.removeprefix('an ').removeprefix('a ')}s"
    return None


def parse_options(options_cls: type, given: Mapping[str, Any], what: str) -> Any:
    """Build a frozen options dataclass from a mapping; unknown keys and bad values -> ConfigError.

    Every value is checked against its field's type first (JSON gives ``true`` and ``8.5`` as
    easily as ``8``): a bool is not an integer, a non-integer is not an integer, NaN is not a
    number; the error names the option.  ``what`` names the owner in messages, e.g.
    ``"task 'copy'"`` or ``"positional encoding 'rope'"``.
    """
    fields = {f.name for f in dataclasses.fields(options_cls)}
    unknown = sorted(set(given) - fields)
    if unknown:
        allowed = ", ".join(sorted(fields)) or "none"
        raise ConfigError(f"{what} has no option(s) {', '.join(unknown)} (allowed: {allowed})")
    try:
        hints = typing.get_type_hints(options_cls)
    except (NameError, TypeError):  # an annotation that cannot be resolved: no type check
        hints = {}
    for name, value in given.items():
        expected = _expected(hints.get(name, Any), value)
        if expected is not None:
            raise ConfigError(f"{what}: option {name} must be {expected}, got {_short_repr(value)}")
    try:
        return options_cls(**dict(given))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}: {e}") from e
