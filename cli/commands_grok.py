"""``interp grok`` (one run) and ``interp grok sweep`` (a batched grid): options -> config ->
:func:`cli.execute.run_experiment` (the experiments ``grok`` and ``grok-sweep``)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.app import app
from cli.execute import run_experiment
from cli.options import (
    CountedSeeds,
    Deprecated,
    Device,
    Executor,
    Json,
    Out,
    Overwrite,
    RayAddress,
    Report,
    parse_seeds,
    renamed,
)
from cli.parsing import float_list, int_list
from interp.grok.tasks import grok_model_names, grok_task_names
from interp.grok.variants import variant_names

TASKS = " or ".join(grok_task_names())  # the help lists the registered tasks and models
MODELS = ", ".join(grok_model_names())
GROK_OPTIONS = ("task", "model", "variant", "p", "pairs", "train_fraction", "n_bits", "k",
                "n_train", "width", "d_embed", "weight_decay", "lr", "steps", "log_every",
                "checkpoint_every", "seed", "device")  # fmt: skip
Task = Annotated[str, typer.Option(help=f"{TASKS}.")]
VARIANTS = "; ".join(f"{m}: {' or '.join(variant_names(m))}" for m in grok_model_names())

grok_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    help="Grokking: full-batch training that memorises, then generalises (PAIR; Nanda et al.).",
)
app.add_typer(grok_app, name="grok")


CPU_HELP = (  # one line per paragraph: rich keeps single newlines
    "On a CPU the defaults are PAIR's notebook setting itself (modadd p = 67, --variant pair: "
    "embedding 500, 24 neurons, seed 165, 40% of the a <= b pairs, lr 1e-3, wd 1, 50,000 "
    "steps) and grok: memorised at step 300, test accuracy >= 0.95 at step 35,000, final "
    "train/test accuracy 1.000/0.999, label grok, in ~15 minutes on 1 thread of 2 shared cores "
    "(56 steps/s measured). --variant interp is interp's earlier CPU MLP (embedding 32, seed 0, "
    "~460 steps/s): at the same settings it memorises only (test accuracy 0.146). Nanda et "
    "al.'s transformer: --arch transformer --p 113 (slower; --device cuda)."
)
grok_app.info.help = f"{grok_app.info.help}\n\n{CPU_HELP}"  # interp grok --help


@grok_app.callback()
def grok(
    ctx: typer.Context,
    task: Task = "modadd",
    arch: Annotated[
        str,
        typer.Option(help=f"{MODELS}: mlp (PAIR), fixed (5-neuron cos/sin), transformer (Nanda)."),
    ] = "mlp",
    model: Deprecated("--model", "--arch") = None,  # --model names a trained model elsewhere
    variant: Annotated[
        str | None,
        typer.Option(
            help=f"The model's definition ({VARIANTS}). Default: pair for the modadd mlp "
            "(PAIR's notebook; it groks), nanda for the transformer, interp otherwise (interp's "
            "earlier CPU MLP: on modadd it memorises only)."
        ),
    ] = None,
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
    d_embed: Annotated[
        int | None, typer.Option(help="MLP embedding width (500 variant pair, 32 interp).")
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
    seed: Annotated[
        int | None,
        typer.Option(help="Initialisation and split seed (165 variant pair, PAIR's; 0 otherwise)."),
    ] = None,
    device: Device = "cpu",
    out: Out = None,
    overwrite: Overwrite = False,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out from its last checkpoint.")
    ] = False,
    report: Report = True,
    json_: Json = False,
) -> None:
    """Train one model full batch; log losses, weight norm and the Fourier analysis; mark the
    memorisation and grokking steps.  ``interp grok sweep --help`` for batched grids."""
    if ctx.invoked_subcommand is not None:
        return
    from interp.experiments.grok import GrokRun
    from interp.grok.config import GrokConfig

    model = renamed("--model", "--arch", model, arch, "mlp")  # GrokConfig.model: the arch
    options = locals()  # every option but the run's own is a GrokConfig field of that name
    cfg = GrokConfig(**{name: options[name] for name in GROK_OPTIONS})
    run_experiment("grok", GrokRun(cfg), out, resume=resume, overwrite=overwrite,
                   report=report, as_json=json_)  # fmt: skip


@grok_app.command()
def sweep(
    task: Task = "modadd",
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
    seeds: CountedSeeds = "0..3",
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
    device: Device = "cpu",
    out: Out = None,
    overwrite: Overwrite = False,
    resume: Annotated[
        bool, typer.Option(help="Continue the sweep in --out (finished groups are kept).")
    ] = False,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    report: Report = True,
    json_: Json = False,
) -> None:
    """Train a weight decay x train size x width x seed grid, many models at a time, and label
    each run no-learn / memorise / grok / generalise (PAIR's rule; thresholds in the report), or
    still-rising (memorise, but test accuracy still climbing at the end: more --steps)."""
    from interp.experiments.grok_sweep import GrokSweepRun
    from interp.grok.config import GrokSweepConfig
    from interp.resources import MAX_MODELS, check_limit

    seed_list = parse_seeds(seeds, counted=True)  # the seeds of every grid point
    check_limit(len(seed_list), "--seeds", MAX_MODELS, "runs")
    cfg = GrokSweepConfig(
        task=task,
        p=p,
        weight_decays=float_list(weight_decays, "--weight-decays") if weight_decays else None,
        train_fractions=float_list(train_fractions, "--train-fractions"),
        train_sizes=int_list(train_sizes, "--train-sizes"),
        widths=int_list(widths, "--widths") if widths else None,
        seeds=seed_list,
        steps=steps,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        lr=lr,
        device=device,
    )
    run_experiment("grok-sweep", GrokSweepRun(cfg), out, resume=resume, overwrite=overwrite,
                   report=report, as_json=json_,
                   options={"executor": executor, "ray_address": ray_address})  # fmt: skip
