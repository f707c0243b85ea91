"""No positional encoding (NoPE): position only through the causal mask."""

from __future__ import annotations

from interp.models.positional.base import PositionalEncoding, register_positional


@register_positional
class NoPositional(PositionalEncoding):
    name = "none"
    relative = True
