"""``interp count sweep`` and ``interp count construct``: when can a transformer count?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app
from cli.commands_train import default_out
from cli.execute import run_experiment, show_results
from cli.options import Device, Executor, Json, Pe, RayAddress

count_app = typer.Typer(
    help="Counting (Yehudai et al. 2024): sweeps over d and m, and the histogram construction.",
    no_args_is_help=True,
)
app.add_typer(count_app, name="count")


SWEEP_DOC = "Train a model per (d, m), measure accuracy, estimate m_thr(d) and fit it against d."
CPU_HELP = (  # one line per paragraph: rich keeps single newlines
    "On a CPU the defaults (15 cells: d 4,8,16 x m 2,4,8,16,32, n = m tokens, 2 layers with 1 "
    "head, batch 64, lr 3e-3, 2,000 steps each) take about 5-6 minutes (5 min 8 s and 5 min "
    "58 s wall, 5 min of CPU, measured on 1 thread of 2 shared cores) and show the drop: every "
    "cell with m <= d is above chance "
    "(accuracy 0.63-1.00 against 0.37-0.50), those with m > d fall to 0.33-0.60 (chance at "
    "m = 32), and the verdict reads 'Counting accuracy drops once m > d' (mean accuracy m <= d "
    "vs m > d: 0.87 vs 0.42, 0.98 vs 0.46, 0.88 vs 0.34 at d = 4, 8, 16). At this budget "
    "training, not d, limits d = 16 (0.63 at m = 16), so m_thr does not yet grow with d "
    "(3.5, 11.3, 10.9). One head, not two: with 2 heads of d/2 each the drop came near m = d/2 "
    "(3,000 steps: 0.56 at d = m = 8, chance at d = m = 16). A sweep whose cells with m <= d "
    "average below --threshold is called inconclusive (undertrained), not a finding."
    "\n"
    "The paper's setting (Yehudai et al. 2024) is one option away: interp reproduce counting "
    "--scale paper (its preset: d 8,16,32,64,128, m 5..150:5, n = 10 m, 2 layers with 4 heads, "
    "batch 16, Adam lr 1e-4, 100k steps; about 205 days on a CPU), or on this command --d "
    "8,16,32,64,128 --m 5..150:5 --n-factor 10 --heads 4 --batch-size 16 --lr 1e-4 --warmup 0 "
    "--steps 100000 (--device cuda). The former defaults (d 8,16,32 x m 4..64, n = 10 m, 4 "
    "heads, batch 16, lr 1e-3, 1,000 steps) left even m = 4 at chance."
)


@count_app.command(help=f"{SWEEP_DOC}\n\n{CPU_HELP}")
def sweep(
    task: Annotated[
        str, typer.Option(help="qc (query count) or mfc (most frequent count).")
    ] = "qc",
    d: Annotated[str, typer.Option("--d", help="Embedding widths: 8,16,32 or 8..32:8.")] = "4,8,16",
    m: Annotated[
        str, typer.Option("--m", help="Vocabulary sizes: 4,8,16 or 4..64:4.")
    ] = "2,4,8,16,32",
    n: Annotated[
        int | None, typer.Option(help="Data tokens per sequence (default n-factor * m).")
    ] = None,
    n_factor: Annotated[
        int, typer.Option(help="n = n_factor * m when --n is not given (the paper's: 10).")
    ] = 1,
    sampling: Annotated[
        str, typer.Option(help="uniform or dirichlet token frequencies.")
    ] = "uniform",
    query: Annotated[
        str, typer.Option(help="qc query: uniform over tokens, or present in the sequence.")
    ] = "uniform",
    layers: Annotated[int, typer.Option(help="Transformer blocks.")] = 2,
    heads: Annotated[int, typer.Option(help="Attention heads (must divide every d).")] = 1,
    mlp_ratio: Annotated[int, typer.Option(help="d_mlp = ratio * d (0 = attention only).")] = 4,
    pe: Pe = "none",  # none: counting is order-free
    steps: Annotated[int, typer.Option(help="Optimizer steps per model.")] = 2000,
    batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, warmup + cosine).")] = 3e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.0,
    warmup: Annotated[int, typer.Option(help="Warmup steps.")] = 100,
    eval_samples: Annotated[int, typer.Option(help="Held-out sequences per cell.")] = 1000,
    threshold: Annotated[float, typer.Option(help="Accuracy defining m_thr.")] = 0.8,
    seed: Annotated[int, typer.Option(help="Random seed (every cell).")] = 0,
    device: Device = "cpu",
    batched: Annotated[
        bool, typer.Option(help="Train models of equal shape together (one stacked model).")
    ] = True,
    out: Annotated[
        Path | None, typer.Option(help="Sweep directory (default runs/count-sweep-<time>).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the sweep in --out, skipping finished cells.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing sweep in --out.")] = False,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    json_: Json = False,
) -> None:
    """Train a model per (d, m), measure accuracy, estimate m_thr(d) and fit it against d."""
    from interp.analysis.counting import SweepConfig, parse_int_list
    from interp.errors import ConfigError
    from interp.experiments.count_sweep import CountSweepConfig

    if resume and out is None:
        raise ConfigError("--resume needs --out SWEEP_DIR")
    cfg = SweepConfig(
        task=task,
        d_values=parse_int_list(d, "--d"),
        m_values=parse_int_list(m, "--m"),
        n=n,
        n_factor=n_factor,
        sampling=sampling,
        query=query,
        n_layers=layers,
        n_heads=heads,
        mlp_ratio=mlp_ratio,
        positional=pe,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        warmup_steps=warmup,
        eval_samples=eval_samples,
        seed=seed,
        threshold=threshold,
        batched=batched,
        device=device,
    )
    run_experiment(
        "count-sweep", CountSweepConfig(cfg), out or default_out("count-sweep"), resume=resume,
        overwrite=overwrite, as_json=json_,
        options={"executor": executor, "ray_address": ray_address},
    )  # fmt: skip


@count_app.command()
def construct(
    d: Annotated[str, typer.Option("--d", help="Embedding widths: 8 or 8,16.")] = "8",
    m: Annotated[
        str, typer.Option("--m", help="Vocabulary sizes: 4,8,16 or 4..16:4.")
    ] = "4,8,12,16",
    n: Annotated[int | None, typer.Option(help="Data tokens per sequence (default 10 m).")] = None,
    beta: Annotated[float, typer.Option(help="Attention sharpness of the construction.")] = 20.0,
    samples: Annotated[int, typer.Option(help="Random sequences evaluated per (d, m).")] = 500,
    seed: Annotated[int, typer.Option(help="Seed (embeddings when m > d, and the data).")] = 0,
    device: Device = "cpu",
    out: Annotated[
        Path | None, typer.Option(help="Also write a run directory with a report.")
    ] = None,
    json_: Json = False,
) -> None:
    """Evaluate the hand-built histogram model for query count (exact when d >= m)."""
    from interp.analysis.counting import ConstructConfig, parse_int_list

    cfg = ConstructConfig(
        d_values=parse_int_list(d, "--d"),
        m_values=parse_int_list(m, "--m"),
        n=n,
        beta=beta,
        samples=samples,
        seed=seed,
        device=device,
    )
    if out is None:  # nothing written: the results on stdout only
        show_results("count-construct", cfg, as_json=json_)
    else:
        run_experiment("count-construct", cfg, out, as_json=json_)
