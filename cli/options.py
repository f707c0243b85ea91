"""Options every command shares, defined once (name, type, help) and reused by annotation."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from interp.errors import ConfigError
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
Device = Annotated[
    str, typer.Option(help="Where to compute: cpu, cuda, cuda:N or mps (checked before any work).")
]
Seed = Annotated[int, typer.Option(help="Random seed.")]
SEEDS_HELP = "Seeds, a list: 0,1,2 or a range 0..4 (the one seed N: N..N)."
Seeds = Annotated[str, typer.Option(help=SEEDS_HELP)]
# where --seeds used to be a count (precache, grok sweep): a bare N still means 0..N-1, with a
# deprecation line; "N," or "N..N" is the one seed N there (see parse_seeds)
CountedSeeds = Annotated[
    str, typer.Option(help=f"{SEEDS_HELP} Deprecated: a bare N (once a count) means 0..N-1.")
]
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
        "task each; needs the optional ray extra). The cells are the same on each."
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


def deprecated_line(old: str, new: str) -> str:
    return f"{old} is deprecated; use {new}"


def renamed(old: str, new: str, value: Any, current: Any, default: Any) -> Any:
    """The value of ``new`` given the deprecated spelling ``old``'s ``value`` (None: not given):
    says one line on stderr when ``old`` was used; both given is refused."""
    if value is None:
        return current
    if current != default:
        raise ConfigError(f"give {new}, not both {new} and {old}")
    typer.echo(deprecated_line(old, new), err=True)
    return value


def Deprecated(old: str, new: str, annotation: Any = str) -> Any:  # noqa: N802 - a type
    """A hidden option ``old`` kept for the spelling it had before ``new`` (pass it, with
    the new option's value, through :func:`renamed`)."""
    return Annotated[
        annotation | None, typer.Option(old, hidden=True, help=f"Deprecated: use {new}.")
    ]


def parse_seeds(
    text: str,
    option: str = "--seeds",
    counted: bool = False,
    check: Callable[[int], Any] | None = None,
) -> tuple[int, ...]:
    """``"0,1,2"`` / ``"0..4"`` -> the seeds (distinct, >= 0).  With ``counted`` (where
    ``--seeds`` once was a count) a bare integer N means 0..N-1 and says it is deprecated;
    ``check(N)`` refuses a count too large before the seeds are built (default: at most
    ``MAX_MODELS`` runs)."""
    from interp.analysis.counting import parse_int_list

    text = str(text).strip()
    if counted and re.fullmatch(r"\d+", text):
        n = int(text)
        if n < 1:
            raise ConfigError(f"{option} must name at least one seed, got {text!r}")
        from interp.resources import MAX_MODELS, check_limit

        if check is None:
            check_limit(n, option, MAX_MODELS, "runs")  # before the list is built
        else:
            check(n)
        last = f"0..{n - 1}" if n > 1 else "0,"
        typer.echo(
            deprecated_line(f"{option} N (a count)", f"{option} {last} (a list of seeds)"),
            err=True,
        )
        return tuple(range(n))
    seeds = parse_int_list(text, option)
    if any(s < 0 for s in seeds):
        raise ConfigError(f"{option}: seeds must be >= 0, got {text!r}")
    return seeds


__all__ = [
    "CountedSeeds",
    "Deprecated",
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
    "Seeds",
    "TASKS",
    "TaskName",
    "TaskOption",
    "parse_seeds",
    "renamed",
]
