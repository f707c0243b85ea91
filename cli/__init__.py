"""Thin Typer commands: options -> config -> one library call -> print where results went."""
