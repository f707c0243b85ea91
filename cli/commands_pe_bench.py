"""``interp pe-bench``: one model per positional encoding, same data and seeds; error tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.app import app
from cli.commands_train import default_out, parse_options
from cli.progress import console
from interp.errors import ConfigError


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated integers, got {text!r}") from None


@app.command("pe-bench")
def pe_bench(
    task: Annotated[
        str | None, typer.Option(help="Registered task (flipflop, selective-copy, count-vars...).")
    ] = "flipflop",
    task_option: Annotated[
        list[str] | None, typer.Option("--task-option", "-o", help="Task option key=value.")
    ] = None,
    pe: Annotated[
        str, typer.Option(help="Comma-separated encodings.")
    ] = "none,absolute,rope,alibi,cope",
    cope_option: Annotated[
        list[str] | None,
        typer.Option("--cope-option", help="CoPE option key=value (p_max, npos, layers...)."),
    ] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    steps: Annotated[int, typer.Option(help="Optimizer steps per model.")] = 500,
    batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    layers: Annotated[int, typer.Option(help="Transformer blocks.")] = 2,
    d_model: Annotated[int, typer.Option(help="Residual width.")] = 64,
    heads: Annotated[int, typer.Option(help="Attention heads.")] = 4,
    d_mlp: Annotated[int, typer.Option(help="MLP width.")] = 256,
    eval_sequences: Annotated[int, typer.Option(help="Sequences per evaluation split.")] = 256,
    text: Annotated[
        bool, typer.Option(help="Also compare perplexity on the built-in corpus.")
    ] = False,
    text_pe: Annotated[str, typer.Option(help="Encodings for the text comparison.")] = (
        "absolute,rope,cope"
    ),
    text_ctx: Annotated[int, typer.Option(help="Training context for text.")] = 64,
    text_eval_ctx: Annotated[str, typer.Option(help="Evaluation contexts for text.")] = (
        "64,128,256"
    ),
    text_steps: Annotated[int, typer.Option(help="Optimizer steps per text model.")] = 300,
    device: Annotated[str, typer.Option(help="cpu, cuda, ...")] = "cpu",
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/pe-bench-<time>).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run in --out.")] = False,
) -> None:
    """Train one model per positional encoding on a task; error in and out of distribution."""
    from interp.analysis.pe_bench import KIND, PEBenchConfig, format_table, run_pe_bench
    from interp.io import atomic_write_json
    from interp.report import build_report
    from interp.runs import RunDir

    task_name = None if task in (None, "", "none") else task
    cfg = PEBenchConfig(
        task=task_name,
        task_options=parse_options(task_option),
        encodings=tuple(x.strip() for x in pe.split(",") if x.strip()),
        positional_options={"cope": parse_options(cope_option)} if cope_option else {},
        seeds=_ints(seeds, "--seeds"),
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        n_layers=layers,
        d_model=d_model,
        n_heads=heads,
        d_mlp=d_mlp,
        eval_sequences=eval_sequences,
        text=text,
        text_encodings=tuple(x.strip() for x in text_pe.split(",") if x.strip()),
        text_ctx=text_ctx,
        text_eval_ctx=_ints(text_eval_ctx, "--text-eval-ctx"),
        text_steps=text_steps,
        device=device,
    )  # validated here: nothing is written for a bad request
    out = out or default_out("pe-bench")
    RunDir.check_creatable(out, overwrite)
    run = RunDir.create(out, {"kind": KIND, "seed": cfg.seeds[0], **cfg.to_dict()}, overwrite)
    results = run_pe_bench(
        cfg, lambda msg: console.print(f"[dim]{msg}[/dim]"), weights_dir=run.path / "models"
    )
    atomic_write_json(run.path / "results.json", results)
    if "task" in results:
        task_results = results["task"]
        table = Table(title=f"{cfg.task}: token error % (mean [95% interval] over seeds)")
        table.add_column("encoding")
        for split in task_results["splits"]:
            table.add_column(split, justify="right")
        for row in format_table(task_results):
            table.add_row(*row)
        console.print(table)
    if "text" in results:
        text_results = results["text"]
        table = Table(title=f"text perplexity (trained at context {text_results['train_ctx']})")
        table.add_column("encoding")
        for ctx in text_results["eval_ctx"]:
            table.add_column(f"ctx {ctx}", justify="right")
        for row in text_results["rows"]:
            cells = [row["perplexity"].get(str(c)) for c in text_results["eval_ctx"]]
            table.add_row(row["pe"], *("n/a" if v is None else f"{v:.2f}" for v in cells))
        console.print(table)
    console.print(f"results: {run.path / 'results.json'}")
    console.print(f"report: {build_report(run.path)}")
