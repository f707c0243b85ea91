"""``interp reproduce NAME``: one finding end to end, the paper's numbers beside ours."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.app import app
from cli.execute import run_experiment
from cli.options import Executor, Json, Out, RayAddress
from cli.progress import results_console


@app.command()
def reproduce(
    name: Annotated[str, typer.Argument(help="Which finding (see --list).")] = "",
    out: Out = None,
    quick: Annotated[
        bool, typer.Option(help="A smaller, faster version (for smoke tests).")
    ] = False,
    scale: Annotated[
        str,
        typer.Option(
            help="cpu: the CPU-sized reproduction; paper: the paper's configuration "
            "(prints its estimated time first)."
        ),
    ] = "cpu",
    device: Annotated[
        str, typer.Option(help="Where to compute, with --scale paper only: cpu or cuda.")
    ] = "cpu",
    steps_override: Annotated[
        int | None,
        typer.Option(help="Cap every training of --scale paper at N steps (a smoke test)."),
    ] = None,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    list_: Annotated[bool, typer.Option("--list", help="List the reproductions.")] = False,
    json_: Json = False,
) -> None:
    """Run a scaled-down reproduction of one paper's finding and print claim by claim."""
    from interp.experiments.reproduce import ReproduceConfig
    from interp.reproduce import get_reproduction, reproduction_names

    if list_ or not name:
        for known in reproduction_names():
            results_console.print(
                f"{known}: {get_reproduction(known).description}", highlight=False
            )
        return
    config = ReproduceConfig(name=name, quick=quick, scale=scale, device=device,
                             steps=steps_override)  # fmt: skip
    run_experiment("reproduce", config, out, as_json=json_,
                   options={"executor": executor, "ray_address": ray_address})  # fmt: skip
