"""Comma-separated option values (``--seeds 0,1,2``), parsed with one-line errors."""

from __future__ import annotations

import math

from interp.errors import ConfigError


def float_list(text: str, option: str) -> tuple[float, ...]:
    """``"0.1, 1"`` -> (0.1, 1.0); at most ``MAX_LIST_VALUES`` values; NaN/inf refused."""
    from interp.resources import MAX_LIST_VALUES, check_limit

    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} must be comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{option} must be finite numbers, got {text!r}")
    check_limit(len(values), f"{option} with", MAX_LIST_VALUES, "values")
    return values


def int_list(text: str, option: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> (0, 1, 2); at most ``MAX_LIST_VALUES`` values."""
    from interp.resources import MAX_LIST_VALUES, check_limit

    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} must be comma-separated integers, got {text!r}") from None
    check_limit(len(values), f"{option} with", MAX_LIST_VALUES, "values")
    return values
