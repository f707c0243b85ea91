"""``interp precache``: vanilla and myopic twins on a task or a corpus; pre-caching or breadcrumbs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.app import app
from cli.commands_train import default_out, parse_options
from cli.execute import run_experiment
from cli.options import CountedSeeds, Device, Json, Overwrite, parse_seeds
from interp.errors import ConfigError


def precache_config(
    *,
    task: str | None,
    task_options: dict[str, Any],
    corpus: str | None,
    layers: int,
    d_model: int,
    heads: int,
    d_mlp: int,
    ctx: int,
    pe: str,
    steps: int,
    batch_size: int,
    lr: float,
    warmup: int,
    eval_every: int,
    seeds: tuple[int, ...],
    probe_layer: int,
    tokenizer: str = "bpe",
    probe_horizons: int = 3,
    probe_tokens: int = 4000,
    val_fraction: float = 0.1,
    bpe_vocab: int = 1024,
    max_chars: int = 1_000_000,
    device: str = "cpu",
) -> Any:
    """The experiment's config from the command's options; raises ConfigError on bad input
    (the config's own checks run in ``execute``)."""
    from interp.analysis.myopia import MyopiaConfig
    from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
    from interp.experiments.precache import PrecacheConfig

    if corpus is not None and task is not None:
        raise ConfigError("give either --task or --corpus, not both")
    if corpus is None and task is None:
        task = "precache"
    if task is None and task_options:
        raise ConfigError("--task-option needs --task")
    data = DataConfig(
        source="task" if task else "corpus",
        corpus=corpus or "builtin",
        task=task,
        task_options=task_options,
        tokenizer=tokenizer,
        bpe_vocab_size=bpe_vocab,
        max_chars=max_chars,
        val_fraction=val_fraction,
    )
    model = ModelConfig(
        n_layers=layers, d_model=d_model, n_heads=heads, d_mlp=d_mlp, n_ctx=ctx, positional=pe
    )
    train = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        eval_every=eval_every,
        checkpoint_every=max(eval_every, steps // 4),
        device=device,
        optim=OptimConfig(lr=lr, warmup_steps=warmup, weight_decay=0.0),
    )
    myopia = MyopiaConfig(
        seeds=seeds,
        probe_layer=probe_layer,
        token_horizons=probe_horizons,
        token_probe_tokens=probe_tokens,
    )
    return PrecacheConfig(model, train, data, myopia)


def _twin_limit(n: int) -> None:
    from interp.resources import MAX_MODELS, check_limit

    check_limit(2 * n, f"--seeds {n}: the comparison of", MAX_MODELS, "models")


PRECACHE_DOC = "Train vanilla and myopic twins and tell pre-caching from breadcrumbs."
CPU_HELP = (  # one line per paragraph: rich keeps single newlines
    "On a CPU the defaults (2 seeds x 2 twins x 1,000 steps, d_model 128, the precache task "
    "at frequency 10) take hours on 2 shared cores (~0.4 twin steps/s measured). The model is "
    "the paper's size (2 layers, d 128, 2 heads); the paper's result needs far longer "
    "training: raise --steps (tens of thousands; --device cuda). ``interp reproduce "
    "precache`` uses -o frequency=3."
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
        list[str] | None, typer.Option("--task-option", "-o", help="Task option key=value.")
    ] = None,
    corpus: Annotated[
        str | None, typer.Option(help="Text instead: builtin, builtin:prose, a path, hf:NAME.")
    ] = None,
    layers: Annotated[int, typer.Option(help="Transformer blocks.")] = 2,
    d_model: Annotated[int, typer.Option(help="Residual width.")] = 128,
    heads: Annotated[int, typer.Option(help="Attention heads.")] = 2,
    d_mlp: Annotated[int, typer.Option(help="MLP width.")] = 512,
    ctx: Annotated[int, typer.Option(help="Context length (text; a task sets its own).")] = 64,
    pe: Annotated[str, typer.Option(help="Positional encoding.")] = "rope",
    steps: Annotated[int, typer.Option(help="Optimizer steps per twin.")] = 1000,
    batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 3e-3,
    warmup: Annotated[int, typer.Option(help="Warmup steps.")] = 50,
    eval_every: Annotated[int, typer.Option(help="Evaluate every N steps.")] = 100,
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
