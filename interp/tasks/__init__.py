"""Registered synthetic tasks (one file each)."""

# one module per task; importing registers it
from interp.tasks import (  # noqa: F401
    copy,
    count_vars,
    counting,
    flipflop,
    modadd,
    precache,
    selective_copy,
    sparse_parity,
)
from interp.tasks.base import Batch, Task, build_task, lm_batch, register_task, task_names

__all__ = ["Batch", "Task", "build_task", "lm_batch", "register_task", "task_names"]
