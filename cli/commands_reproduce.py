"""``interp reproduce NAME``: one finding end to end, the paper's numbers beside ours."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.app import app
from cli.commands_train import default_out
from cli.progress import console


@app.command()
def reproduce(
    name: Annotated[str, typer.Argument(help="Which finding (see --list).")] = "",
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default runs/reproduce-NAME-<time>).")
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="A smaller, faster version (for smoke tests).")
    ] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the reproductions.")] = False,
) -> None:
    """Run a scaled-down reproduction of one paper's finding and print claim by claim."""
    import interp.reproductions  # noqa: F401  (registers every reproduction)
    from interp.io import atomic_write_json
    from interp.reproduce import get_reproduction, reproduction_names
    from interp.runs import NEW_OUT_ONLY, RunDir

    if list_ or not name:
        for known in reproduction_names():
            console.print(f"{known}: {get_reproduction(known).description}")
        return
    repro = get_reproduction(name)
    out = out or default_out(f"reproduce-{name}")
    run = RunDir.create(
        out, {"kind": "reproduce", "name": name, "quick": quick}, remedy=NEW_OUT_ONLY
    )
    claims = repro.run(run.path, quick, lambda msg: console.print(f"[dim]{msg}[/dim]"))
    atomic_write_json(run.path / "claims.json", [c.to_dict() for c in claims])
    table = Table(title=f"interp reproduce {name}")
    for col in ("claim", "paper", "ours", "verdict"):
        table.add_column(col)
    for c in claims:
        verdict = (
            "[green]pass[/green]" if c.passed else ("[red]fail[/red]" if c.passed is False else "—")
        )
        table.add_row(c.claim, c.paper, c.ours, verdict)
    console.print(table)
    from interp.report import build_report

    console.print(f"report: {build_report(run.path)}")
