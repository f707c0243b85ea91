"""``interp pe-bench``: one model per positional encoding, same data and seeds; error tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.app import app, fresh_start
from cli.commands_train import default_out, parse_options
from cli.parsing import int_list
from cli.progress import console
from interp.errors import ConfigError


def _preflight(cfg, out: Path) -> str:
    """Work counts within the limits and memory/disk that fit (one line), before any output."""
    from interp.resources import (
        MAX_MODELS,
        MAX_SAMPLES,
        MAX_STEPS,
        check_limit,
        model_sizes,
        pe_bench_estimate,
        preflight,
    )
    from interp.tasks import build_task

    check_limit(cfg.steps, "--steps", MAX_STEPS, "steps per model")
    check_limit(cfg.text_steps, "--text-steps", MAX_STEPS, "steps per model")
    check_limit(cfg.eval_sequences, "--eval-sequences", MAX_SAMPLES, "sequences per split")
    # (encodings, model configs, evaluation splits, data bytes) per part of the benchmark; every
    # encoding's own config (CoPE's npos embeddings are its own), the largest one counts
    shapes = []
    if cfg.task is not None:
        task = build_task(cfg.task, cfg.task_options)
        mcfgs = [cfg.model_config(pe, **task.model_overrides()) for pe in cfg.encodings]
        splits = len(getattr(task, "eval_splits", ("val",)))
        shapes.append((len(cfg.encodings), mcfgs, splits, task.data_bytes(cfg.batch_size, 3)))
    if cfg.text:
        longest = max((cfg.text_ctx, *cfg.text_eval_ctx))
        mcfgs = [cfg.model_config(pe, n_ctx=longest, d_vocab=258) for pe in cfg.text_encodings]
        text_bytes = 16 * cfg.text_max_chars  # the corpus as text and byte ids
        shapes.append((len(cfg.text_encodings), mcfgs, len(cfg.text_eval_ctx), text_bytes))
    n_models = sum(n for n, _, _, _ in shapes) * len(cfg.seeds)
    check_limit(n_models, "the benchmark of", MAX_MODELS, "models")
    disk = memory = 0
    for _, mcfgs, splits, data_bytes in shapes:
        for m in mcfgs:
            sizes = model_sizes(m, cfg.batch_size)
            extra = {k: sizes[k] for k in ("tied", "d_attn", "d_input", "extra_params",
                                           "extra_activations")}  # fmt: skip
            part = pe_bench_estimate(m.n_layers, m.d_model, m.d_mlp, m.n_heads, m.d_vocab,
                                     m.n_ctx, cfg.batch_size, cfg.eval_sequences, n_models, splits,
                                     data_bytes=data_bytes, **extra)  # fmt: skip
            disk, memory = max(disk, part[0]), max(memory, part[1])
    return preflight(disk, memory, f"the benchmark of {n_models} models", out)


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
        typer.Option(
            "--cope-option",
            help=(
                "CoPE option key=value (p_max, npos, layers, every, rel, rel_npos, rel_extend, "
                "sep_gate_key, gate_key_bias, val_gates, nodiv, shared, per_head)."
            ),
        ),
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
        bool,
        typer.Option(help="Also compare perplexity on the built-in corpus (prose and code)."),
    ] = False,
    text_pe: Annotated[str, typer.Option(help="Encodings for the text comparison.")] = (
        "absolute,rope,cope"
    ),
    text_ctx: Annotated[int, typer.Option(help="Training context for text.")] = 64,
    text_eval_ctx: Annotated[str, typer.Option(help="Evaluation contexts for text.")] = (
        "64,128,256"
    ),
    text_steps: Annotated[int, typer.Option(help="Optimizer steps per text model.")] = 300,
    text_max_chars: Annotated[
        int, typer.Option(help="Characters of the built-in corpus (half prose, half code).")
    ] = 400_000,
    device: Annotated[str, typer.Option(help="cpu, cuda, ...")] = "cpu",
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/pe-bench-<time>).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out, skipping finished models.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run in --out.")] = False,
) -> None:
    """Train one model per positional encoding on a task; error in and out of distribution."""
    from interp.analysis.pe_bench import (
        KIND,
        PEBenchConfig,
        check_resume,
        check_saved_cells,
        format_table,
        format_text_table,
        run_pe_bench,
    )
    from interp.io import atomic_write_json
    from interp.report import build_report
    from interp.runs import RunDir

    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other")
    if resume and out is None:
        raise ConfigError("--resume needs --out RUN_DIR")
    task_name = None if task in (None, "", "none") else task
    cfg = PEBenchConfig(
        task=task_name,
        task_options=parse_options(task_option),
        encodings=tuple(x.strip() for x in pe.split(",") if x.strip()),
        positional_options={"cope": parse_options(cope_option)} if cope_option else {},
        seeds=int_list(seeds, "--seeds"),
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
        text_eval_ctx=int_list(text_eval_ctx, "--text-eval-ctx"),
        text_steps=text_steps,
        text_max_chars=text_max_chars,
        device=device,
    )  # validated here: nothing is written for a bad request
    out = out or default_out("pe-bench")
    need_line = _preflight(cfg, out)
    config = {"kind": KIND, "seed": cfg.seeds[0], **cfg.to_dict()}
    resume, fresh = fresh_start(out, resume)
    if resume:
        run = RunDir.open(out)
        check_resume(run.config(), config)
    else:
        RunDir.check_creatable(out, overwrite)
        run = RunDir.create(out, config, overwrite)
    check_saved_cells(cfg, run.path / "cells")  # a hostile cell: one line, before any output
    console.print(need_line)
    if fresh:
        console.print(fresh)
    results = run_pe_bench(
        cfg,
        lambda msg: console.print(f"[dim]{msg}[/dim]"),
        weights_dir=run.path / "models",
        cells_dir=run.path / "cells",
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
        for row in task_results["table"]:
            if row.get("variant", row["pe"]) != row["pe"]:
                console.print(f"{row['pe']}: {row['variant']}")
    if "text" in results:
        text_results = results["text"]
        table = Table(
            title=(
                f"text perplexity per byte (trained at context {text_results['train_ctx']}; "
                "in parentheses: positions past it only)"
            )
        )
        table.add_column("encoding")
        table.add_column("text")
        for ctx in text_results["eval_ctx"]:
            table.add_column(f"ctx {ctx}", justify="right")
        for row in format_text_table(text_results):
            table.add_row(*row)
        console.print(table)
    console.print(f"results: {run.path / 'results.json'}")
    console.print(f"report: {build_report(run.path)}")
