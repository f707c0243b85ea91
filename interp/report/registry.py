"""The registry of report section builders: registered by name with an order
(:func:`register_section`), overridden for a ``with`` block (:func:`registered_section`), listed
in ``(order, name)`` order (:func:`section_builders`); and the builders of one section from one
set of results, by experiment kind (:func:`register_memory_section`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from interp.report.html import Section
from interp.report.view import RunView

SectionBuilder = Callable[[RunView], "Section | list[Section] | None"]
ResultsBuilder = Callable[[RunView, Mapping[str, Any]], "Section | None"]

_REGISTRY: dict[str, tuple[int, SectionBuilder]] = {}
_RESULTS_BUILDERS: dict[str, ResultsBuilder] = {}


def register_section(name: str, order: int = 100) -> Callable[[SectionBuilder], SectionBuilder]:
    """Decorator registering a section builder under ``name`` (a name is registered once;
    :func:`registered_section` overrides one for the length of a ``with`` block)."""

    def decorate(builder: SectionBuilder) -> SectionBuilder:
        if name in _REGISTRY:
            raise ValueError(f"report section {name!r} is registered twice")
        _REGISTRY[name] = (order, builder)
        return builder

    return decorate


def register_memory_section(kind: str) -> Callable[[ResultsBuilder], ResultsBuilder]:
    """Decorator for the builder :func:`results_section` uses for ``kind`` results in memory,
    where the report's own section of that kind combines several results (precache: a
    reproduction's two parts side by side) and so is a plain :func:`register_section`."""

    def decorate(builder: ResultsBuilder) -> ResultsBuilder:
        if kind in _RESULTS_BUILDERS:
            raise ValueError(f"results section {kind!r} is registered twice")
        _RESULTS_BUILDERS[kind] = builder
        return builder

    return decorate


def unregister_section(name: str) -> SectionBuilder | None:
    """Remove a builder; returns it, or ``None`` if no builder had that name."""
    entry = _REGISTRY.pop(name, None)
    return entry[1] if entry else None


@contextmanager
def registered_section(
    name: str, builder: SectionBuilder, order: int = 100
) -> Iterator[SectionBuilder]:
    """Register ``builder`` for the duration of a ``with`` block (restores any previous one)."""
    previous = _REGISTRY.get(name)
    _REGISTRY[name] = (order, builder)
    try:
        yield builder
    finally:
        if previous is None:
            _REGISTRY.pop(name, None)
        else:
            _REGISTRY[name] = previous


def section_builders() -> list[tuple[str, SectionBuilder]]:
    """All registered builders as ``(name, builder)``, sorted by ``(order, name)``."""
    ordered = sorted(_REGISTRY.items(), key=lambda item: (item[1][0], item[0]))
    return [(name, builder) for name, (_, builder) in ordered]
