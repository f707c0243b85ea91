"""CoPE's per-layer part: gates from queries and (gate) keys, positions as their reverse
cumulative sum, the interpolated position logits added to the attention scores, with
myopic gradients kept exact (the encoding, its options and its registry entry are
:mod:`interp.models.positional.cope`; the kernels :mod:`~interp.models.positional.cope_kernels`).

Dimensions: batch, query_pos, key_pos, head_index, d_head, npos, d_model.
"""

from __future__ import annotations

import math

import torch
from einops import einsum
from jaxtyping import Float
from torch import Tensor, nn

from interp.models.positional import cope_kernels
from interp.models.positional.base import AttentionPosition
from interp.models.positional.cope_kernels import (
    _CausalGates,
    _FusedBias,
    _idle,
    _Interpolate,
    _ReverseCumsum,
    causal_mask,
)
from interp.models.positional.rel import RelativeHolder, RelativeTable


class CopeAttention(RelativeHolder, AttentionPosition):
    """One CoPE layer.  ``table_of``: another CoPE layer whose table this one reads (``shared``);
    ``rel``: the relative-position table added on top (``rel``), held by this layer when
    ``rel_owner``.  The defaults are the public code's definition."""

    hook_names = ("hook_cope_gates", "hook_cope_pos")

    def __init__(
        self,
        n_heads: int,
        d_head: int,
        p_max: int,
        sep_gate_key: bool = False,
        d_model: int = 0,
        *,
        per_head: bool = False,
        gate_key_bias: bool = True,
        train_bias: bool = True,
        val_gates: bool = False,
        nodiv: bool = False,
        table_of: CopeAttention | None = None,
        rel: RelativeTable | None = None,
        rel_owner: bool = True,
    ) -> None:
        super().__init__()
        self.p_max = p_max
        self.scale = 1.0 / math.sqrt(d_head)
        self.val_gates, self.nodiv = val_gates, nodiv
        if table_of is None:
            # [1 d_head n_positions] (one for the layer's heads) or [head_index d_head
            # n_positions]; not named W_* so the model's init leaves it at zero
            heads = n_heads if per_head else 1
            self.pos_emb = nn.Parameter(torch.zeros(heads, d_head, p_max + 1))
        else:
            self._table_of = [table_of]  # a list hides it from .modules() and the state dict
        if sep_gate_key and d_model < 1:
            raise ValueError("separate gate keys need d_model")
        if sep_gate_key and val_gates:
            raise ValueError("value gates and separate gate keys exclude each other")
        # [head_index d_model d_head], the gates' own key projection (initialised like W_K)
        self.W_G = nn.Parameter(torch.empty(n_heads, d_model, d_head)) if sep_gate_key else None
        if self.W_G is not None:
            nn.init.normal_(self.W_G, std=0.02)
        # [head_index d_head], its bias (zero-initialised like b_K; trained with use_bias)
        with_bias = sep_gate_key and gate_key_bias
        self.b_G = (
            nn.Parameter(torch.zeros(n_heads, d_head), requires_grad=train_bias)
            if with_bias
            else None
        )
        self.hold_relative(rel, rel_owner)

    @property
    def table(self) -> Tensor:
        """The position embeddings this layer reads, [1 or head_index, d_head, n_positions]."""
        if "pos_emb" in self._parameters:
            return self.pos_emb
        return self._table_of[0].table

    def gate_keys(
        self, x: Float[Tensor, "batch key_pos d_model"]
    ) -> Float[Tensor, "batch key_pos head_index d_head"]:
        """The separate gate keys ``x W_G + b_G`` (only with ``sep_gate_key``)."""
        if self.W_G is None:
            raise ValueError("this CoPE layer shares its gate keys with the attention keys")
        keys = (x @ self.W_G.transpose(0, 1).flatten(1)).unflatten(-1, self.W_G.shape[::2])
        return keys if self.b_G is None else keys + self.b_G

    def gate_logits(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        gate_k: Float[Tensor, "batch key_pos head_index d_head"],
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """``q . gate_k / sqrt(d_head)``."""
        return (
            einsum(
                q,
                gate_k,
                "batch query_pos head_index d_head, batch key_pos head_index d_head -> batch head_index query_pos key_pos",
            )
            * self.scale
        )

    def positions(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k: Float[Tensor, "batch key_pos head_index d_head"],
        gate_logits: Float[Tensor, "batch head_index query_pos key_pos"] | None = None,
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """Gates (through ``hook_cope_gates``) -> clamped positions (through ``hook_cope_pos``).

        ``gate_logits`` default to ``q . k / sqrt(d_head)``; the attention passes its own logits
        (shared keys, as in the public code) or those of the separate gate keys or the values.
        """
        n_q, n_k = q.shape[1], k.shape[1]
        if gate_logits is None:
            gate_logits = self.gate_logits(q, k)
        gates = _CausalGates.apply(gate_logits, n_k - n_q)
        hook = self.hooks.get("hook_cope_gates")
        if hook is not None:
            gates = hook(gates)
            if hook._forward_hooks:  # a hook may have written future keys: they stay at zero
                gates = gates.masked_fill(~causal_mask(n_q, n_k, q.device), 0.0)
        # summed in float32 at least, so half-precision models keep integer-accurate positions
        positions = _ReverseCumsum.apply(gates)
        if self.p_max < n_k:  # otherwise positions cannot exceed p_max
            positions = positions.clamp(max=self.p_max)
        hook = self.hooks.get("hook_cope_pos")
        return hook(positions) if hook is not None else positions

    def position_logits(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        positions: Float[Tensor, "batch head_index query_pos key_pos"],
        scores: Float[Tensor, "batch head_index query_pos key_pos"] | None = None,
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """``q_i . e[p_ij]`` interpolated (plus ``scores`` when given), from ``z = q . E`` at
        integer positions only.

        ``positions`` must lie in ``[0, p_max]`` (as :meth:`positions` returns them).
        """
        # [batch head_index query_pos n_positions], written in that layout (no permuted copy)
        z = torch.matmul(q.transpose(1, 2), self.table.to(q.dtype))
        if scores is None:
            scores = z.new_zeros(())
        return _Interpolate.apply(z, positions, scores)[0]

    def position_only_logits(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        positions: Float[Tensor, "batch head_index query_pos key_pos"],
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """The positional term alone as it enters the logits: ``q_i . e[p_ij] / sqrt(d_head)``
        (``q_i . e[p_ij]`` with ``nodiv``)."""
        logits = self.position_logits(q, positions)
        return logits if self.nodiv else logits * self.scale

    def _own_gate_keys(
        self, x: Tensor, v: Tensor | None
    ) -> Float[Tensor, "batch key_pos head_index d_head"] | None:
        """What the gates read instead of the attention keys (values or ``x W_G + b_G``), or
        None for shared keys."""
        if self.val_gates:
            if v is None:
                raise ValueError("value gates read the attention values: pass v")
            return v
        return self.gate_keys(x) if self.W_G is not None else None

    def _plus_relative(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        n_k: int,
        logits: Float[Tensor, "batch head_index query_pos key_pos"],
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """``cope+rel``: the relative term added after the gates read the logits (the public
        code adds it to ``q . k`` once the gates are computed)."""
        table = self.rel_table
        return logits if table is None else logits + table.logits(q, n_k)

    def score_bias(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k: Float[Tensor, "batch key_pos head_index d_head"],
        scores: Float[Tensor, "batch head_index query_pos key_pos"],
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """Shared gate keys: the gates read the attention logits ``scores`` themselves."""
        if self.W_G is not None or self.val_gates:
            raise ValueError(
                "separate gate keys or value gates read the layer input or values: use "
                "score_bias_with_input"
            )
        return self._plus_relative(q, k.shape[1], self.bias(q, k, scores, scores))

    def bias(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k: Float[Tensor, "batch key_pos head_index d_head"],
        gate_logits: Float[Tensor, "batch head_index query_pos key_pos"],
        scores: Float[Tensor, "batch head_index query_pos key_pos"],
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """``scores`` plus the position logits of the gates read from ``gate_logits`` (pass
        ``scores`` itself for shared keys): :meth:`positions` then :meth:`position_logits`, or
        the same maths fused and chunked over queries (``_FusedBias``) when no hook watches the
        gates or positions and no ``torch.func`` transform is active."""
        hooks = (self.hooks.get(name) for name in self.hook_names)
        wrapped = torch._C._functorch.is_functorch_wrapped_tensor
        table = self.table
        q_pos = q if self.nodiv else q * self.scale
        if (
            cope_kernels.FUSED
            and all(_idle(h) for h in hooks)
            and not any(wrapped(t) for t in (q, gate_logits, scores, table))
        ):
            n_q, n_k = gate_logits.shape[-2:]
            p_max = self.p_max if self.p_max < n_k else None
            logits = None if gate_logits is scores else gate_logits
            emb = table.to(q.dtype)
            return _FusedBias.apply(logits, q_pos, emb, scores, n_k - n_q, p_max)
        return self.position_logits(q_pos, self.positions(q, k, gate_logits), scores)

    def score_bias_with_input(
        self,
        x: Float[Tensor, "batch key_pos d_model"],
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k: Float[Tensor, "batch key_pos head_index d_head"],
        scores: Float[Tensor, "batch head_index query_pos key_pos"],
        v: Float[Tensor, "batch key_pos head_index d_head"] | None = None,
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        gate_k = self._own_gate_keys(x, v)
        if gate_k is None:
            return self.score_bias(q, k, scores)
        out = self.bias(q, gate_k, self.gate_logits(q, gate_k), scores)
        return self._plus_relative(q, k.shape[1], out)

    def score_bias_myopic(
        self,
        x: Float[Tensor, "batch key_pos d_model"],
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k_past: Float[Tensor, "batch key_pos head_index d_head"],
        k_live: Float[Tensor, "batch key_pos head_index d_head"],
        scores: Float[Tensor, "batch head_index query_pos key_pos"],
        v_past: Float[Tensor, "batch key_pos head_index d_head"] | None = None,
        v_live: Float[Tensor, "batch key_pos head_index d_head"] | None = None,
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """Myopic training (see ``interp.models.attention``): the gate of key j = i reads the
        live gate key, the others the past (detached-input) ones, so the gradient is exact.

        Shared gate keys read the myopic ``scores``, whose diagonal is already live; separate
        gate keys and value gates get the same diagonal correction (forward values unchanged,
        bit for bit).  The relative term reads ``q`` only: exact as it is.
        """
        if self.val_gates:
            if v_past is None or v_live is None:
                raise ValueError("value gates read the attention values: pass v_past, v_live")
            g_past, g_live = v_past, v_live
        elif self.W_G is not None:
            g_past, g_live = self.gate_keys(x.detach()), self.gate_keys(x)
        else:
            return self.score_bias(q, k_past, scores)
        past = self.gate_logits(q, g_past)
        live = (
            einsum(
                q,
                g_live,
                "batch pos head_index d_head, batch pos head_index d_head -> batch head_index pos",
            )
            * self.scale
        )
        diag = past.diagonal(dim1=-2, dim2=-1).detach() + (live - live.detach())
        eye = torch.eye(q.shape[1], dtype=torch.bool, device=q.device)
        logits = torch.where(eye, diag.unsqueeze(-1), past)
        return self._plus_relative(q, k_past.shape[1], self.bias(q, g_past, logits, scores))
