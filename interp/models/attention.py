"""Causal multi-head attention with TransformerLens hook points.

Dimension legend (jaxtyping names = einops names):
    batch       sequences in the batch
    pos         sequence position (query_pos / key_pos when both appear)
    head_index  attention head
    d_model     residual stream width
    d_head      per-head width

Hooks: hook_q, hook_k, hook_v [batch pos head_index d_head]; hook_attn_scores and hook_pattern
[batch head_index query_pos key_pos] (scores after scaling, the positional bias and the causal
mask); hook_z [batch pos head_index d_head]; plus whatever the positional part declares
(hook_rot_q / hook_rot_k for RoPE).
"""

from __future__ import annotations

import math

import torch
from einops import einsum
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint

from interp.config import ModelConfig
from interp.models.positional import AttentionPosition


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, position: AttentionPosition) -> None:
        super().__init__()
        n_heads, d_model, d_head = cfg.n_heads, cfg.d_model, cfg.head_dim
        self.n_heads, self.d_head = n_heads, d_head
        self.W_Q = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_K = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_V = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_O = nn.Parameter(torch.empty(n_heads, d_head, d_model))
        bias = cfg.use_bias
        self.b_Q = nn.Parameter(torch.zeros(n_heads, d_head), requires_grad=bias)
        self.b_K = nn.Parameter(torch.zeros(n_heads, d_head), requires_grad=bias)
        self.b_V = nn.Parameter(torch.zeros(n_heads, d_head), requires_grad=bias)
        self.b_O = nn.Parameter(torch.zeros(d_model), requires_grad=bias)
        self.scale = 1.0 / math.sqrt(d_head)
        self.position = position
        for name in position.hook_names:
            setattr(self, name, HookPoint())
        position.hooks = {name: getattr(self, name) for name in position.hook_names}
        self.hook_q = HookPoint()  # [batch, pos, head_index, d_head]
        self.hook_k = HookPoint()  # [batch, pos, head_index, d_head]
        self.hook_v = HookPoint()  # [batch, pos, head_index, d_head]
        self.hook_attn_scores = HookPoint()  # [batch, head_index, query_pos, key_pos]
        self.hook_pattern = HookPoint()  # [batch, head_index, query_pos, key_pos]
        self.hook_z = HookPoint()  # [batch, pos, head_index, d_head]

    def project(
        self, x: Float[Tensor, "batch pos d_model"], W: Tensor, b: Tensor
    ) -> Float[Tensor, "batch pos head_index d_head"]:
        return (
            einsum(
                x, W, "batch pos d_model, head_index d_model d_head -> batch pos head_index d_head"
            )
            + b
        )

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        q = self.hook_q(self.project(x, self.W_Q, self.b_Q))
        k = self.hook_k(self.project(x, self.W_K, self.b_K))
        v = self.hook_v(self.project(x, self.W_V, self.b_V))
        q, k = self.position.rotate_qk(q, k)
        scores = (
            einsum(
                q,
                k,
                "batch query_pos head_index d_head, batch key_pos head_index d_head -> batch head_index query_pos key_pos",
            )
            * self.scale
        )
        scores = self.position.score_bias(q, k, scores)
        n_pos = x.shape[1]
        causal = torch.ones(n_pos, n_pos, dtype=torch.bool, device=x.device).tril()
        scores = self.hook_attn_scores(scores.masked_fill(~causal, float("-inf")))
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = self.hook_z(
            einsum(
                pattern,
                v,
                "batch head_index query_pos key_pos, batch key_pos head_index d_head -> batch query_pos head_index d_head",
            )
        )
        return (
            einsum(
                z,
                self.W_O,
                "batch pos head_index d_head, head_index d_head d_model -> batch pos d_model",
            )
            + self.b_O
        )
