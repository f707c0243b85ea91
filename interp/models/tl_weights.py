"""The stacked weights of interp's models as TransformerLens names them (``W_Q`` ... ``b_U``,
``W_pos``, ``QK``, ``OV``) and what ``ActivationCache``'s helpers ask of a model
(``tokens_to_residual_directions``, ``accumulated_bias``): a mixin of
:class:`~interp.models.tl_surface.TransformerLensSurface`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import einops
import numpy as np
import torch
from torch import Tensor
from transformer_lens import FactoredMatrix

from interp.errors import ConfigError

if TYPE_CHECKING:
    from interp.config import ModelConfig

__all__ = ["TLWeights"]


class TLWeights:
    """Mixin: the host has ``config``, ``cfg``, ``embed``, ``pos_embed``, ``blocks``,
    ``unembed`` and ``to_single_token``."""

    config: ModelConfig

    # ------------------------------------------------------------------ weights (TL names)
    def _stack(self, get: Callable[[Any], Tensor], what: str) -> Tensor:
        blocks = list(self.blocks)  # type: ignore[attr-defined]
        if what.startswith("mlp") and not all(b.has_mlp for b in blocks):
            raise AttributeError(f"this model is attention-only (d_mlp=0): it has no {what}")
        return torch.stack([get(b) for b in blocks])

    @property
    def W_Q(self) -> Tensor:
        """[layer head_index d_model d_head]"""
        return self._stack(lambda b: b.attn.W_Q, "attn")

    @property
    def W_K(self) -> Tensor:
        """[layer head_index d_model d_head]"""
        return self._stack(lambda b: b.attn.W_K, "attn")

    @property
    def W_V(self) -> Tensor:
        """[layer head_index d_model d_head]"""
        return self._stack(lambda b: b.attn.W_V, "attn")

    @property
    def W_O(self) -> Tensor:
        """[layer head_index d_head d_model]"""
        return self._stack(lambda b: b.attn.W_O, "attn")

    @property
    def b_Q(self) -> Tensor:
        """[layer head_index d_head]"""
        return self._stack(lambda b: b.attn.b_Q, "attn")

    @property
    def b_K(self) -> Tensor:
        """[layer head_index d_head]"""
        return self._stack(lambda b: b.attn.b_K, "attn")

    @property
    def b_V(self) -> Tensor:
        """[layer head_index d_head]"""
        return self._stack(lambda b: b.attn.b_V, "attn")

    @property
    def b_O(self) -> Tensor:
        """[layer d_model]"""
        return self._stack(lambda b: b.attn.b_O, "attn")

    @property
    def W_in(self) -> Tensor:
        """[layer d_model d_mlp]"""
        return self._stack(lambda b: b.mlp.W_in, "mlp W_in")

    @property
    def W_out(self) -> Tensor:
        """[layer d_mlp d_model]"""
        return self._stack(lambda b: b.mlp.W_out, "mlp W_out")

    @property
    def b_in(self) -> Tensor:
        """[layer d_mlp]"""
        return self._stack(lambda b: b.mlp.b_in, "mlp b_in")

    @property
    def b_out(self) -> Tensor:
        """[layer d_model]"""
        return self._stack(lambda b: b.mlp.b_out, "mlp b_out")

    @property
    def W_E(self) -> Tensor:
        """[d_vocab d_model] (``[d_input d_model]`` for vector input)"""
        return self.embed.W_E  # type: ignore[attr-defined]

    @property
    def W_U(self) -> Tensor:
        """[d_model d_vocab] (``W_E.T`` when the embeddings are tied)"""
        return self.unembed.weight  # type: ignore[attr-defined]

    @property
    def b_U(self) -> Tensor:
        """[d_vocab] (zeros, not a parameter, for models without one such as GPT-2)"""
        return self.unembed.b_U  # type: ignore[attr-defined]

    @property
    def W_pos(self) -> Tensor:
        """[n_ctx d_model]: learned positions, or the fixed sinusoidal table.  Models whose
        positions live in attention (RoPE, ALiBi, CoPE, none) have no W_pos (AttributeError)."""
        pos_embed = self.pos_embed  # type: ignore[attr-defined]
        if pos_embed is None:
            raise AttributeError(
                f"W_pos: positional encoding {self.config.positional!r} adds no vector per position"
            )
        if hasattr(pos_embed, "W_pos"):
            return pos_embed.W_pos
        device = next(self.parameters()).device  # type: ignore[attr-defined]
        return pos_embed(torch.arange(self.cfg.n_ctx, device=device)).to(self.cfg.dtype)

    @property
    def W_E_pos(self) -> Tensor:
        """[d_vocab + n_ctx, d_model]"""
        return torch.cat([self.W_E, self.W_pos], dim=0)

    @property
    def QK(self) -> FactoredMatrix:
        """[layer head_index d_model d_model] as a ``FactoredMatrix`` (positions not included)"""
        return FactoredMatrix(self.W_Q, self.W_K.transpose(-2, -1))

    @property
    def OV(self) -> FactoredMatrix:
        """[layer head_index d_model d_model] as a ``FactoredMatrix``"""
        return FactoredMatrix(self.W_V, self.W_O)

    # ------------------------------------------------------------------ for ActivationCache
    def tokens_to_residual_directions(self, tokens: str | int | Tensor) -> Tensor:
        """Unembedding columns of ``tokens``: ``[*tokens.shape, d_model]`` (``[d_model]`` for one)."""
        if isinstance(tokens, Tensor) and tokens.numel() > 1:
            return einops.rearrange(self.W_U[:, tokens], "d_model ... -> ... d_model")
        if isinstance(tokens, str):
            token = self.to_single_token(tokens)
        elif isinstance(tokens, int | np.integer) and not isinstance(tokens, bool):
            token = int(tokens)
        elif isinstance(tokens, Tensor) and tokens.numel() == 1:
            token = int(tokens.item())
        else:
            raise ConfigError(f"cannot read tokens of type {type(tokens).__name__}")
        return self.W_U[:, token]

    def accumulated_bias(
        self, layer: int, mlp_input: bool = False, include_mlp_biases: bool = True
    ) -> Tensor:
        """Sum of the attention (``b_O``) and MLP (``b_out``) output biases written to the
        residual stream before ``layer`` (and ``b_O`` of ``layer`` itself with ``mlp_input``)."""
        blocks = self.blocks  # type: ignore[attr-defined]
        out = torch.zeros(self.cfg.d_model, device=self.cfg.device, dtype=self.cfg.dtype)
        for block in list(blocks)[:layer]:
            out = out + block.attn.b_O
            if include_mlp_biases and block.has_mlp:
                out = out + block.mlp.b_out
        if mlp_input:
            if layer >= len(blocks):
                raise ConfigError("mlp_input: there is no layer after the last one")
            out = out + blocks[layer].attn.b_O
        return out
