"""The counting experiments' inputs: ``--d``/``--m`` style integer lists, the (d, m) grid's checks
and the counting task of one vocabulary size (``interp.tasks.counting``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from interp.errors import ConfigError
from interp.resources import MAX_LIST_VALUES, range_size
from interp.tasks import build_task
from interp.tasks.counting import COUNT_TASKS, _CountTask


def _check_list_size(what: str, n: int) -> None:

    if n > MAX_LIST_VALUES:
        raise ConfigError(f"{what}: {n} values, more than the limit of {MAX_LIST_VALUES:,}")


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """``"8,16,32"``, ``"4..64"`` (every integer) or ``"4..64:4"`` (step), or a mix by commas."""

    values: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        match = re.fullmatch(r"(-?\d+)\.\.(-?\d+)(?::(\d+))?", part)
        if match:
            lo, hi, step = int(match[1]), int(match[2]), int(match[3] or 1)
            if step < 1:
                raise ConfigError(f"{what}: the step in {part!r} must be >= 1")
            if hi < lo:
                raise ConfigError(f"{what}: the range {part!r} is empty")
            _check_list_size(what, len(values) + range_size(lo, hi, step))
            values.extend(range(lo, hi + 1, step))
        elif re.fullmatch(r"-?\d+", part):
            values.append(int(part))
            _check_list_size(what, len(values))
        else:
            raise ConfigError(f"{what}: cannot read {part!r} (use 8,16,32 or 4..64 or 4..64:4)")
    if not values:
        raise ConfigError(f"{what}: the list {text!r} is empty")
    return tuple(sorted(set(values)))


def _check_grid(task: str, d_values: Sequence[int], m_values: Sequence[int], n: int | None) -> None:
    if task not in COUNT_TASKS:
        raise ConfigError(f"unknown counting task {task!r}; choose {' or '.join(COUNT_TASKS)}")
    if not d_values:
        raise ConfigError("the list of d values is empty")
    if not m_values:
        raise ConfigError("the list of m values is empty")
    if min(m_values) < 2:
        raise ConfigError(f"m must be >= 2 (got {min(m_values)}): counting needs two tokens")
    if min(d_values) < 1:
        raise ConfigError(f"d must be >= 1, got {min(d_values)}")
    if n is not None and n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")


def _task(task: str, m: int, n: int | None, sampling: str, query: str) -> _CountTask:
    options: dict[str, Any] = {"m": m, "n": n, "sampling": sampling}
    if task == "qc":
        options["query"] = query
    built = build_task(task, options)
    assert isinstance(built, _CountTask)
    return built
