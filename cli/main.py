"""``interp`` console entry point: registers every command module on the one Typer app."""

from __future__ import annotations

# each command module registers its commands on the one app when imported
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
