"""Options every command shares, defined once (name, type, help) and reused by annotation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from interp.models.positional import positional_names
from interp.tasks import task_names

ENCODINGS = ", ".join(positional_names())  # help listings come from the registries
TASKS = ", ".join(task_names())

Out = Annotated[Path | None, typer.Option(help="Run directory (default runs/<command>-<time>).")]
Resume = Annotated[bool, typer.Option(help="Continue the run in --out where it stopped.")]
Overwrite = Annotated[bool, typer.Option(help="Replace an existing run in --out.")]
Report = Annotated[bool, typer.Option(help="Write report.html.")]
Json = Annotated[
    bool, typer.Option("--json", help="Print the results as JSON on stdout (nothing else there).")
]
Device = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or mps.")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
Model = Annotated[
    str | None,
    typer.Option(help="Run dir, HF dir or hub name (default: the cached demo model)."),
]
Pe = Annotated[str, typer.Option("--pe", help=f"Positional encoding: {ENCODINGS}.")]
PeOption = Annotated[
    list[str] | None,
    typer.Option("--pe-option", help="Positional-encoding option KEY=VALUE (repeatable)."),
]
TaskName = Annotated[
    str | None, typer.Option("--task", help=f"Train on a registered synthetic task: {TASKS}.")
]
Executor = Annotated[
    str,
    typer.Option(
        help="Where the sweep's groups train: local (this process, batched) or ray (one Ray "
        "task each; pip install -e '.[ray]'). The cells are the same on each."
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        help="With --executor ray: the cluster to join (ray://HOST:10001 or HOST:6379; "
        "default: a local one with this machine's CPUs)."
    ),
]
TaskOption = Annotated[
    list[str] | None, typer.Option("--task-option", "-o", help="Task option KEY=VALUE.")
]

__all__ = [
    "Device",
    "Executor",
    "Json",
    "Model",
    "Out",
    "Overwrite",
    "ENCODINGS",
    "Pe",
    "PeOption",
    "RayAddress",
    "Report",
    "Resume",
    "Seed",
    "TASKS",
    "TaskName",
    "TaskOption",
]
