"""The hooked transformer family and its loader."""

from interp.models.transformer import HookedTransformer, lm_loss

__all__ = ["HookedTransformer", "lm_loss"]
