"""Contextual position encoding, CoPE (Golovneva et al. 2024, arXiv 2405.18719), as the paper's
public code computes it (facebookresearch/RAM, ``projects/cope``: ``src/cope/context_position.py``
``ContextPosSelfAttn``, and ``src/models/transformer.py`` around it).

Per head, query i gates every key j <= i with ``g_ij = sigmoid(q_i . k_j / sqrt(d_head))``;
the position of key j seen from query i is the number of gated keys between them,
``p_ij = sum_{t=j..i} g_it`` (a reversed cumulative sum), clamped to ``p_max``.  Learned
embeddings ``e[p]`` (zero-initialised) exist for integer ``p`` only; a fractional position
interpolates between ``floor(p)`` and ``ceil(p)``.  The attention logit gains
``q_i . e[p_ij] / sqrt(d_head)`` (the public code adds it before the 1/sqrt(d) scaling).  The
table is one per layer, shared by the layer's heads (the public code's ``pos_emb``
[1 d_head npos], broadcast over batch x heads); gates and positions are per head.

Efficient form (never an L x L x d tensor): ``z = q . E`` at the ``p_max + 1`` integer
positions [batch head_index query_pos n_positions], then gather ``z`` at floor / ceil of
``p_ij`` and mix with the fractional part.  Without hooks on the gates or positions, one fused
function does all of it in chunks of query rows that stay in cache (``_FusedBias``).

Hook points on the attention module, both [batch head_index query_pos key_pos]:
``hook_cope_gates`` (zero for future keys) and ``hook_cope_pos`` (the clamped positions).
Forcing the gates to 1 through the hook gives ``p_ij = i - j + 1``: relative positions.

Options (``ModelConfig.positional_options``); the public code's flag in parentheses:
    p_max       largest position (default ``n_ctx``); ``npos = p_max + 1`` embeddings
    npos        alternative spelling of ``p_max + 1`` (``--cope-npos``)
    layers      layers that use CoPE (default all; interp's own option, no relative positions
                elsewhere unless ``rel``)
    every       CoPE on every ``every``-th layer only, layers ``every - 1, 2 every - 1, ...``
                (``--cope-layers K``, which the public code allows only with ``--pos-emb
                cope+rel``: every layer also gets relative positions, see ``rel``)
    rel         the public code's learned relative positions (``rel``, ``positional/rel.py``)
                added on every layer, CoPE layers included (``--pos-emb cope+rel``); default
                true when ``every > 1``, else false.  ``every=K, rel=false`` is interp's earlier
                variant: the layers without CoPE have no positional information at all
    rel_npos, rel_extend  that table's ``npos`` (default ``n_ctx``) and ``extend`` (far keys use
                the last vector) (``--rel-pos-max``, ``--rel-pos-extend``)
    sep_gate_key  the gates read their own keys ``x W_G + b_G``, a separate projection of the
                attention layer's input (``--cope-sep-key``), instead of the attention keys; the
                attention logits then come from ``q . k`` as usual
    gate_key_bias that projection has a bias ``b_G``, as the public code's ``nn.Linear``
                (default true; trained when the model trains its biases, ``use_bias``); false
                is interp's earlier bias-free ``x W_G``
    val_gates   the gates read the attention values, ``sigmoid(q_i . v_j / sqrt(d_head))``
                (``--cope-val-gates``); the logits stay ``q . k``.  Exclusive with sep_gate_key
                (the public code then ignores its separate keys)
    nodiv       the position term is not divided by ``sqrt(d_head)``: ``q_i . e[p_ij]``
                (``--cope-nodiv``); the gates and ``q . k`` still are
    shared      one table for all CoPE layers, the first CoPE layer's (``--cope-shared``)
    per_head    one table per head (interp's earlier default; not in the public code)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from einops import einsum
from jaxtyping import Float
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from interp.errors import ConfigError
from interp.models.positional.base import AttentionPosition, PositionalEncoding, register_positional
from interp.models.positional.rel import (
    RelativeAttention,
    RelativeHolder,
    RelativeTable,
    relative_sizes,
)


def _int_or_none(name: str, value: object, least: int) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < least:
        raise ValueError(f"{name} must be >= {least}, got {value}")


@dataclass(frozen=True)
class CopeOptions:
    p_max: int | None = None
    npos: int | None = None
    layers: tuple[int, ...] | None = None
    every: int | None = None
    rel: bool | None = None
    rel_npos: int | None = None
    rel_extend: bool = False
    sep_gate_key: bool = False
    gate_key_bias: bool = True
    val_gates: bool = False
    nodiv: bool = False
    shared: bool = False
    per_head: bool = False

    def __post_init__(self) -> None:
        for name in ("p_max", "npos"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.p_max is not None and self.p_max < 1:
            raise ValueError(f"p_max must be >= 1, got {self.p_max}")
        if self.every is not None and (
            not isinstance(self.every, int) or isinstance(self.every, bool) or self.every < 1
        ):
            raise ValueError(f"every must be an integer >= 1, got {self.every!r}")
        if self.every is not None and self.layers is not None:
            raise ValueError("give either layers or every, not both")
        if self.npos is not None and self.npos < 2:
            raise ValueError(f"npos must be >= 2 (p_max >= 1), got {self.npos}")
        if self.p_max is not None and self.npos is not None and self.npos != self.p_max + 1:
            raise ValueError(f"npos ({self.npos}) must equal p_max + 1 ({self.p_max + 1})")
        _int_or_none("rel_npos", self.rel_npos, 1)
        if self.val_gates and self.sep_gate_key:
            raise ValueError("val_gates and sep_gate_key both choose what the gates read; give one")
        if self.layers is not None:
            layers = (self.layers,) if isinstance(self.layers, int) else tuple(self.layers)
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in layers):
                raise ValueError(f"layers must be a list of layer indices, got {self.layers!r}")
            object.__setattr__(self, "layers", layers)

    @property
    def with_rel(self) -> bool:
        """Relative positions on every layer: ``rel``, by default on with ``every > 1``."""
        if self.rel is not None:
            return self.rel
        return self.every is not None and self.every > 1


def causal_mask(n_q: int, n_k: int, device: torch.device) -> Tensor:
    """[query_pos key_pos] bool, True where key j is visible from query i (queries are the last
    ``n_q`` of the ``n_k`` positions)."""
    q_pos = torch.arange(n_k - n_q, n_k, device=device)
    return torch.arange(n_k, device=device)[None, :] <= q_pos[:, None]


# Three autograd functions with hand-written backward passes: the L x L tensors dominate CoPE's
# cost, and these touch each of them as few times as possible (no masked_fill, flip, slice or
# pad copies; one scatter buffer).  ``generate_vmap_rule``: they also run under torch.func.vmap.


class _CausalGates(torch.autograd.Function):
    """``sigmoid(logits)`` with the future keys (``j > i + offset``) set to exactly zero."""

    generate_vmap_rule = True

    @staticmethod
    def forward(logits: Tensor, offset: int) -> Tensor:  # type: ignore[override]
        return torch.sigmoid(logits).tril_(offset)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        (gates,) = ctx.saved_tensors
        # future gates are 0, so their factor g (1 - g) masks their gradient as well
        return torch.ops.aten.sigmoid_backward(grad, gates), None


class _ReverseCumsum(torch.autograd.Function):
    """``p_ij = sum_{t >= j} g_it`` as ``total - cumsum + g`` (the total is the cumsum's last
    entry), accumulated in float32 at least; its gradient is a plain cumsum."""

    generate_vmap_rule = True

    @staticmethod
    def forward(gates: Tensor) -> Tensor:  # type: ignore[override]
        cum = gates.cumsum(-1, dtype=torch.promote_types(gates.dtype, torch.float32))
        return torch.add(gates, cum[..., -1:]).sub_(cum)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
        ctx.gates_dtype = inputs[0].dtype

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        return grad.cumsum(-1).to(ctx.gates_dtype)


class _Interpolate(torch.autograd.Function):
    """``scores + z[floor p] + frac(p) (z[floor p + 1] - z[floor p])``: two gathers forward, one
    scatter buffer backward.  ``positions`` lie in ``[0, n_positions - 1]``.  The floor, the
    fraction and the gathered step are extra outputs (not differentiable) saved for backward."""

    generate_vmap_rule = True

    @staticmethod
    def forward(z: Tensor, positions: Tensor, scores: Tensor):  # type: ignore[override]  # noqa: ANN205
        index = positions.detach().long()  # floor, as positions are >= 0
        fraction = torch.frac(positions).to(z.dtype)
        # last step 0 (frac = 0 there); no out= so that vmap (batched trainers) can run it
        step = torch.nn.functional.pad(z.diff(dim=-1), (0, 1))
        delta = step.gather(-1, index)
        out = z.gather(-1, index).addcmul_(fraction, delta)
        out = out.add_(scores) if scores.dtype == out.dtype else scores + out
        return out, index, fraction, delta

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
        z, positions, scores = inputs
        ctx.mark_non_differentiable(*output[1:])
        ctx.set_materialize_grads(False)  # no zero-filled L x L gradients for the extra outputs
        ctx.z_shape = z.shape
        ctx.pos_dtype, ctx.scores_dtype = positions.dtype, scores.dtype
        ctx.save_for_backward(*output[1:])

    @staticmethod
    def backward(ctx, grad: Tensor, *_: Tensor | None):  # noqa: ANN001, ANN205
        index, fraction, delta = ctx.saved_tensors
        grad_in = grad.to(delta.dtype)
        grad_z = grad_pos = None
        if ctx.needs_input_grad[0]:
            upper = grad_in * fraction  # the weight of z[floor p + 1]
            # a spare last slot: z[floor p + 1] exists even where floor p is the last position
            buf = grad_in.new_zeros((*ctx.z_shape[:-1], ctx.z_shape[-1] + 1))
            buf[..., :-1].scatter_add_(-1, index, grad_in - upper)
            buf[..., 1:].scatter_add_(-1, index, upper)
            grad_z = buf[..., :-1]
        if ctx.needs_input_grad[1]:
            grad_pos = (grad_in * delta).to(ctx.pos_dtype)
        grad_scores = grad.to(ctx.scores_dtype) if ctx.needs_input_grad[2] else None
        return grad_z, grad_pos, grad_scores


# Elements of one [batch head chunk key] slab in the fused form: 128K floats (512 KiB, one
# core's L2 cache on the benchmark machine; 64K and 256K measured alike), so the ~10 successive
# passes over a chunk of query rows read it from cache, and small slabs reuse the allocator's
# memory instead of page-faulting a fresh L x L buffer.
CHUNK_ELEMENTS = 1 << 17
FUSED = True  # False: always the three separate functions (for benchmarks and tests)


def _chunk_positions(logits: Tensor, diagonal: int) -> tuple[Tensor, Tensor]:
    """Gates and (unclamped) positions of a chunk of query rows, as ``_CausalGates`` and
    ``_ReverseCumsum`` compute them (the same operations, bit for bit)."""
    gates = torch.sigmoid(logits).tril_(diagonal)
    cum = gates.cumsum(-1, dtype=torch.promote_types(gates.dtype, torch.float32))
    return gates, torch.add(gates, cum[..., -1:]).sub_(cum)


class _FusedBias(torch.autograd.Function):
    """``scores + interpolate(q E, clamp(reverse_cumsum(causal_sigmoid(logits))))`` in one
    function, query rows in chunks of about ``CHUNK_ELEMENTS`` (every step is independent per
    query row), so the intermediate [batch head chunk key] tensors, ``z = q . E`` included,
    stay in cache.  Nothing L x L is saved: backward recomputes ``z``, gates, positions, floor
    and fraction chunk by chunk from the logits, and turns each chunk's ``dz`` into ``dq`` and
    ``dE`` at once.  ``logits is None``: the gates read ``scores`` (shared keys).  The same
    maths as the three functions above; used when no hook watches the gates or positions.

    ``q`` [batch query_pos head_index d_head] (scaled unless ``nodiv``), ``emb`` [1 d_head
    n_positions] (one table for the layer's heads: ``z`` is one matmul per chunk) or
    [head_index d_head n_positions] (per head: one batched matmul); ``z`` is
    [head_index (batch chunk) n_positions] in memory.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        logits: Tensor | None,
        q: Tensor,
        emb: Tensor,
        scores: Tensor,
        offset: int,
        p_max: int | None,
    ) -> Tensor:
        gate_in = scores if logits is None else logits
        n_q = gate_in.shape[-2]
        out = scores.new_empty(scores.shape, dtype=torch.promote_types(q.dtype, scores.dtype))
        rows = _chunk_rows(gate_in)
        for a in range(0, n_q, rows):
            b = min(a + rows, n_q)
            _, positions = _chunk_positions(gate_in[..., a:b, :], offset + a)
            if p_max is not None:
                positions.clamp_(max=p_max)
            index = positions.long()  # floor, as positions are >= 0
            fraction = torch.frac(positions).to(q.dtype)
            z = _chunk_z(q, emb, a, b)
            value = z.gather(-1, index).addcmul_(fraction, _step(z).gather(-1, index))
            torch.add(value, scores[..., a:b, :], out=out[..., a:b, :])
        return out

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
        logits, q, emb, scores, offset, p_max = inputs
        ctx.offset, ctx.p_max, ctx.shared = offset, p_max, logits is None
        ctx.scores_dtype = scores.dtype
        ctx.save_for_backward(scores if logits is None else logits, q, emb)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        gate_in, q, emb = ctx.saved_tensors
        need_logits = ctx.needs_input_grad[3] if ctx.shared else ctx.needs_input_grad[0]
        need_q, need_emb = ctx.needs_input_grad[1:3]
        need_z = need_q or need_emb
        grad_scores = grad.to(ctx.scores_dtype) if ctx.needs_input_grad[3] else None
        grad_logits = gate_in.new_empty(gate_in.shape) if need_logits else None
        grad_q = q.new_empty(q.shape) if need_q else None
        n_batch, n_heads = gate_in.shape[:2]
        # dE summed over chunks in float32 at least (one rounding, as a single matmul would)
        acc = torch.promote_types(emb.dtype, torch.float32)
        grad_emb = torch.zeros_like(emb, dtype=acc) if need_emb else None
        n_q = gate_in.shape[-2]
        rows = _chunk_rows(gate_in)
        for a in range(0, n_q, rows):
            b = min(a + rows, n_q)
            gates, positions = _chunk_positions(gate_in[..., a:b, :], ctx.offset + a)
            over = None
            if ctx.p_max is not None:
                over = positions > ctx.p_max
                positions.clamp_(max=ctx.p_max)
            index = positions.long()
            grad_in = grad[..., a:b, :].to(q.dtype)
            if need_z:
                upper = grad_in * torch.frac(positions).to(q.dtype)  # weight of z[floor p + 1]
                # [head_index batch chunk n_positions + 1], a spare last slot: z[floor p + 1]
                # exists even where floor p is the last position
                buf = grad_in.new_zeros((n_heads, n_batch, b - a, emb.shape[-1] + 1))
                view = buf.transpose(0, 1)  # [batch head_index chunk n_positions + 1]
                view[..., :-1].scatter_add_(-1, index, grad_in - upper)
                view[..., 1:].scatter_add_(-1, index, upper)
                grad_z = buf[..., :-1].flatten(1, 2)  # [head_index (batch chunk) n_positions]
                if need_q:
                    grad_qc = _times_table(grad_z, emb.transpose(-1, -2))
                    grad_q[:, a:b] = grad_qc.unflatten(1, (n_batch, b - a)).permute(1, 2, 0, 3)
                if need_emb:
                    _add_table_grad(grad_emb, _chunk_q(q, a, b), grad_z)
            if need_logits:
                z = _chunk_z(q, emb, a, b)
                grad_pos = (grad_in * _step(z).gather(-1, index)).to(positions.dtype)
                if over is not None:
                    grad_pos.masked_fill_(over, 0)
                grad_gates = grad_pos.cumsum(-1).to(gates.dtype)
                # future gates are 0, so their factor g (1 - g) masks their gradient as well
                value = torch.ops.aten.sigmoid_backward(grad_gates, gates)
                if ctx.shared:
                    torch.add(value, grad_scores[..., a:b, :], out=grad_logits[..., a:b, :])
                else:
                    grad_logits[..., a:b, :] = value
        if grad_emb is not None:
            grad_emb = grad_emb.to(emb.dtype)
        if ctx.shared:
            grad_scores = grad_logits if need_logits else grad_scores
            return None, grad_q, grad_emb, grad_scores, None, None
        return grad_logits, grad_q, grad_emb, grad_scores, None, None


def _chunk_q(q: Tensor, a: int, b: int) -> Tensor:
    """Query rows ``a:b`` of q [batch query_pos head_index d_head] as [head_index (batch chunk)
    d_head] (a small copy)."""
    return q[:, a:b].permute(2, 0, 1, 3).flatten(1, 2)


def _times_table(x: Tensor, table: Tensor) -> Tensor:
    """``x`` [head_index rows d] times a table [head_index d n] (per head: one batched matmul)
    or [1 d n] (shared by the heads: one matmul over all heads' rows) -> [head_index rows n]."""
    if table.shape[0] == x.shape[0]:
        return torch.bmm(x, table)
    return torch.mm(x.reshape(-1, x.shape[-1]), table[0]).view(*x.shape[:2], table.shape[-1])


def _add_table_grad(grad_emb: Tensor, q_chunk: Tensor, grad_z: Tensor) -> None:
    """``grad_emb += q_chunk^T grad_z``: q_chunk [head_index rows d_head], grad_z
    [head_index rows n_positions]; a table shared by the heads sums over all of them."""
    if grad_emb.shape[0] != q_chunk.shape[0]:  # [1 d_head n_positions]: one matmul
        q_chunk = q_chunk.reshape(1, -1, q_chunk.shape[-1])
        grad_z = grad_z.reshape(1, -1, grad_z.shape[-1])
    if grad_emb.dtype == q_chunk.dtype:
        grad_emb.baddbmm_(q_chunk.transpose(-1, -2), grad_z)
    else:
        grad_emb += torch.bmm(q_chunk.transpose(-1, -2), grad_z)


def _chunk_z(q: Tensor, emb: Tensor, a: int, b: int) -> Tensor:
    """``z = q . E`` for query rows ``a:b``, [batch head_index chunk n_positions] (a view of one
    [head_index (batch chunk) n_positions] (batched) matmul)."""
    z = _times_table(_chunk_q(q, a, b), emb)
    return z.unflatten(1, (q.shape[0], b - a)).transpose(0, 1)


def _step(z: Tensor) -> Tensor:
    """``z[p + 1] - z[p]`` along the last dimension, 0 at the last position (frac = 0 there)."""
    step = torch.empty_like(z)
    torch.sub(z[..., 1:], z[..., :-1], out=step[..., :-1])
    step[..., -1] = 0
    return step


def _chunk_rows(x: Tensor) -> int:
    """Query rows per chunk: about ``CHUNK_ELEMENTS`` elements of [batch head chunk key]."""
    return max(1, CHUNK_ELEMENTS // max(1, x.numel() // max(1, x.shape[-2])))


def _idle(hook: object) -> bool:
    """No hook point, or one that nothing watches (an ``nn.Module`` without hooks)."""
    return hook is None or (
        isinstance(hook, nn.Module)
        and not (
            hook._forward_hooks
            or hook._forward_pre_hooks
            or hook._backward_hooks
            or hook._backward_pre_hooks
        )
    )


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
            FUSED
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


@register_positional
class Cope(PositionalEncoding):
    name = "cope"
    Options = CopeOptions
    relative = True
    position_maps = True
    redefined = True  # one table per head before it followed the public code

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

        if not any(self.uses_layer(layer) for layer in range(cfg.n_layers)):
            raise ConfigError(
                f"positional encoding 'cope': every={self.options.every} leaves none of the "
                f"{cfg.n_layers} layer(s) with CoPE"
            )
        # built by attention() layer by layer: the first CoPE layer (its table is the shared
        # one) and the relative table (layer 0 holds it)
        self._first: CopeAttention | None = None
        self._rel: RelativeTable | None = None

    @property
    def p_max(self) -> int:
        if self.options.p_max is not None:
            return self.options.p_max
        if self.options.npos is not None:
            return self.options.npos - 1
        return self.cfg.n_ctx

    @property
    def rel_npos(self) -> int:
        o = self.options
        return o.rel_npos if o.rel_npos is not None else self.cfg.n_ctx

    def uses_layer(self, layer: int) -> bool:
        if self.options.layers is not None:
            return layer in self.options.layers
        if self.options.every is not None:
            return (layer + 1) % self.options.every == 0
        return True

    def label(self) -> str:
        """``cope`` or ``cope+rel``, with the options that differ from the public code's
        defaults; interp's own variants say so."""
        o = self.options
        notes = []
        if o.every is not None and o.every > 1:
            notes.append(f"CoPE every {o.every} layers")
        if o.layers is not None:
            notes.append(f"CoPE on layers {', '.join(map(str, o.layers))}")
        if o.p_max is not None or o.npos is not None:
            notes.append(f"npos {self.p_max + 1}")
        if o.sep_gate_key:
            notes.append("separate gate keys" + ("" if o.gate_key_bias else " without bias"))
        if o.val_gates:
            notes.append("value gates")
        if o.nodiv:
            notes.append("position logits not divided by sqrt(d)")
        if o.shared:
            notes.append("one table for all layers")
        if o.with_rel and o.rel_npos is not None:
            notes.append(f"rel npos {o.rel_npos}")
        if o.with_rel and o.rel_extend:
            notes.append("rel far keys use the last vector")
        variant = []
        if o.per_head:
            variant.append("one table per head")
        if o.sep_gate_key and not o.gate_key_bias:
            variant.append("gate keys without bias")
        if o.every is not None and o.every > 1 and not o.with_rel:
            variant.append("no positions on the other layers")
        if variant:
            notes.append("interp variant: " + ", ".join(variant))
        base = "cope+rel" if o.with_rel else "cope"
        return base + (f" ({'; '.join(notes)})" if notes else "")

    def sizes(self, batch_size: int, n_ctx: int) -> tuple[int, int]:
        """Per CoPE layer: the position embeddings ``[1 or head_index, d_head, n_positions]``
        (once with ``shared``; and the gate keys), ``z = q . E`` ``[batch head_index query_pos
        n_positions]`` and the gates, positions and their gradients ``[batch head_index
        query_pos key_pos]`` (float32); the relative table and its per-layer tensors."""
        cfg, o = self.cfg, self.options
        heads, d_head, npos = cfg.n_heads, cfg.head_dim, self.p_max + 1
        layers = sum(self.uses_layer(layer) for layer in range(cfg.n_layers))
        tables = (1 if o.shared else layers) * (heads if o.per_head else 1) * d_head * npos
        gates = heads * d_head * (cfg.d_model + 1) if o.sep_gate_key else 0
        params = tables + layers * gates
        acts = layers * 4 * batch_size * heads * n_ctx * (2 * npos + 4 * n_ctx)
        if o.with_rel:
            rel = relative_sizes(batch_size, heads, n_ctx, d_head, self.rel_npos, cfg.n_layers)
            params, acts = params + rel[0], acts + rel[1]
        return params, acts

    def earlier_variant(
        self, given: Mapping[str, Tensor], expected: Mapping[str, tuple[int, ...]]
    ) -> tuple[dict[str, Any], list[str]]:
        """Weights ``given`` saved by interp before its CoPE followed the public code, against
        this config's ``expected`` shapes: the options that build them as the variant they are
        and why (empty when they are something else).  With one head, per-head and shared
        tables have one shape and compute the same logits: nothing to change."""
        o, fixes, reasons = self.options, {}, []
        heads = self.cfg.n_heads
        for name, tensor in given.items():
            want = expected.get(name)
            if (
                name.endswith(".position.pos_emb")
                and want is not None
                and tuple(tensor.shape) != tuple(want)
                and tensor.ndim == 3
                and tensor.shape[0] == heads
                and want[0] == 1
                and tuple(tensor.shape[1:]) == tuple(want[1:])
            ):
                reasons.append("one position table per head")
                fixes["per_head"] = True
                break

        def missing(part: str) -> bool:
            return any(part in n for n in expected) and not any(part in n for n in given)

        if o.sep_gate_key and o.gate_key_bias and missing(".position.b_G"):
            reasons.append("separate gate keys without a bias")
            fixes["gate_key_bias"] = False
        if o.with_rel and missing(".position.rel."):
            every = o.every if o.every is not None else 1
            reasons.append(
                f"no positions on the layers without CoPE (every={every})"
                if every > 1
                else "no relative positions"
            )
            fixes["rel"] = False
        return fixes, reasons

    def explain_weights(
        self, given: Mapping[str, Tensor], expected: Mapping[str, tuple[int, ...]]
    ) -> str | None:
        """Why weights saved by an earlier interp do not fit this config, and the options that
        load them as the variant they are (None when they are something else)."""
        fixes, reasons = self.earlier_variant(given, expected)
        if not fixes:
            return None
        add = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in fixes.items())
        return (
            f"CoPE weights of interp's earlier variant ({'; '.join(reasons)}), not the public "
            f"code's definition that is now the default; to train on with them as that variant "
            f"add {add} to model.positional_options in the run's config.json"
        )

    def attention(self, layer: int) -> AttentionPosition:
        """Layer ``layer``'s part; called once per layer, in order (the first call builds the
        tables later layers share)."""
        cfg, o = self.cfg, self.options
        rel, rel_owner = None, False
        if o.with_rel:
            rel_owner = self._rel is None
            if rel_owner:
                self._rel = RelativeTable(cfg.head_dim, self.rel_npos, o.rel_extend)
            rel = self._rel
        if not self.uses_layer(layer):
            return RelativeAttention(rel, rel_owner) if rel is not None else AttentionPosition()
        part = CopeAttention(
            cfg.n_heads,
            cfg.head_dim,
            self.p_max,
            o.sep_gate_key,
            cfg.d_model,
            per_head=o.per_head,
            gate_key_bias=o.gate_key_bias,
            train_bias=cfg.use_bias,
            val_gates=o.val_gates,
            nodiv=o.nodiv,
            table_of=self._first if o.shared else None,
            rel=rel,
            rel_owner=rel_owner,
        )
        if self._first is None:
            self._first = part
        return part
