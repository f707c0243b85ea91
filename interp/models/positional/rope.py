"""Rotary position embeddings (Su et al. 2021), GPT-NeoX layout (rotate halves)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from interp.models.positional.base import AttentionPosition, PositionalEncoding, register_positional


@dataclass(frozen=True)
class RopeOptions:
    base: float = 10000.0
    rotary_dim: int | None = None  # default: the whole head

    def __post_init__(self) -> None:
        if self.base <= 0:
            raise ValueError("base must be positive")
        if self.rotary_dim is not None and (self.rotary_dim < 2 or self.rotary_dim % 2):
            raise ValueError("rotary_dim must be an even integer >= 2")


class RotaryAttention(AttentionPosition):
    hook_names = ("hook_rot_q", "hook_rot_k")

    def __init__(self, d_head: int, options: RopeOptions) -> None:
        super().__init__()
        self.rotary_dim = options.rotary_dim or d_head - d_head % 2
        if self.rotary_dim > d_head:
            raise ValueError(f"rotary_dim {self.rotary_dim} exceeds d_head {d_head}")
        half = self.rotary_dim // 2
        inv_freq = 1.0 / (options.base ** (torch.arange(half, dtype=torch.float32) / half))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def _rotate(self, x: Float[Tensor, "batch pos head_index d_head"], offset: int) -> Tensor:
        n_pos = x.shape[1]
        pos = torch.arange(offset, offset + n_pos, device=x.device, dtype=torch.float32)
        angles = pos[:, None] * self.inv_freq[None, :]  # pos half
        cos = torch.cat([angles.cos(), angles.cos()], -1)[None, :, None, :].to(x.dtype)
        sin = torch.cat([angles.sin(), angles.sin()], -1)[None, :, None, :].to(x.dtype)
        rot, rest = x[..., : self.rotary_dim], x[..., self.rotary_dim :]
        half = self.rotary_dim // 2
        rotated_half = torch.cat([-rot[..., half:], rot[..., :half]], dim=-1)
        return torch.cat([rot * cos + rotated_half * sin, rest], dim=-1)

    def rotate_qk(self, q: Tensor, k: Tensor, offset: int = 0) -> tuple[Tensor, Tensor]:
        return self.hooks["hook_rot_q"](self._rotate(q, offset)), self.hooks["hook_rot_k"](
            self._rotate(k, offset)
        )


@register_positional
class Rope(PositionalEncoding):
    name = "rope"
    Options = RopeOptions
    relative = True

    def attention(self, layer: int) -> AttentionPosition:
        return RotaryAttention(self.cfg.head_dim, self.options)
