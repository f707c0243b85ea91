"""``interp probe``: future-token probes, layer by layer and horizon by horizon."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.app import app
from cli.execute import run_experiment
from cli.options import Device, Json, Out, Overwrite, Report
from interp.errors import ConfigError

_KINDS = {"future-lens": ("future_lens",), "vocab": ("vocab",), "both": ("future_lens", "vocab")}


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
    device: Device = "cpu",
    out: Out = None,
    kind: Annotated[
        str, typer.Option("--probe", help="future-lens, vocab or both.")
    ] = "future-lens",
    top_k: Annotated[
        int, typer.Option(help="Vocabulary probe: K most frequent tokens + other (0 = all).")
    ] = 256,
    max_memory: Annotated[int, typer.Option(help="Vocabulary probe memory budget in MiB.")] = 4096,
    test_positions: Annotated[
        int | None,
        typer.Option(
            help="Test positions scored, drawn when there are more (0 = all; default 4096, "
            "fewer down to 1024 where decoding them would exceed ~3 TFLOP: GPT-2 small at "
            "--horizon 3 scores 1024)."
        ),
    ] = None,
    decode_dtype: Annotated[
        str,
        typer.Option(
            help="Decoding of evaluated rows: auto (bfloat16 where measured faster), "
            "float32 or bfloat16."
        ),
    ] = "auto",
    overwrite: Overwrite = False,
    report: Report = True,
    json_: Json = False,
) -> None:
    """Fit linear probes predicting the token at t+k from each layer's state at t."""
    from probes.run import ProbeConfig, parse_layers

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
        test_positions=test_positions,
        decode_dtype=decode_dtype,
    )
    run_experiment("probe", config, out, overwrite=overwrite, report=report, as_json=json_)
