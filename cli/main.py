"""``interp`` console entry point: registers every command module on the one Typer app."""

from __future__ import annotations

from cli import commands_train  # noqa: F401  (registers train, report, demo)
from cli.app import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
