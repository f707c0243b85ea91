"""The shapes saved sweep cells must have, and the one reader that checks them
(:func:`read_cell`): a cell that does not parse, has another shape, or fails its sweep's own
check is refused with one line naming the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from interp.errors import CorruptFileError
from interp.io import read_json

# Sweeps save each finished cell (a model, a batched group) as one atomic JSON file and skip it
# on --resume.  A kill never leaves a malformed cell (atomic writes), so one that parses but
# holds the wrong content was edited or damaged by something else: it is refused with one line
# naming the file, not silently recomputed (that would hide the damage and destroy the file);
# deleting it is the one step that recomputes it.


class Num:
    """A finite number in ``[lo, hi]`` (an int or a float, never a bool); ``none``: or null."""

    def __init__(self, lo: float = -float("inf"), hi: float = float("inf"), none: bool = False):
        self.lo, self.hi, self.none = lo, hi, none

    def __repr__(self) -> str:
        bounds = (
            ""
            if self.lo == -float("inf") and self.hi == float("inf")
            else f" in [{self.lo:g}, {self.hi:g}]"
        )
        return f"a number{bounds}" + (" or null" if self.none else "")


class ListOf:
    def __init__(self, item: Any, length: int | None = None) -> None:
        self.item, self.length = item, length


class MapOf:
    """A JSON object with any (string) keys, every value of one shape."""

    def __init__(self, value: Any) -> None:
        self.value = value


class OneOf:
    def __init__(self, *values: Any) -> None:
        self.values = values


class ShapeError(ValueError):
    pass


def _describe(spec: Any) -> str:
    if spec is int:
        return "an integer"
    if spec is str:
        return "a string"
    if isinstance(spec, OneOf):
        return "one of " + ", ".join(repr(v) for v in spec.values)
    if isinstance(spec, ListOf):
        return "a list" + (f" of {spec.length}" if spec.length is not None else "")
    if isinstance(spec, dict | MapOf):
        return "an object"
    return repr(spec)


def check_shape(value: Any, spec: Any, where: str = "") -> None:
    """Raise :class:`ShapeError` (naming the field) unless ``value`` has the shape ``spec``:
    ``int``, ``str``, :class:`Num`, :class:`OneOf`, :class:`ListOf`, :class:`MapOf`, or a dict of
    required keys (other keys are allowed) to their shapes."""
    field = where or "the file"
    if spec is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif spec is str:
        ok = isinstance(value, str)
    elif isinstance(spec, Num):
        real = isinstance(value, int | float) and not isinstance(value, bool)
        ok = (value is None and spec.none) or (
            real and value == value and spec.lo <= value <= spec.hi  # NaN fails value == value
        )
    elif isinstance(spec, OneOf):
        ok = any(value == v and type(value) is type(v) for v in spec.values)
    elif isinstance(spec, ListOf):
        ok = isinstance(value, list) and (spec.length is None or len(value) == spec.length)
        if ok:
            for i, item in enumerate(value):
                check_shape(item, spec.item, f"{where}[{i}]")
    elif isinstance(spec, MapOf):
        ok = isinstance(value, dict)
        if ok:
            for key, item in value.items():
                check_shape(item, spec.value, f"{where}.{key}" if where else str(key))
    elif isinstance(spec, dict):
        ok = isinstance(value, dict)
        if ok:
            for key, sub in spec.items():
                if key not in value:
                    raise ShapeError(f"{field} has no {key!r}")
                check_shape(value[key], sub, f"{where}.{key}" if where else key)
    else:  # pragma: no cover - a bad spec is a bug
        raise TypeError(f"unknown shape {spec!r}")
    if not ok:
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ShapeError(f"{field} is {shown}, not {_describe(spec)}")


RECOMPUTE = "delete it to recompute it on --resume"


def read_cell(
    path: Path,
    what: str,
    spec: Any,
    check: Callable[[Any], None] | None = None,
    remedy: str = RECOMPUTE,
) -> Any:
    """A saved cell read back and validated: its JSON parses, has the shape ``spec``, and passes
    ``check`` (which raises :class:`ShapeError`, say, for a cell of another grid point); else
    one line naming the file and ``remedy`` (:class:`~interp.errors.CorruptFileError`)."""
    cell = read_json(path, what)
    try:
        check_shape(cell, spec)
        if check is not None:
            check(cell)
    except ShapeError as e:
        raise CorruptFileError(f"{what} {path} is malformed ({e}); {remedy}") from None
    return cell
