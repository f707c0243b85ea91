"""The one way a command runs an experiment: ``execute`` with a CLI progress, then the results
(tables, verdict lines) on stdout and where they went."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
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


def _print(results: Any, as_json: bool, where: dict[str, str]) -> None:
    if as_json:
        from interp.io import dumps_json

        typer.echo(dumps_json({**results.to_dict(), **where}))  # exactly one JSON document
        return
    headline = getattr(results, "headline", "")
    if headline:  # the finding first, then the tables and details
        results_console.print(headline, highlight=False)
    show_tables(results)
    for line in results.lines():
        results_console.print(line, highlight=False)
    for key, path in where.items():
        results_console.print(f"{key.replace('_', ' ')}: {path}", highlight=False)


def show_results(kind: str, config: Any, *, as_json: bool = False) -> Any:
    """Run ``config`` in memory (no run directory) and print its results."""
    from interp.experiments.execute import run_in_memory

    with CliProgress() as progress:
        results = run_in_memory(kind, config, progress=progress)
    _print(results, as_json, {})
    return results


def run_experiment(
    kind: str,
    config: Any,
    out: Path | None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    report: bool = True,
    as_json: bool = False,
    options: dict[str, Any] | None = None,
) -> Outcome:
    """Execute ``config`` as ``kind``; print its headline, tables, lines and paths on stdout
    (with ``as_json``: the results as one JSON document and nothing else)."""
    with CliProgress() as progress:
        outcome = execute(
            kind, config, out, resume=resume, overwrite=overwrite, report=report,
            progress=progress, options=options,
        )  # fmt: skip
    from interp import distributed

    if not distributed.is_main():  # a data-parallel rank other than 0: rank 0 says it all
        return outcome
    where = {"report": str(outcome.report)} if outcome.report is not None else {}
    if outcome.model_report is not None:
        where["model_report"] = str(outcome.model_report)
    _print(outcome.results, as_json, {**where, "run": str(outcome.run_dir)})
    return outcome


__all__ = ["run_experiment", "show_results", "show_tables"]
