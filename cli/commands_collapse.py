"""``interp collapse`` and ``interp squash``: representational collapse and over-squashing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.app import app
from cli.commands_train import default_out
from cli.parsing import int_list
from cli.progress import console, step_bar
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


def _load(model: str | None, device: str) -> tuple[Any, Path | None, str]:
    """(model, its run directory when it is an interp run, a label)."""
    from interp import load_model

    if model is None:
        from interp.demo import ensure_demo_model

        with step_bar("default model") as (on_start, on_step):
            run, _ = ensure_demo_model(on_start=on_start, on_step=on_step, on_wait=console.print)
        return load_model(run.path, device=device), run.path, f"default model ({run.path})"
    loaded = load_model(model, device=device)
    path = Path(model).expanduser()
    config = path / "config.json"
    is_run = False
    if config.is_file():
        try:
            is_run = json.loads(config.read_text(encoding="utf-8")).get("kind") == "train"
        except (OSError, ValueError, AttributeError):
            is_run = False
    return loaded, (path if is_run else None), model


def _load_for(kind: str, model: str | None, device: str) -> tuple[Any, Path | None, str]:
    """:func:`_load`, then refuse at once (before any work) an ``analyses/<kind>`` copy that
    would be written through a planted link."""
    from interp.runs import RunDir

    loaded, model_run, label = _load(model, device)
    if model_run is not None:
        RunDir(model_run).check_analysis(kind)
    return loaded, model_run, label


def _save(
    kind: str,
    out: Path,
    config: dict[str, Any],
    results: dict[str, Any],
    model_run: Path | None,
    report: bool,
    overwrite: bool,
) -> None:
    from interp.report import build_report
    from interp.runs import REPLACEABLE, RunDir

    run = RunDir.create(out, config, overwrite=overwrite, remedy=REPLACEABLE)
    run.tree.write_json("results.json", results)
    if model_run is not None:
        RunDir(model_run).write_analysis(kind, results)
    if report:
        console.print(f"report: {build_report(run.path)}")
        if model_run is not None:
            console.print(f"model report: {build_report(model_run)}")
    console.print(f"run: {run.path}")


@app.command()
def collapse(
    model: Annotated[
        str | None, typer.Option(help="Run dir, HF dir or hub name (default: the demo model).")
    ] = None,
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
    tokens: Annotated[
        str | None, typer.Option(help="Token-id pattern, e.g. 5,7 (family pattern).")
    ] = None,
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
    device: Annotated[str, typer.Option(help="cpu, cuda, ...")] = "cpu",
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/collapse-<time>).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run in --out.")] = False,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
) -> None:
    """Representational collapse: distance between the last-token states of v and v* (v with
    its last token repeated) by length, per layer and float format, with collapse lengths."""
    from interp.analysis.collapse import CollapseConfig, run_collapse, validate
    from interp.analysis.precision import FORMATS, parse_formats
    from interp.runs import REPLACEABLE, RunDir

    if dtype is not None and dtypes is not None:
        raise ConfigError("give --dtype or --dtypes, not both")
    formats = parse_formats(dtype or dtypes or list(FORMATS))
    lo, hi = _parse_lengths(lengths)
    if pattern is not None and not pattern:
        raise ConfigError("empty pattern: give at least one character")
    default_note = None
    if model is None and prompt is None and family == "ones":
        # The demo's context is 128 tokens: the paper's prompt (13 tokens with BOS) leaves
        # n <= 113, and the demo's states do not reach a 16-bit resolution there; BOS + n ones
        # covers the whole context (measured: bf16 first at resolution at n = 50).
        prompt = ""
        default_note = (
            "default model: BOS + n ones (the paper's prompt would leave only 113 of the 128 "
            "positions); give --prompt to use another"
        )
    cfg = CollapseConfig(
        family=family,
        prompt=prompt,
        pattern=pattern,
        tokens=None if tokens is None else int_list(tokens, "--tokens"),
        min_length=lo,
        max_length=hi,
        formats=tuple(f.name for f in formats),
        mode=mode,
        separator=separator,
        every=every,
        method=method,
        seed=seed,
    )
    out = out or default_out("collapse")
    RunDir.check_creatable(out, overwrite, REPLACEABLE)
    loaded, model_run, label = _load_for("collapse", model, device)
    plan = validate(loaded, cfg, device)
    from interp.resources import collapse_estimate, preflight

    seq = min(int(loaded.cfg.n_ctx), 2 * max(plan["lengths"], default=1) + 32)
    n_passes = 2 if plan["sep_family"] is not None else 1
    console.print(
        preflight(*collapse_estimate(loaded, len(formats), n_passes, seq), "collapse", out)
    )
    with step_bar("collapse sweep") as (on_start, on_step):
        on_start(0, len(formats) * (2 if plan["sep_family"] is not None else 1))
        results = run_collapse(
            loaded, cfg, device=device, progress=lambda d, t: on_step(d), plan=plan
        )
    results["model"]["spec"] = label
    if default_note is not None:
        results["notes"].insert(0, default_note)
    table = Table(title=f"collapse length at {results['final_layer']} ({results['family']})")
    for col in ("format", "mode", "variant", "passes", "collapse n", "first n", "bit-identical n"):
        table.add_column(col)
    final = results["final_layer"]
    for r in results["runs"]:
        table.add_row(
            r["format"],
            r["mode"],
            r["variant"],
            str(r["passes"]),
            _n(r["collapse_length"][final], r["lengths"]),
            _n(r["first_collapsed"][final], r["lengths"]),
            _n(r["identical_length"][final], r["lengths"]),
        )
    console.print(table)
    for line in results["verdicts"]:
        console.print(line, highlight=False)
    summary = results["summary"]
    console.print(
        f"at {final}: collapsed: {', '.join(summary['collapsed']) or 'none'}; "
        f"not collapsed: {', '.join(summary['not_collapsed']) or 'none'}",
        highlight=False,
    )
    for note in results["notes"]:
        console.print(f"note: {note}")
    config = {"kind": "collapse", "model": label, "collapse": cfg.to_dict(), "device": device}
    _save("collapse", out, config, results, model_run, report, overwrite)


def _n(value: int | None, lengths: list[int]) -> str:
    return str(value) if value is not None else f"none ≤ {lengths[-1]}"


@app.command()
def squash(
    model: Annotated[
        str | None, typer.Option(help="Run dir, HF dir or hub name (default: the demo model).")
    ] = None,
    prompts: Annotated[
        str, typer.Option(help="Comma-separated: copy-first, copy-last, counting.")
    ] = "copy-first,copy-last,counting",
    length: Annotated[int, typer.Option(help="Digits in each prompt.")] = 32,
    device: Annotated[str, typer.Option(help="cpu, cuda, ...")] = "cpu",
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/squash-<time>).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run in --out.")] = False,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
) -> None:
    """Over-squashing: sensitivity of the last token's state to each input position, per layer."""
    from interp.analysis.sensitivity import PROMPTS, SquashConfig, run_squash
    from interp.runs import REPLACEABLE, RunDir

    names = tuple(p.strip() for p in prompts.split(",") if p.strip())
    unknown = [p for p in names if p not in PROMPTS]
    if unknown or not names:
        raise ConfigError(
            f"unknown prompt {unknown[0]!r}; choose from {', '.join(PROMPTS)}"
            if unknown
            else "no prompt given"
        )
    if length < 2:
        raise ConfigError(f"--length must be at least 2, not {length}")
    cfg = SquashConfig(prompts=names, length=length)
    out = out or default_out("squash")
    RunDir.check_creatable(out, overwrite, REPLACEABLE)
    loaded, model_run, label = _load_for("squash", model, device)
    n_ctx = int(loaded.cfg.n_ctx)
    if length > n_ctx:
        raise ConfigError(f"--length {length} is beyond the model context {n_ctx}")
    from interp.resources import preflight, squash_estimate

    c = loaded.cfg
    need = squash_estimate(int(c.n_layers), int(c.d_model), int(getattr(c, "d_mlp", 0) or 0),
                           int(getattr(c, "n_heads", 1) or 1), min(length + 32, n_ctx), cfg.chunk)  # fmt: skip
    console.print(preflight(*need, "the sensitivities", out))
    with step_bar("sensitivities") as (on_start, on_step):
        on_start(0, len(names))
        results = run_squash(loaded, cfg, progress=lambda d, t: on_step(d))
    results["model"] = label
    final = results["final_layer"]
    table = Table(title=f"share of the sensitivity of {final} at the last token")
    for col in ("prompt", "first quarter", "last quarter (excl. last)", "last token"):
        table.add_column(col)
    for p, r in results["prompts"].items():
        s = r["shares"][final]
        table.add_row(
            p,
            f"{s['first_quarter']:.3f}",
            f"{s['last_quarter_excl_last']:.3f}",
            f"{s['last_token']:.3f}",
        )
    console.print(table)
    config = {"kind": "squash", "model": label, "squash": cfg.to_dict(), "device": device}
    _save("squash", out, config, results, model_run, report, overwrite)
