"""Progress bars for long commands (rich, on stderr; quiet when not a terminal unless forced)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(stderr=True)


@contextmanager
def step_bar(
    description: str,
    note: str | Sequence[str] | None = None,
) -> Iterator[tuple[Callable[[int, int], None], Callable[[int], None]]]:
    """Yield ``(on_start(start, total), on_step(done))`` callbacks driving one bar.

    ``note`` (say, a resource estimate; or several lines) is printed when the work starts, that
    is after the command's own checks passed, so that a refused command prints one line only.
    """
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
    task_id = progress.add_task(description, total=None)

    pending = [note] if isinstance(note, str) else [n for n in note or () if n]

    def on_start(start: int, total: int) -> None:
        while pending:
            progress.console.print(pending.pop(0))
        progress.update(task_id, completed=start, total=total)

    def on_step(done: int) -> None:
        progress.update(task_id, completed=done)

    with progress:
        yield on_start, on_step
