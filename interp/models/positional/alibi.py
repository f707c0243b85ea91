"""ALiBi (Press et al. 2022): a per-head linear penalty on the query-key distance."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from interp.models.positional.base import AttentionPosition, PositionalEncoding, register_positional


def alibi_slopes(n_heads: int) -> Tensor:
    """The geometric slopes of the ALiBi paper (also for head counts that are not powers of 2)."""

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        slopes = power_of_two(n_heads)
    else:
        closest = 2 ** math.floor(math.log2(n_heads))
        slopes = power_of_two(closest) + power_of_two(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


class AlibiAttention(AttentionPosition):
    def __init__(self, n_heads: int) -> None:
        super().__init__()
        self.register_buffer("slopes", alibi_slopes(n_heads), persistent=False)

    def score_bias(
        self,
        q: Tensor,
        k: Tensor,
        scores: Float[Tensor, "batch head_index query_pos key_pos"],
    ) -> Tensor:
        n_q, n_k = scores.shape[-2], scores.shape[-1]
        q_pos = torch.arange(n_k - n_q, n_k, device=scores.device)
        k_pos = torch.arange(n_k, device=scores.device)
        distance = (q_pos[:, None] - k_pos[None, :]).clamp(min=0).to(scores.dtype)
        return scores - self.slopes.to(scores.dtype)[:, None, None] * distance


@register_positional
class Alibi(PositionalEncoding):
    name = "alibi"
    relative = True

    def attention(self, layer: int) -> AttentionPosition:
        return AlibiAttention(self.cfg.n_heads)
