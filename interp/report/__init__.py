"""Self-contained HTML reports for run directories.

``build_report(run_dir)`` reads the run (config, env, metrics), runs every registered
section builder in order and writes ``run_dir/report.html``: one offline file with
plotly.js embedded once.  Analyses add sections with :func:`register_section`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from interp.errors import InterpError
from interp.report.html import Section, render_html, write_report
from interp.report.plugins import load_plugins
from interp.report.sections import (
    RunView,
    SectionBuilder,
    load_run_view,
    register_section,
    registered_section,
    run_meta,
    section_builders,
    unregister_section,
)

__all__ = [
    "RunView",
    "Section",
    "SectionBuilder",
    "build_report",
    "build_sections",
    "load_run_view",
    "register_section",
    "registered_section",
    "render_html",
    "run_meta",
    "section_builders",
    "unregister_section",
    "write_report",
]

log = logging.getLogger(__name__)


def build_sections(run: RunView) -> list[Section]:
    """Run every registered builder; a builder that raises becomes a section with a note."""
    sections: list[Section] = []
    for name, builder in section_builders():
        try:
            section = builder(run)
            if section is not None and not isinstance(section, Section):
                raise TypeError(f"builder returned {type(section).__name__}, not Section")
        except Exception as e:  # a broken plot must never cost the whole report
            log.warning("report section %r failed: %s: %s", name, type(e).__name__, e)
            log.debug("traceback for report section %r", name, exc_info=True)
            message = " ".join(str(e).split()) or "(no message)"
            section = Section(
                title=name,
                notes=(f"This section failed to build: {type(e).__name__}: {message}",),
            )
        if section is not None:
            sections.append(section)
    return sections


def build_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the HTML report of ``run_dir`` (default ``run_dir/report.html``); returns its path."""
    if out is not None and Path(out).is_dir():
        raise InterpError(f"report output {out} is a directory; give a file path (report.html)")
    load_plugins()
    run = load_run_view(Path(run_dir))
    sections = build_sections(run)
    path = Path(out) if out is not None else run.path / "report.html"
    return write_report(path, f"{run.name} · interp report", sections, run_meta(run))
