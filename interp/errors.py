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
    """A NaN or inf in training, with where it happened as fields (never parsed from the text).

    ``quantity``: ``"loss"``, ``"gradient norm"`` or ``"weights"``; ``value``: the non-finite
    value (``None`` for weights); ``step``: the training step; ``model``: the model's slot when
    several models train at once (``None`` for one model); ``cell``: what the caller calls that
    model (``"cell d=8 m=3"``); ``kept``: what survives (``"last checkpoint kept"``).  ``message``
    replaces the standard text (``"loss of cell d=8 m=3 is nan at step 12; stopping"``).
    """

    FIELDS = ("quantity", "value", "step", "model", "cell", "kept", "message")

    def __init__(
        self,
        quantity: str,
        value: float | None,
        step: int,
        model: int | None = None,
        cell: str | None = None,
        kept: str | None = None,
        message: str | None = None,
    ) -> None:
        self.quantity, self.value, self.step = quantity, value, step
        self.model, self.cell, self.kept, self.message = model, cell, kept, message
        text = f"{self.reason}; stopping" + (f" ({kept})" if kept else "")
        super().__init__(message if message is not None else text)

    @property
    def reason(self) -> str:
        """``"loss is nan at step 12"``: what went non-finite, of which model, when."""
        who = self.cell if self.cell is not None else None
        if who is None and self.model is not None:
            who = f"model {self.model}"
        subject = f"{self.quantity} of {who}" if who is not None else self.quantity
        if self.value is None:
            return f"{subject} are not finite after step {self.step}"
        return f"{subject} is {self.value} at step {self.step}"

    def replace(self, **changes: object) -> NumericalError:
        """The same error with some fields changed (a caller naming the model, say)."""
        fields = {name: getattr(self, name) for name in self.FIELDS}
        return NumericalError(**{**fields, **changes})  # type: ignore[arg-type]
