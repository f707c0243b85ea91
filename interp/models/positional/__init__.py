"""Positional encodings, one file each, registered by name."""

from interp.models.positional import absolute, alibi, cope, none, rope, sinusoidal  # noqa: F401  (registration)
from interp.models.positional.base import (
    AttentionPosition,
    PositionalEncoding,
    build_positional,
    positional_names,
    register_positional,
)

__all__ = [
    "AttentionPosition",
    "PositionalEncoding",
    "build_positional",
    "positional_names",
    "register_positional",
]
