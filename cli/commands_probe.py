"""``interp probe``: future-token probes, layer by layer and horizon by horizon."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.app import app
from cli.commands_train import default_out
from cli.progress import console, step_bar
from interp.errors import ConfigError

_KINDS = {"future-lens": ("future_lens",), "vocab": ("vocab",), "both": ("future_lens", "vocab")}


def _summary(results: dict[str, Any]) -> None:
    horizons = results["horizons"]
    for kind, probe in results["probes"].items():
        top1 = probe["metrics"]["top1"]["value"]
        console.print(
            f"{kind} top-1 accuracy (rows: layer, columns: k = {horizons[0]}..{horizons[-1]})"
        )
        for label, row in zip(results["layer_labels"], top1, strict=True):
            console.print(f"  {label:>10}  " + "  ".join(f"{v:.3f}" for v in row))
    for name, base in results["baselines"].items():
        values = base["top1"]["value"]
        values = values if isinstance(values, list) else [values]
        cells = ("  -  " if v is None else f"{v:.3f}" for v in values)
        console.print(f"  {name + ' baseline':>18}  " + "  ".join(cells))


@app.command()
def probe(
    model: Annotated[
        str | None,
        typer.Option(
            help="gpt2, a local HF directory or a run directory (default: the demo model)."
        ),
    ] = None,
    horizon: Annotated[int, typer.Option(help="Largest horizon k (tokens ahead).")] = 4,
    layers: Annotated[
        str | None, typer.Option(help="Layers, e.g. 0,2,4 or 1-3 (0 = embeddings; default all).")
    ] = None,
    tokens: Annotated[
        int, typer.Option(help="Held-out tokens to stream (fit + val + test).")
    ] = 50_000,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="Corpus spec (builtin, a path, hf:NAME); default the model's held-out text."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass.")] = 16,
    seq_len: Annotated[
        int | None, typer.Option(help="Sequence length (default min(n_ctx, 128)).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the data split and bootstrap.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda, ...")] = "cpu",
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/probe-<time>).")
    ] = None,
    kind: Annotated[
        str, typer.Option("--probe", help="future-lens, vocab or both.")
    ] = "future-lens",
    top_k: Annotated[
        int, typer.Option(help="Vocabulary probe: K most frequent tokens + other (0 = all).")
    ] = 256,
    max_memory: Annotated[int, typer.Option(help="Vocabulary probe memory budget in MiB.")] = 4096,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run in --out.")] = False,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
) -> None:
    """Fit linear probes predicting the token at t+k from each layer's state at t."""
    from interp.runs import REPLACEABLE, RunDir
    from probes.run import ProbeConfig, parse_layers, run_probe

    if kind not in _KINDS:
        raise ConfigError(f"unknown --probe {kind!r}; choose future-lens, vocab or both")
    config = ProbeConfig(
        model=model,
        horizon=horizon,
        layers=parse_layers(layers),
        tokens=tokens,
        dataset=dataset,
        batch_size=batch_size,
        seq_len=seq_len,
        seed=seed,
        device=device,
        kinds=_KINDS[kind],
        top_k=top_k,
        max_memory_mb=max_memory,
    )
    from interp.resources import MAX_SAMPLES, check_limit, preflight, probe_stats_estimate

    check_limit(tokens, "--tokens", MAX_SAMPLES, "tokens")
    out = out or default_out("probe")
    RunDir.check_creatable(out, overwrite, REPLACEABLE)
    if config.model is None:
        from interp.demo import ensure_demo_model

        with step_bar("demo model") as (start, step):
            run, reused = ensure_demo_model(on_start=start, on_step=step, on_wait=console.print)
        if reused:
            console.print(f"model: the cached default model in {run.path}")
        config = dataclasses.replace(config, model=str(run.path))

    def on_prepared(prep: Any) -> None:
        console.print(f"data: {prep.data_note}; {prep.blocks.shape[0]} blocks of {prep.seq_len}")
        need = (prep.vocab_memory or 0) + prep.blocks.numel() * prep.blocks.element_size()
        if "future_lens" in config.kinds:
            need += probe_stats_estimate(prep.d_model, len(prep.layers), config.horizon)
        console.print(preflight(8 * 2**20, need, "the probe (statistics, tokens, probes)", out))
        if prep.vocab_memory is not None:
            from probes.collect import human_bytes

            console.print(f"vocabulary probe: holds about {human_bytes(prep.vocab_memory)}")

    with step_bar("probing") as (on_start, on_step):
        path, results = run_probe(
            config,
            out,
            overwrite=overwrite,
            report=report,
            on_prepared=on_prepared,
            on_start=on_start,
            on_step=on_step,
        )
    _summary(results)
    console.print(f"results: {path / 'results.json'}")
    if report:
        console.print(f"report: {path / 'report.html'}")
