"""Invoking the CLI in-process and checking its one-line errors (shared by the CLI tests)."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def invoke(*args: object):
    """Run ``interp ARGS`` in-process; exceptions the CLI did not handle propagate."""
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, fragment: str) -> None:
    """Exit 2 with exactly one ``error: ...`` line matching ``fragment`` and no traceback."""
    text = result.output.strip()
    assert result.exit_code == 2, result.output
    assert "Traceback" not in text
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert re.search(fragment, lines[0], re.I), lines[0]
