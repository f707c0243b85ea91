"""Positional encodings, one file each, registered by name."""

from interp.models.positional import (  # noqa: F401  (registration)
    absolute,
    alibi,
    cope,
    none,
    rel,
    rope,
    sinusoidal,
)
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
