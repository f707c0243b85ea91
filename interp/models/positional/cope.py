"""Contextual position encoding, CoPE (Golovneva et al. 2024, arXiv 2405.18719).

Per head, query i gates every key j <= i with ``g_ij = sigmoid(q_i . k_j / sqrt(d_head))``;
the position of key j seen from query i is the number of gated keys between them,
``p_ij = sum_{t=j..i} g_it`` (a reversed cumulative sum), clamped to ``p_max``.  Learned
embeddings ``e[p]`` (zero-initialised, one table per head) exist for integer ``p`` only; a
fractional position interpolates between ``floor(p)`` and ``ceil(p)``.  The attention logit
gains ``q_i . e[p_ij] / sqrt(d_head)`` (the public code adds it before the 1/sqrt(d) scaling).

Efficient form (never an L x L x d tensor): ``z = q . E`` at the ``p_max + 1`` integer
positions [batch head_index query_pos n_positions], then gather ``z`` at floor / ceil of
``p_ij`` and mix with the fractional part.

Hook points on the attention module, both [batch head_index query_pos key_pos]:
``hook_cope_gates`` (zero for future keys) and ``hook_cope_pos`` (the clamped positions).
Forcing the gates to 1 through the hook gives ``p_ij = i - j + 1``: relative positions.

Options (``ModelConfig.positional_options``):
    p_max       largest position (default ``n_ctx``); ``npos = p_max + 1`` embeddings
    npos        alternative spelling of ``p_max + 1`` (the public code's ``--cope-npos``)
    layers      layers that use CoPE (default all); the others have no positional encoding
    sep_gate_key  gates read their own keys ``k + k @ D`` with ``D`` zero-initialised (so they
                start shared with the attention keys and may drift apart); the public code's
                ``--cope-sep-key`` projects the residual stream, which ``score_bias`` never sees
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import einsum
from jaxtyping import Float
from torch import Tensor, nn

from interp.errors import ConfigError
from interp.models.positional.base import AttentionPosition, PositionalEncoding, register_positional


@dataclass(frozen=True)
class CopeOptions:
    p_max: int | None = None
    npos: int | None = None
    layers: tuple[int, ...] | None = None
    sep_gate_key: bool = False

    def __post_init__(self) -> None:
        for name in ("p_max", "npos"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.p_max is not None and self.p_max < 1:
            raise ValueError(f"p_max must be >= 1, got {self.p_max}")
        if self.npos is not None and self.npos < 2:
            raise ValueError(f"npos must be >= 2 (p_max >= 1), got {self.npos}")
        if self.p_max is not None and self.npos is not None and self.npos != self.p_max + 1:
            raise ValueError(f"npos ({self.npos}) must equal p_max + 1 ({self.p_max + 1})")
        if self.layers is not None:
            layers = (self.layers,) if isinstance(self.layers, int) else tuple(self.layers)
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in layers):
                raise ValueError(f"layers must be a list of layer indices, got {self.layers!r}")
            object.__setattr__(self, "layers", layers)


def causal_mask(n_q: int, n_k: int, device: torch.device) -> Tensor:
    """[query_pos key_pos] bool, True where key j is visible from query i (queries are the last
    ``n_q`` of the ``n_k`` positions)."""
    q_pos = torch.arange(n_k - n_q, n_k, device=device)
    return torch.arange(n_k, device=device)[None, :] <= q_pos[:, None]


class CopeAttention(AttentionPosition):
    hook_names = ("hook_cope_gates", "hook_cope_pos")

    def __init__(self, n_heads: int, d_head: int, p_max: int, sep_gate_key: bool) -> None:
        super().__init__()
        self.p_max = p_max
        self.scale = 1.0 / math.sqrt(d_head)
        # [head_index d_head n_positions]; not named W_* so the model's init leaves it at zero
        self.pos_emb = nn.Parameter(torch.zeros(n_heads, d_head, p_max + 1))
        self.gate_key_delta = (
            nn.Parameter(torch.zeros(n_heads, d_head, d_head)) if sep_gate_key else None
        )

    def gate_keys(
        self, k: Float[Tensor, "batch key_pos head_index d_head"]
    ) -> Float[Tensor, "batch key_pos head_index d_head"]:
        if self.gate_key_delta is None:
            return k
        return k + einsum(
            k,
            self.gate_key_delta,
            "batch key_pos head_index d_head, head_index d_head d_gate -> batch key_pos head_index d_gate",
        )

    def positions(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k: Float[Tensor, "batch key_pos head_index d_head"],
        scores: Float[Tensor, "batch head_index query_pos key_pos"] | None = None,
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """Gates (through ``hook_cope_gates``) -> clamped positions (through ``hook_cope_pos``).

        ``scores`` are the attention logits ``q . k / sqrt(d_head)``; when given (and the gates
        share the attention keys) the gate logits are read from them, as the public code does.
        """
        visible = causal_mask(q.shape[1], k.shape[1], q.device)
        if scores is None or self.gate_key_delta is not None:
            scores = (
                einsum(
                    q,
                    self.gate_keys(k),
                    "batch query_pos head_index d_head, batch key_pos head_index d_head -> batch head_index query_pos key_pos",
                )
                * self.scale
            )
        gates = torch.sigmoid(scores).masked_fill(~visible, 0.0)
        hook = self.hooks.get("hook_cope_gates")
        if hook is not None:
            gates = hook(gates)
            if hook._forward_hooks:  # a hook may have written future keys: they stay at zero
                gates = gates.masked_fill(~visible, 0.0)
        # p_ij = sum_{t=j..i} g_it = (sum_t g_it) - (sum_{t<=j} g_it) + g_ij  (future gates are 0);
        # summed in float32 so half-precision models keep integer-accurate positions
        total = gates.sum(-1, keepdim=True, dtype=torch.float32)
        positions = total - gates.cumsum(-1, dtype=torch.float32) + gates
        if self.p_max < k.shape[1]:  # otherwise positions cannot exceed p_max
            positions = positions.clamp(max=self.p_max)
        hook = self.hooks.get("hook_cope_pos")
        return hook(positions) if hook is not None else positions

    def position_logits(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        positions: Float[Tensor, "batch head_index query_pos key_pos"],
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """``q_i . e[p_ij]`` interpolated, from ``z = q . E`` at integer positions only.

        ``positions`` must lie in ``[0, p_max]`` (as :meth:`positions` returns them).
        """
        z = einsum(
            q,
            self.pos_emb.to(q.dtype),
            "batch query_pos head_index d_head, head_index d_head n_positions -> batch head_index query_pos n_positions",
        )
        # z at floor(p) plus the fractional part times the step to the next integer position
        step = torch.nn.functional.pad(z[..., 1:] - z[..., :-1], (0, 1))
        index = positions.detach().long()  # floor, as positions are >= 0
        fraction = (positions - index).to(z.dtype)
        return torch.addcmul(z.gather(-1, index), fraction, step.gather(-1, index))

    def score_bias(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k: Float[Tensor, "batch key_pos head_index d_head"],
        scores: Float[Tensor, "batch head_index query_pos key_pos"],
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        bias = self.position_logits(q * self.scale, self.positions(q, k, scores))
        return scores + bias.to(scores.dtype)


@register_positional
class Cope(PositionalEncoding):
    name = "cope"
    Options = CopeOptions
    relative = True

    def __init__(self, cfg) -> None:  # noqa: ANN001 - ModelConfig (import cycle)
        super().__init__(cfg)
        layers = self.options.layers
        if layers is not None:
            bad = [x for x in layers if not 0 <= x < cfg.n_layers]
            if bad:
                raise ConfigError(
                    f"positional encoding 'cope': layers {bad} out of range for "
                    f"{cfg.n_layers} layer(s)"
                )

    @property
    def p_max(self) -> int:
        if self.options.p_max is not None:
            return self.options.p_max
        if self.options.npos is not None:
            return self.options.npos - 1
        return self.cfg.n_ctx

    def attention(self, layer: int) -> AttentionPosition:
        if self.options.layers is not None and layer not in self.options.layers:
            return AttentionPosition()
        return CopeAttention(
            self.cfg.n_heads, self.cfg.head_dim, self.p_max, self.options.sep_gate_key
        )
