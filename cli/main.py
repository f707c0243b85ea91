"""``interp`` console entry point: registers every command module on the one Typer app."""

from __future__ import annotations

import cli.commands_collapse  # noqa: F401  (registration: interp collapse, interp squash)
import cli.commands_pe_bench  # noqa: F401  (registration: interp pe-bench)
import cli.commands_precache  # noqa: F401  (registration: interp precache)
import cli.commands_probe  # noqa: F401  (registration: interp probe)
from cli import commands_reproduce, commands_train  # noqa: F401  (registration)
from cli.app import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
