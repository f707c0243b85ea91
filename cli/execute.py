"""The one way a command runs an experiment: ``execute`` with a CLI progress, then the results
(tables, verdict lines) on stdout and where they went."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table as RichTable

from cli.progress import CliProgress, results_console
from interp.experiments import Outcome, execute


def show_tables(results: Any) -> None:
    for table in getattr(results, "tables", lambda: [])():
        rich = RichTable(title=table.title)
        for column in table.columns:
            rich.add_column(column)
        for row in table.rows:
            rich.add_row(*row)
        results_console.print(rich)


def run_experiment(
    kind: str,
    config: Any,
    out: Path | None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    report: bool = True,
) -> Outcome:
    """Execute ``config`` as ``kind``; print its tables, lines and paths."""
    with CliProgress() as progress:
        outcome = execute(
            kind, config, out, resume=resume, overwrite=overwrite, report=report, progress=progress
        )
    headline = getattr(outcome.results, "headline", "")
    if headline:  # the finding first, then the tables and details
        results_console.print(headline, highlight=False)
    show_tables(outcome.results)
    for line in outcome.results.lines():
        results_console.print(line, highlight=False)
    if outcome.report is not None:
        results_console.print(f"report: {outcome.report}", highlight=False)
    if outcome.model_report is not None:
        results_console.print(f"model report: {outcome.model_report}", highlight=False)
    results_console.print(f"run: {outcome.run_dir}", highlight=False)
    return outcome


__all__ = ["run_experiment", "show_tables"]
