"""User-facing errors.

Anything raised as :class:`InterpError` is printed by the CLI as one line
(``error: <message>``) with a non-zero exit code and no traceback.  Library code
raises these for bad input (unknown names, missing or corrupt files, impossible
shapes); genuine bugs stay ordinary exceptions.
"""

from __future__ import annotations


class InterpError(Exception):
    """An error whose message is meant for the user, in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ConfigError(InterpError):
    """A configuration value is invalid."""


class LoadError(InterpError):
    """A model, checkpoint, tokenizer or corpus could not be loaded."""


class CorruptFileError(LoadError):
    """A file exists but cannot be parsed (truncated, wrong format, mismatched shapes)."""


class NumericalError(InterpError):
    """A NaN or inf appeared in the loss or gradients."""
