"""``interp`` console entry point: registers every command module on the one Typer app.

Importing this module is instant: the command modules (and through them torch) are imported
inside :func:`main`, where a Ctrl-C that lands during those seconds of imports is answered
with one line (``interrupted: nothing was written``) instead of a traceback.  ``cli.main.app``
still gives the fully registered app (imported on first access).
"""

from __future__ import annotations

import sys
from typing import Any

INTERRUPTED_EARLY = "interrupted: nothing was written"


def load_app() -> Any:
    """The Typer app with every command registered (each module registers itself on import)."""
    from cli import (  # noqa: F401
        commands_collapse,
        commands_count,
        commands_doctor,
        commands_export,
        commands_grok,
        commands_pe_bench,
        commands_precache,
        commands_probe,
        commands_reproduce,
        commands_train,
    )
    from cli.app import app

    return app


def main() -> None:
    try:
        app = load_app()
    except KeyboardInterrupt:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not add a traceback
        sys.stderr.write(INTERRUPTED_EARLY + "\n")
        sys.stderr.flush()
        sys.exit(130)
    app()


def __getattr__(name: str) -> Any:  # ``from cli.main import app``
    if name == "app":
        return load_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
