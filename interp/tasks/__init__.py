"""Registered synthetic tasks (one file each)."""

from interp.tasks import copy, count_vars, flipflop, precache, selective_copy  # noqa: F401  (registration)
from interp.tasks.base import Batch, Task, build_task, lm_batch, register_task, task_names

__all__ = ["Batch", "Task", "build_task", "lm_batch", "register_task", "task_names"]
