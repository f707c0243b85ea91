"""Self-contained HTML reports for run directories.

``build_report(run_dir)`` reads the run (config, env, metrics), runs every registered
section builder in order and writes ``run_dir/report.html``: one offline file with
plotly.js embedded once.  Analyses add sections with :func:`register_section`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from interp.errors import InterpError
from interp.io import remove_write_debris
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
from interp.safefs import Tree, is_link

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


def incomplete(run: RunView) -> str:
    """A banner for a run that stopped before its end (killed, interrupted), else ""."""
    kind = run.config.get("kind")
    if kind == "train":
        if (run.path / "model.safetensors").is_file():
            return ""
        steps = [r.get("step") for r in run.metrics if isinstance(r.get("step"), int)]
        total = (run.config.get("train") or {}).get("steps")
        where = f" at step {max(steps)} of {total}" if steps and total else ""
        return (
            f"Incomplete run: training stopped{where}; the figures show what was logged. "
            f"Continue it with: interp train --out {run.path} --resume"
        )
    if kind != "reproduce" and not (run.path / "results.json").is_file():
        return (
            "Incomplete run: it stopped before its results were written; the report shows only "
            "what was saved (rerun it, or --resume where the command offers it)."
        )
    return ""


def build_sections(run: RunView) -> list[Section]:
    """Run every registered builder; a builder that raises becomes a section with a note."""
    sections: list[Section] = []
    for name, builder in section_builders():
        try:
            built = builder(run)
            found = built if isinstance(built, list) else [built]
            for section in found:
                if section is not None and not isinstance(section, Section):
                    raise TypeError(f"builder returned {type(section).__name__}, not Section")
        except Exception as e:  # a broken plot must never cost the whole report
            log.warning("report section %r failed: %s: %s", name, type(e).__name__, e)
            log.debug("traceback for report section %r", name, exc_info=True)
            message = " ".join(str(e).split()) or "(no message)"
            found = [
                Section(
                    title=name,
                    notes=(f"This section failed to build: {type(e).__name__}: {message}",),
                )
            ]
        sections.extend(section for section in found if section is not None)
    return sections


def build_report(run_dir: Path, out: Path | None = None, overwrite: bool = False) -> Path:
    """Write the HTML report of ``run_dir`` (default ``run_dir/report.html``); returns its path.

    Reports are written only into interp's own run folders (a ``config.json`` with a ``kind``),
    through the run's safe tree; an explicit ``out`` must be an ``.html`` file and is never an
    existing file unless ``overwrite``."""

    run_dir = Path(run_dir)
    if out is not None:
        out = Path(out)
        if out.is_dir():
            raise InterpError(f"report output {out} is a directory; give a file path (report.html)")
        if out.suffix.lower() not in (".html", ".htm"):
            raise InterpError(f"report output {out} is not an .html file")
        if is_link(out):
            raise InterpError(f"report output {out} is a symbolic link; give a plain file path")
        if out.exists() and not overwrite:
            raise InterpError(f"report output {out} exists; pass --overwrite to replace it")
    load_plugins()
    run = load_run_view(run_dir)
    if not isinstance(run.config.get("kind"), str):
        raise InterpError(
            f"{run_dir} is not an interp run (its config.json has no 'kind'); "
            "interp writes reports only into its own run folders"
        )
    sections = build_sections(run)
    html = render_html(f"{run.name} · interp report", sections, run_meta(run), incomplete(run))

    tree = Tree(run.path) if out is None else Tree(out.parent if str(out.parent) else Path("."))
    name = "report.html" if out is None else out.name
    remove_write_debris(tree.path(), name)  # a ~5 MB temporary of a report write killed earlier
    return tree.write_text(name, html)
