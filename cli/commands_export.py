"""``interp export``: an interp-trained model as a Hugging Face directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app
from cli.progress import console
from interp.errors import ConfigError

FORMATS = ("hf",)


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run directory of a trained model.")],
    out: Annotated[Path, typer.Argument(help="Output directory (new, or empty).")],
    format: Annotated[str, typer.Option("--format", help="hf (a Hugging Face directory).")] = "hf",
    overwrite: Annotated[
        bool, typer.Option(help="Replace an earlier export (or interp run) in OUT.")
    ] = False,
) -> None:
    """Export a trained model to a Hugging Face directory (safetensors, config, tokenizer) when
    an architecture expresses it exactly (GPT-2, GPT-NeoX or Llama); refused otherwise."""
    from interp.models.export import export_hf

    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose {', '.join(FORMATS)}")
    result = export_hf(run, out, overwrite=overwrite)
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(
        f"exported {run} as {result.architecture} to {result.path} "
        f"(logits within {result.max_logit_diff:.1e} of interp's)"
    )
