"""``interp precache``: vanilla and myopic twins on a task or a corpus; pre-caching or breadcrumbs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app
from cli.commands_train import default_out, parse_options
from cli.execute import run_experiment
from cli.options import CountedSeeds, Device, Json, Overwrite, Pe, parse_seeds
from interp.errors import ConfigError
from interp.experiments.precache import precache_config


def _twin_limit(n: int) -> None:
    from interp.resources import MAX_MODELS, check_limit

    check_limit(2 * n, f"--seeds {n}: the comparison of", MAX_MODELS, "models")


PRECACHE_DOC = "Train vanilla and myopic twins and tell pre-caching from breadcrumbs."
CPU_HELP = (  # one line per paragraph: rich keeps single newlines
    "On a CPU the defaults (2 seeds x 2 twins x 1,000 steps, 2 layers, d_model 64, the precache "
    "task at frequency 3 over 32 positions: ``interp reproduce precache``'s synthetic part) take "
    "2-3 minutes (2 min 8 s and 3 min 7 s measured on 1 thread of 2 shared cores) and show "
    "pre-caching: vanilla loss 0.13, myopic 1.15 = the predict-zero baseline, sin(3x) read "
    "from layer 1 with R² 0.85 (vanilla) vs 0.00 (myopic). Threads are set to 1 (small models "
    "gain nothing from more; on shared cores extra ones only spin: the former d_model 128 twins "
    "ran 0.6 twin steps/s with 2 threads, 7.7 with 1)."
    "\n"
    "The paper's setting is one option away: -o frequency=10 -o length=64 --d-model 128 "
    "--d-mlp 512 and far longer training (--steps in the tens of thousands; --device cuda): "
    "d_model 128 with the defaults' other settings reached only vanilla 0.59, probe R² 0.02 "
    "(inconclusive, 5.5 minutes). A run too short for its twins to learn is called "
    "inconclusive, not a finding."
)


@app.command(help=f"{PRECACHE_DOC}\n\n{CPU_HELP}")
def precache(
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/precache-<time>).")
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="Synthetic task (default precache unless --corpus).")
    ] = None,
    task_option: Annotated[
        list[str] | None,
        typer.Option(
            "--task-option",
            "-o",
            help="Task option key=value (the precache task: frequency=3, length=32 unless given).",
        ),
    ] = None,
    corpus: Annotated[
        str | None, typer.Option(help="Text instead: builtin, builtin:prose, a path, hf:NAME.")
    ] = None,
    layers: Annotated[int, typer.Option(help="Transformer blocks.")] = 2,
    d_model: Annotated[int, typer.Option(help="Residual width.")] = 64,
    heads: Annotated[int, typer.Option(help="Attention heads.")] = 2,
    d_mlp: Annotated[int, typer.Option(help="MLP width.")] = 256,
    ctx: Annotated[int, typer.Option(help="Context length (text; a task sets its own).")] = 64,
    pe: Pe = "rope",
    steps: Annotated[int, typer.Option(help="Optimizer steps per twin.")] = 1000,
    batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 3e-3,
    warmup: Annotated[int, typer.Option(help="Warmup steps.")] = 100,
    eval_every: Annotated[int, typer.Option(help="Evaluate every N steps.")] = 250,
    seeds: CountedSeeds = "0,1",  # a twin pair per seed, for the interval
    probe_layer: Annotated[
        int, typer.Option(help="Probe the state after this many blocks (task only).")
    ] = 1,
    probe_horizons: Annotated[
        int, typer.Option(help="Future-token probes on text: horizons 1..N.")
    ] = 3,
    probe_tokens: Annotated[
        int, typer.Option(help="Held-out tokens per twin for the future-token probes (text).")
    ] = 4000,
    tokenizer: Annotated[str, typer.Option(help="byte or bpe (text only).")] = "bpe",
    max_chars: Annotated[int, typer.Option(help="Cap on corpus characters.")] = 1_000_000,
    val_fraction: Annotated[
        float, typer.Option(help="Documents held out for validation and the token probes (text).")
    ] = 0.1,
    device: Device = "cpu",
    resume: Annotated[bool, typer.Option(help="Continue the comparison in --out.")] = False,
    overwrite: Overwrite = False,
    json_: Json = False,
) -> None:
    """Train vanilla and myopic twins and tell pre-caching from breadcrumbs."""
    if resume and out is None:
        raise ConfigError("--resume needs --out RUN_DIR")
    config = precache_config(
        task=task,
        task_options=parse_options(task_option),
        corpus=corpus,
        layers=layers,
        d_model=d_model,
        heads=heads,
        d_mlp=d_mlp,
        ctx=ctx,
        pe=pe,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup=warmup,
        eval_every=eval_every,
        seeds=parse_seeds(seeds, counted=True, check=_twin_limit),
        probe_layer=probe_layer,
        probe_horizons=probe_horizons,
        probe_tokens=probe_tokens,
        tokenizer=tokenizer,
        max_chars=max_chars,
        val_fraction=val_fraction,
        device=device,
    )
    run_experiment(
        "precache", config, out or default_out("precache"), resume=resume,
        overwrite=overwrite, as_json=json_,
    )  # fmt: skip
