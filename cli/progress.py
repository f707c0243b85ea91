"""Progress bars for long commands (rich, on stderr; quiet when not a terminal unless forced)."""

from __future__ import annotations

import datetime as _dt
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(stderr=True)  # progress, notes and errors
# results: tables, verdicts, paths (stdout); in a log or pipe tables keep their full width
results_console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


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


class CliProgress:
    """:class:`interp.progress.Progress` for a command: a rich bar on a terminal, plain
    timestamped lines (at most one per ``every`` seconds, and at the end) otherwise.

    Notes print at once on stderr.  ``label`` names the step; ``info`` (say ``loss=1.2``) is
    shown beside the bar."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._bar: Progress | None = None
        self._task: Any = None
        self._total = 0
        self._start_done = 0
        self._label = ""
        self._t0 = 0.0
        self._last_line = 0.0

    # ------------------------------------------------------------ Progress
    def note(self, text: str) -> None:
        (self._bar.console if self._bar is not None else console).print(text, highlight=False)

    def start(self, total: int, done: int = 0, label: str | None = None) -> None:
        self.close()
        self._total, self._start_done = int(total), int(done)
        self._label = label or "working"
        self._t0 = self._last_line = time.monotonic()
        if console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=console,
                transient=False,
            )
            self._task = self._bar.add_task(self._label, total=total, completed=done, info="")
            self._bar.start()
        elif done:
            self._line(done, {})

    def advance(self, done: int, **info: Any) -> None:
        text = "  ".join(f"{k} {_fmt(v)}" for k, v in info.items())
        if self._bar is not None:
            self._bar.update(self._task, completed=done, info=text)
            return
        now = time.monotonic()
        if done >= self._total or now - self._last_line >= self.every:
            self._last_line = now
            self._line(done, info)

    # ------------------------------------------------------------ plain lines
    def _line(self, done: int, info: dict[str, Any]) -> None:
        elapsed = time.monotonic() - self._t0
        rate = (done - self._start_done) / elapsed if elapsed > 0 else 0.0
        eta = (self._total - done) / rate if rate > 0 else None
        parts = [f"{_dt.datetime.now():%H:%M:%S}", self._label, f"{done}/{self._total}"]
        if eta is not None and done < self._total:
            parts.append(f"ETA {_duration(eta)}")
        parts += [f"{k} {_fmt(v)}" for k, v in info.items()]
        console.print("  ".join(parts), highlight=False, soft_wrap=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> CliProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
