"""The options a command runs a task with when the user names none: one table for every command.

The tasks' own defaults (:mod:`interp.tasks`) are the papers' sizes; a command whose default run
must show its effect on a CPU in minutes takes smaller ones here, under the options given
(``-o``/``--task-option`` always win).  The configs take ``task_options`` as they are: the merge
happens where a config is built from a command's options (the CLI and :mod:`interp.api`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

COMMAND_TASK_OPTIONS: Mapping[tuple[str, str], Mapping[str, Any]] = MappingProxyType({
    # sin(3x) over 32 positions is what ``interp reproduce precache`` learns on a CPU (the paper's
    # sin(10x) is -o frequency=10, and -o length=64 the task's own length)
    ("precache", "precache"): MappingProxyType({"frequency": 3.0, "length": 32}),
    # Flip-Flop at 16 instructions: every encoding learns it within pe-bench's default steps on a
    # CPU; the paper's 256 is -o length=256
    ("pe-bench", "flipflop"): MappingProxyType({"length": 16}),
})  # fmt: skip


def command_task_options(
    command: str, task: str | None, given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``task``'s options for ``command``: the table's defaults under the ``given`` ones."""
    defaults = COMMAND_TASK_OPTIONS.get((command, task or ""), {})
    return {**defaults, **(given or {})}


__all__ = ["COMMAND_TASK_OPTIONS", "command_task_options"]
