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


class Work:
    """One bar over phases of unequal cost: ``phase(name, steps, seconds_each)`` plans them
    (from a timed first step, say), ``start()`` shows the bar, ``step(name)`` advances it.

    The bar counts percent of the estimated work (``start(100, ...)``), so a step moves it by
    its own cost and a bar's time-remaining reads right even when a test batch costs ten
    fitting batches; beside the bar ``step`` shows which phase and how far (``test 3/5``)."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress, self.label = progress, label
        self.phases: dict[str, list[float]] = {}  # name -> [steps, seconds each, done]
        self.started = False

    def phase(self, name: str, steps: int, seconds_each: float) -> None:
        done = self.phases[name][2] if name in self.phases else 0
        self.phases[name] = [float(steps), max(float(seconds_each), 0.0), done]

    def total_seconds(self) -> float:
        return sum(steps * each for steps, each, _ in self.phases.values())

    def percent(self) -> int:
        total = self.total_seconds()
        if total <= 0:
            return 0
        done = sum(min(d, steps) * each for steps, each, d in self.phases.values())
        return min(100, int(100 * done / total))

    def describe(self) -> str:
        """``~4.1 min (fit 21 x 5.2 s, solve 6 s, test 5 x 9.8 s)``."""
        parts = []
        for name, (steps, each, _) in self.phases.items():
            if steps == 1:
                parts.append(f"{name} {_seconds(each)}")
            elif steps:
                parts.append(f"{name} {int(steps)} x {_seconds(each)}")
        return f"~{_seconds(self.total_seconds())} ({', '.join(parts)})"

    def start(self) -> None:
        self.started = True
        self.progress.start(100, self.percent(), f"{self.label} (% of the estimated work)")

    def step(self, name: str, n: int = 1) -> None:
        if name not in self.phases:
            self.phase(name, 0, 0.0)
        entry = self.phases[name]
        entry[2] += n
        if self.started:
            shown = f"{int(entry[2])}/{int(entry[0])}" if entry[0] > 1 else "done"
            self.progress.advance(self.percent(), step=f"{name} {shown}")


ETA_AT_LEAST = 20.0  # seconds left below which a loop says nothing


class Eta:
    """Says once, early, how long a loop of ``total`` steps will take: its steps after the first
    ``warm`` ones (allocation, first-call overheads) are timed, and after ``timed`` of them the
    note ``estimated duration ~4.1 min (600 steps x 0.41 s, timed on the first steps)`` goes to
    ``progress`` when the loop has at least ``at_least`` seconds left (short loops say nothing:
    a sweep of many small models would print a line per model).  One mechanism for every
    trainer (:func:`interp.train.loop.fit` calls it), so every command that trains says it."""

    def __init__(
        self,
        progress: Progress,
        total: int,
        start: int = 0,
        what: str = "",
        warm: int = 1,
        timed: int = 3,
        at_least: float | None = None,
    ) -> None:
        self.progress, self.total, self.start, self.what = progress, total, start, what
        self.warm, self.timed = warm, timed
        self.at_least = ETA_AT_LEAST if at_least is None else at_least
        self.t0: float | None = None
        self.said = False

    def step(self, done: int) -> None:
        if self.said:
            return
        import time

        ran = done - self.start
        if ran == self.warm:
            self.t0 = time.perf_counter()
        elif self.t0 is not None and ran == self.warm + self.timed:
            self.said = True
            each = (time.perf_counter() - self.t0) / self.timed
            left = each * (self.total - done)
            if left >= self.at_least:
                what = f" for {self.what}" if self.what else ""
                self.progress.note(
                    f"estimated duration ~{_seconds(left)}{what} ({self.total - done} more "
                    f"steps x {_seconds(each)}, timed on the first steps)"
                )


def _seconds(s: float) -> str:
    if s < 1:
        return f"{s:.2f} s"
    if s < 90:
        return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


__all__ = ["SILENT", "Callbacks", "Eta", "Progress", "Scaled", "Silent", "Work"]
