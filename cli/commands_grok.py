"""``interp grok`` (one run) and ``interp grok sweep`` (a batched grid): thin wrappers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, fresh_start
from cli.commands_train import default_out
from cli.parsing import float_list, int_list
from cli.progress import console, step_bar

grok_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    help="Grokking: full-batch training that memorises, then generalises (PAIR; Nanda et al.).",
)
app.add_typer(grok_app, name="grok")


def _grok_preflight(cfg, out: Path) -> str:
    """Steps within the limit, and memory/disk for one run that fit (one line), before output."""
    from interp.resources import MAX_STEPS, check_limit, grok_estimate, preflight

    check_limit(cfg.resolved().steps, "--steps", MAX_STEPS, "steps")
    return preflight(*grok_estimate(cfg), "the run", out)


def _check_resume(resume: bool, overwrite: bool, out: Path | None) -> None:
    from interp.errors import ConfigError

    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other")
    if resume and out is None:
        raise ConfigError("--resume needs --out RUN_DIR")


@grok_app.callback()
def grok(
    ctx: typer.Context,
    task: Annotated[str, typer.Option(help="modadd or sparse-parity.")] = "modadd",
    model: Annotated[
        str, typer.Option(help="mlp (PAIR), fixed (5-neuron cos/sin), transformer (Nanda).")
    ] = "mlp",
    p: Annotated[int, typer.Option("--p", help="Modulus.")] = 67,
    pairs: Annotated[
        str | None, typer.Option(help="ordered (a <= b) or all (default by model).")
    ] = None,
    train_fraction: Annotated[
        float | None, typer.Option(help="Share of pairs for training (0.4 MLP, 0.3 transformer).")
    ] = None,
    n_bits: Annotated[int, typer.Option(help="Sparse parity: bits.")] = 30,
    k: Annotated[int, typer.Option("--k", help="Sparse parity: parity of the first k bits.")] = 3,
    n_train: Annotated[int, typer.Option(help="Sparse parity: training sequences.")] = 1200,
    width: Annotated[
        int | None,
        typer.Option(help="Hidden neurons (24 mlp / 5 fixed / 512 transformer / 256 parity)."),
    ] = None,
    weight_decay: Annotated[
        float | None, typer.Option(help="AdamW weight decay (1.0 modadd, 0.3 sparse-parity).")
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Learning rate, constant (1e-3 modadd, 1e-2 sparse-parity)."),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="Full-batch steps (50,000 modadd, 4,000 sparse-parity).")
    ] = None,
    log_every: Annotated[int, typer.Option(help="Log (and analyse) every N steps.")] = 100,
    checkpoint_every: Annotated[int, typer.Option(help="Save weights every N steps.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Initialisation and split seed.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda, ...")] = "cpu",
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/grok-<time>).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run in --out.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out from its last checkpoint.")
    ] = False,
    report: Annotated[bool, typer.Option(help="Write report.html at the end.")] = True,
) -> None:
    """Train one model full batch; log losses, weight norm and the Fourier analysis; mark the
    memorisation and grokking steps.  ``interp grok sweep --help`` for batched grids."""
    if ctx.invoked_subcommand is not None:
        return
    from interp.grok.job import GrokConfig, run_grok
    from interp.report import build_report
    from interp.runs import RunDir

    _check_resume(resume, overwrite, out)
    cfg = GrokConfig(
        task=task,
        model=model,
        p=p,
        pairs=pairs,
        train_fraction=train_fraction,
        n_bits=n_bits,
        k=k,
        n_train=n_train,
        width=width,
        weight_decay=weight_decay,
        lr=lr,
        steps=steps,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        seed=seed,
        device=device,
    )
    out = out or default_out("grok")
    need_line = _grok_preflight(cfg, out)
    resume, fresh = fresh_start(out, resume)
    if not resume:
        RunDir.check_creatable(out, overwrite)
    with step_bar("grok", note=[need_line, fresh]) as (on_start, on_step):
        run, res = run_grok(
            out, cfg, overwrite=overwrite, on_start=on_start, on_step=on_step, resume=resume
        )
    console.print(
        f"memorisation step {res['memorisation_step']}, grokking step {res['grokking_step']}, "
        f"label {res['label']}; final train/test accuracy "
        f"{res['final_train_accuracy']:.3f}/{res['final_test_accuracy']:.3f}"
    )
    if "key_frequencies" in res:
        console.print(
            f"key frequencies {res['key_frequencies']} "
            f"(top-{cfg.top_k} share of embedding power {res['top_k_share']:.2f})"
        )
    console.print(f"run: {run.path}  ({res['steps_per_second']:.0f} steps/s)")
    if report:
        console.print(f"report: {build_report(run.path)}")


@grok_app.command()
def sweep(
    task: Annotated[str, typer.Option(help="modadd or sparse-parity.")] = "modadd",
    p: Annotated[int, typer.Option("--p", help="Modulus.")] = 67,
    weight_decays: Annotated[
        str | None,
        typer.Option(help="Comma-separated weight decays (0,0.3,1 modadd; 0,0.1,0.3 parity)."),
    ] = None,
    train_fractions: Annotated[
        str, typer.Option(help="Comma-separated train fractions (modadd).")
    ] = "0.3,0.4,0.6",
    train_sizes: Annotated[
        str, typer.Option(help="Comma-separated training-set sizes (sparse-parity).")
    ] = "600,1200",
    widths: Annotated[
        str | None, typer.Option(help="Comma-separated hidden widths (24 modadd, 256 parity).")
    ] = None,
    seeds: Annotated[int, typer.Option(help="Seeds per grid point.")] = 4,
    steps: Annotated[
        int | None, typer.Option(help="Full-batch steps per run (20,000 modadd, 4,000 parity).")
    ] = None,
    log_every: Annotated[
        int | None, typer.Option(help="Log every N steps (500 modadd, 100 parity).")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help="Learning rate (1e-3 modadd, 1e-2 parity).")
    ] = None,
    checkpoint_every: Annotated[
        int, typer.Option(help="Save the batched state every N steps (for --resume).")
    ] = 1_000,
    device: Annotated[str, typer.Option(help="cpu, cuda, ...")] = "cpu",
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/grok-sweep-<time>).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run in --out.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue the sweep in --out (finished groups are kept).")
    ] = False,
    report: Annotated[bool, typer.Option(help="Write report.html at the end.")] = True,
) -> None:
    """Train a weight decay x train size x width x seed grid, many models at a time, and label
    each run no-learn / memorise / grok / generalise (PAIR's rule; thresholds in the report)."""
    from interp.errors import ConfigError
    from interp.grok.job import SweepConfig, run_sweep
    from interp.report import build_report
    from interp.runs import RunDir

    _check_resume(resume, overwrite, out)
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    from interp.resources import MAX_MODELS, MAX_STEPS, check_limit

    check_limit(seeds, "--seeds", MAX_MODELS, "runs")
    check_limit(steps or 0, "--steps", MAX_STEPS, "steps per run")
    cfg = SweepConfig(
        task=task,
        p=p,
        weight_decays=float_list(weight_decays, "--weight-decays") if weight_decays else None,
        train_fractions=float_list(train_fractions, "--train-fractions"),
        train_sizes=int_list(train_sizes, "--train-sizes"),
        widths=int_list(widths, "--widths") if widths else None,
        seeds=tuple(range(seeds)),
        steps=steps,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        lr=lr,
        device=device,
    )
    out = out or default_out("grok-sweep")
    resume, fresh = fresh_start(out, resume)
    if not resume:
        RunDir.check_creatable(out, overwrite)
    from interp.resources import grok_sweep_config_estimate, preflight

    n_runs = len(cfg.points())
    need_line = preflight(*grok_sweep_config_estimate(cfg), f"the sweep of {n_runs} runs", out)
    with step_bar("grok sweep", note=[need_line, fresh]) as (on_start, on_step):
        run, res = run_sweep(
            out, cfg, overwrite=overwrite, on_start=on_start, on_step=on_step, resume=resume
        )
    counts = ", ".join(f"{k} {v}" for k, v in res["label_counts"].items())
    console.print(f"{res['n_runs']} runs ({res['runs_per_second']:.2f} runs/s): {counts}")
    console.print(f"run: {run.path}")
    if report:
        console.print(f"report: {build_report(run.path)}")
