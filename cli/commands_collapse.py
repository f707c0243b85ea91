"""``interp collapse`` and ``interp squash``: representational collapse and over-squashing."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.app import app
from cli.execute import run_experiment
from cli.options import Deprecated, Device, Json, Model, Out, Overwrite, Report, renamed
from cli.parsing import int_list
from interp.errors import ConfigError


def _parse_lengths(text: str | None) -> tuple[int, int | None]:
    """``"64"`` -> (1, 64); ``"8:64"`` -> (8, 64); None -> (1, None)."""
    if text is None or not text.strip():
        return 1, None
    try:
        if ":" in text:
            lo, hi = text.split(":", 1)
            return int(lo or 1), int(hi) if hi.strip() else None
        return 1, int(text)
    except ValueError:
        raise ConfigError(f"--lengths {text!r} is not N or A:B (integers)") from None


@app.command()
def collapse(
    model: Model = None,
    dtype: Annotated[
        str | None, typer.Option(help="One format: float32, float16, bfloat16, e4m3, e5m2.")
    ] = None,
    dtypes: Annotated[
        str | None, typer.Option(help="Comma-separated formats (default: all five).")
    ] = None,
    mode: Annotated[
        str, typer.Option(help="auto (emulated on CPU, native on GPU), emulated or native.")
    ] = "auto",
    family: Annotated[str, typer.Option(help="ones, digits or pattern.")] = "ones",
    prompt: Annotated[
        str | None, typer.Option(help="Text before the digits (default: the paper's prompt).")
    ] = None,
    pattern: Annotated[str | None, typer.Option(help="Text pattern (family pattern).")] = None,
    token_ids: Annotated[
        str | None, typer.Option(help="Token-id pattern, e.g. 5,7 (family pattern).")
    ] = None,
    tokens: Deprecated("--tokens", "--token-ids") = None,  # --tokens is a count in probe
    lengths: Annotated[
        str | None, typer.Option(help="N or A:B (default: 1 to what the context allows).")
    ] = None,
    separator: Annotated[
        str, typer.Option(help="Separator text (one token), or a token id.")
    ] = ",",
    every: Annotated[
        int, typer.Option(help="Separator every k tokens (0: no separator sweep).")
    ] = 3,
    method: Annotated[
        str, typer.Option(help="auto (one pass per prefix chain) or per-length (reference).")
    ] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the random digits.")] = 0,
    device: Device = "cpu",
    out: Out = None,
    overwrite: Overwrite = False,
    report: Report = True,
    json_: Json = False,
) -> None:
    """Representational collapse: distance between the last-token states of v and v* (v with
    its last token repeated) by length, per layer and float format, with collapse lengths."""
    from interp.analysis.collapse import CollapseConfig
    from interp.analysis.precision import FORMATS
    from interp.experiments.collapse import CollapseRun

    token_ids = renamed("--tokens", "--token-ids", tokens, token_ids, None)
    if dtype is not None and dtypes is not None:
        raise ConfigError("give --dtype or --dtypes, not both")
    formats = tuple(f.strip() for f in (dtype or dtypes or ",".join(FORMATS)).split(","))
    lo, hi = _parse_lengths(lengths)
    if pattern is not None and not pattern:
        raise ConfigError("empty pattern: give at least one character")
    cfg = CollapseConfig(
        family=family,
        prompt=prompt,
        pattern=pattern,
        tokens=None if token_ids is None else int_list(token_ids, "--token-ids"),
        min_length=lo,
        max_length=hi,
        formats=formats,
        mode=mode,
        separator=separator,
        every=every,
        method=method,
        seed=seed,
    )
    config = CollapseRun(model=model, device=device, collapse=cfg)
    run_experiment("collapse", config, out, overwrite=overwrite, report=report, as_json=json_)


@app.command()
def squash(
    model: Model = None,
    prompts: Annotated[
        str, typer.Option(help="Comma-separated: copy-first, copy-last, counting.")
    ] = "copy-first,copy-last,counting",
    length: Annotated[int, typer.Option(help="Digits in each prompt.")] = 32,
    estimator: Annotated[
        str,
        typer.Option(
            help="exact, random (Jacobian norms from --probes random directions) or auto "
            "(exact up to d_model 256)."
        ),
    ] = "auto",
    probes: Annotated[int, typer.Option(help="Random directions of the random estimator.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of the random directions.")] = 0,
    device: Device = "cpu",
    out: Out = None,
    overwrite: Overwrite = False,
    report: Report = True,
    json_: Json = False,
) -> None:
    """Over-squashing: sensitivity of the last token's state to each input position, per layer."""
    from interp.analysis.sensitivity import SquashConfig
    from interp.experiments.squash import SquashRun

    names = tuple(p.strip() for p in prompts.split(",") if p.strip())
    config = SquashRun(
        model=model,
        device=device,
        squash=SquashConfig(
            prompts=names, length=length, estimator=estimator, probes=probes, seed=seed
        ),
    )
    run_experiment("squash", config, out, overwrite=overwrite, report=report, as_json=json_)
