"""The hooked transformer family and its loader."""

from interp.models.transformer import HookedTransformer, check_model_config, lm_loss

__all__ = ["HookedTransformer", "check_model_config", "lm_loss"]
