"""Fixed sinusoidal position embeddings (Vaswani et al. 2017)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from interp.models.positional.base import PositionalEncoding, register_positional


@dataclass(frozen=True)
class SinusoidalOptions:
    base: float = 10000.0


class SinusoidalPositions(nn.Module):
    def __init__(self, d_model: int, base: float) -> None:
        super().__init__()
        self.d_model = d_model
        self.base = base

    def forward(self, positions: Int[Tensor, " pos"]) -> Float[Tensor, "pos d_model"]:
        half = (self.d_model + 1) // 2
        freqs = torch.exp(-math.log(self.base) * torch.arange(half, dtype=torch.float32) / half)
        angles = positions.float()[:, None] * freqs[None, :]
        table = torch.cat([angles.sin(), angles.cos()], dim=-1)[:, : self.d_model]
        return table


@register_positional
class Sinusoidal(PositionalEncoding):
    name = "sinusoidal"
    Options = SinusoidalOptions

    def embedding(self) -> nn.Module:
        return SinusoidalPositions(self.cfg.d_model, self.options.base)
