"""``interp count sweep`` and ``interp count construct``: when can a transformer count?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.app import app, fresh_start
from cli.commands_train import default_out
from cli.execute import run_experiment, show_results
from cli.options import Json
from cli.progress import console, step_bar

count_app = typer.Typer(
    help="Counting (Yehudai et al. 2024): sweeps over d and m, and the histogram construction.",
    no_args_is_help=True,
)
app.add_typer(count_app, name="count")


@count_app.command()
def sweep(
    task: Annotated[
        str, typer.Option(help="qc (query count) or mfc (most frequent count).")
    ] = "qc",
    d: Annotated[
        str, typer.Option("--d", help="Embedding widths: 8,16,32 or 8..32:8.")
    ] = "8,16,32",
    m: Annotated[
        str, typer.Option("--m", help="Vocabulary sizes: 4,8,16 or 4..64:4.")
    ] = "4,8,16,32,64",
    n: Annotated[
        int | None, typer.Option(help="Data tokens per sequence (default n-factor * m).")
    ] = None,
    n_factor: Annotated[int, typer.Option(help="n = n_factor * m when --n is not given.")] = 10,
    sampling: Annotated[
        str, typer.Option(help="uniform or dirichlet token frequencies.")
    ] = "uniform",
    query: Annotated[
        str, typer.Option(help="qc query: uniform over tokens, or present in the sequence.")
    ] = "uniform",
    layers: Annotated[int, typer.Option(help="Transformer blocks.")] = 2,
    heads: Annotated[int, typer.Option(help="Attention heads (must divide every d).")] = 4,
    mlp_ratio: Annotated[int, typer.Option(help="d_mlp = ratio * d (0 = attention only).")] = 4,
    pe: Annotated[
        str, typer.Option(help="Positional encoding (none: counting is order-free).")
    ] = "none",
    steps: Annotated[int, typer.Option(help="Optimizer steps per model.")] = 1000,
    batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, warmup + cosine).")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.0,
    warmup: Annotated[int, typer.Option(help="Warmup steps.")] = 50,
    eval_samples: Annotated[int, typer.Option(help="Held-out sequences per cell.")] = 1000,
    threshold: Annotated[float, typer.Option(help="Accuracy defining m_thr.")] = 0.8,
    seed: Annotated[int, typer.Option(help="Random seed (every cell).")] = 0,
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
) -> None:
    """Train a model per (d, m), measure accuracy, estimate m_thr(d) and fit it against d."""
    from interp.analysis.counting import SweepConfig, parse_int_list, run_sweep
    from interp.errors import ConfigError
    from interp.io import atomic_write_json, dumps_json
    from interp.report import build_report
    from interp.runs import RunDir

    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other")
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
    )
    out = out or default_out("count-sweep")
    from interp.resources import (
        MAX_MODELS,
        MAX_SAMPLES,
        MAX_STEPS,
        check_limit,
        count_sweep_estimate,
        preflight,
    )

    check_limit(steps, "--steps", MAX_STEPS, "steps per model")
    check_limit(eval_samples, "--eval-samples", MAX_SAMPLES, "sequences per cell")
    check_limit(
        len(cfg.d_values) * len(cfg.m_values), "the --d x --m grid of", MAX_MODELS, "models"
    )

    need = count_sweep_estimate(cfg.d_values, cfg.m_values, cfg.n, cfg.n_factor, layers, heads,
                                mlp_ratio, batch_size, batched)  # fmt: skip
    need_line = preflight(
        *need, f"the sweep of {len(cfg.d_values) * len(cfg.m_values)} models", out
    )
    config = {"kind": "count-sweep", "seed": seed, "sweep": cfg.to_dict()}
    resume, fresh = fresh_start(out, resume)
    if resume:
        run = RunDir.open(out)
        saved = run.config().get("sweep")
        if saved != json.loads(dumps_json(cfg.to_dict())):
            now = json.loads(dumps_json(cfg.to_dict()))
            changed = sorted(k for k in now if (saved or {}).get(k) != now[k])
            raise ConfigError(
                f"--resume with a different sweep config ({', '.join(changed)}); use a new --out"
            )
    else:
        run = RunDir.create(out, config, overwrite=overwrite)
        run.write_env(seed, "cpu")
    # printed once the work starts (after the saved cells are checked): an error stays alone
    with step_bar("cells", note=[need_line, fresh]) as (on_start, _):
        results = run_sweep(run.path, cfg, progress=on_start)
    atomic_write_json(run.path / "results.json", results)
    _print_summary(results)
    console.print(f"sweep: {run.path}")
    console.print(f"report: {build_report(run.path)}")


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
    )
    if out is None:  # nothing written: the results on stdout only
        show_results("count-construct", cfg, as_json=json_)
    else:
        run_experiment("count-construct", cfg, out, as_json=json_)


def _print_summary(results: dict) -> None:
    table = Table(title="m_thr(d): accuracy falls to the threshold")
    for col in ("d", "m_thr", "acc m<=d", "acc m>d"):
        table.add_column(col)
    for t in results["thresholds"]:
        thr = f"{t['m_thr']:.2f}" if t["m_thr"] is not None else f"({t['censored']} the grid)"
        fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
        table.add_row(str(t["d"]), thr, fmt(t["mean_acc_m_le_d"]), fmt(t["mean_acc_m_gt_d"]))
    console.print(table)
    fit = results.get("fit")
    if fit:
        console.print(
            f"fit: m_thr = {fit['slope']:.3f} d + {fit['intercept']:.2f} (R² {fit['r2']:.3f})"
        )
