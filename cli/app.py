"""The Typer application and its error policy: one line on stderr, non-zero exit, no traceback.

Usage errors (bad option values, a ``--device`` torch cannot use here) exit 2, user errors
(``InterpError``: missing files, corrupt checkpoints, impossible configs; ``OSError``: unreadable
or unwritable paths, a full disk) exit 2, an interrupted run exits 130, and an unexpected
internal error exits 1 with one line (``INTERP_DEBUG=1`` shows the traceback).

Ctrl-C, at any moment, prints exactly one line: where the interrupted run is and the command
that continues it (or that nothing was written), and exits 130.  A full disk names the file
and what was being written, and how to continue.  Both read the run directories this process
holds (:func:`interp.runs.held_runs`); every lock is released when the command ends.
"""

from __future__ import annotations

import errno
import os
import shlex
import signal
import sys
from pathlib import Path
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
        name = {"cuda": "CUDA", "mps": "MPS"}[device.type]
        raise InterpError(f"--device {value}: {name} is not available on this machine")
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


class Interrupted(Exception):
    """Ctrl-C inside a command (typer would turn KeyboardInterrupt into a silent exit 130)."""


def _command_for(group: click.Command, argv: list[str]) -> click.Command:
    """The (sub)command ``argv`` invokes: group names are followed while they match."""
    cmd = group
    for token in argv:
        subs = getattr(cmd, "commands", None)
        if not subs:
            break
        if token in subs:
            cmd = subs[token]
        elif not token.startswith("-"):
            break
    return cmd


def _params(cmd: click.Command) -> set[str]:
    return {p.name for p in cmd.params if p.name}


def continue_hint(group: click.Command, argv: list[str], run: Any) -> str:
    """Where the work on ``run`` (a :class:`interp.runs.HeldRun`) is and how it continues."""
    kept = f"the run in {run.path} is kept"
    if run.hint:
        return f"{kept}; {run.hint}"
    names = _params(_command_for(group, argv))
    if "resume" in names:
        again = [a for a in argv if a not in ("--overwrite", "--no-resume", "--resume")]
        if not any(a == "--out" or a.startswith("--out=") for a in again):
            again += ["--out", str(run.path)]
        return f"{kept}; continue it with: interp {shlex.join([*again, '--resume'])}"
    if "overwrite" in names:
        return f"{run.path} is incomplete; run the command again with --overwrite to replace it"
    return f"{run.path} is incomplete; delete it or choose another --out"


def fresh_start(out: Path | None, resume: bool) -> tuple[bool, str | None]:
    """``--resume`` on an ``--out`` that holds nothing to resume (not there yet, or a folder a
    kill left before its ``config.json``) starts a new run there: ``(False, the line saying
    so)``, printed once the work starts.  Otherwise ``(resume, None)``."""
    from interp.runs import RunDir

    if not resume or out is None or not RunDir.nothing_to_resume(out):
        return resume, None
    from interp.experiments.execute import nothing_to_resume_line

    return False, nothing_to_resume_line(out)


def _held_runs() -> list[Any]:
    runs = sys.modules.get("interp.runs")  # not imported: no run was touched
    return runs.held_runs() if runs is not None else []


def _main_run(held: list[Any]) -> Any:
    """The command's own run among those held: the newest that no other held run contains
    (precache's twins and reproduce's parts are runs inside the command's ``--out``)."""
    paths = [Path(os.path.abspath(h.path)) for h in held]
    roots = [h for h, p in zip(held, paths, strict=True) if not any(q in p.parents for q in paths)]
    return (roots or held)[-1]


def interrupted_line(group: click.Command, argv: list[str]) -> str:
    held = _held_runs()
    if not held:
        return "interrupted: nothing was written"
    # the command's own run (the shared demo cache is released as soon as it is ready)
    return f"interrupted: {continue_hint(group, argv, _main_run(held))}"


def _describe_written(path: str) -> str:
    runs = sys.modules.get("interp.runs")
    return runs.describe_file(Path(path)) if runs is not None else path


def os_error_line(e: OSError, group: click.Command, argv: list[str]) -> str:
    names = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
    what = e.strerror or type(e).__name__
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        held = _held_runs()
        written = f" while writing {_describe_written(e.filename)}" if e.filename else ""
        after = f"; {continue_hint(group, argv, _main_run(held))}" if held else ""
        return f"{what}{written}; free some space{after}"
    return f"{what}{': ' + names if names else ''}"


_SIGINT_BEFORE: list[Any] = []


def _quiet_sigint() -> None:
    """From here on the process only reports and exits: a second Ctrl-C must not interleave a
    traceback with the one line."""
    try:
        _SIGINT_BEFORE.append(signal.signal(signal.SIGINT, signal.SIG_IGN))
    except (ValueError, OSError):  # not the main thread
        pass


def _restore_sigint() -> None:
    """For in-process callers (tests): the handler Ctrl-C had before the report."""
    while _SIGINT_BEFORE:
        try:
            signal.signal(signal.SIGINT, _SIGINT_BEFORE.pop())
        except (ValueError, OSError):
            pass


def _release_locks() -> None:
    runs = sys.modules.get("interp.runs")
    if runs is not None:
        runs.release_all()


class OneLineErrorGroup(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted() from None

    def main(
        self,
        args: Any = None,
        prog_name: Any = None,
        complete_var: Any = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = [str(a) for a in (sys.argv[1:] if args is None else args)]
        try:
            return self._main(argv, prog_name, complete_var, **extra)
        except KeyboardInterrupt:  # landed while an error line was being reported: still no trace
            _quiet_sigint()
            click.echo(interrupted_line(self, argv), err=True)
            sys.exit(130)
        finally:
            _release_locks()
            if args is not None:  # called in-process (the console script passes no args)
                _restore_sigint()
            else:  # the process only exits from here on: a late Ctrl-C must not print a trace
                _quiet_sigint()

    def _main(self, argv: list[str], prog_name: Any, complete_var: Any, **extra: Any) -> Any:
        try:
            _guard_devices(self)  # every --device, including those of commands added later
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
            if rv == 130:  # typer's answer to a KeyboardInterrupt while parsing the options
                raise Interrupted()
        except (Interrupted, KeyboardInterrupt):
            _quiet_sigint()
            click.echo(interrupted_line(self, argv), err=True)
            sys.exit(130)
        except click_exc.NoArgsIsHelpError as e:
            click.echo(e.ctx.get_help() if e.ctx else str(e))
            sys.exit(0)
        except click.ClickException as e:
            _quiet_sigint()  # the one line is not interleaved with a trace
            hint = ""
            if isinstance(e, click_exc.UsageError) and e.ctx is not None:
                hint = f" (see '{e.ctx.command_path} --help')"
            click.echo(f"error: {_one_line(e.format_message())}{hint}", err=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            _quiet_sigint()  # the one line is not interleaved with a trace
            click.echo("error: aborted", err=True)
            sys.exit(130)
        except InterpError as e:
            _quiet_sigint()  # the one line is not interleaved with a trace
            click.echo(f"error: {_one_line(str(e))}", err=True)
            sys.exit(2)
        except OSError as e:  # unreadable input, unwritable output, disk full: the user's to fix
            _quiet_sigint()  # the one line is not interleaved with a trace
            click.echo(f"error: {_one_line(os_error_line(e, self, argv))}", err=True)
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


def _version(value: bool) -> None:
    if value:
        from interp.version import __version__

        typer.echo(f"interp {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Mechanistic-interpretability toolkit: train hooked models, probe, and write reports."""
