"""``model.cfg`` of interp's models: TransformerLens' config for an interp ``ModelConfig``, and
the ``ActivationCache`` that ``run_with_cache`` returns (see :mod:`interp.models.tl_surface`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from transformer_lens import ActivationCache as _TLActivationCache
from transformer_lens.config import TransformerLensConfig

if TYPE_CHECKING:
    from interp.config import ModelConfig

__all__ = [
    "NORMALIZATION_TYPES",
    "POSITIONAL_TYPES",
    "ActivationCache",
    "InterpTLConfig",
    "tl_config",
]

NORMALIZATION_TYPES = {"layernorm": "LN", "rmsnorm": "RMS", "none": None}
# TL's names where TL has the encoding; interp's own name otherwise
POSITIONAL_TYPES = {"absolute": "standard", "rope": "rotary", "alibi": "alibi"}


@dataclass
class InterpTLConfig(TransformerLensConfig):
    """``model.cfg``: TransformerLens' config fields for an interp model, plus a few of
    ``HookedTransformerConfig``'s that TL users read (``model_name``, ``d_vocab_out``,
    ``rotary_dim``, ``rotary_base``, ``tokenizer_prepends_bos``, ...).  Derived from
    ``model.config`` (interp's :class:`~interp.config.ModelConfig`); editing it changes no
    computation, except ``default_prepend_bos`` (read by ``to_tokens``)."""

    model_name: str = "interp"
    original_architecture: str = "interp.HookedTransformer"
    d_vocab_out: int = -1
    rotary_dim: int | None = None
    rotary_base: float = 10000.0
    tokenizer_prepends_bos: bool = False  # interp tokenizers never add special tokens
    tokenizer_name: str | None = None  # kind of the text codec: byte, bpe, hf, task
    tie_word_embeddings: bool = False
    initializer_range: float = 0.02
    use_attn_scale: bool = True
    attn_scale: float = -1.0
    parallel_attn_mlp: bool = False
    use_local_attn: bool = False
    use_hook_tokens: bool = False
    input_kind: str = "tokens"


def tl_config(config: ModelConfig, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """The :class:`InterpTLConfig` of an interp :class:`~interp.config.ModelConfig`."""
    rotary_dim, rotary_base = None, 10000.0
    if config.positional == "rope":
        options = dict(config.positional_options)
        rotary_base = float(options.get("base", 10000.0))
        rotary_dim = options.get("rotary_dim") or config.head_dim - config.head_dim % 2
    norm = NORMALIZATION_TYPES[config.normalization]
    return InterpTLConfig(
        d_model=config.d_model,
        d_head=config.head_dim,
        n_layers=config.n_layers,
        n_ctx=config.n_ctx,
        n_heads=config.n_heads,
        d_mlp=config.d_mlp,
        d_vocab=config.d_vocab,
        d_vocab_out=config.d_vocab,
        device=device,
        default_prepend_bos=False,
        positional_embedding_type=POSITIONAL_TYPES.get(config.positional, config.positional),
        attn_only=config.d_mlp == 0,
        uses_rms_norm=norm == "RMS",
        final_rms=norm == "RMS",
        eps=config.eps,
        act_fn=config.act_fn,
        normalization_type=norm,
        dtype=dtype,
        rotary_dim=rotary_dim,
        rotary_base=rotary_base,
        tie_word_embeddings=config.tied_embeddings,
        initializer_range=config.init_range,
        attn_scale=float(config.head_dim) ** 0.5,
        input_kind=config.input_kind,
    )


class ActivationCache(_TLActivationCache):
    """``transformer_lens.ActivationCache`` (``cache["resid_post", 3]``, ``accumulated_resid``,
    ``decompose_resid``, ``logit_attrs``, ...) that also answers ``name in cache`` and
    ``cache.get(name)`` like the plain dict interp's ``run_with_cache`` used to return."""

    def __contains__(self, key: object) -> bool:
        return key in self.cache_dict

    def get(self, key: str, default: Any = None) -> Any:
        return self.cache_dict.get(key, default)
