"""``interp train``, ``interp report`` and ``interp demo``: thin wrappers over library calls."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.app import app
from cli.execute import run_experiment
from cli.options import Device, Json, Overwrite, Pe, PeOption, Seed, TaskName
from cli.progress import console
from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from interp.errors import ConfigError


def default_out(kind: str) -> Path:
    return Path("runs") / f"{kind}-{_dt.datetime.now():%Y%m%d-%H%M%S}"


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["length=8", "p=0.5"]`` -> ``{"length": 8, "p": 0.5}`` (JSON values, else strings).

    A value that is JSON but nests too deep or holds a huge integer is refused, naming the option
    (it is not silently read as a string)."""
    from interp.io import JSONContentError, loads_json

    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"option {pair!r} is not of the form key=value")
        key, value = pair.split("=", 1)
        key = key.strip()
        try:
            out[key] = loads_json(value)
        except JSONContentError as e:
            if not e.syntax:
                raise ConfigError(f"option {key}: the value is refused ({e})") from None
            out[key] = value
    return out


@app.command()
def train(
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/train-<time>).")
    ] = None,
    corpus: Annotated[
        str, typer.Option(help="builtin, builtin:code, builtin:prose, a path, or hf:NAME.")
    ] = "builtin",
    task: TaskName = None,
    task_option: Annotated[
        list[str] | None, typer.Option("--task-option", "-o", help="Task option key=value.")
    ] = None,
    layers: Annotated[int, typer.Option(help="Transformer blocks.")] = 2,
    d_model: Annotated[int, typer.Option(help="Residual width.")] = 64,
    heads: Annotated[int, typer.Option(help="Attention heads.")] = 4,
    d_mlp: Annotated[int, typer.Option(help="MLP width (0 = attention-only).")] = 256,
    ctx: Annotated[int, typer.Option(help="Context length (block length for text).")] = 64,
    pe: Pe = "rope",
    pe_option: PeOption = None,
    norm: Annotated[str, typer.Option(help="layernorm, rmsnorm or none.")] = "layernorm",
    act: Annotated[str, typer.Option(help="gelu, gelu_new, relu or silu.")] = "gelu",
    tied: Annotated[bool, typer.Option(help="Tie embedding and unembedding.")] = False,
    unembed_bias: Annotated[
        bool, typer.Option(help="A trained unembedding bias (GPT-2, NeoX, Llama have none).")
    ] = True,
    tokenizer: Annotated[str, typer.Option(help="byte or bpe (text only).")] = "bpe",
    bpe_vocab: Annotated[int, typer.Option(help="BPE vocabulary size.")] = 1024,
    max_chars: Annotated[int, typer.Option(help="Cap on corpus characters.")] = 1_000_000,
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 500,
    batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.1,
    warmup: Annotated[int, typer.Option(help="Warmup steps.")] = 50,
    eval_every: Annotated[int, typer.Option(help="Evaluate every N steps.")] = 100,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 100,
    seed: Seed = 0,
    device: Device = "cpu",
    grad: Annotated[
        str,
        typer.Option(
            "--grad", help="Gradient mode: vanilla, or myopic (no gradient into past positions)."
        ),
    ] = "vanilla",
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out from its last checkpoint.")
    ] = False,
    overwrite: Overwrite = False,
    allow_data_change: Annotated[
        bool,
        typer.Option(
            help="With --resume: continue even though the corpus changed since the run started "
            "(its fingerprint differs); the change is recorded in config.json."
        ),
    ] = False,
    report: Annotated[bool, typer.Option(help="Write report.html at the end.")] = True,
    json_: Json = False,
) -> None:
    """Train a hooked transformer on text or a synthetic task; writes a run directory."""
    from interp.config import TrainJob

    if resume and out is None:
        raise ConfigError("--resume needs --out RUN_DIR")
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other")
    if allow_data_change and not resume:
        raise ConfigError("--allow-data-change only applies with --resume")
    out = out or default_out("train")
    data = DataConfig(
        source="task" if task else "corpus",
        corpus=corpus,
        task=task,
        task_options=parse_options(task_option),
        tokenizer=tokenizer,
        bpe_vocab_size=bpe_vocab,
        max_chars=max_chars,
    )
    model = ModelConfig(
        n_layers=layers,
        d_model=d_model,
        n_heads=heads,
        d_mlp=d_mlp,
        n_ctx=ctx,
        positional=pe,
        positional_options=parse_options(pe_option),
        normalization=norm,
        act_fn=act,
        tied_embeddings=tied,
        unembed_bias=unembed_bias,
    )
    train_cfg = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        seed=seed,
        device=device,
        grad_mode=grad,
        optim=OptimConfig(lr=lr, weight_decay=weight_decay, warmup_steps=warmup),
    )
    from interp.resources import MAX_STEPS, check_limit

    check_limit(steps, "--steps", MAX_STEPS, "steps")
    options = {"allow_data_change": True} if allow_data_change else {}
    run_experiment(
        "train", TrainJob(model, train_cfg, data), out, resume=resume, overwrite=overwrite,
        report=report, as_json=json_, options=options,
    )  # fmt: skip


def _summarise(run: Any) -> None:
    rows = run.metrics()
    val = [r for r in rows if r.get("split") == "val"]
    if val:
        last = val[-1]
        acc = f", accuracy {last['accuracy']:.3f}" if "accuracy" in last else ""
        console.print(f"step {last['step']}: validation loss {last['loss']:.4f}{acc}")
    console.print(f"run: {run.path}")


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    out: Annotated[Path | None, typer.Option(help="Output HTML (default RUN/report.html).")] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing --out file (RUN/report.html always is).")
    ] = False,
) -> None:
    """(Re)build the interactive HTML report of a run from its saved results."""
    from interp.report import build_report

    console.print(f"report: {build_report(run, out, overwrite=overwrite)}")


@app.command()
def demo(
    out: Annotated[
        Path | None, typer.Option(help="Run directory of the tour (default: the shared cache).")
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="Override the training steps (a different cache entry).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (not 0: a different cache entry).")] = 0,
    device: Device = "cpu",
    overwrite: Overwrite = False,
    json_: Json = False,
) -> None:
    """The tour: train (or reuse) the default model, run one small example of every finding
    (probes, collapse, over-squashing, myopia, counting, CoPE, grokking) and write one report.
    Each step is cached: the same command continues a stopped tour and reuses a finished one."""
    from interp.demo import demo_job, demo_run_dir, tour_run_dir
    from interp.experiments import demo as tour
    from interp.resources import MAX_STEPS, check_limit
    from interp.runs import RunDir

    if steps is not None:
        check_limit(steps, "--steps", MAX_STEPS, "steps")
    config = tour.TOUR if steps is None else tour.TOUR.replace(model_steps=steps)
    config = config.replace(device=device, model_seed=seed)
    model_dir = demo_run_dir(demo_job(steps, seed))
    where = out if out is not None else tour_run_dir(config, model_dir)
    resume = not overwrite and where.is_dir() and not RunDir.is_blank(where)
    run_experiment("demo", config, where, resume=resume, overwrite=overwrite, as_json=json_)
