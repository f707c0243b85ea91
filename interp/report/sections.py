"""Section registry and the run view that section builders read.

Analyses add their own report sections without editing this file::

    from interp.report import RunView, Section, register_section

    @register_section("probe", order=50)
    def probe_section(run: RunView) -> Section | None:
        results = run.read_json("probe/results.json")
        if results is None:
            return None          # nothing to show for this run
        return Section("Linear probes", figures=(...,), text="...")

Builders run in ``(order, name)`` order; one that returns ``None`` is skipped, and one
that raises is shown as a section carrying the error message (see ``build_report``).
Built-in orders: ``training`` 10, ``per-position`` 20, ``config`` 1000.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# the registry, the run view, the results finder, the header and the built-in sections live in
# modules of their own; the imports marked noqa keep their names importable from
# interp.report.sections, as before the split (importing builtin_sections registers them)
from interp.report import builtin_sections  # noqa: F401
from interp.report.finder import Found, _view_of, combined_results, find_results  # noqa: F401
from interp.report.html import Section
from interp.report.meta import run_meta  # noqa: F401
from interp.report.plugins import load_plugins
from interp.report.registry import (  # noqa: F401
    _REGISTRY,
    _RESULTS_BUILDERS,
    ResultsBuilder,
    SectionBuilder,
    register_memory_section,
    register_section,
    registered_section,
    section_builders,
    unregister_section,
)
from interp.report.view import (
    RunView,
    load_run_view,  # noqa: F401
)

__all__ = [
    "Found",
    "RunView",
    "combined_results",
    "find_results",
    "register_memory_section",
    "register_results_section",
    "results_section",
    "SectionBuilder",
    "load_run_view",
    "register_section",
    "registered_section",
    "run_meta",
    "section_builders",
    "unregister_section",
]


def register_results_section(
    kind: str, order: int = 100, name: str | None = None
) -> Callable[[ResultsBuilder], ResultsBuilder]:
    """Decorator for a builder of one section from one set of ``kind`` results.

    The report calls it once for every set :func:`find_results` finds (a run's own results,
    each analysis of its model, each sub-run), titling each section with where it came from;
    :func:`results_section` builds the same section from results in memory (notebooks)."""

    def decorate(builder: ResultsBuilder) -> ResultsBuilder:
        if kind in _RESULTS_BUILDERS:
            raise ValueError(f"results section {kind!r} is registered twice")
        _RESULTS_BUILDERS[kind] = builder

        def sections(run: RunView) -> list[Section]:
            out = []
            for found in find_results(run, kind):
                section = builder(_view_of(run, found), found.results)
                if section is None:
                    continue
                suffix = found.label + (", newest" if found.newest else "")
                if suffix:
                    section = dataclasses.replace(section, title=f"{section.title} ({suffix})")
                out.append(section)
            return out

        register_section(name or kind, order)(sections)
        return builder

    return decorate


def results_section(
    kind: str, results: Mapping[str, Any], run: RunView | None = None
) -> Section | None:
    """The report section of ``kind`` for ``results`` (what ``Results.figures`` shows)."""

    load_plugins()
    builder = _RESULTS_BUILDERS.get(kind)
    if builder is None:
        return None
    view = run or RunView(path=Path("."), config={"kind": kind}, env={}, metrics=())
    return builder(view, results)
