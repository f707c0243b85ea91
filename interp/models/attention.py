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

Myopic gradients (``self.myopic = True``, set by ``interp.train.grad_modes``; Wu et al. 2024):
the loss at position t sends no gradient into the hidden states of positions s < t, while the
weights still receive gradient through every position.  The forward values are unchanged
(bit for bit); only the autograd graph differs, at the cost of one forward and one backward:

* past keys and values come from the *detached* layer input through the live weights:
  ``k_past = W_K · x.detach()``, ``v_past = W_V · x.detach()``;
* scores are ``q · k_pastᵀ`` off the diagonal and the live ``q_t · k_t`` on it (values taken
  from the detached product, gradient from the live one), so the pattern A of row t depends on
  the live hidden state at t only;
* output ``z = A · V_past + diag(A) · (V - V_past)`` (the second term is exactly zero forward).

The past keys and values are projections of the layer input, not hooked tensors: a hook that
patches hook_k / hook_v patches the live ones only (myopic mode is for training, not patching).
Positional parts see the past keys: ``rotate_qk`` is called on (q, k_past) (hooks fire with the
forward values) and once more on the live keys for the diagonal (its hooks fire twice in myopic
training steps, with identical values).  The attention then calls
``position.score_bias_myopic(x, q, k_past, k_live, scores, v_past, v)`` with the myopic scores
(values too, for CoPE's value gates); its default
(``AttentionPosition``) is ``score_bias(q, k_past, scores)``: exact for a bias that ignores k
(ALiBi) or reads only the ``scores`` argument.  A bias that computes several keys per entry
(CoPE's cumulative gates ``sigma(q_t · g_j)``, j = s..t, from its own gate keys) overrides it and
keeps the gate at j = t live, e.g. with the diagonal correction
``torch.where(eye, (q * g_live).sum(-1)[..., None], q @ g_pastᵀ)``.  Outside myopic mode the
attention calls ``position.score_bias_with_input(x, q, k, scores, v)`` (default ``score_bias``).
Under ``torch.no_grad()`` (evaluation) the vanilla path runs: the values are the same.
"""

from __future__ import annotations

import math

import torch
from einops import einsum, rearrange
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint

from interp.config import ModelConfig
from interp.models.positional import AttentionPosition


class Attention(nn.Module):
    # AdamW decays the weight matrices and the per-head biases b_Q, b_K, b_V ([head_index d_head]:
    # two-dimensional, they were decayed with the matrices from the start, and every trained number
    # depends on it), not the output bias (interp.train.optim)
    no_decay = ("b_O",)

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
        self.myopic = False  # gradient mode; see the module docstring

    def project(
        self, x: Float[Tensor, "batch pos d_model"], *weights: tuple[Tensor, Tensor]
    ) -> tuple[Float[Tensor, "batch pos head_index d_head"], ...]:
        """Project ``x`` through several (W [head_index d_model d_head], b) pairs in one matmul.

        One fused matmul instead of an einsum per projection: the per-call overhead of three
        small einsums cost ~10% of a training step on CPU (bench/train_throughput.py).
        """
        W = rearrange(
            torch.stack([w for w, _ in weights]),
            "n head_index d_model d_head -> d_model (n head_index d_head)",
        )
        b = torch.stack([b for _, b in weights]).flatten()
        out = (x @ W + b).unflatten(-1, (len(weights), self.n_heads, self.d_head))
        return out.unbind(-3)

    def scores_of(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k: Float[Tensor, "batch key_pos head_index d_head"],
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        return (
            einsum(
                q,
                k,
                "batch query_pos head_index d_head, batch key_pos head_index d_head -> batch head_index query_pos key_pos",
            )
            * self.scale
        )

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        myopic = self.myopic and torch.is_grad_enabled()
        q, k, v = self.project(x, (self.W_Q, self.b_Q), (self.W_K, self.b_K), (self.W_V, self.b_V))
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        n_pos = x.shape[1]
        if myopic:
            x_past = x.detach()
            k_past, v_past = self.project(x_past, (self.W_K, self.b_K), (self.W_V, self.b_V))
            _, k_live = self.position.rotate_qk(q.detach(), k)
            q, k_past = self.position.rotate_qk(q, k_past)
            past = self.scores_of(q, k_past)
            live_diag = (
                einsum(
                    q,
                    k_live,
                    "batch pos head_index d_head, batch pos head_index d_head -> batch head_index pos",
                )
                * self.scale
            )
            diag = past.diagonal(dim1=-2, dim2=-1).detach() + (live_diag - live_diag.detach())
            eye = torch.eye(n_pos, dtype=torch.bool, device=x.device)
            scores = torch.where(eye, diag.unsqueeze(-1), past)
            scores = self.position.score_bias_myopic(x, q, k_past, k_live, scores, v_past, v)
        else:
            q, k = self.position.rotate_qk(q, k)
            scores = self.position.score_bias_with_input(x, q, k, self.scores_of(q, k), v)
        causal = torch.ones(n_pos, n_pos, dtype=torch.bool, device=x.device).tril()
        scores = self.hook_attn_scores(scores.masked_fill(~causal, float("-inf")))
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        values = v_past if myopic else v
        z = einsum(
            pattern,
            values,
            "batch head_index query_pos key_pos, batch key_pos head_index d_head -> batch query_pos head_index d_head",
        )
        if myopic:
            own = pattern.diagonal(dim1=-2, dim2=-1)  # batch head_index pos
            z = z + own.transpose(1, 2).unsqueeze(-1) * (v - v_past)
        z = self.hook_z(z)
        # sum over heads as one matmul: [batch pos (head_index d_head)] @ [(head_index d_head) d_model]
        return z.flatten(-2) @ self.W_O.flatten(0, 1) + self.b_O
