"""How long work reports how far it is: one small protocol for the library, drawn by the CLI.

Library code never prints (ruff T20).  A long computation takes a :class:`Progress` and calls
``start(total, done, label)`` once it knows how much work there is, ``advance(done, **info)``
as it goes (``info`` such as ``loss=1.23`` is shown beside the bar), and ``note(text)`` for a
line worth reading (an estimate, what is being trained).  The CLI draws a rich bar on a
terminal and plain timestamped lines otherwise; tests and notebooks pass nothing
(:data:`SILENT`) or a recorder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Progress(Protocol):
    def start(self, total: int, done: int = 0, label: str | None = None) -> None: ...

    def advance(self, done: int, **info: Any) -> None: ...

    def note(self, text: str) -> None: ...


class Silent:
    """Progress that shows nothing."""

    def start(self, total: int, done: int = 0, label: str | None = None) -> None:
        pass

    def advance(self, done: int, **info: Any) -> None:
        pass

    def note(self, text: str) -> None:
        pass


SILENT = Silent()


class Callbacks:
    """Progress from the older ``on_start(start, total)`` / ``on_step(done)`` callback pair."""

    def __init__(
        self,
        on_start: Callable[[int, int], None] | None = None,
        on_step: Callable[[int], None] | None = None,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        self.on_start, self.on_step, self.on_note = on_start, on_step, on_note

    def start(self, total: int, done: int = 0, label: str | None = None) -> None:
        if self.on_start is not None:
            self.on_start(done, total)

    def advance(self, done: int, **info: Any) -> None:
        if self.on_step is not None:
            self.on_step(done)

    def note(self, text: str) -> None:
        if self.on_note is not None:
            self.on_note(text)


class Scaled:
    """A part of a larger job: ``advance(i)`` of this part is ``offset + i`` of the whole (so
    several trainings in a row drive one bar)."""

    def __init__(self, parent: Progress, offset: int) -> None:
        self.parent, self.offset = parent, offset

    def start(self, total: int, done: int = 0, label: str | None = None) -> None:
        pass  # the whole job's total was given by the caller

    def advance(self, done: int, **info: Any) -> None:
        self.parent.advance(self.offset + done, **info)

    def note(self, text: str) -> None:
        self.parent.note(text)


__all__ = ["SILENT", "Callbacks", "Progress", "Scaled", "Silent"]
