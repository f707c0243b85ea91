"""The Typer application and its error policy: one line on stderr, non-zero exit, no traceback.

Usage errors (bad option values, a ``--device`` torch cannot use here) exit 2, user errors
(``InterpError``: missing files, corrupt checkpoints, impossible configs; ``OSError``: unreadable
or unwritable paths, a full disk) exit 2, an interrupted run exits 130, and an unexpected
internal error exits 1 with one line (``INTERP_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer import _click as click  # typer >= 0.20 vendors click
from typer._click import exceptions as click_exc
from typer.core import TyperGroup

from interp.errors import InterpError


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def check_device(value: str) -> str:
    """``value`` when torch can compute on it here; else one line naming what is available."""
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError, TypeError):
        raise click_exc.BadParameter(
            f"{value!r} is not a device; use cpu, cuda or cuda:N"
        ) from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if device.type not in available:
        raise click_exc.BadParameter(f"{value!r}: interp computes on cpu, cuda or mps")
    if not available[device.type]:
        raise click_exc.BadParameter(f"{value!r}: no {device.type} device on this machine")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise click_exc.BadParameter(f"{value!r}: only {torch.cuda.device_count()} cuda device(s)")
    return value


def _guard_devices(command: click.Command) -> None:
    """Give every ``--device`` option of ``command`` and its subcommands the check above."""
    for param in command.params:
        if param.name == "device" and not getattr(param, "_device_checked", False):
            inner = param.callback

            def callback(ctx: Any, p: Any, value: Any, inner: Any = inner) -> Any:
                value = inner(ctx, p, value) if inner is not None else value
                return value if value is None else check_device(value)

            param.callback = callback
            param._device_checked = True  # type: ignore[attr-defined]
    for sub in getattr(command, "commands", {}).values():
        _guard_devices(sub)


class OneLineErrorGroup(TyperGroup):
    def main(
        self,
        args: Any = None,
        prog_name: Any = None,
        complete_var: Any = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        _guard_devices(self)  # every --device, including those of commands added later
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_exc.NoArgsIsHelpError as e:
            click.echo(e.ctx.get_help() if e.ctx else str(e))
            sys.exit(0)
        except click.ClickException as e:
            hint = ""
            if isinstance(e, click_exc.UsageError) and e.ctx is not None:
                hint = f" (see '{e.ctx.command_path} --help')"
            click.echo(f"error: {_one_line(e.format_message())}{hint}", err=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(130)
        except InterpError as e:
            click.echo(f"error: {_one_line(str(e))}", err=True)
            sys.exit(2)
        except OSError as e:  # unreadable input, unwritable output, disk full: the user's to fix
            names = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
            what = e.strerror or type(e).__name__
            click.echo(f"error: {_one_line(what)}{': ' + names if names else ''}", err=True)
            sys.exit(2)
        except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
            if os.environ.get("INTERP_DEBUG"):
                raise
            click.echo(
                f"error: internal error: {type(e).__name__}: {_one_line(str(e))[:300]} "
                "(set INTERP_DEBUG=1 for the traceback)",
                err=True,
            )
            sys.exit(1)
        if isinstance(rv, int) and rv != 0:
            sys.exit(rv)
        return rv


app = typer.Typer(
    cls=OneLineErrorGroup,
    name="interp",
    help="Mechanistic-interpretability toolkit: train hooked models, probe, and write reports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
