"""``interp precache``: vanilla and myopic twins on a task or a corpus; pre-caching or breadcrumbs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.app import app, fresh_start
from cli.commands_train import default_out, parse_options
from cli.progress import console, step_bar
from interp.errors import ConfigError, InterpError


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
    seeds: int,
    probe_layer: int,
    tokenizer: str = "bpe",
    probe_horizons: int = 3,
    probe_tokens: int = 4000,
    val_fraction: float = 0.1,
    bpe_vocab: int = 1024,
    max_chars: int = 1_000_000,
) -> tuple[Any, Any, dict[str, Any]]:
    """Validated (job, myopia config, config.json dict); raises ConfigError on bad input."""
    from interp.analysis.myopia import KIND, MyopiaConfig
    from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
    from interp.tasks import build_task
    from interp.train.job import TrainJob

    if corpus is not None and task is not None:
        raise ConfigError("give either --task or --corpus, not both")
    if corpus is None and task is None:
        task = "precache"
    if task is not None:
        build_task(task, task_options)  # unknown task or bad options -> one line, nothing written
    elif task_options:
        raise ConfigError("--task-option needs --task")
    if isinstance(seeds, bool) or seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    from interp.resources import MAX_MODELS, MAX_SAMPLES, MAX_STEPS, check_limit

    check_limit(2 * seeds, f"--seeds {seeds}: the comparison of", MAX_MODELS, "models")
    check_limit(steps, "--steps", MAX_STEPS, "steps per twin")
    check_limit(probe_tokens, "--probe-tokens", MAX_SAMPLES, "tokens")
    if probe_layer > layers:
        raise ConfigError(f"--probe-layer {probe_layer} exceeds --layers {layers}")
    if corpus is not None and probe_horizons > ctx - 1:
        raise ConfigError(f"--probe-horizons {probe_horizons} needs --ctx above {probe_horizons}")
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
        optim=OptimConfig(lr=lr, warmup_steps=warmup, weight_decay=0.0),
    )
    job = TrainJob(model, train, data)
    myopia = MyopiaConfig(
        seeds=tuple(range(seeds)),
        probe_layer=probe_layer,
        token_horizons=probe_horizons,
        token_probe_tokens=probe_tokens,
    )
    config = {
        "kind": KIND,
        "seed": 0,
        "model": model.to_dict(),
        "train": train.to_dict(),
        "data": data.to_dict(),
        "myopia": myopia.to_dict(),
    }
    return job, myopia, config


def run_precache_dir(
    out: Path,
    job: Any,
    myopia: Any,
    config: dict[str, Any],
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Any = None,
    on_step: Any = None,
    on_ready: Any = None,
) -> tuple[Path, dict[str, Any]]:
    """Create (or reopen) the run directory, train and compare the twins, write results.json."""
    from interp.analysis.myopia import run_precache
    from interp.io import atomic_write_json
    from interp.runs import RunDir

    if resume and not RunDir.nothing_to_resume(out):
        run = RunDir.open(out)
        stored = {k: v for k, v in run.config().items() if k != "created"}
        for key in sorted(set(stored) | set(config)):
            if stored.get(key) != config.get(key):
                raise InterpError(
                    f"--resume: {key} differs from the run's config.json; use the same options"
                )
    else:
        run = RunDir.create(out, config, overwrite=overwrite)
    if on_ready is not None:  # the checks passed: an error stays the only line
        on_ready()
    results = run_precache(run.path, job, myopia, progress=progress, on_step=on_step)
    atomic_write_json(run.path / "results.json", results)
    return run.path, results


@app.command()
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
    seeds: Annotated[int, typer.Option(help="Twin pairs (seeds 0..N-1) for the interval.")] = 2,
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
    resume: Annotated[bool, typer.Option(help="Continue the comparison in --out.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run in --out.")] = False,
) -> None:
    """Train vanilla and myopic twins and tell pre-caching from breadcrumbs."""
    from interp.report import build_report
    from interp.runs import RunDir

    if resume and out is None:
        raise ConfigError("--resume needs --out RUN_DIR")
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other")
    job, myopia, config = precache_config(
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
        seeds=seeds,
        probe_layer=probe_layer,
        probe_horizons=probe_horizons,
        probe_tokens=probe_tokens,
        tokenizer=tokenizer,
        max_chars=max_chars,
        val_fraction=val_fraction,
    )
    out = out or default_out("precache")
    from interp.resources import preflight, train_job_estimate

    disk, memory = train_job_estimate(job)  # twins train one after another
    need_line = preflight(2 * seeds * disk, memory, f"training {2 * seeds} twins", out)
    resume, fresh = fresh_start(out, resume)
    if not resume:
        RunDir.check_creatable(out, overwrite)
    with step_bar("twins") as (on_start, on_step):
        on_start(0, steps * seeds * 2)
        done = [0]

        def tick(step: int) -> None:
            done[0] += 1
            on_step(done[0])

        path, results = run_precache_dir(
            out,
            job,
            myopia,
            config,
            resume=resume,
            overwrite=overwrite,
            progress=lambda msg: console.print(f"[dim]{msg}[/dim]"),
            on_step=tick,
            on_ready=lambda: console.print("\n".join(x for x in (need_line, fresh) if x)),
        )
    v = results["verdict"]
    console.print(f"verdict: [bold]{v['label']}[/bold]")
    for line in v["evidence"]:
        console.print(f"  - {line}")
    console.print(f"run: {path}")
    console.print(f"report: {build_report(path)}")
