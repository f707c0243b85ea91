"""``interp doctor``: versions, hub access, disk, memory, devices, dtypes and bf16 speed."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.app import app
from cli.options import Json
from cli.progress import console


def _bytes(n: int | None) -> str:
    from interp.resources import human_bytes

    return "unknown" if n is None else human_bytes(n)


def _table(info: dict[str, Any]) -> Table:
    table = Table(title="interp doctor", show_header=False)
    table.add_column("item", style="bold")
    table.add_column("value")
    for name, version in info["versions"].items():
        table.add_row(name, version or "not installed")
    hub = info["hub"]
    if hub["offline_mode"]:
        hub_text = "offline mode (HF_HUB_OFFLINE is set)"
    else:
        hub_text = ("reachable" if hub["reachable"] else "not reachable") + f" ({hub['note']})"
    table.add_row("huggingface.co", hub_text)
    for key, label in (("cwd", "disk free (cwd)"), ("cache", "disk free (cache)")):
        d = info["disk"][key]
        table.add_row(label, f"{_bytes(d['free_bytes'])} at {d['path']}")
    mem = info["memory"]
    table.add_row(
        "memory",
        f"{_bytes(mem['available_bytes'])} available of {_bytes(mem['total_bytes'])} "
        f"({mem['source']})",
    )
    for d in info["devices"]:
        extra = f", {d['threads']} torch threads, {d['cores']} cores" if "threads" in d else ""
        table.add_row(d["device"], f"{d['name']}{extra}; dtypes {', '.join(d['dtypes'])}")
    bf = info["bf16"]
    if bf["slowdown"] is None:
        bf_text = f"could not be timed ({bf.get('error')})"
    else:
        verdict = "fast" if bf["fast"] else "slow"
        bf_text = (
            f"{verdict}: a {bf['size']}x{bf['size']} matmul on {bf['device']} takes "
            f"{bf['slowdown']:.2f}x the float32 time"
        )
    table.add_row("native bf16", bf_text)
    table.add_row("collapse --mode auto", f"{bf['collapse_default_mode']} on {bf['device']}")
    return table


@app.command()
def doctor(
    as_json: Json = False,
    bench_seconds: Annotated[
        float, typer.Option(help="Seconds to time each of the fp32 and bf16 matmuls.")
    ] = 0.2,
) -> None:
    """Check this machine: package versions, hub access, free disk and memory, devices, dtypes,
    and whether native bfloat16 is fast here."""
    from interp.doctor import diagnose
    from interp.errors import ConfigError

    if not 0 < bench_seconds <= 10:
        raise ConfigError(f"--bench-seconds must be in (0, 10], got {bench_seconds}")
    info = diagnose(bench_seconds=bench_seconds)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    else:
        console.print(_table(info))
