"""Learned absolute position embeddings (GPT-2)."""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from interp.models.positional.base import PositionalEncoding, register_positional


class LearnedPositions(nn.Module):
    no_decay = ("W_pos",)  # a position table is not shrunk towards zero (interp.train.optim)

    def __init__(self, n_ctx: int, d_model: int, init_range: float) -> None:
        super().__init__()
        self.W_pos = nn.Parameter(torch.randn(n_ctx, d_model) * init_range)

    def forward(self, positions: Int[Tensor, " pos"]) -> Float[Tensor, "pos d_model"]:
        return self.W_pos[positions]


@register_positional
class AbsolutePositional(PositionalEncoding):
    name = "absolute"

    def embedding(self) -> nn.Module:
        return LearnedPositions(self.cfg.n_ctx, self.cfg.d_model, self.cfg.init_range)
